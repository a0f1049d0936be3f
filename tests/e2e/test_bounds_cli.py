"""Bounded inputs through `caulbart fetch --all`: dates out of the calendar's range are dated
when fetched (and say so in `caulbart explain`), and a document over its preparing budget is
its source's recorded error, while the other sources of the pass are stored."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from aggregator.ingest.prepare import BUDGET_ENV, PROCESSES_ENV
from aggregator.storage.db import open_database, session_factory
from aggregator.storage.models import Entry
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import Item, rss

WORDS = (
    "The ministry said on Tuesday that talks with the unions over the new pay offer would "
    "resume next week after both sides agreed to a short pause in the strike called for {n}."
)


def talks(*items: tuple[str, str]) -> str:
    """An RSS document of (guid, pubDate) items, each a text of its own long enough to be
    matched on its words (so that the dedup window is worked out around its date)."""
    return rss(
        *(
            Item(
                guid=guid,
                title=f"Talks to resume, {guid}",
                link=f"http://wire.test/{guid}",
                published=date,
                description=f"<p>{WORDS.format(n=guid)}</p>",
            )
            for guid, date in items
        ),
        title="Wire",
        link="http://wire.test/",
    )


def entries(caulbart: Caulbart) -> dict[str, Entry]:
    engine = open_database(caulbart.database_url)
    try:
        with session_factory(engine)() as session:
            return {entry.guid: entry for entry in session.scalars(select(Entry))}
    finally:
        engine.dispose()


def test_dates_out_of_range_are_dated_when_fetched_and_the_pass_goes_on(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    dated = talks(
        ("valid", "Tue, 10 Nov 2026 12:00:00 GMT"),
        ("year-1", "Sat, 01 Jan 0001 00:00:00 +0000"),
        ("year-9999", "Fri, 31 Dec 9999 23:59:59 +0000"),
    )
    other = talks(("other", "Tue, 10 Nov 2026 13:00:00 GMT"))
    sources = [
        {"id": "dated", "url": feed_server.add("/dated", dated)},
        {"id": "other", "url": feed_server.add("/other", other)},
    ]
    write_feeds_yaml(caulbart.config, sources)
    before = datetime.now(UTC)
    result = caulbart("fetch", "--all")
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stderr
    stored = entries(caulbart)
    assert sorted(stored) == ["other", "valid", "year-1", "year-9999"]
    assert stored["valid"].published == datetime(2026, 11, 10, 12, tzinfo=UTC)
    assert stored["valid"].date_note is None
    for guid, given in (("year-1", "0001-01-01"), ("year-9999", "9999-12-31")):
        entry = stored[guid]
        assert before <= entry.published <= after and entry.updated == entry.published
        assert entry.date_note is not None and f"published {given}T" in entry.date_note

    explained = caulbart("explain", str(stored["year-1"].story_id))
    assert explained.returncode == 0, explained.stderr
    assert (
        "date: published 0001-01-01T00:00:00+00:00 is before 1990-01-01: dated when fetched"
        in explained.stdout
    )


def test_a_document_over_its_preparing_budget_is_its_sources_error_and_the_pass_goes_on(
    caulbart: Caulbart, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A budget of three seconds (CAULBART_PREPARE_SECONDS), and one source whose document takes
    many more to prepare (a thousand long entries, 8 MB); four sources, so a pool prepares them."""
    monkeypatch.setenv(BUDGET_ENV, "3")
    monkeypatch.setenv(PROCESSES_ENV, "2")
    paragraph = " ".join(WORDS.format(n=n) for n in range(45))
    heavy = talks(*((f"heavy-{n}", "Tue, 10 Nov 2026 12:00:00 GMT") for n in range(1000)))
    heavy = heavy.replace("</description>", html.escape(f"<p>{paragraph}</p>") + "</description>")
    sources = [{"id": "heavy", "url": feed_server.add("/heavy", heavy)}]
    for name in ("one", "two", "three"):
        light = talks((name, "Tue, 10 Nov 2026 13:00:00 GMT"))
        sources.append({"id": name, "url": feed_server.add(f"/{name}", light)})
    write_feeds_yaml(caulbart.config, sources)
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    assert "prepare job over budget (3 s): worker pid=" in result.stderr
    rows = caulbart("status", "--json").stdout.splitlines()
    status = {row["id"]: row for row in map(json.loads, rows)}
    assert status["heavy"]["last_status"] == "error"
    assert status["heavy"]["last_error"] == (
        "preparing took longer than 3 s: stopped, worker replaced"
    )
    assert status["heavy"]["entries"] == 0
    for name in ("one", "two", "three"):
        assert status[name]["last_status"] == "ok", status[name]["last_error"]
        assert status[name]["entries"] == 1
    assert sorted(entries(caulbart)) == ["one", "three", "two"]
