"""One story, many agencies: each kind of duplicate joins one story, different news never does.

Real BBC texts from ../shared/corpus, told by several loopback "agencies", ingested with
`caulbart fetch` on SQLite and PostgreSQL; read back with `caulbart export` and `caulbart explain`.
"""

from __future__ import annotations

import csv
import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

from tests.conftest import Caulbart, FeedServer, corpus_path, write_feeds_yaml
from tests.feeds import Item, rss

# Well in the past: a date ahead of the clock would be clamped to the time of fetching.
NOON = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Telling:
    guid: str
    title: str
    link: str
    paragraphs: tuple[str, ...]
    when: datetime = NOON
    summary_only: bool = False

    def item(self) -> Item:
        body = "".join(f"<p>{html.escape(p)}</p>" for p in self.paragraphs)
        return Item(
            guid=self.guid,
            permalink=False,
            title=self.title,
            link=self.link,
            published=self.when,
            description=self.paragraphs[0],
            content=None if self.summary_only else body,
        )


def wire(*tellings: Telling) -> str:
    return rss(*(t.item() for t in tellings), title="wire", link="https://wire.example/")


@cache
def _articles() -> dict[tuple[str, str], dict[str, str]]:
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        return {(row["category"], row["doc"]): row for row in csv.DictReader(handle)}


def article(category: str, doc: str) -> tuple[str, tuple[str, ...]]:
    row = _articles()[(category, doc)]
    return row["title"], tuple(p.strip() for p in row["body"].split("\n\n") if p.strip())


def original(category: str, doc: str, **changes: Any) -> Telling:
    title, paragraphs = article(category, doc)
    values: dict[str, Any] = {
        "guid": f"alpha-{category}-{doc}",
        "title": title,
        "link": f"https://alpha.example/{category}/{doc}",
        "paragraphs": paragraphs,
    }
    return Telling(**(values | changes))


def ingest(
    caulbart: Caulbart, feed_server: FeedServer, feeds: dict[str, list[Telling]], **top: object
) -> None:
    sources = []
    for source_id, tellings in feeds.items():
        url = feed_server.add(f"/{source_id}.rss", wire(*tellings))
        agency = source_id.split("-")[0]
        sources.append({"id": source_id, "url": url, "agency": agency, "section": "news"})
    write_feeds_yaml(caulbart.config, sources, **top)
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr


def export(caulbart: Caulbart) -> list[dict[str, Any]]:
    result = caulbart("export")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def stories_by_guid(caulbart: Caulbart) -> dict[str, int]:
    return {e["guid"]: s["id"] for s in export(caulbart) for e in s["entries"]}


