"""Named locks on PostgreSQL (aggregator.storage.db.serialise): bounded, ordered, and really
exclusive."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import text

from aggregator.storage.db import FINE_LOCKS, serialise, session_factory
from tests.conftest import database_for, opened


def advisory_locks_held(session: sqlalchemy.orm.Session) -> int:
    query = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
    return int(session.execute(text(query)).scalar_one())


def test_a_first_ingest_batch_holds_one_lock_not_thousands(postgres: sqlalchemy.Engine) -> None:
    """Thousands of band keys in one transaction used to fill PostgreSQL's shared lock table
    ("out of shared memory") when a few workers ingested long feeds at once."""
    with session_factory(postgres).begin() as session:
        serialise(session, (f"band:{n}" for n in range(5000)))
        assert advisory_locks_held(session) == 1
    with session_factory(postgres).begin() as session:
        serialise(session, (f"band:{n}" for n in range(FINE_LOCKS)))
        assert advisory_locks_held(session) == FINE_LOCKS + 1  # and EVERY_NAME, shared


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (["band:1", "band:2"], ["band:2", "band:3"]),  # overlapping names
        ([f"band:{n}" for n in range(500)], ["band:9999"]),  # a large batch against any other
        (["band:9999"], [f"band:{n}" for n in range(500)]),
    ],
)
def test_overlapping_transactions_queue(
    postgres: sqlalchemy.Engine, first: list[str], second: list[str]
) -> None:
    holding = threading.Event()
    released_at: list[float] = []
    acquired_at: list[float] = []

    def hold() -> None:
        with session_factory(postgres).begin() as session:
            serialise(session, first)
            holding.set()
            time.sleep(0.5)
            released_at.append(time.monotonic())

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    with session_factory(postgres).begin() as session:
        serialise(session, second)
        acquired_at.append(time.monotonic())
    holder.join()
    assert acquired_at[0] >= released_at[0]


def passes_while_held(
    holder_engine: sqlalchemy.Engine,
    held: list[str],
    engine: sqlalchemy.Engine,
    names: list[str],
) -> None:
    """Serialise `names` on `engine` while another transaction holds `held` on `holder_engine`;
    raises LockNotAvailable (a 2 s lock timeout) if it had to wait for it."""
    holding = threading.Event()
    done = threading.Event()

    def hold() -> None:
        with session_factory(holder_engine).begin() as session:
            serialise(session, held)
            holding.set()
            done.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert holding.wait(10)
    try:
        with session_factory(engine).begin() as session:
            session.execute(text("SET LOCAL lock_timeout = '2s'"))
            serialise(session, names)
    finally:
        done.set()
        holder.join()


def test_disjoint_small_batches_do_not_wait(postgres: sqlalchemy.Engine) -> None:
    passes_while_held(postgres, ["band:1", "band:2"], postgres, ["band:3", "band:4"])


def test_sites_in_different_schemas_never_queue_on_each_others_names(
    postgres: sqlalchemy.Engine, tmp_path: Path
) -> None:
    """Advisory locks belong to the whole database, not to a schema: a large batch in one
    schema (every name, exclusive) made a store in another schema of the same database wait,
    and parallel tests, each in its own schema, wait on each other (one test holding a store
    open while another stored timed out in CI)."""
    with database_for("postgresql", tmp_path) as url, opened(url) as other:
        passes_while_held(postgres, [f"band:{n}" for n in range(500)], other, ["band:1", "band:2"])
