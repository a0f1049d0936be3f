"""A pass writes its sources in groups (db.write_group): one source failing loses only its own
entries, and a writer held past the timeout ends the pass with that error."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from sqlalchemy import Engine, event, select
from sqlalchemy.exc import OperationalError

from aggregator.ingest.pipeline import claim, run_pass, sync_config
from aggregator.storage.db import open_database, session_factory, write_group
from aggregator.storage.models import Entry, Source
from aggregator.types import SourceOutcome
from tests.conftest import FeedServer
from tests.storage.feeds import (
    by_source,
    config_for,
    item,
    rss,
)

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
        {key: feed_server.add(f"/{key}", rss(body)) for key, body in bodies.items()}
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
        key: feed_server.add(f"/{key}", rss(item(f"{key}1", "Rates rise", "http://e.org/")))
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
            f"/s{n}", rss(item(f"g{n}", f"Headline {n}", f"http://e.org/{n}", body=body))
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
