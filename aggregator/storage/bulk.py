"""Writes of many rows at once, past the ORM: plain rows in the driver's form (COPY on
PostgreSQL, multi-row INSERTs on SQLite) and inserts that skip rows already there."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, String, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from aggregator.storage.db import array_of


def insert_missing(
    session: Session, model: type[Any], rows: list[dict[str, Any]], key: str
) -> None:
    """INSERT rows, skipping those whose `key` exists: safe when concurrent workers race.

    PostgreSQL takes rows of integers and strings as one array a column, in one statement: a
    statement a row (a first ingest adds new tags and stories to relate by the thousand) cost
    the server a round of planning and executing each.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    columns = list(rows[0])
    table = model.__table__
    if dialect == "postgresql" and all(
        isinstance(table.c[name].type, Integer | String) for name in columns
    ):
        arrays = [
            func.unnest(
                bindparam(None, [row[name] for row in rows], type_=array_of(table.c[name].type))
            )
            for name in columns
        ]
        bulk = postgresql.insert(model).from_select(columns, select(*arrays))
        session.connection().execute(bulk.on_conflict_do_nothing(index_elements=[key]))
        return
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One statement run for each row (executemany): compiling a VALUES list of hundreds of
    # rows cost more than inserting them.
    statement = insert(model).on_conflict_do_nothing(index_elements=[key])
    session.connection().execute(statement, rows)


def insert_rows(
    session: Session, model: type[Any], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """INSERT many plain rows in the session's transaction, each value converted by its column's
    type (JSON, dates) as the ORM would: for rows whose ids are known, past the ORM's per-row
    bookkeeping, which costs more than the database's work."""
    connection = session.connection()
    dialect = connection.dialect
    table = model.__table__
    convert = [
        (position, process)
        for position, name in enumerate(columns)
        if (process := table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
    ]
    if convert:
        rows = (_converted(row, convert) for row in rows)
    write_rows(connection, table.name, columns, rows)


def _converted(
    row: Sequence[Any], convert: list[tuple[int, Callable[[Any], Any]]]
) -> tuple[Any, ...]:
    values = list(row)
    for position, process in convert:
        values[position] = process(values[position])
    return tuple(values)


def write_rows(
    connection: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """INSERT rows whose values are already in the driver's form.

    PostgreSQL takes them by COPY, which psycopg writes in C: a per-row executemany of the band
    keys, tags and related posts a first ingest writes by the ten thousand was a large share of
    its time.
    SQLite takes up to ROWS_PER_STATEMENT rows a statement (see there).
    """
    rows = list(rows)
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        driver = connection.connection.driver_connection
        assert driver is not None
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        dbapi = connection.dialect.loaded_dbapi
        try:
            with driver.cursor() as cursor, cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi.Error as exc:  # as SQLAlchemy's own: callers catch SQLAlchemyError
            raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
        return
    driver = connection.connection.driver_connection
    assert driver is not None
    variables = driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    per_statement = max(1, min(ROWS_PER_STATEMENT, variables // len(columns)))
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    row = f"({', '.join('?' for _ in columns)})"
    for start in range(0, len(rows), per_statement):
        chunk = rows[start : start + per_statement]
        values = tuple(itertools.chain.from_iterable(chunk))
        connection.exec_driver_sql(head + ", ".join([row] * len(chunk)), values)


# Rows of one INSERT on SQLite. FTS5 writes the search terms it holds to a new segment of its
# index at the start of every statement of a transaction that has written to it; a story
# inserted alone (executemany) thus wrote its terms to a segment of its own, which then had to
# be merged, and the merging cost most of the insert. Other tables neither gain nor lose.
ROWS_PER_STATEMENT = 500
