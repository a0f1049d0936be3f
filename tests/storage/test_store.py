"""Storing items: one entry per (source, guid), edits in place, exact story matching, sources
synced from feeds.yaml. Real databases (SQLite and PostgreSQL), real feed documents over HTTP."""

from __future__ import annotations

import random
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import Engine, delete, event, func, select
from sqlalchemy.exc import OperationalError

from aggregator import limits
from aggregator.config.load import parse_config
from aggregator.ingest.pipeline import claim, run_pass, sync_config
from aggregator.storage.db import open_database, session_factory, write_group
from aggregator.storage.models import Entry, EntryBand, Source, Story
from aggregator.types import Config, SourceOutcome
from tests.conftest import FeedServer, recorded_statements
from tests.feeds import rss

BODY = (
    "The central bank raised its main interest rate by half a percentage point on Thursday, "
    "its third increase this year, saying inflation remained far above its target."
)


def wire(*items: str, title: str = "Wire") -> str:
    return rss(*items, title=title, link="http://example.org/")


def item(guid: str, title: str, link: str, body: str = BODY, date: str = "") -> str:
    published = date or "Tue, 24 Nov 2026 10:00:00 GMT"
    return (
        f"<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>"
        f"<description><![CDATA[<p>{body}</p>]]></description><pubDate>{published}</pubDate></item>"
    )


def config_for(sources: dict[str, str], priorities: dict[str, int] | None = None) -> Config:
    lines = ["site: {base_url: 'http://caulbart.test'}", "sources:"]
    for source_id, url in sources.items():
        lines.append(f"  - id: {source_id}")
        lines.append(f"    url: {url}")
        lines.append(f"    priority: {(priorities or {}).get(source_id, 0)}")
    return parse_config("\n".join(lines) + "\n")


def fetch_all(engine: Engine, config: Config, now: datetime | None = None) -> list[SourceOutcome]:
    def clock() -> datetime:
        return now or datetime.now(UTC)

    sync_config(engine, config, clock)
    requests = claim(engine, config, "test", 100, due_only=False, host_budget=False, clock=clock)
    return run_pass(engine, config, requests, clock=clock)


def by_source(outcomes: list[SourceOutcome]) -> dict[str, SourceOutcome]:
    return {outcome.source_id: outcome for outcome in outcomes}


def test_seen_again_unchanged_writes_nothing(engine: Engine, feed_server: FeedServer) -> None:
    url = feed_server.add(
        "/a", wire(item("g1", "Rates rise", "http://example.org/1")), etag="", last_modified=""
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
    url = feed_server.add("/a", wire(item("g1", "Rates rise", "http://example.org/1")))
    config = config_for({"a": url})
    fetch_all(engine, config, datetime(2026, 11, 24, 11, tzinfo=UTC))
    feed_server.add("/a", wire(item("g1", "Rates rise by half a point", "http://example.org/1")))
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
    url = feed_server.add("/a", wire(item("g1", "Rates rise", "http://example.org/1")))
    config = config_for({"a": url})
    fetch_all(engine, config, datetime(2026, 11, 24, 11, tzinfo=UTC))
    feed_server.add(
        "/a",
        wire(
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
    a = feed_server.add("/a", wire(item("a-1", "Rates rise", "https://example.org/story?id=7")))
    b = feed_server.add(
        "/b",
        wire(item("b-9", "Central bank raises rates", "https://EXAMPLE.org/story?id=7&utm_source=rss",
                 body="A different telling entirely, written by another desk.")),
    )  # fmt: skip
    fetch_all(engine, config_for({"a": a, "b": b}))
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Story)) == 1
        assert session.scalar(select(func.count()).select_from(Entry)) == 2


def test_same_text_under_different_links_is_one_story(
    engine: Engine, feed_server: FeedServer
) -> None:
    a = feed_server.add("/a", wire(item("a-1", "Rates rise", "https://one.example/1")))
    b = feed_server.add("/b", wire(item("b-1", "Rates  rise", "https://two.example/xyz")))
    fetch_all(engine, config_for({"a": a, "b": b}))
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Story)) == 1


