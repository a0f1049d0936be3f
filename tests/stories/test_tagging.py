"""Tags from categories, feeds.yaml and the text; the related-post score. Real news text."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.config.load import ConfigError, parse_config
from aggregator.stories.tagging import (
    MAX_TAGS,
    MIN_TAGS,
    RelatedCandidate,
    StoryText,
    choose_tags,
    extract_entities,
    extract_key_phrases,
    most_related,
    story_terms,
    strip_dateline,
    tag_slug,
)
from aggregator.types import TagRules
from tests.conftest import corpus_path


def bbc(title: str) -> dict[str, str]:
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["title"] == title:
                return row
    raise LookupError(title)


def test_slugs_ignore_case_accents_spacing_and_punctuation() -> None:
    assert tag_slug("  Walter  Lübcke ") == "walter-lubcke"
    assert tag_slug("WALTER LUBCKE") == "walter-lubcke"
    assert tag_slug("São Paulo") == tag_slug("Sao-Paulo") == "sao-paulo"
    assert tag_slug("AT&T") == "at-t"


def test_names_are_extracted_from_real_news_text() -> None:
    row = bbc("Dollar gains on Greenspan speech")
    names = dict(extract_entities(row["title"], row["body"]))
    assert "Alan Greenspan" in names and "Federal Reserve" in names
    assert "Greenspan" not in names  # the surname alone counts for the full name
    assert names["Alan Greenspan"] >= 3


def test_new_is_part_of_a_name_but_never_a_tag_alone() -> None:
    text = (
        "Runners crossed New York on Sunday. The New York course is flat, and the new route "
        "passes Central Park. New runners and new records are expected, a new sponsor said."
    )
    names = dict(extract_entities("New York marathon", text))
    assert "New York" in names and "York" not in names
    labels = choose_tags(StoryText("New York marathon", text), TagRules())
    assert "new" not in {label.lower() for label in labels}


def test_a_capital_that_only_opens_a_sentence_is_not_a_name() -> None:
    text = "Officials said the talks failed. Tens of thousands marched in Khartoum on Sunday."
    names = dict(extract_entities("Talks fail", text))
    assert "Khartoum" in names
    assert not {"Officials", "Tens", "Sunday"} & set(names)


def test_short_name_joins_the_full_name_in_the_same_story() -> None:
    text = (
        "Russian President Vladimir Putin met envoys in Moscow. Putin said the talks were useful. "
        "Later Putin left for St Petersburg."
    )
    labels = choose_tags(StoryText("Putin meets envoys", text), TagRules())
    assert "Vladimir Putin" in labels
    assert "Putin" not in labels


def test_datelines_agencies_and_calendar_words_are_never_tags() -> None:
    text = (
        "LONDON (Reuters) - Shares in Tesco rose on Monday after Tesco said sales grew. "
        "Reuters reported that Tesco plans more stores in January. AFP and the BBC agreed. "
        "Tesco chief Terry Leahy said Tesco would hire staff."
    )
    labels = choose_tags(StoryText("Tesco sales grow", text, categories=["Reuters"]), TagRules())
    assert "Tesco" in labels and "Terry Leahy" in labels
    lowered = {label.lower() for label in labels}
    assert not lowered & {"reuters", "london (reuters)", "afp", "bbc", "monday", "january"}
    assert strip_dateline("WASHINGTON, Nov 24 (AP) — The Senate voted.") == "The Senate voted."


def test_feed_categories_and_source_tags_come_first_and_merge_by_slug() -> None:
    row = bbc("Dollar gains on Greenspan speech")
    labels = choose_tags(
        StoryText(
            row["title"],
            row["body"],
            categories=["Currencies", "federal reserve"],
            source_tags=["Markets"],
            section="business",
        ),
        TagRules(),
    )
    assert labels[0] == "Markets"
    assert labels[1] == "Currencies"
    assert len([label for label in labels if tag_slug(label) == "federal-reserve"]) == 1
    assert MIN_TAGS <= len(labels) <= MAX_TAGS


def test_every_real_article_gets_between_three_and_ten_tags() -> None:
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[::40]
    for row in rows:
        labels = choose_tags(StoryText(row["title"], row["body"], section="news"), TagRules())
        assert MIN_TAGS <= len(labels) <= MAX_TAGS, (row["title"], labels)
        assert len({tag_slug(label) for label in labels}) == len(labels)


def test_editors_aliases_and_ignore_from_feeds_yaml() -> None:
    config = parse_config(
        "sources: [{id: a, url: 'http://x.test/feed'}]\n"
        "tags:\n"
        "  aliases:\n"
        "    Vladimir Putin: [Putin, President Putin]\n"
        "    United Nations: UN\n"
        "  ignore: [Moscow]\n"
    )
    text = "Putin spoke in Moscow. Putin and the UN met. The UN said Moscow agreed. Putin left."
    labels = choose_tags(StoryText("Putin at the UN", text), config.tags)
    assert "Vladimir Putin" in labels and "United Nations" in labels
    assert "Moscow" not in labels and "Putin" not in labels and "UN" not in labels


def test_a_bad_tags_section_is_reported_with_its_line() -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(
            "sources: [{id: a, url: 'http://x.test/feed'}]\ntags:\n  aliases: [oops]\n  hide: []\n",
            "feeds.yaml",
        )
    messages = [str(problem) for problem in error.value.problems]
    assert any(m.startswith("feeds.yaml:3: tags.aliases") for m in messages), messages
    assert any(m.startswith("feeds.yaml:4: tags: unknown key 'hide'") for m in messages), messages


def test_key_phrases_are_headline_and_lede_topics_the_body_repeats() -> None:
    title = "Interest rates rise as housing cools"
    text = (
        "The central bank raised interest rates again, and also warned that housing was slowing. "
        "Economists expected the move. It also said inflation was a worry. Higher interest rates "
        "make mortgages dearer, and inflation also raised costs: interest rates stay high. "
        "Inflation is above target, the bank said, and interest rates were raised before when "
        "inflation rose. Inflation, the bank said, will fall."
    )
    phrases = extract_key_phrases(title, text)
    weights = dict(phrases)
    assert "interest rates" in weights  # in the headline, said four times
    assert "economists" not in weights and "housing" not in weights  # said once
    assert not {"the", "and", "also", "raised", "slowing", "was"} & set(weights)  # all recur
    assert "interest" not in weights  # said only as part of "interest rates"
    assert weights["inflation"] > weights["bank"]  # five times against three, though bank is first
    assert [weight for _, weight in phrases] == sorted(weights.values(), reverse=True)
    assert all(0 < weight <= 1 for weight in weights.values())


def test_story_terms_weigh_the_headline_and_skip_stop_words() -> None:
    terms = story_terms("Rates rise again", "The bank said rates would rise. It is the third rise.")
    assert terms[:2] == ["rise", "rates"]
    assert "the" not in terms and "said" not in terms


def test_relatedness_prefers_shared_rare_tags_shared_words_and_nearby_dates() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    terms = frozenset({"election", "labour", "blair", "vote", "campaign"})
    idf = {1: 3.0, 2: 0.2}  # tag 1 rare (e.g. "Tony Blair"), tag 2 common (e.g. "UK")

    def score(tags: set[int], words: set[str], days: int) -> float:
        candidate = RelatedCandidate(
            1, frozenset(tags), frozenset(words), (now - timedelta(days=days)).timestamp()
        )
        best = most_related(terms, now, idf, [candidate], count=1)
        return best[0][0] if best else 0.0

    rare = score({1}, {"vote"}, 1)
    common = score({2}, {"vote"}, 1)
    wordy = score({2}, {"vote", "blair", "labour"}, 1)
    old = score({1}, {"vote"}, 400)
    assert rare > common
    assert wordy > common
    assert rare > old
    assert score(set(), set(), 1) == 0


def test_most_related_keeps_the_best_first_newer_on_ties_and_leaves_out_unrelated() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    terms = frozenset({"election", "labour", "vote"})
    idf = {1: 3.0, 2: 0.2}
    yesterday = (now - timedelta(days=1)).timestamp()
    candidates = [
        RelatedCandidate(10, frozenset({2}), frozenset({"vote"}), yesterday),
        RelatedCandidate(11, frozenset({1}), frozenset({"vote"}), yesterday),
        RelatedCandidate(12, frozenset({9}), frozenset({"weather"}), yesterday),  # shares nothing
        RelatedCandidate(13, frozenset({2}), frozenset({"vote"}), yesterday),  # ties with 10
        RelatedCandidate(14, frozenset({1}), frozenset({"vote", "labour"}), yesterday),
    ]

    best = most_related(terms, now, idf, candidates, count=4)

    assert [story_id for _, story_id in best] == [14, 11, 13, 10]
    # Room for all five: the one sharing neither a tag nor a word is still left out.
    assert [story_id for _, story_id in most_related(terms, now, idf, candidates)] == [
        14,
        11,
        13,
        10,
    ]
    assert [story_id for _, story_id in most_related(terms, now, idf, candidates, count=2)] == [
        14,
        11,
    ]
