"""The stored entries an item may join and the band index they are found by
(storage.candidates). Real databases (SQLite and PostgreSQL), real feed documents over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from sqlalchemy import Engine, delete, func, select

from aggregator import limits
from aggregator.storage.db import session_factory
from aggregator.storage.models import Entry, EntryBand, Source, Story
from tests.conftest import FeedServer
from tests.storage.feeds import (
    BODY,
    bands_of,
    by_source,
    config_for,
    fetch_all,
    item,
    rss,
)


def test_a_word_for_word_copy_is_not_indexed_again_and_near_copies_still_join(
    engine: Engine, feed_server: FeedServer
) -> None:
    a = feed_server.add("/a", rss(item("a-1", "Rates rise", "https://one.example/1")))
    fetch_all(engine, config_for({"a": a}))
    b = feed_server.add("/b", rss(item("b-1", "Rates rise", "https://two.example/1")))
    fetch_all(engine, config_for({"a": a, "b": b}))
    bands = bands_of(engine)
    assert bands["a-1"] > 0 and bands["b-1"] == 0, bands
    retold = BODY.replace("on Thursday", "on Thursday morning")
    c = feed_server.add("/c", rss(item("c-1", "Rates rise", "https://three.example/1", retold)))
    fetch_all(engine, config_for({"a": a, "b": b, "c": c}))
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count(Story.id))) == 1
        rules = dict(session.execute(select(Entry.guid, Entry.match_rule)).all())
    assert rules == {"a-1": "new", "b-1": "text", "c-1": "near"}, rules
    assert bands_of(engine)["c-1"] > 0


def test_editing_the_indexed_telling_hands_its_text_to_the_oldest_copy(
    engine: Engine, feed_server: FeedServer
) -> None:
    """The text an edit takes out of the index is put back on a word-for-word copy, so a near
    copy of it still finds the story."""
    a = feed_server.add("/a", rss(item("a-1", "Rates rise", "https://one.example/1")))
    b = feed_server.add("/b", rss(item("b-1", "Rates rise", "https://two.example/1")))
    fetch_all(engine, config_for({"a": a}))
    fetch_all(engine, config_for({"a": a, "b": b}))
    c = feed_server.add("/c", rss(item("c-1", "Rates rise", "https://three.example/1")))
    fetch_all(engine, config_for({"a": a, "b": b, "c": c}))
    assert [bands_of(engine)[guid] > 0 for guid in ("a-1", "b-1", "c-1")] == [True, False, False]
    other = "Storms closed the port for a second day, and ferries to the islands stayed in harbour."
    feed_server.add("/a", rss(item("a-1", "Port closed", "https://one.example/1", other)))
    assert by_source(fetch_all(engine, config_for({"a": a})))["a"].updated == 1
    bands = bands_of(engine)
    assert bands["a-1"] > 0 and bands["b-1"] > 0 and bands["c-1"] == 0, bands
    retold = BODY.replace("on Thursday", "on Thursday morning")
    d = feed_server.add("/d", rss(item("d-1", "Rates rise", "https://four.example/1", retold)))
    fetch_all(engine, config_for({"a": a, "b": b, "c": c, "d": d}))
    with session_factory(engine)() as session:
        stories = dict(session.execute(select(Entry.guid, Entry.story_id)).all())
        rule = session.scalar(select(Entry.match_rule).where(Entry.guid == "d-1"))
    assert stories["d-1"] == stories["b-1"] == stories["c-1"] and rule == "near", (stories, rule)


def test_an_entrys_band_keys_are_found_by_index_not_by_scanning_every_key(
    engine: Engine,
) -> None:
    """Edits and prunes delete an entry's band keys by entry: with millions of keys stored, a
    scan per batch would make every edit slower as the archive grows."""
    statement = delete(EntryBand).where(EntryBand.entry_id.in_([1, 2, 3]))
    with engine.connect() as connection:
        sql = str(statement.compile(connection, compile_kwargs={"literal_binds": True}))
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET enable_seqscan = off")  # tiny table: plan as if large
            plan = " ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))
        else:
            rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
            plan = " ".join(row[-1] for row in rows)
        connection.rollback()
    assert "ix_entry_bands_entry" in plan, plan


def test_a_near_duplicate_at_the_far_edge_of_the_dedup_window_joins_the_story(
    engine: Engine, feed_server: FeedServer
) -> None:
    """Band keys' dates and the window's bounds must be stored and compared in one form: SQLite
    compares dates as text, and keys written as '... 10:00:00' fell below a bound written as
    '... 10:00:00.000000', so a copy dated exactly a window after the story did not meet it."""
    first = datetime(2026, 11, 20, 10, tzinfo=UTC)
    edge = first + timedelta(seconds=limits.DEDUP_WINDOW)
    url_a = feed_server.add(
        "/a", rss(item("a1", "Rates rise", "http://a.example/1", date=format_datetime(first)))
    )
    fetch_all(engine, config_for({"a": url_a}))
    retold = BODY.replace("on Thursday", "on Thursday morning")
    url_b = feed_server.add(
        "/b",
        rss(item("b1", "Rates rise", "http://b.example/1", retold, format_datetime(edge))),
    )
    outcomes = by_source(fetch_all(engine, config_for({"a": url_a, "b": url_b})))
    assert outcomes["b"].new == 1
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count(Story.id))) == 1
        rules = set(session.scalars(select(Entry.match_rule)))
    assert rules == {"new", "near"}, rules


def test_dedup_windows_around_the_first_and_last_dates_of_the_calendar_do_not_overflow(
    engine: Engine,
) -> None:
    """Dates the normaliser would set aside, given to the store directly (entries stored before
    it did, or a caller of its own): the near-duplicate lookup's window stops at year 1 and
    9999 instead of raising OverflowError."""
    from dataclasses import replace

    from sqlalchemy.orm import Session

    from aggregator.ingest.normalise import normalise_entry
    from aggregator.storage.entries import save_items
    from aggregator.storage.sources import sync_sources
    from aggregator.types import RawEntry

    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    config = config_for({"wire": "http://example.org/feed"})
    extremes = {"first": datetime.min.replace(tzinfo=UTC), "last": datetime.max.replace(tzinfo=UTC)}
    items = []
    for guid, when in extremes.items():
        raw = RawEntry(id=guid, link=f"http://example.org/{guid}", title=f"Rates {guid}",
                       title_is_html=False, summary=f"<p>{BODY} Told {guid}.</p>", content=None,
                       published=None, updated=None, author=None, categories=(), image_url=None,
                       image_credit=None, language="en")  # fmt: skip
        item = normalise_entry(raw, now=now)
        assert item is not None
        items.append(replace(item, published=when, updated=when))
    with Session(engine) as session, session.begin():
        sync_sources(session, config, now)
        source = session.get_one(Source, "wire")
        save_items(session, source, items[:1], now)
        save_items(session, source, items[1:], now)
    with Session(engine) as session:
        stored = {guid: when for guid, when in session.execute(select(Entry.guid, Entry.published))}
    assert stored == extremes