def bands_of(engine: Engine) -> dict[str, int]:
    """Band keys stored per entry guid (0 for an entry out of the near-duplicate index)."""
    with session_factory(engine)() as session:
        counts = dict(
            session.execute(
                select(Entry.guid, func.count(EntryBand.band))
                .outerjoin(EntryBand, EntryBand.entry_id == Entry.id)
                .group_by(Entry.guid)
            ).all()
        )
        unindexed = set(session.scalars(select(Entry.guid).where(Entry.shingles.is_(None))))
    assert unindexed == {guid for guid, count in counts.items() if count == 0}
    return counts


def test_a_word_for_word_copy_is_not_indexed_again_and_near_copies_still_join(
    engine: Engine, feed_server: FeedServer
) -> None:
    a = feed_server.add("/a", wire(item("a-1", "Rates rise", "https://one.example/1")))
    fetch_all(engine, config_for({"a": a}))
    b = feed_server.add("/b", wire(item("b-1", "Rates rise", "https://two.example/1")))
    fetch_all(engine, config_for({"a": a, "b": b}))
    bands = bands_of(engine)
    assert bands["a-1"] > 0 and bands["b-1"] == 0, bands
    retold = BODY.replace("on Thursday", "on Thursday morning")
    c = feed_server.add("/c", wire(item("c-1", "Rates rise", "https://three.example/1", retold)))
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
    a = feed_server.add("/a", wire(item("a-1", "Rates rise", "https://one.example/1")))
    b = feed_server.add("/b", wire(item("b-1", "Rates rise", "https://two.example/1")))
    fetch_all(engine, config_for({"a": a}))
    fetch_all(engine, config_for({"a": a, "b": b}))
    c = feed_server.add("/c", wire(item("c-1", "Rates rise", "https://three.example/1")))
    fetch_all(engine, config_for({"a": a, "b": b, "c": c}))
    assert [bands_of(engine)[guid] > 0 for guid in ("a-1", "b-1", "c-1")] == [True, False, False]
    other = "Storms closed the port for a second day, and ferries to the islands stayed in harbour."
    feed_server.add("/a", wire(item("a-1", "Port closed", "https://one.example/1", other)))
    assert by_source(fetch_all(engine, config_for({"a": a})))["a"].updated == 1
    bands = bands_of(engine)
    assert bands["a-1"] > 0 and bands["b-1"] > 0 and bands["c-1"] == 0, bands
    retold = BODY.replace("on Thursday", "on Thursday morning")
    d = feed_server.add("/d", wire(item("d-1", "Rates rise", "https://four.example/1", retold)))
    fetch_all(engine, config_for({"a": a, "b": b, "c": c, "d": d}))
    with session_factory(engine)() as session:
        stories = dict(session.execute(select(Entry.guid, Entry.story_id)).all())
        rule = session.scalar(select(Entry.match_rule).where(Entry.guid == "d-1"))
    assert stories["d-1"] == stories["b-1"] == stories["c-1"] and rule == "near", (stories, rule)


def test_bare_headlines_that_repeat_do_not_merge_different_days(
    engine: Engine, feed_server: FeedServer
) -> None:
    url = feed_server.add(
        "/live",
        wire(
            item("d1", "Live: latest updates", "https://x.example/live/1", body="Updates."),
            item("d2", "Live: latest updates", "https://x.example/live/2", body="Updates."),
        ),
    )
    fetch_all(engine, config_for({"live": url}))
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Story)) == 2


def test_the_story_speaks_with_the_highest_priority_source(
    engine: Engine, feed_server: FeedServer
) -> None:
    link = "https://example.org/rates"
    low = feed_server.add("/low", wire(item("l", "Low priority headline", link)))
    high = feed_server.add("/high", wire(item("h", "High priority headline", link,
                                             date="Tue, 24 Nov 2026 11:00:00 GMT")))  # fmt: skip
    fetch_all(engine, config_for({"low": low, "high": high}, priorities={"high": 5}))
    with session_factory(engine)() as session:
        story = session.scalars(select(Story)).one()
        assert story.title == "High priority headline"
        assert story.published == datetime(2026, 11, 24, 10, tzinfo=UTC)  # earliest telling


