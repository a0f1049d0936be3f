"""Storing items (storage.entries): one entry per (source, guid), edits in place, exact story
matching. Real databases (SQLite and PostgreSQL), real feed documents over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from aggregator.ingest.pipeline import claim, run_pass, sync_config
from aggregator.storage.db import session_factory
from aggregator.storage.models import Entry, Story
from tests.conftest import FeedServer, recorded_statements
from tests.storage.feeds import (
    by_source,
    config_for,
    distinct_texts,
    fetch_all,
    item,
    rss,
)


def test_seen_again_unchanged_writes_nothing(engine: Engine, feed_server: FeedServer) -> None:
    url = feed_server.add(
        "/a", rss(item("g1", "Rates rise", "http://example.org/1")), etag="", last_modified=""
    )
    config = config_for({"a": url})
    assert by_source(fetch_all(engine, config))["a"].new == 1
    with session_factory(engine)() as session:
        changed_before = session.scalars(select(Entry.changed_at)).one()
    again = by_source(fetch_all(engine, config))["a"]
    assert (again.new, again.updated, again.unchanged) == (0, 0, 1)
    with session_factory(engine)() as session:
        assert session.scalars(select(Entry.changed_at)).one() == changed_before


def test_edited_entry_is_updated_in_place_and_its_story_moves(
    engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add("/a", rss(item("g1", "Rates rise", "http://example.org/1")))
    config = config_for({"a": url})
    fetch_all(engine, config, datetime(2026, 11, 24, 11, tzinfo=UTC))
    feed_server.add("/a", rss(item("g1", "Rates rise by half a point", "http://example.org/1")))
    later = datetime(2026, 11, 24, 12, tzinfo=UTC)
    outcome = by_source(fetch_all(engine, config, later))["a"]
    assert (outcome.new, outcome.updated) == (0, 1)
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Entry)) == 1
        story = session.scalars(select(Story)).one()
        assert story.title == "Rates rise by half a point"
        assert story.updated == later


def test_new_entries_before_and_after_an_edit_in_one_batch_are_all_stored(
    engine: Engine, feed_server: FeedServer
) -> None:
    """New rows are numbered before the flush on SQLite: an edited entry met between new ones
    must not have flushed (and numbered) some of them already."""
    other = "Storms closed the port for a second day, and ferries to the islands stayed in harbour."
    url = feed_server.add("/a", rss(item("g1", "Rates rise", "http://example.org/1")))
    config = config_for({"a": url})
    fetch_all(engine, config, datetime(2026, 11, 24, 11, tzinfo=UTC))
    feed_server.add(
        "/a",
        rss(
            item("g0", "Port closed", "http://example.org/0", body=other),
            item("g1", "Rates rise by half a point", "http://example.org/1"),
            item("g2", "Markets fall", "http://example.org/2", body=f"Shares fell. {other[::-1]}"),
        ),
    )
    outcome = by_source(fetch_all(engine, config, datetime(2026, 11, 24, 12, tzinfo=UTC)))["a"]
    assert (outcome.status, outcome.new, outcome.updated) == ("ok", 2, 1), outcome.error
    with session_factory(engine)() as session:
        titles = {e.guid: e.story.title for e in session.scalars(select(Entry))}
    assert titles == {
        "g0": "Port closed",
        "g1": "Rates rise by half a point",
        "g2": "Markets fall",
    }


def test_same_canonical_link_in_two_sources_is_one_story(
    engine: Engine, feed_server: FeedServer
) -> None:
    a = feed_server.add("/a", rss(item("a-1", "Rates rise", "https://example.org/story?id=7")))
    b = feed_server.add(
        "/b",
        rss(item("b-9", "Central bank raises rates", "https://EXAMPLE.org/story?id=7&utm_source=rss",
                 body="A different telling entirely, written by another desk.")),
    )  # fmt: skip
    fetch_all(engine, config_for({"a": a, "b": b}))
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Story)) == 1
        assert session.scalar(select(func.count()).select_from(Entry)) == 2


def test_same_text_under_different_links_is_one_story(
    engine: Engine, feed_server: FeedServer
) -> None:
    a = feed_server.add("/a", rss(item("a-1", "Rates rise", "https://one.example/1")))
    b = feed_server.add("/b", rss(item("b-1", "Rates  rise", "https://two.example/xyz")))
    fetch_all(engine, config_for({"a": a, "b": b}))
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Story)) == 1


def test_bare_headlines_that_repeat_do_not_merge_different_days(
    engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add(
        "/live",
        rss(
            item("d1", "Live: latest updates", "https://x.example/live/1", body="Updates."),
            item("d2", "Live: latest updates", "https://x.example/live/2", body="Updates."),
        ),
    )
    fetch_all(engine, config_for({"live": url}))
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Story)) == 2


def test_copies_joining_stored_stories_take_no_statements_per_copy(
    engine: Engine, feed_server: FeedServer
) -> None:
    """40 copies that join stored stories take as many statements as 5: the stories are loaded
    together, never one by one (each such load also flushed the batch so far). Locks aside: 40
    copies' names are too many to lock one by one (db.serialise)."""
    texts = distinct_texts(7, 45)
    originals = [
        item(f"o{n}", f"Report {n}", f"http://a.example/{n}", t) for n, t in enumerate(texts)
    ]
    copies = [item(f"c{n}", f"Report {n}", f"http://b.example/{n}", t) for n, t in enumerate(texts)]
    sources = {
        "agency": feed_server.add("/agency.rss", rss(*originals)),
        "five": feed_server.add("/five.rss", rss(*copies[:5])),
        "forty": feed_server.add("/forty.rss", rss(*copies[5:])),
    }
    config = config_for(sources)
    sync_config(engine, config)

    def store(source_id: str) -> int:
        requests = claim(
            engine, config, "test", 1, source_ids=[source_id], due_only=False, host_budget=False
        )
        with recorded_statements(engine) as statements:
            (outcome,) = run_pass(engine, config, requests)
        assert outcome.status == "ok", outcome.error
        return len([s for s in statements if "pg_advisory" not in s])

    store("agency")
    five, forty = store("five"), store("forty")
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Story)) == 45
        assert session.scalar(select(func.count()).select_from(Entry)) == 90
    assert forty == five, (five, forty)
