"""`caulbart backup` and `caulbart restore`: every table of the model, row by row.

The archive is gzip'd JSON Lines, one record a line: a header (format, format version, the
schema's revision, when it was made), then one record per row in the tables' dependency order,
then an end record with each table's row count, so a file cut short is refused whole. The tables
and columns come from the SQLAlchemy metadata (models.py), so a new column or table is backed up
without a line of code here; tables the migrations add beside the model are listed in DERIVED
with how a restore rebuilds them (tests/storage/test_backup.py fails on any other).
"""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    LargeBinary,
    String,
    Table,
    bindparam,
    func,
    select,
    text,
    update,
)

from aggregator.errors import BackupUnreadable, RestoreRefused
from aggregator.storage.db import head_revision
from aggregator.storage.models import Base, UTCDateTime

FORMAT = "caulbart-backup"
FORMAT_VERSION = 1
# Rows a statement on restore: few enough to keep memory small, many enough to be fast.
BATCH = 1000

# Tables the migrations make beside the model's, none of which a backup holds.
DERIVED: dict[str, str] = {
    "alembic_version": "the schema's revision: restore migrates the database to head first",
    "story_search": "PostgreSQL's search vectors, filled by a trigger as stories are inserted",
    "stories_fts": "SQLite's search index (FTS5), filled by a trigger as stories are inserted",
    "stories_fts_data": "a part of SQLite's FTS5 search index",
    "stories_fts_idx": "a part of SQLite's FTS5 search index",
    "stories_fts_docsize": "a part of SQLite's FTS5 search index",
    "stories_fts_config": "a part of SQLite's FTS5 search index",
}


@dataclass(frozen=True)
class Archive:
    """What a backup holds, as its header and end record say."""

    schema: str
    created: str
    rows: dict[str, int]


def backed_up_tables() -> list[Table]:
    """Every table of the model, each after the tables its foreign keys point at."""
    return list(Base.metadata.sorted_tables)


def write_backup(engine: Engine, out: IO[bytes], now: datetime | None = None) -> Archive:
    """Write every row of every table to `out`, read in one transaction (one snapshot)."""
    created = (now or datetime.now(UTC)).isoformat()
    rows: dict[str, int] = {}
    # One snapshot of every table: PostgreSQL's REPEATABLE READ; on SQLite (WAL) any read
    # transaction is one, and its deferred BEGIN neither waits for nor blocks the writer.
    snapshot = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with (
        gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as archive,
        engine.connect().execution_options(**snapshot) as connection,
        connection.begin(),
    ):
        header = {"kind": "header", "format": FORMAT, "version": FORMAT_VERSION}
        header |= {"schema": head_revision(), "created": created}
        _write(archive, header)
        for table in backed_up_tables():
            rows[table.name] = 0
            for row in _table_rows(connection, table):
                _write(archive, {"kind": "row", "table": table.name, "values": row})
                rows[table.name] += 1
        _write(archive, {"kind": "end", "rows": rows})
    return Archive(head_revision(), created, rows)


def _write(archive: gzip.GzipFile, record: dict[str, Any]) -> None:
    archive.write(json.dumps(record, ensure_ascii=False).encode() + b"\n")


def _table_rows(connection: Connection, table: Table) -> Iterator[dict[str, Any]]:
    """The table's rows in primary-key order, bytewise for text keys on both databases (so two
    backups of the same rows are the same file, whichever database they were read from)."""
    order = [
        column.collate("C")
        if connection.dialect.name == "postgresql" and isinstance(column.type, String)
        else column
        for column in table.primary_key.columns
    ]
    statement = select(table).order_by(*order)
    result = connection.execution_options(stream_results=True, yield_per=BATCH).execute(statement)
    for row in result.mappings():
        yield {column.name: _encoded(column, row[column.name]) for column in table.columns}


