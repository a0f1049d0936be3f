"""Database engine and schema: SQLite (WAL) by default, any SQLAlchemy URL by environment.

The schema is migrated with Alembic every time a database is opened, so a new version of
Caulbart upgrades the database it finds without a separate step.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    String,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    inspect,
    literal_column,
    select,
    text,
)
from sqlalchemy.exc import (
    DisconnectionError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import InstrumentedAttribute, Session, sessionmaker
from sqlalchemy.types import TypeEngine

from aggregator.storage import search_words

if TYPE_CHECKING:
    from sqlalchemy.dialects import postgresql

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_SQLITE_PATH = Path("instance") / "caulbart.sqlite3"
MIGRATIONS = str(Path(__file__).parent.parent / "migrations")
# Any constant shared by every Caulbart process: the key of the advisory lock around migrations.
MIGRATION_LOCK_KEY = 0x6361756C  # "caul"
# The SQL name of markup.search_text on every SQLite connection (see _sqlite_pragmas).
SEARCH_TEXT_FUNCTION = "caulbart_search_text"


def database_url() -> str:
    """CAULBART_DATABASE_URL, else a SQLite file under ./instance (created on first use)."""
    url = os.environ.get("CAULBART_DATABASE_URL")
    if url:
        return url
    DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{DEFAULT_SQLITE_PATH}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "connect", _remember_lock_space)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL so readers never block the writer; foreign keys on; wait instead of failing on locks."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # first: the next pragma may have to wait
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoint the WAL (and sync the file) every ~160 MB rather than every 4 MB: an ingest
    # writes that much in a few dozen sources, and fewer checkpoints make its commits faster.
    # Once checkpointed, the file is cut back to 64 MiB.
    cursor.execute("PRAGMA wal_autocheckpoint=40000")
    cursor.execute("PRAGMA journal_size_limit=67108864")
    # A 64 MiB page cache, filled as pages are read (the default is 2 MiB): an ingest writes band
    # keys at random places of an index far larger than the default cache.
    cursor.execute("PRAGMA cache_size=-65536")
    # A write group's SAVEPOINTs (write_group) keep each changed page's old copy until released:
    # in memory, not in a temporary file on disk.
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()
    # The full-text index's triggers and content view read a body's words through it (0022).
    dbapi_connection.create_function(SEARCH_TEXT_FUNCTION, 1, _search_text, deterministic=True)
    # ... and every indexed text's letters as PostgreSQL's index folds them (0030).
    dbapi_connection.create_function(
        search_words.SQL_FUNCTION, 1, search_words.index_words, deterministic=True
    )
    # Leave transactions to SQLAlchemy (below): the driver's own would not cover DDL, and a
    # migration that fails half-way must roll back whole.
    dbapi_connection.isolation_level = None


def _search_text(body_html: str | None) -> str:
    """markup.search_text, imported at its first call: a command that only reads (`status`,
    `explain`) opens the database without importing the ingest's normalising."""
    from aggregator.ingest.markup import search_text

    return search_text(body_html)


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE for the pipeline's sessions (session_factory): a transaction that reads and then
    # writes would otherwise fail at once with "database is locked" instead of waiting its turn.
    mode = connection.get_execution_options().get("sqlite_begin", "")
    connection.exec_driver_sql(f"BEGIN {mode}".strip())


def head_revision() -> str:
    """The newest migration's revision, read off the file names ("0018_....py" is "0018"):
    tests/storage/test_migrations.py checks that Alembic's own head agrees."""
    names = (Path(MIGRATIONS) / "versions").glob("[0-9][0-9][0-9][0-9]_*.py")
    return max(path.name[:4] for path in names)