def test_removed_source_is_disabled_and_keeps_its_entries(
    engine: Engine, feed_server: FeedServer
) -> None:
    a = feed_server.add("/a", wire(item("g1", "Rates rise", "http://example.org/1")))
    b = feed_server.add("/b", wire(item("g2", "Storm nears coast", "http://example.org/2",
                                       body="A storm is nearing the coast tonight.")))  # fmt: skip
    fetch_all(engine, config_for({"a": a, "b": b}))
    outcomes = fetch_all(engine, config_for({"b": b}))
    assert [o.source_id for o in outcomes] == ["b"]
    with session_factory(engine)() as session:
        removed = session.get_one(Source, "a")
        assert removed.disabled_reason == "removed from feeds.yaml"
        assert session.scalar(select(func.count()).where(Entry.source_id == "a")) == 1


def test_changing_a_source_url_forgets_its_validators(
    engine: Engine, feed_server: FeedServer
) -> None:
    old = feed_server.add("/old", wire(item("g1", "Rates rise", "http://example.org/1")))
    fetch_all(engine, config_for({"a": old}))
    new = feed_server.add("/new", wire(item("g1", "Rates rise", "http://example.org/1")))
    fetch_all(engine, config_for({"a": new}))
    assert "If-None-Match" not in feed_server.request_headers["/new"][0]
    with session_factory(engine)() as session:
        assert session.get_one(Source, "a").url == new


def test_permanent_redirect_updates_the_fetched_url_and_tells_editors(
    engine: Engine, feed_server: FeedServer
) -> None:
    target = feed_server.add("/moved", wire(item("g1", "Rates rise", "http://example.org/1")))
    start = feed_server.add("/start", "", status=301, location=target)
    outcome = by_source(fetch_all(engine, config_for({"a": start})))["a"]
    assert outcome.new == 1
    assert any(target in note and "feeds.yaml" in note for note in outcome.notes)
    with session_factory(engine)() as session:
        source = session.get_one(Source, "a")
        assert (source.url, source.moved_to, source.config_url) == (target, target, start)
    fetch_all(engine, config_for({"a": start}))
    assert feed_server.requests["/start"] == 1  # the next fetch goes straight to the new address


def test_backoff_state_is_recorded_and_cleared(engine: Engine, feed_server: FeedServer) -> None:
    url = feed_server.add("/a", "down", status=503, headers={"Retry-After": "600"})
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    fetch_all(engine, config_for({"a": url}), now)
    with session_factory(engine)() as session:
        source = session.get_one(Source, "a")
        assert source.consecutive_errors == 1
        assert source.last_error == "HTTP 503 Service Unavailable"
        assert source.next_fetch_at is not None
        assert source.next_fetch_at >= now + timedelta(seconds=600)
    feed_server.add("/a", wire(item("g1", "Rates rise", "http://example.org/1")))
    fetch_all(engine, config_for({"a": url}), now)
    with session_factory(engine)() as session:
        source = session.get_one(Source, "a")
        assert (source.consecutive_errors, source.last_error) == (0, None)


def distinct_texts(seed: int, count: int) -> list[str]:
    """`count` texts of 80 made-up words: none is a near-duplicate of another."""
    rng = random.Random(seed)
    words = [f"{rng.choice('bcdfgklmnprst')}{rng.choice('aeiou')}{n}" for n in range(400)]
    return [" ".join(rng.choice(words) for _ in range(80)) for _ in range(count)]


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
        "agency": feed_server.add("/agency.rss", wire(*originals)),
        "five": feed_server.add("/five.rss", wire(*copies[:5])),
        "forty": feed_server.add("/forty.rss", wire(*copies[5:])),
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