def _encoded(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return value.isoformat()
    if isinstance(column.type, LargeBinary):
        return base64.b64encode(value).decode("ascii")
    return value


def _decoded(column: Column[Any], value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column.type, UTCDateTime):
        return datetime.fromisoformat(value)
    if isinstance(column.type, LargeBinary):
        return base64.b64decode(value, validate=True)
    return value


def restore_backup(engine: Engine, source: IO[bytes], name: str) -> Archive:
    """Insert every row of the backup `source` into the empty database of `engine`, ids kept,
    in one transaction: a refusal or a damaged file leaves the database as it was."""
    records = _records(source, name)
    header = _header(next(records, None), name)
    tables = {table.name: table for table in backed_up_tables()}
    with (
        engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection,
        connection.begin(),
    ):
        _refuse_unless_empty(connection, list(tables.values()))
        loader = _Loader(connection, tables, name)
        for record in records:
            if record.get("kind") == "end":
                loader.finish(record.get("rows"))
                _reset_sequences(connection, list(tables.values()))
                return Archive(header["schema"], header["created"], loader.counts)
            loader.add(record)
        # Raised inside the transaction, so that it rolls back what was inserted.
        raise BackupUnreadable(f"{name}: the backup is cut short (no end record): nothing restored")


def _records(source: IO[bytes], name: str) -> Iterator[dict[str, Any]]:
    """The file's records; any damage (gzip, JSON, a cut) is one BackupUnreadable."""
    good = 0
    try:
        with gzip.GzipFile(fileobj=source, mode="rb") as archive:
            for line in archive:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("a record is not a JSON object")
                good += 1
                yield record
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        raise BackupUnreadable(
            f"{name}: not a readable Caulbart backup, damaged after {good} good records "
            f"({exc}): nothing restored"
        ) from exc


def _header(record: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if record is None or record.get("kind") != "header" or record.get("format") != FORMAT:
        raise BackupUnreadable(f"{name}: not a Caulbart backup (no {FORMAT} header)")
    version = record.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise BackupUnreadable(
            f"{name}: backup format version {version} is newer than this Caulbart reads "
            f"(up to {FORMAT_VERSION}): restore it with the version that made it"
        )
    schema = str(record.get("schema", ""))
    if schema > head_revision():
        raise BackupUnreadable(
            f"{name}: made by a newer Caulbart (schema {schema}, this one knows up to "
            f"{head_revision()}): restore it with that version or a later one"
        )
    return {"schema": schema, "created": str(record.get("created", ""))}


def _refuse_unless_empty(connection: Connection, tables: list[Table]) -> None:
    filled = [
        table.name
        for table in tables
        if connection.scalar(select(func.count()).select_from(table)) != 0
    ]
    if filled:
        url = connection.engine.url.render_as_string(hide_password=True)
        raise RestoreRefused(
            f"caulbart: {url} is not empty ({', '.join(filled)} hold rows): restore only into a "
            "new, empty database; nothing was changed"
        )


class _Loader:
    """Inserts rows as they come, a batch a statement, one table after another.

    A column whose foreign key points at its own table (an entry's matched entry) is written
    after the whole table, so the order of its rows never matters.
    """

    def __init__(self, connection: Connection, tables: dict[str, Table], name: str) -> None:
        self.connection = connection
        self.tables = tables
        self.name = name
        self.counts: dict[str, int] = {}
        self.table: Table | None = None
        self.batch: list[dict[str, Any]] = []
        self.later: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        if record.get("kind") != "row":
            raise BackupUnreadable(f"{self.name}: unknown record kind {record.get('kind')!r}")
        table = self.tables.get(str(record.get("table")))
        values = record.get("values")
        if table is None or not isinstance(values, dict):
            raise BackupUnreadable(
                f"{self.name}: a row of table {record.get('table')!r}, which this Caulbart "
                "does not have: nothing restored"
            )
        if table is not self.table:
            self._flush_table()
            if table.name in self.counts:
                raise BackupUnreadable(f"{self.name}: table {table.name} appears twice")
            self.table = table
            self.counts[table.name] = 0
        self.batch.append(self._row(table, values))
        self.counts[table.name] += 1
        if len(self.batch) >= BATCH:
            self._insert()

    def _row(self, table: Table, values: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(values) - set(table.columns.keys()))
        if unknown:
            raise BackupUnreadable(
                f"{self.name}: table {table.name} has columns this Caulbart does not know "
                f"({', '.join(unknown)}): nothing restored"
            )
        missing = [
            column.name
            for column in table.columns
            if column.name not in values and not _fills_itself(column)
        ]
        if missing:
            raise BackupUnreadable(
                f"{self.name}: table {table.name} lacks columns that have no default "
                f"({', '.join(missing)}): nothing restored"
            )
        try:
            row = {key: _decoded(table.columns[key], value) for key, value in values.items()}
        except (ValueError, TypeError) as exc:
            raise BackupUnreadable(f"{self.name}: a damaged row of {table.name}: {exc}") from exc
        deferred = {column.name for column in _self_references(table)}
        if any(row.get(key) is not None for key in deferred):
            keys = {column.name: row[column.name] for column in table.primary_key.columns}
            self.later.append(keys | {key: row[key] for key in deferred})
        return row | dict.fromkeys(deferred & set(row))

    def _insert(self) -> None:
        if self.table is not None and self.batch:
            self.connection.execute(self.table.insert(), self.batch)
        self.batch = []

    def _flush_table(self) -> None:
        self._insert()
        if self.table is not None and self.later:
            primary = list(self.table.primary_key.columns)
            statement = update(self.table).where(
                *(column == bindparam(f"key_{column.name}") for column in primary)
            )
            deferred = [column.name for column in _self_references(self.table)]
            statement = statement.values({name: bindparam(f"set_{name}") for name in deferred})
            self.connection.execute(
                statement,
                [
                    {f"key_{c.name}": row[c.name] for c in primary}
                    | {f"set_{name}": row[name] for name in deferred}
                    for row in self.later
                ],
            )
        self.later = []

    def finish(self, rows: Any) -> None:
        """Check the end record's counts against the rows read: a file cut or spliced is
        refused before anything is committed."""
        self._flush_table()
        read = {name: count for name, count in self.counts.items() if count}
        promised = {name: count for name, count in (rows or {}).items() if count}
        if read != promised:
            raise BackupUnreadable(
                f"{self.name}: the backup's rows do not add up to its end record "
                f"(read {read}, promised {promised}): nothing restored"
            )


def _fills_itself(column: Column[Any]) -> bool:
    """Whether a row may leave the column out: a column added after the backup was made."""
    return column.nullable or column.default is not None or column.server_default is not None


def _self_references(table: Table) -> list[Column[Any]]:
    return [
        key.parent
        for key in table.foreign_keys
        if key.column.table is table and key.parent.nullable
    ]


def _reset_sequences(connection: Connection, tables: list[Table]) -> None:
    """PostgreSQL: each id sequence continues after the highest id restored (rows were inserted
    with their own ids, which a sequence never sees). SQLite needs nothing: it takes max + 1."""
    if connection.dialect.name != "postgresql":
        return
    for table in tables:
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = connection.scalar(
            text("SELECT pg_get_serial_sequence(:table, :column)"),
            {"table": table.name, "column": column.name},
        )
        if sequence is None:
            continue
        highest = connection.scalar(select(func.max(column)))
        connection.execute(
            text("SELECT setval(:sequence, :value, :called)"),
            {"sequence": sequence, "value": highest or 1, "called": highest is not None},
        )
