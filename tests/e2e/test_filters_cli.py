"""Editors' filters end to end: feeds.yaml rules, `caulbart fetch` from a loopback server into
SQLite and PostgreSQL, read back with `caulbart export` and `caulbart explain`.

Filtered items never become stories, and every one is recorded with the rule that turned it
away, so `caulbart explain --filtered` and `caulbart explain LINK` can say why.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import Item, rss

NOW = datetime.now(UTC)


def wire(items: list[dict[str, Any]], language: str | None = None) -> str:
    """An RSS 2.0 document; item keys: title, slug (link, guid), text, age (hours), categories."""
    entries = [
        Item(
            guid=f"https://news.example/{item['slug']}",
            title=item["title"],
            link=f"https://news.example/{item['slug']}",
            published=NOW - timedelta(hours=item.get("age", 1)),
            description=item.get("text", "Plain words about it."),
            categories=tuple(item.get("categories", ())),
        )
        for item in items
    ]
    return rss(*entries, title="Wire", link="https://news.example/", language=language or None)


def fetch(caulbart: Caulbart) -> str:
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    return result.stdout


def export(caulbart: Caulbart) -> list[dict[str, Any]]:
    result = caulbart("export")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def titles(caulbart: Caulbart) -> set[str]:
    return {story["title"] for story in export(caulbart)}


def filtered(caulbart: Caulbart, *args: str) -> dict[str, dict[str, Any]]:
    """`caulbart explain --filtered --json`, by title."""
    result = caulbart("explain", "--filtered", "--json", *args)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {row["title"]: row for row in rows}


WIRE = [
    {"slug": "stars", "title": "Your horoscope for Tuesday"},
    {"slug": "scopes", "title": "Horoscopes are big business, say analysts"},
    {"slug": "live", "title": "Live: markets open lower"},
    {"slug": "alive", "title": "Reporters live in interesting times"},
    {"slug": "budget", "title": "Ministers agree budget", "text": "A celebrity chef attended."},
    {"slug": "match", "title": "Cup final tonight", "text": "The FOOTBALL season ends."},
]


def test_exclude_keywords_and_regexes_turn_items_away_and_record_why(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    url = feed_server.add("/wire.rss", wire(WIRE))
    write_feeds_yaml(
        caulbart.config,
        [{"id": "wire", "url": url, "exclude": ["football", "celebrity chef"]}],
        filters={"exclude": ["horoscope", "/^Live:/"]},
    )

    out = fetch(caulbart)

    # Whole words, any case: "Horoscopes" is not "horoscope"; the regex is case-sensitive and
    # anchored, so "live" inside a headline stays. Site-wide and the source's rules both apply.
    assert titles(caulbart) == {
        "Horoscopes are big business, say analysts",
        "Reporters live in interesting times",
    }
    assert "2 new" in out and "4 filtered" in out
    why = filtered(caulbart)
    assert set(why) == {
        "Your horoscope for Tuesday",
        "Live: markets open lower",
        "Ministers agree budget",
        "Cup final tonight",
    }
    assert {row["rule"] for row in why.values()} == {"exclude"}
    assert why["Your horoscope for Tuesday"]["detail"].startswith(
        "filters.exclude[0] 'horoscope' (line "
    )
    assert "'horoscope' in the title" in why["Your horoscope for Tuesday"]["detail"]
    assert why["Live: markets open lower"]["detail"].startswith("filters.exclude[1] '/^Live:/'")
    assert "sources[0].exclude[0] 'football'" in why["Cup final tonight"]["detail"]
    assert "'FOOTBALL' in the text" in why["Cup final tonight"]["detail"]
    assert "'celebrity chef' in the text" in why["Ministers agree budget"]["detail"]
    assert why["Cup final tonight"]["source"] == "wire"
    assert why["Cup final tonight"]["link"] == "https://news.example/match"


def test_include_keeps_only_items_matching_one_of_its_patterns(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    url = feed_server.add("/wire.rss", wire(WIRE))
    write_feeds_yaml(
        caulbart.config, [{"id": "wire", "url": url, "include": ["budget", "/^Cup /"]}]
    )

    out = fetch(caulbart)

    assert titles(caulbart) == {"Ministers agree budget", "Cup final tonight"}
    assert "4 filtered" in out
    why = filtered(caulbart, "--source", "wire")
    assert len(why) == 4 and {row["rule"] for row in why.values()} == {"include"}
    assert why["Your horoscope for Tuesday"]["detail"] == (
        "matched none of include [budget, /^Cup /]"
    )


def test_max_age_turns_away_entries_older_than_it(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    items = [
        {"slug": "fresh", "title": "Fresh news", "age": 2},
        {"slug": "stale", "title": "Stale news", "age": 24 * 10},
    ]
    url = feed_server.add("/wire.rss", wire(items))
    write_feeds_yaml(caulbart.config, [{"id": "wire", "url": url}], filters={"max_age": "2d"})

    out = fetch(caulbart)

    assert titles(caulbart) == {"Fresh news"}
    assert "1 filtered" in out
    stale = filtered(caulbart)["Stale news"]
    assert stale["rule"] == "max_age"
    assert stale["detail"] == "published 10d ago, older than max_age 2d"


def test_section_map_sends_stories_to_the_section_of_their_category(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    items = [
        {"slug": "goal", "title": "Late goal wins it", "categories": ["FOOTBALL", "Europe"]},
        {"slug": "vote", "title": "Parliament votes", "categories": ["Politics"]},
        {"slug": "odd", "title": "Odd tale", "categories": ["Weird"]},
    ]
    url = feed_server.add("/wire.rss", wire(items))
    write_feeds_yaml(
        caulbart.config,
        [
            {
                "id": "wire",
                "url": url,
                "section": "world",
                "section_map": {"Football": "sport", "Politics": "politics"},
            }
        ],
        filters={"section_map": {"Politics": "home", "Weird": "oddities"}},
    )

    fetch(caulbart)

    sections = {story["title"]: story["section"] for story in export(caulbart)}
    # Categories match in any case; the source's mapping wins over the site-wide one.
    assert sections == {
        "Late goal wins it": "sport",
        "Parliament votes": "politics",
        "Odd tale": "oddities",
    }


def test_languages_keep_accepted_languages_and_turn_away_others(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    english = feed_server.add("/en.rss", wire([{"slug": "en", "title": "Rain"}], "en-GB"))
    french = feed_server.add("/fr.rss", wire([{"slug": "fr", "title": "Pluie"}], "fr"))
    unsaid = feed_server.add("/xx.rss", wire([{"slug": "xx", "title": "Unsaid"}]))
    declared = feed_server.add("/de.rss", wire([{"slug": "de", "title": "Regen"}]))
    write_feeds_yaml(
        caulbart.config,
        [
            {"id": "english", "url": english},
            {"id": "french", "url": french},
            {"id": "unsaid", "url": unsaid},
            {"id": "declared", "url": declared, "language": "de"},
        ],
        filters={"languages": ["en"]},
    )

    out = fetch(caulbart)

    # `en` accepts `en-GB` (RFC 4647); a feed that says nothing is kept; feeds.yaml's
    # `language` of a source stands in for a feed that declares none.
    assert titles(caulbart) == {"Rain", "Unsaid"}
    assert "2 filtered" in out
    why = filtered(caulbart)
    assert why["Pluie"]["rule"] == why["Regen"]["rule"] == "language"
    assert why["Pluie"]["detail"] == "language 'fr' not in [en]"


def test_title_strip_cleans_published_titles(caulbart: Caulbart, feed_server: FeedServer) -> None:
    items = [
        {"slug": "oil", "title": "UPDATE 2-Oil prices climb - Reuters"},
        {"slug": "gold", "title": "Gold steady | Agency Wire"},
        {"slug": "reuters", "title": "Reuters names new editor"},
    ]
    url = feed_server.add("/wire.rss", wire(items))
    write_feeds_yaml(
        caulbart.config,
        [{"id": "wire", "url": url, "title_strip": [r"/^UPDATE \d+-/", "| Agency Wire"]}],
        filters={"title_strip": " - Reuters"},
    )

    fetch(caulbart)

    stories = export(caulbart)
    assert {s["title"] for s in stories} == {
        "Oil prices climb",
        "Gold steady",
        "Reuters names new editor",  # a literal is cut only where it ends or starts the title
    }
    assert {e["title"] for s in stories for e in s["entries"]} == {
        "Oil prices climb",
        "Gold steady",
        "Reuters names new editor",
    }


def test_explain_link_tells_a_filtered_item_from_a_published_one(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    url = feed_server.add("/wire.rss", wire(WIRE))
    write_feeds_yaml(caulbart.config, [{"id": "wire", "url": url, "exclude": ["horoscope"]}])
    fetch(caulbart)

    # The link as a reader copies it, tracking parameters and all.
    turned_away = caulbart("explain", "https://news.example/stars?utm_source=x")
    assert turned_away.returncode == 0, turned_away.stderr
    assert "filtered [wire] Your horoscope for Tuesday" in turned_away.stdout
    assert "exclude: sources[0].exclude[0] 'horoscope'" in turned_away.stdout

    published = caulbart("explain", "https://news.example/budget")
    assert published.returncode == 0, published.stderr
    assert "Ministers agree budget" in published.stdout
    assert "started the story" in published.stdout
    assert "filtered" not in published.stdout

    unknown = caulbart("explain", "https://news.example/never")
    assert unknown.returncode == 1
    assert "no entry or filtered item has the link" in unknown.stderr


def test_refetch_records_a_filtered_item_once_and_a_removed_rule_lets_it_in(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    url = feed_server.add("/wire.rss", wire(WIRE))
    sources: list[dict[str, object]] = [{"id": "wire", "url": url, "exclude": ["horoscope"]}]
    write_feeds_yaml(caulbart.config, sources)
    fetch(caulbart)
    first = filtered(caulbart)["Your horoscope for Tuesday"]

    feed_server.add("/wire.rss", wire(WIRE))  # a new ETag: the feed is read again, not a 304
    out = fetch(caulbart)
    assert "0 new" in out and "1 filtered" in out
    listed = caulbart("explain", "--filtered", "--json")
    assert len(listed.stdout.splitlines()) == 1
    again = filtered(caulbart)["Your horoscope for Tuesday"]
    assert again["first_seen"] == first["first_seen"] and again["seen"] >= first["seen"]

    # The editor drops the rule: the item arrives as a story and its filtered record goes.
    sources[0].pop("exclude")
    write_feeds_yaml(caulbart.config, sources)
    feed_server.add("/wire.rss", wire(WIRE))
    out = fetch(caulbart)
    assert "1 new" in out and "0 filtered" in out
    assert "Your horoscope for Tuesday" in titles(caulbart)
    assert filtered(caulbart) == {}


def test_a_later_rule_never_takes_back_a_published_story(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    url = feed_server.add("/wire.rss", wire(WIRE))
    sources: list[dict[str, object]] = [{"id": "wire", "url": url}]
    write_feeds_yaml(caulbart.config, sources)
    fetch(caulbart)

    sources[0]["exclude"] = ["horoscope"]
    write_feeds_yaml(caulbart.config, sources)
    feed_server.add("/wire.rss", wire(WIRE))
    out = fetch(caulbart)

    assert "0 filtered" in out
    assert "Your horoscope for Tuesday" in titles(caulbart)
    assert filtered(caulbart) == {}


def test_bad_filter_values_are_reported_with_file_and_line(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    caulbart.config.write_text(
        "filters:\n"
        "  exclude: ['/(unclosed/']\n"
        "  max_age: soon\n"
        "sources:\n"
        "  - id: wire\n"
        f"    url: {feed_server.url('/wire.rss')}\n"
        "    languages: [english]\n"
        "    section_map: [sport]\n"
        "    title_strip: ['/.*/']\n",
        encoding="utf-8",
    )

    result = caulbart("check")

    assert result.returncode == 1
    path = str(caulbart.config)
    assert result.stdout.splitlines() == [
        f"{path}:2: filters.exclude[0]: bad regular expression '/(unclosed/': "
        "missing ), unterminated subpattern at position 0",
        f"{path}:3: filters.max_age: bad duration 'soon': use e.g. 90s, 10m, 1h or 1d",
        f"{path}:7: sources[0].languages[0]: 'english' is not a language code (en, pt-BR)",
        f"{path}:8: sources[0].section_map: must map a feed category to a section",
        f"{path}:9: sources[0].title_strip[0]: '/.*/' matches an empty text (every item)",
    ]
    assert caulbart("fetch", "--all").returncode == 1  # an invalid feeds.yaml fetches nothing