def test_new_stories_are_written_once_with_their_drafted_terms(
    engine: Engine, feed_server: FeedServer
) -> None:
    """A first ingest inserts each new story with the terms drafted for it and neither updates
    the row afterwards nor reads its text back: tagging it from its draft needs neither."""
    texts = enumerate(distinct_texts(11, 6))
    items = [item(f"n{n}", f"Report {n}", f"http://a.example/{n}", t) for n, t in texts]
    config = config_for({"agency": feed_server.add("/agency.rss", wire(*items))})
    sync_config(engine, config)
    with recorded_statements(engine) as statements:
        (outcome,) = fetch_all(engine, config)
    assert (outcome.status, outcome.new) == ("ok", 6), outcome.error
    assert not [s for s in statements if s.startswith("UPDATE stories")]
    assert not [s for s in statements if s.startswith("SELECT") and "stories.body_html" in s]
    with session_factory(engine)() as session:
        terms = session.scalars(select(Story.terms)).all()
    assert len(terms) == 6 and all(terms), terms


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
        "/a", wire(item("a1", "Rates rise", "http://a.example/1", date=format_datetime(first)))
    )
    fetch_all(engine, config_for({"a": url_a}))
    retold = BODY.replace("on Thursday", "on Thursday morning")
    url_b = feed_server.add(
        "/b",
        wire(item("b1", "Rates rise", "http://b.example/1", retold, format_datetime(edge))),
    )
    outcomes = by_source(fetch_all(engine, config_for({"a": url_a, "b": url_b})))
    assert outcomes["b"].new == 1
    with session_factory(engine)() as session:
        assert session.scalar(select(func.count(Story.id))) == 1
        rules = set(session.scalars(select(Entry.match_rule)))
    assert rules == {"new", "near"}, rules


POISON_SQLITE = (
    "CREATE TRIGGER poison BEFORE INSERT ON entries WHEN NEW.guid = 'poison'"
    " BEGIN SELECT RAISE(ABORT, 'poisoned entry'); END"
)
POISON_POSTGRES = (
    "CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.guid = 'poison' THEN"
    " RAISE EXCEPTION 'poisoned entry'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql;"
    " CREATE TRIGGER poison BEFORE INSERT ON entries FOR EACH ROW EXECUTE FUNCTION poison()"
)


def test_a_source_whose_store_fails_inside_a_write_group_loses_only_its_own_entries(
    engine: Engine, feed_server: FeedServer
) -> None:
    """The database refuses one source's entries (a trigger, a real failure of the database):
    that source is recorded as failed, and the sources committed with it are stored whole."""
    with engine.begin() as connection:
        connection.exec_driver_sql(
            POISON_SQLITE if engine.dialect.name == "sqlite" else POISON_POSTGRES
        )
    bodies = {
        "a": item("a1", "Rates rise", "http://example.org/a1"),
        "bad": item("poison", "Port strike ends", "http://example.org/p"),
        "c": item("c1", "Storm closes schools", "http://example.org/c1", body="Schools shut."),
    }
    config = config_for(
        {key: feed_server.add(f"/{key}", wire(body)) for key, body in bodies.items()}
    )
    sync_config(engine, config)
    requests = claim(engine, config, "test", 10, due_only=False, host_budget=False)
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(engine, "commit", count)
    try:
        with write_group(engine):  # the whole pass: one group on SQLite, whatever is ready when
            outcomes = by_source(run_pass(engine, config, requests))
    finally:
        event.remove(engine, "commit", count)
    assert [outcomes[key].status for key in ("a", "bad", "c")] == ["ok", "error", "ok"]
    assert "poisoned entry" in (outcomes["bad"].error or "")
    with session_factory(engine)() as session:
        guids = sorted(session.scalars(select(Entry.guid)))
        error = session.scalars(select(Source.last_error).where(Source.id == "bad")).one()
    assert guids == ["a1", "c1"]
    assert error is not None and "poisoned entry" in error
    if engine.dialect.name == "sqlite":
        assert len(commits) == 1  # the three stores, the failure and the related lists at once


