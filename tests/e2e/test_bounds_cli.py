"""Bounded inputs through `caulbart fetch --all`: dates out of the calendar's range are dated
when fetched (and say so in `caulbart explain`), and a document over its preparing budget is
its source's recorded error, while the other sources of the pass are stored."""

from __future__ import annotations

import html
from datetime import UTC, datetime

from sqlalchemy import select

from aggregator.db import open_database, session_factory
from aggregator.models import Entry
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml

WORDS = (
    "The ministry said on Tuesday that talks with the unions over the new pay offer would "
    "resume next week after both sides agreed to a short pause in the strike called for {n}."
)


def rss(*items: tuple[str, str]) -> str:
    """An RSS document of (guid, pubDate) items, each a text of its own long enough to be
    matched on its words (so that the dedup window is worked out around its date)."""
    body = "".join(
        f"<item><guid>{guid}</guid><title>Talks to resume, {guid}</title>"
        f"<link>http://wire.test/{guid}</link><pubDate>{date}</pubDate>"
        f"<description>{html.escape(f'<p>{WORDS.format(n=guid)}</p>')}</description></item>"
        for guid, date in items
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Wire</title>'
        f"<link>http://wire.test/</link>{body}</channel></rss>"
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
    dated = rss(
        ("valid", "Tue, 10 Nov 2026 12:00:00 GMT"),
        ("year-1", "Sat, 01 Jan 0001 00:00:00 +0000"),
        ("year-9999", "Fri, 31 Dec 9999 23:59:59 +0000"),
    )
    other = rss(("other", "Tue, 10 Nov 2026 13:00:00 GMT"))
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