def schema_revisions(engine: Engine) -> set[str]:
    """The revisions the database is at (one per head of the migrations when it was migrated);
    none before its first migration."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return set()
        return set(connection.scalars(text("SELECT version_num FROM alembic_version")))


def upgrade_schema(engine: Engine) -> None:
    """Bring the schema to the newest migration; on PostgreSQL one process at a time.

    A database already at the newest one is left alone without starting Alembic or checking
    SQLite's foreign keys (a scan of every table): every command and web process opens one.
    """
    if schema_revisions(engine) == {head_revision()}:
        return
    if not log.isEnabledFor(logging.DEBUG):
        # Alembic says each of the ~30 steps at INFO; one line below says where they led.
        logging.getLogger("alembic").setLevel(logging.WARNING)
    # Imported here: Alembic (and Mako, Pygments) are slow to import, and the processes that
    # never migrate (the parsing workers) import this module too.
    from alembic import command
    from alembic.config import Config as AlembicConfig

    alembic_config = AlembicConfig()
    alembic_config.set_main_option("script_location", MIGRATIONS)
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection:
        if connection.dialect.name == "sqlite":
            # SQLite rebuilds a table to alter it; foreign keys must be off meanwhile (outside
            # any transaction), or dropping the old table fails once other tables point at it.
            _raw_sqlite(connection, "PRAGMA foreign_keys=OFF")
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
            alembic_config.attributes["connection"] = connection
            command.upgrade(alembic_config, "heads")
        if connection.dialect.name == "sqlite":
            problems = _raw_sqlite(connection, "PRAGMA foreign_key_check")
            _raw_sqlite(connection, "PRAGMA foreign_keys=ON")
            if problems:
                raise RuntimeError(f"migration left broken foreign keys: {problems[:5]}")
    log.info("database at revision %s", head_revision())


def _raw_sqlite(connection: Any, statement: str) -> list[Any]:
    """Run a PRAGMA outside any transaction (SQLite ignores foreign_keys inside one)."""
    cursor = connection.connection.driver_connection.cursor()
    try:
        return list(cursor.execute(statement).fetchall())
    finally:
        cursor.close()


# PostgreSQL's lock table is shared and small (max_locks_per_transaction x max_connections, 6,400
# by default): a first ingest of a long feed would ask for thousands of named locks and, with a few
# workers at once, run it out ("out of shared memory"). A transaction with more names than this
# takes every name at once instead (EVERY_NAME exclusive); the others hold EVERY_NAME shared.
FINE_LOCKS = 48


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a name (the same in every process)."""
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


# Taken by every transaction that serialises (see serialise), within its schema.
EVERY_NAME = "caulbart: every name"


LOCK_SPACE = "caulbart_lock_space"