def test_a_pass_while_another_writer_holds_sqlite_past_the_timeout_ends_with_that_error(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """A write group that cannot begin (the database locked past the busy timeout) is a failure
    of the database itself, not of a source: the pass ends at once with it, and no source is
    recorded as stored or failed (each keeps its claim, free once this process is gone)."""
    path = tmp_path / "locked.sqlite3"
    engine = open_database(f"sqlite:///{path}")

    def short_wait(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=100")  # after Caulbart's own 30 s

    event.listen(engine, "connect", short_wait)
    engine.dispose()
    urls = {
        key: feed_server.add(f"/{key}", wire(item(f"{key}1", "Rates rise", "http://e.org/")))
        for key in "ab"
    }
    config = config_for(urls)
    sync_config(engine, config)
    requests = claim(engine, config, "test", 10, due_only=False, host_budget=False)
    other_writer = sqlite3.connect(path, isolation_level=None)
    other_writer.execute("BEGIN IMMEDIATE")
    outcomes: list[SourceOutcome] = []
    failures: list[Exception] = []

    def run() -> None:
        try:
            outcomes.extend(run_pass(engine, config, requests))
        except OperationalError as exc:
            failures.append(exc)

    worker = threading.Thread(target=run)
    try:
        worker.start()
        worker.join(timeout=60)
        assert not worker.is_alive(), "the pass kept retrying a locked database"
    finally:
        other_writer.rollback()
        other_writer.close()
        worker.join()
    assert outcomes == []
    assert len(failures) == 1 and "database is locked" in str(failures[0])
    with session_factory(engine)() as session:
        recorded = session.execute(select(Source.last_status, Source.claimed_by)).all()
    engine.dispose()
    assert recorded == [(None, "test"), (None, "test")]


def test_a_pass_on_sqlite_commits_the_sources_ready_together(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """`caulbart fetch`'s pass, as it runs: six sources parsed by the pool reach the store
    together, and their stores share commits instead of one each."""
    engine = open_database(f"sqlite:///{tmp_path}/grouped.sqlite3")
    bodies = [f"Story {n} of the wire: rates, ports and storms, each told once." for n in range(6)]
    urls = {
        f"s{n}": feed_server.add(
            f"/s{n}", wire(item(f"g{n}", f"Headline {n}", f"http://e.org/{n}", body=body))
        )
        for n, body in enumerate(bodies)
    }
    config = config_for(urls)
    sync_config(engine, config)
    requests = claim(engine, config, "test", 10, due_only=False, host_budget=False)
    commits: list[object] = []

    def count(connection: object) -> None:
        commits.append(connection)

    event.listen(engine, "commit", count)
    try:
        outcomes = run_pass(engine, config, requests)
    finally:
        event.remove(engine, "commit", count)
        engine.dispose()
    assert sorted((o.source_id, o.status, o.new) for o in outcomes) == [
        (f"s{n}", "ok", 1) for n in range(6)
    ]
    assert 1 <= len(commits) < 6, len(commits)


def test_dedup_windows_around_the_first_and_last_dates_of_the_calendar_do_not_overflow(
    engine: Engine,
) -> None:
    """Dates the normaliser would set aside, given to the store directly (entries stored before
    it did, or a caller of its own): the near-duplicate lookup's window stops at year 1 and
    9999 instead of raising OverflowError."""
    from dataclasses import replace

    from sqlalchemy.orm import Session

    from aggregator.ingest.normalise import normalise_entry
    from aggregator.storage import store
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
        store.sync_sources(session, config, now)
        source = session.get_one(Source, "wire")
        store.save_items(session, source, items[:1], now)
        store.save_items(session, source, items[1:], now)
    with Session(engine) as session:
        stored = {guid: when for guid, when in session.execute(select(Entry.guid, Entry.published))}
    assert stored == extremes
