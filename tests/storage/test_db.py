"""The database layer: migrations upgrade a database holding data, and fail whole, never half."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, func, insert, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from aggregator.storage.bulk import ROWS_PER_STATEMENT, insert_missing, write_rows
from aggregator.storage.db import (
    MIGRATIONS,
    WriteGroupLost,
    after_commit,
    among,
    in_transaction,
    make_engine,
    open_database,
    session_factory,
    write_group,
)
from aggregator.storage.models import Entry, EntryBand, Source, Story, Tag
from tests.conftest import recorded_statements

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _migrate(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = AlembicConfig()
    config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


def _insert_one_entry(connection: Connection) -> None:
    """Source 'a', story 1 and its entry, in the schema of migration 0001."""
    connection.execute(
        text(
            "INSERT INTO sources (id, name, config_url, url, host, agency, section, priority,"
            " interval_seconds, adaptive, consecutive_errors, created_at) VALUES ('a', 'A',"
            " 'http://x.test/f', 'http://x.test/f', 'x.test', 'A', 'news', 0, 900, false, 0,"
            " :now)"
        ),
        {"now": NOW.replace(tzinfo=None)},
    )
    connection.execute(
        text(
            "INSERT INTO stories (id, slug, title, lede, body_html, section, published,"
            " updated, created_at) VALUES (1, 's', 'Title', 'Lede', '<p>Body</p>', 'news',"
            " :now, :now, :now)"
        ),
        {"now": NOW.replace(tzinfo=None)},
    )
    connection.execute(
        text(
            "INSERT INTO entries (source_id, story_id, guid, title, lede, body_html,"
            " categories, has_full_text, content_hash, published, updated, first_seen_at,"
            " changed_at) VALUES ('a', 1, 'g1', 'Title', 'Lede', '<p>Body</p>', '[]', true,"
            " 'h', :now, :now, :now, :now)"
        ),
        {"now": NOW.replace(tzinfo=None)},
    )


def test_upgrading_a_database_with_stories_keeps_them(database_url: str) -> None:
    engine = make_engine(database_url)
    _migrate(engine, "0001")
    with engine.begin() as connection:
        _insert_one_entry(connection)
    engine.dispose()

    upgraded = open_database(database_url)  # every later migration, as Caulbart does at start
    with session_factory(upgraded)() as session:
        assert session.scalar(select(func.count()).select_from(Entry)) == 1
        assert session.get_one(Source, "a").url == "http://x.test/f"
        assert session.get_one(Story, 1).title == "Title"
        if upgraded.dialect.name == "sqlite":
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    upgraded.dispose()


def test_a_failing_migration_on_sqlite_leaves_nothing_half_done(tmp_path: object) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/x.sqlite3")
    with pytest.raises(Exception, match="boom"), engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE half_done (id INTEGER)")
        raise RuntimeError("boom")
    with engine.connect() as connection:
        tables = connection.exec_driver_sql("SELECT name FROM sqlite_master").scalars().all()
    assert "half_done" not in tables  # DDL is inside the transaction on SQLite too


def test_band_key_dates_are_mended_then_stored_as_integers_on_sqlite(tmp_path: object) -> None:
    """Migration 0015: band keys stored before it carry '... 10:00:00', which sorts below the
    '... 10:00:00.000000' every other date (and every query bound) is written as. Migration
    0016 turns them into integers, exactly, and back on a downgrade."""
    url = f"sqlite:///{tmp_path}/x.sqlite3"
    engine = make_engine(url)
    _migrate(engine, "0014")
    when = NOW.replace(tzinfo=None)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO sources (id, name, config_url, url, host, agency, section, priority,"
                " interval_seconds, adaptive, consecutive_errors, created_at, publish) VALUES"
                " ('a', 'A', 'http://x.test/f', 'http://x.test/f', 'x.test', 'A', 'news', 0, 900,"
                " false, 0, :now, true)"
            ),
            {"now": when},
        )
        connection.execute(
            text(
                "INSERT INTO stories (id, slug, title, lede, body_html, section, published,"
                " updated, created_at) VALUES (1, 's', 'T', 'L', '<p>B</p>', 'news', :now, :now,"
                " :now)"
            ),
            {"now": when},
        )
        connection.execute(
            text(
                "INSERT INTO entries (id, source_id, story_id, guid, title, lede, body_html,"
                " categories, has_full_text, content_hash, published, updated, first_seen_at,"
                " changed_at) VALUES (1, 'a', 1, 'g1', 'T', 'L', '<p>B</p>', '[]', true, 'h',"
                " :now, :now, :now, :now)"
            ),
            {"now": when},
        )
        connection.exec_driver_sql(
            "INSERT INTO entry_bands (band, published, entry_id) VALUES"
            " (7, '2026-11-24 12:00:00', 1), (8, '2026-11-24 12:00:00.250000', 1)"
        )
    engine.dispose()

    _migrate(engine, "0015")
    mended = [(7, "2026-11-24 12:00:00.000000"), (8, "2026-11-24 12:00:00.250000")]
    with engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT band, published FROM entry_bands ORDER BY band")
        assert stored.all() == mended
    engine.dispose()

    # Migration 0016: the same keys as microseconds since the epoch, in a WITHOUT ROWID table.
    upgraded = open_database(url)
    with upgraded.connect() as connection:
        stored = connection.exec_driver_sql("SELECT band, published FROM entry_bands ORDER BY band")
        assert stored.all() == [(7, 1795521600000000), (8, 1795521600250000)]
        read = connection.execute(select(EntryBand.published).order_by(EntryBand.band))
        assert read.scalars().all() == [NOW, NOW + timedelta(milliseconds=250)]
        with pytest.raises(OperationalError, match="rowid"):
            connection.exec_driver_sql("SELECT rowid FROM entry_bands")
    upgraded.dispose()

    _migrate(engine, "0015", down=True)
    with engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT band, published FROM entry_bands ORDER BY band")
        assert stored.all() == mended
    engine.dispose()


def test_band_keys_lose_their_foreign_key_and_keep_their_keys(database_url: str) -> None:
    """Migration 0017: entry_bands no longer checks each key's entry, and keeps its keys both
    ways; a downgrade brings the check back without the keys whose entry is gone."""
    engine = make_engine(database_url)
    _migrate(engine, "0001")
    with engine.begin() as connection:
        _insert_one_entry(connection)
    engine.dispose()

    upgraded = open_database(database_url)
    with upgraded.begin() as connection:
        assert inspect(connection).get_foreign_keys("entry_bands") == []
        (entry_id,) = connection.execute(select(Entry.id)).scalars()
        # A key whose entry is gone is an index entry that finds no telling, not an error.
        keys = [(7, entry_id), (8, entry_id + 99)]
        connection.execute(
            insert(EntryBand),
            [{"band": band, "published": NOW, "entry_id": entry} for band, entry in keys],
        )
    upgraded.dispose()

    _migrate(engine, "0016", down=True)
    with engine.connect() as connection:
        (foreign_key,) = inspect(connection).get_foreign_keys("entry_bands")
        assert foreign_key["referred_table"] == "entries"
        assert foreign_key["constrained_columns"] == ["entry_id"]
        bands = connection.execute(select(EntryBand.band, EntryBand.entry_id))
        assert bands.all() == [(7, entry_id)]
    engine.dispose()

    again = open_database(database_url)
    with again.connect() as connection:
        assert inspect(connection).get_foreign_keys("entry_bands") == []
        bands = connection.execute(select(EntryBand.band, EntryBand.entry_id, EntryBand.published))
        assert bands.all() == [(7, entry_id, NOW)]
    again.dispose()


def test_sqlite_connections_use_the_ingests_write_settings(tmp_path: object) -> None:
    """WAL with NORMAL sync (no fsync per commit), a checkpoint every ~160 MB of log cut back to
    64 MiB afterwards, and a 64 MiB page cache: what bench/ingest_bench.py was measured with."""
    engine = make_engine(f"sqlite:///{tmp_path}/x.sqlite3")
    with engine.connect() as connection:
        settings = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in (
                "journal_mode",
                "synchronous",
                "wal_autocheckpoint",
                "journal_size_limit",
                "cache_size",
            )
        }
    engine.dispose()
    assert settings == {
        "journal_mode": "wal",
        "synchronous": 1,
        "wal_autocheckpoint": 40000,
        "journal_size_limit": 64 * 1024 * 1024,
        "cache_size": -64 * 1024,
    }


def test_among_selects_exactly_the_rows_holding_any_of_thousands_of_values(
    engine: Engine,
) -> None:
    """One parameter for all the values (a JSON array on SQLite, an array on PostgreSQL): well
    past the 500 placeholders an IN list used to be cut at, and strings that need escaping."""
    odd = ['quote"d', "o'neil", "back\\slash", "zürich", "日本", "tab\tand\nline", "[1, 2]"]
    slugs = [f"tag-{n}" for n in range(3000)] + odd
    with session_factory(engine).begin() as session:
        session.add_all(Tag(slug=slug, label=slug) for slug in slugs)
    with session_factory(engine)() as session:
        wanted = [*slugs[::2], *odd, "missing", "tag-3000"]
        found = {
            slug
            for condition in among(session, Tag.slug, wanted)
            for slug in session.scalars(select(Tag.slug).where(condition))
        }
        assert found == set(slugs[::2]) | set(odd)
        ids = list(session.scalars(select(Tag.id).order_by(Tag.id)))
        by_id = {
            tag_id
            for condition in among(session, Tag.id, [*ids[1::3], 10**12])
            for tag_id in session.scalars(select(Tag.id).where(condition))
        }
        assert by_id == set(ids[1::3])
        assert list(among(session, Tag.id, [])) == []


def _slugs(engine: Engine) -> list[str]:
    """Tag slugs as another connection sees them: what is committed."""
    with engine.connect() as connection:
        slugs = list(connection.scalars(select(Tag.slug).order_by(Tag.slug)))
        connection.rollback()
    return slugs


def _add_tags(*slugs: str) -> Callable[[Session], None]:
    def work(session: Session) -> None:
        for slug in slugs:
            session.add(Tag(slug=slug, label=slug))
        session.flush()

    return work


def test_a_write_group_commits_its_units_at_once_and_a_failing_unit_rolls_back_alone(
    engine: Engine,
) -> None:
    """SQLite: one commit for several units, each a SAVEPOINT; PostgreSQL: each unit its own
    transaction. Either way a unit that fails loses only its own writes, and what must follow
    the commit (a WebSub ping) waits for it."""
    grouped = engine.dialect.name == "sqlite"
    seen_after_commit: list[list[str]] = []
    with write_group(engine):
        in_transaction(engine, _add_tags("a"))
        with pytest.raises(IntegrityError):
            in_transaction(engine, _add_tags("b", "a"))  # "a" is taken: b goes too
        in_transaction(engine, _add_tags("c"))
        after_commit(lambda: seen_after_commit.append(_slugs(engine)))
        seen_inside = _slugs(engine)
        assert seen_after_commit == ([] if grouped else [["a", "c"]])
    assert seen_inside == ([] if grouped else ["a", "c"])
    assert seen_after_commit == [["a", "c"]]
    assert _slugs(engine) == ["a", "c"]


def test_a_write_group_that_fails_stores_nothing_of_it_on_sqlite_and_runs_no_callback(
    engine: Engine,
) -> None:
    called: list[str] = []
    with pytest.raises(RuntimeError, match="crash"), write_group(engine):
        in_transaction(engine, _add_tags("a"))
        after_commit(lambda: called.append("ping"))
        raise RuntimeError("crash")
    if engine.dialect.name == "sqlite":
        assert (_slugs(engine), called) == ([], [])
    else:  # the unit committed on its own, and its callback ran then
        assert (_slugs(engine), called) == (["a"], ["ping"])


def test_a_write_group_whose_transaction_the_database_ended_reports_every_unit_lost(
    tmp_path: object,
) -> None:
    """SQLite may roll a whole transaction back on its own (a full disk, an I/O error): then the
    units already done are gone too, and neither they nor later ones may pass for stored."""
    engine = open_database(f"sqlite:///{tmp_path}/lost.sqlite3")

    def crash(session: Session) -> None:
        session.connection().exec_driver_sql("ROLLBACK")  # what SQLite does on such an error

    with pytest.raises(SQLAlchemyError), write_group(engine):  # its commit fails: reported
        in_transaction(engine, _add_tags("a"))
        with pytest.raises(WriteGroupLost):
            in_transaction(engine, crash)
        with pytest.raises(WriteGroupLost):
            in_transaction(engine, _add_tags("b"))
    assert _slugs(engine) == []
    engine.dispose()


def test_rows_written_together_reach_sqlite_in_few_statements_and_postgresql_by_copy(
    engine: Engine,
) -> None:
    """Every row arrives whole (64-bit band keys, NULLs) across the statements' boundaries. On
    SQLite a batch takes one statement per ROWS_PER_STATEMENT rows, not one per row: a table
    with a full-text trigger (stories) flushes the index at each statement (see db.py)."""
    rows = [
        (band * 7_919 - 2**62, band % 2, f"tag-{band}" if band % 3 else None)
        for band in range(2 * ROWS_PER_STATEMENT + 1)
    ]
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t_rows (band BIGINT, flag INTEGER, name TEXT)")
    try:
        with recorded_statements(engine) as statements, engine.begin() as connection:
            write_rows(connection, "t_rows", ("band", "flag", "name"), rows)
        with engine.connect() as connection:
            stored = connection.exec_driver_sql("SELECT band, flag, name FROM t_rows").all()
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE t_rows")
    assert sorted(tuple(row) for row in stored) == sorted(rows)
    inserts = [s for s in statements if "t_rows" in s]
    if engine.dialect.name == "sqlite":
        assert len(inserts) == 3 and inserts[0].count("(?, ?, ?)") == ROWS_PER_STATEMENT
    else:
        assert inserts == []  # COPY goes past SQLAlchemy's cursor events


def test_insert_missing_adds_new_keys_once_and_leaves_existing_rows_alone(engine: Engine) -> None:
    """Thousands of rows, some already stored, one key twice in the batch, odd strings: each
    key ends up once, a stored row keeps its values. PostgreSQL gets them in one statement
    (an array a column) rather than one a row."""
    with Session(engine) as session, session.begin():
        session.add(Tag(slug="kept", label="Kept as it was"))
    odd = ['quote"d', "o'neil", "back\\slash", "zürich", "日本", "{1,2}", "NULL"]
    slugs = ["kept", *[f"tag-{n}" for n in range(3000)], *odd, "tag-7"]
    rows = [{"slug": slug, "label": slug.upper()} for slug in slugs]
    with recorded_statements(engine) as statements, Session(engine) as session, session.begin():
        insert_missing(session, Tag, rows, "slug")
    with Session(engine) as session:
        stored = {slug: label for slug, label in session.execute(select(Tag.slug, Tag.label))}
    assert len(stored) == 1 + 3000 + len(odd)
    assert stored["kept"] == "Kept as it was" and stored["zürich"] == "ZÜRICH"
    assert stored["{1,2}"] == "{1,2}" and stored["NULL"] == "NULL"
    inserts = [s for s in statements if s.startswith("INSERT INTO tags")]
    if engine.dialect.name == "postgresql":
        assert len(inserts) == 1 and "unnest" in inserts[0]
