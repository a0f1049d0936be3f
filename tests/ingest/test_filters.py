"""aggregator/ingest/filters.py on plain values: the order of rules, recorded reasons, title
clean-up."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aggregator.config.load import parse_config
from aggregator.ingest.filters import apply_filters, strip_title
from aggregator.ingest.normalise import normalise_entry
from aggregator.types import FilterRules, Item, RawEntry

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def rules(yaml_filters: str) -> FilterRules:
    text = f"filters:\n{yaml_filters}sources:\n  - id: a\n    url: http://x.example/\n"
    return parse_config(text).filters


def item(title: str, text: str = "", **changes: object) -> Item:
    raw = RawEntry(
        id=None, link=f"https://news.example/{len(title)}", title=title, title_is_html=False,
        summary=text or None, content=None, published=NOW - timedelta(hours=1), updated=None,
        author=None, categories=(), image_url=None, image_credit=None, language=None,
    )  # fmt: skip
    normalised = normalise_entry(raw, now=NOW)
    assert normalised is not None
    return replace(normalised, **changes)  # type: ignore[arg-type]


def test_age_is_judged_before_language_and_patterns() -> None:
    old = item("Horoscope", published=NOW - timedelta(days=3), language="fr")
    kept, [turned_away] = apply_filters(
        [old],
        rules("  exclude: horoscope\n  max_age: 1d\n  languages: [en]\n"),
        source_language=None,
        now=NOW,
    )
    assert kept == []
    assert (turned_away.rule, turned_away.detail) == (
        "max_age",
        "published 3d ago, older than max_age 1d",
    )


def test_exclude_wins_over_include_and_names_what_matched() -> None:
    both = item("Budget horoscope", "Stars align for the budget.")
    _, [turned_away] = apply_filters(
        [both], rules("  include: budget\n  exclude: stars\n"), source_language=None, now=NOW
    )
    assert turned_away.rule == "exclude"
    assert turned_away.detail == "filters.exclude[0] 'stars' (line 3) matched 'Stars' in the text"


def test_unknown_language_is_kept_and_source_language_stands_in() -> None:
    unsaid = item("Rain")
    kept, filtered = apply_filters(
        [unsaid], rules("  languages: [en]\n"), source_language=None, now=NOW
    )
    assert kept == [unsaid] and filtered == []
    kept, [turned_away] = apply_filters(
        [unsaid], rules("  languages: [en]\n"), source_language="de-AT", now=NOW
    )
    assert turned_away.detail == "language 'de-AT' not in [en]"


def test_section_map_takes_the_first_mapped_category() -> None:
    tagged = item("Goal", categories=("Europe", "FOOTBALL", "Politics"))
    [kept], _ = apply_filters(
        [tagged],
        rules("  section_map: {Politics: home, football: sport}\n"),
        source_language=None,
        now=NOW,
    )
    assert kept.section == "sport"


def test_strip_title_never_leaves_an_empty_title() -> None:
    patterns = rules("  title_strip: [' - Reuters', '/^Reuters$/']\n").title_strip
    assert strip_title("Oil climbs - Reuters", patterns) == "Oil climbs"
    assert strip_title("Reuters", patterns) == "Reuters"