def _remember_lock_space(dbapi_connection: Any, record: Any) -> None:
    """What a PostgreSQL connection's lock names are prefixed with: advisory locks belong to the
    whole database, so sites (or test runs) in different schemas of one database must not queue
    on each other's names. None in `public`, whose keys stay those of earlier releases. Read
    once, when the connection is made."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SELECT current_schema()")
    (schema,) = cursor.fetchone()
    cursor.close()
    dbapi_connection.rollback()  # leave no transaction open behind the pool's back
    record.info[LOCK_SPACE] = "" if schema in (None, "public") else f"{schema}:"


def _lock_space(session: Session) -> str:
    space: str = session.connection().info.get(LOCK_SPACE, "")
    return space


def serialise(session: Session, names: Iterable[str]) -> None:
    """Hold transaction-scoped locks named `names` on PostgreSQL (SQLite has one writer anyway).

    Every transaction takes EVERY_NAME first (shared, or exclusive for a large batch), then its
    keys in ascending order, each named within its schema (`_lock_space`): two transactions
    asking for overlapping names queue, never deadlock, and no transaction holds more than
    FINE_LOCKS + 1 locks. `names` is read only as far as needed: not at all on SQLite, and only
    until it is a large batch (a feed's entries have some 40 names each).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    space = _lock_space(session)
    every_name = lock_key(space + EVERY_NAME)
    wanted: set[int] = set()
    for name in names:
        wanted.add(lock_key(space + name))
        if len(wanted) > FINE_LOCKS:
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": every_name})
            return
    if not wanted:
        return
    keys = sorted(wanted)
    session.execute(text("SELECT pg_advisory_xact_lock_shared(:key)"), {"key": every_name})
    session.execute(
        text(
            "SELECT count(pg_advisory_xact_lock(key)) FROM "
            "(SELECT unnest(CAST(:keys AS bigint[])) AS key ORDER BY 1) AS ordered"
        ),
        {"keys": keys},
    )


def among(
    bind: Session | Connection,
    column: InstrumentedAttribute[Any],
    values: Sequence[Any],
) -> Iterator[ColumnElement[bool]]:
    """The condition that selects the rows whose `column` is one of `values` (integers or
    strings), for a session or a connection: one, or none for no values, so a caller's
    `for condition in among(...)` runs no query for nothing.

    The values go as one parameter, not one placeholder each: PostgreSQL takes an array
    (`= ANY(...)`), SQLite a JSON array it reads itself (`IN (SELECT value FROM json_each(?))`).
    Thousands of `IN` placeholders cost more to build, send and parse than the lookup.
    """
    if not values:
        return
    dialect = bind.get_bind().dialect if isinstance(bind, Session) else bind.dialect
    if dialect.name == "postgresql":
        yield column == any_(bindparam(None, list(values), type_=array_of(column.type)))
        return
    listed = func.json_each(bindparam(None, json.dumps(list(values)), type_=String()))
    yield column.in_(select(literal_column("value")).select_from(listed))


def array_of(column_type: TypeEngine[Any]) -> postgresql.ARRAY[Any]:
    """A PostgreSQL array parameter for values of an integer or string column. No length on the
    element type: a cast to VARCHAR(n)[] would cut values rather than let the column refuse
    them."""
    from sqlalchemy.dialects import postgresql

    return postgresql.ARRAY(BigInteger() if isinstance(column_type, Integer) else String())


# PostgreSQL's "deadlock detected" and "could not serialize": the transaction may simply be retried.
RETRYABLE_SQLSTATES = {"40P01", "40001"}
TRANSACTION_ATTEMPTS = 4


@dataclass
class WriteGroup:
    """One SQLite transaction shared by several units of work (see write_group)."""

    engine: Engine
    connection: Connection
    callbacks: list[Callable[[], None]] = field(default_factory=list)  # after the commit


# The write group open in this context, if any.
_WRITE_GROUP: ContextVar[WriteGroup | None] = ContextVar("caulbart_write_group", default=None)


@contextmanager
def write_group(engine: Engine) -> Iterator[None]:
    """On SQLite, commit several units of work (`in_transaction`) at once, each a SAVEPOINT of
    one transaction: a unit that fails rolls back alone, the others commit together at the end.

    A first ingest writes each entry's band keys at random places of one index, so every commit
    wrote most of that index's pages again: 2.3 GB to the WAL for a 110 MB database (200 feeds x
    100 entries). SQLite has one writer at a time anyway; PostgreSQL's workers write at once and
    would wait on each other's row locks, so there each unit keeps its own transaction.
    Callbacks given to `after_commit` run once the group is committed; if the commit fails,
    this raises and they never run.
    """
    if engine.dialect.name != "sqlite" or _WRITE_GROUP.get() is not None:
        yield
        return
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection:
        group = WriteGroup(engine, connection)
        token = _WRITE_GROUP.set(group)
        try:
            with connection.begin():
                yield
                _check_group(group)  # the driver's commit would say nothing of it
        finally:
            _WRITE_GROUP.reset(token)
    for callback in group.callbacks:
        callback()


class WriteGroupLost(SQLAlchemyError):
    """SQLite ended the write group's transaction itself (it may, on a full disk or an I/O
    error): every unit of the group so far is lost, so none may be reported as stored."""


def _check_group(group: WriteGroup, cause: BaseException | None = None) -> None:
    driver = group.connection.connection.driver_connection
    if driver is not None and not driver.in_transaction:
        raise WriteGroupLost("the database rolled back the write group's transaction") from cause


def is_database_failure(exc: BaseException) -> bool:
    """Whether `exc` is a failure of the database itself rather than of what one unit of work
    asked of it: the disk full, the file read-only, a lock held past the timeout, the server gone
    (DB-API's OperationalError and InterfaceError), no connection to be had, or a write group
    SQLite ended itself. A constraint or a value the database refuses is the unit's own error."""
    failures = (OperationalError, InterfaceError, DisconnectionError, PoolTimeout, WriteGroupLost)
    return isinstance(exc, failures)


def after_commit(callback: Callable[[], None]) -> None:
    """Run `callback` once what was written so far is committed: now, or when the write group
    open in this context commits (a WebSub ping must not announce what is not yet visible)."""
    group = _WRITE_GROUP.get()
    if group is None:
        callback()
    else:
        group.callbacks.append(callback)


def in_transaction(engine: Engine, work: Callable[[Session], T]) -> T:
    """Run `work` in one transaction, retried when the database aborts it for a deadlock; inside
    a write group (SQLite), in a SAVEPOINT of the group's transaction."""
    group = _WRITE_GROUP.get()
    if group is not None and group.engine is engine:
        _check_group(group)
        try:
            with (
                Session(
                    bind=group.connection,
                    join_transaction_mode="create_savepoint",
                    expire_on_commit=False,
                ) as session,
                session.begin(),
            ):
                done = work(session)
        except Exception as exc:
            _check_group(group, exc)
            raise
        _check_group(group)
        return done
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            with session_factory(engine).begin() as session:
                return work(session)
        except OperationalError as exc:
            state = getattr(exc.orig, "sqlstate", None)
            if state not in RETRYABLE_SQLSTATES or attempt == TRANSACTION_ATTEMPTS:
                raise
            time.sleep(random.uniform(0.05, 0.2) * attempt)
    raise AssertionError("unreachable")


# The tables an ingest grows and looks rows up in by key (see analyze_grown_tables).
GROWING_TABLES = ("entries", "entry_bands", "stories", "story_tags", "related_stories", "tags")
# Below this size (32 pages) a table is cheap to scan whatever the planner knows of it.
ANALYZE_FLOOR_BYTES = 256 << 10
# Tables at least twice the size they were when last analysed. Sizes, not the statistics
# collector's row counts: those reach the view up to a second late, file sizes at once.
GROWN_TABLES = text(
    "SELECT c.relname FROM pg_class c WHERE c.oid = ANY(CAST(:tables AS regclass[]))"
    " AND pg_relation_size(c.oid) > GREATEST("
    "CAST(:floor AS bigint), 2 * c.relpages * current_setting('block_size')::bigint)"
    " ORDER BY c.relname"
)


def analyze_grown_tables(engine: Engine) -> list[str]:
    """PostgreSQL: refresh the planner's statistics of the ingest's tables that have doubled in
    size since they were last analysed; returns their names.

    A first ingest fills an empty database faster than autovacuum (a minute apart) samples it.
    Planning with no statistics, PostgreSQL scanned whole tables for lookups of a few keys, at a
    cost that grew with every source stored (200x100 feeds: the exact-match lookups 7.9 -> 1.2
    s). Doubling keeps this to a few ANALYZEs per table over its life; past that autovacuum's
    own thresholds come first. SKIP_LOCKED: a table another worker is analysing is left to it.
    """
    if engine.dialect.name != "postgresql":
        return []
    with engine.begin() as connection:
        grown = list(
            connection.scalars(
                GROWN_TABLES, {"tables": list(GROWING_TABLES), "floor": ANALYZE_FLOOR_BYTES}
            )
        )
        for table in grown:
            connection.exec_driver_sql(f'ANALYZE (SKIP_LOCKED) "{table}"')
    return grown


def open_database(url: str | None = None) -> Engine:
    """An engine on an up-to-date schema."""
    engine = make_engine(url or database_url())
    upgrade_schema(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions for units of work that write (on SQLite they take the write lock up front)."""
    return sessionmaker(engine.execution_options(sqlite_begin="IMMEDIATE"), expire_on_commit=False)


def read_sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions that only read (pages, feeds, exports, reports). Their BEGIN is deferred: on
    SQLite (WAL) a reader then neither waits for a writer nor makes one wait, where a session of
    `session_factory` queued behind every ingest commit for the write lock it never used (and a
    page failed after the 30 s busy timeout). They must never write: on SQLite a deferred
    transaction that reads and then writes fails at once if another process is writing."""
    return sessionmaker(engine, expire_on_commit=False)