def explain(caulbart: Caulbart, story_id: int) -> dict[str, Any]:
    result = caulbart("explain", str(story_id), "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def rules(caulbart: Caulbart, story_id: int) -> dict[str, str | None]:
    """The rule each source's entry joined the story by."""
    return {e["source"]: e["rule"] for e in explain(caulbart, story_id)["entries"]}


def test_same_report_in_two_feeds_of_an_agency_joins_by_canonical_link(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    story = original("business", "001")
    syndicated = original(
        "business",
        "001",
        guid="top-001",
        link=story.link + "?utm_source=rss&utm_medium=top",
        summary_only=True,
    )
    ingest(caulbart, feed_server, {"alpha-world": [story], "alpha-top": [syndicated]})
    stored = export(caulbart)
    assert len(stored) == 1
    assert {e["source"] for e in stored[0]["entries"]} == {"alpha-world", "alpha-top"}
    # The two sources are fetched concurrently: either may have started the story.
    assert sorted(rules(caulbart, stored[0]["id"]).values()) == ["link", "new"]


def test_another_agencys_rewritten_telling_joins_as_near_duplicate(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    story = original("politics", "095")
    paragraphs = list(story.paragraphs[: max(3, 2 * len(story.paragraphs) // 3)])
    paragraphs[1], paragraphs[2] = paragraphs[2], paragraphs[1]
    paragraphs[0] = "LONDON (Bravo) - " + paragraphs[0].replace(" said", " says")
    rewritten = Telling(
        guid="bravo-1",
        title="Chancellor answers Blair rift claims",
        link="https://bravo.example/n/1",
        paragraphs=tuple(paragraphs),
        when=NOON + timedelta(hours=2),
    )
    ingest(caulbart, feed_server, {"alpha-world": [story], "bravo-world": [rewritten]})
    stored = export(caulbart)
    assert len(stored) == 1
    first, joined = explain(caulbart, stored[0]["id"])["entries"]  # fetched concurrently
    assert first["rule"] == "new"
    assert joined["rule"] in ("near", "contained")
    assert joined["score"] >= 0.5
    assert joined["matched_entry_id"] == first["entry_id"]


def test_summary_only_item_joins_the_full_text_telling_by_containment(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    story = original("tech", "010")
    teaser = Telling(
        guid="charlie-7",
        title=story.title.upper(),
        link="https://charlie.example/s?id=7",
        paragraphs=story.paragraphs[:1],
        summary_only=True,
        when=NOON + timedelta(hours=5),
    )
    # The summary arrives first: the full text, stored later, must find it all the same.
    ingest(caulbart, feed_server, {"charlie-world": [teaser]})
    ingest(caulbart, feed_server, {"charlie-world": [teaser], "alpha-world": [story]})
    stored = export(caulbart)
    assert len(stored) == 1
    assert rules(caulbart, stored[0]["id"]) == {"charlie-world": "new", "alpha-world": "contained"}
    # The full text speaks for the story, though the summary came first.
    explained = explain(caulbart, stored[0]["id"])
    voice = next(e for e in explained["entries"] if e["voice"])
    assert voice["source"] == "alpha-world"
    assert "full text" in explained["voice"]


def test_update_resend_joins_existing_story_and_becomes_its_voice(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    story = original("business", "005")
    ingest(caulbart, feed_server, {"alpha-world": [story]})
    before = export(caulbart)[0]
    resend = Telling(
        guid=story.guid + "-u2",
        title=f"UPDATE 2-{story.title}",
        link=story.link + "-update",
        paragraphs=(*story.paragraphs, "Officials said more details would follow on Friday."),
        when=NOON + timedelta(hours=3),
    )
    ingest(caulbart, feed_server, {"alpha-world": [story, resend]})
    after = export(caulbart)
    assert len(after) == 1
    assert after[0]["id"] == before["id"]
    assert after[0]["updated"] > before["updated"]
    assert after[0]["title"] == story.title  # the marker is not Caulbart's headline
    explained = explain(caulbart, after[0]["id"])
    by_guid = {e["entry_id"]: e for e in explained["entries"]}
    newest = max(by_guid.values(), key=lambda e: e["entry_id"])
    assert newest["rule"] == "update"
    assert newest["voice"], "the re-send replaces its source's earlier version as the voice"


def test_refile_and_corrected_markers_match_the_story_they_resend(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    story = original("sport", "020")
    refile = original(
        "sport",
        "020",
        guid="bravo-r",
        title=f"REFILE-{story.title}",
        link="https://bravo.example/r",
    )
    corrected = original(
        "sport",
        "020",
        guid="delta-c",
        title=f"CORRECTED-{story.title}",
        link="https://delta.example/c",
    )
    ingest(
        caulbart,
        feed_server,
        {"alpha-world": [story], "bravo-world": [refile], "delta-world": [corrected]},
    )
    stored = export(caulbart)
    assert len(stored) == 1
    assert len(stored[0]["entries"]) == 3
    explained = explain(caulbart, stored[0]["id"])
    assert [(e["rule"], e["score"]) for e in explained["entries"]] == [
        ("new", None),
        ("near", 1.0),
        ("near", 1.0),
    ]
    assert explained["title"] == story.title


def test_different_reports_on_the_same_subject_stay_separate(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    """Two reports about the same minister and the same rift, two days apart: two stories."""
    first = original("politics", "095")
    second = original("politics", "251", when=NOON + timedelta(days=2))
    budget = original("politics", "005", when=NOON + timedelta(hours=6))
    ingest(caulbart, feed_server, {"alpha-world": [first, budget], "bravo-world": [second]})
    guids = stories_by_guid(caulbart)
    assert len(set(guids.values())) == 3


def test_same_text_outside_the_window_is_a_new_story(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    story = original("entertainment", "030")
    paragraphs = list(story.paragraphs)
    paragraphs[-1] = "Repeated from last week."
    later = Telling(
        guid="bravo-9",
        title=story.title,
        link="https://bravo.example/9",
        paragraphs=tuple(paragraphs),
        when=NOON + timedelta(days=3),
    )
    ingest(
        caulbart,
        feed_server,
        {"alpha-world": [story], "bravo-world": [later]},
        defaults={"dedup_window": "1d"},
    )
    assert len(set(stories_by_guid(caulbart).values())) == 2


def test_editor_priority_chooses_the_voice_and_every_agency_stays_credited(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    story = original("business", "001")
    house = original(
        "business",
        "001",
        guid="house-1",
        link="https://house.example/1",
        title="Time Warner profits jump",
        when=NOON + timedelta(hours=1),
    )
    sources = [
        {"id": "alpha-world", "url": feed_server.add("/a.rss", wire(story)), "agency": "Alpha"},
        {
            "id": "house-desk",
            "url": feed_server.add("/h.rss", wire(house)),
            "agency": "House",
            "priority": 10,
        },
    ]
    write_feeds_yaml(caulbart.config, sources)
    assert caulbart("fetch", "--all").returncode == 0
    stored = export(caulbart)
    assert len(stored) == 1
    assert stored[0]["title"] == "Time Warner profits jump"
    assert {e["source"] for e in stored[0]["entries"]} == {"alpha-world", "house-desk"}
    text = caulbart("explain", str(stored[0]["id"]))
    assert text.returncode == 0, text.stderr
    assert "highest editor priority (10)" in text.stdout
    assert "started the story" in text.stdout
    assert "same headline and text" not in text.stdout  # the headline differs: not a text match


def test_explain_unknown_story_is_a_clear_error(caulbart: Caulbart) -> None:
    write_feeds_yaml(caulbart.config, [])
    result = caulbart("explain", "999")
    assert result.returncode == 1
    assert "no story 999" in result.stderr
