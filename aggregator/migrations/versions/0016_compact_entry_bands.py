"""entry_bands on SQLite: the table is its key's index (WITHOUT ROWID), dates as integers

Band keys are written at random places of their index, and SQLite writes every page a
transaction touched: the index's size is much of what an ingest writes. The rowid table went
(one B-tree a key instead of two) and the dates became microseconds since the epoch (8 bytes
instead of 26 characters). PostgreSQL's table is unchanged: nothing to do there.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

MICROSECONDS = (
    "CAST(strftime('%s', published) AS INTEGER) * 1000000"
    " + CAST(substr(published, 21, 6) AS INTEGER)"
)
TEXT = (
    "strftime('%Y-%m-%d %H:%M:%S', published / 1000000, 'unixepoch')"
    " || printf('.%06d', published % 1000000)"
)


def _rebuild(published_type: str, without_rowid: bool, published: str) -> None:
    op.execute(
        "CREATE TABLE entry_bands_new ("
        " band BIGINT NOT NULL,"
        f" published {published_type} NOT NULL,"
        " entry_id INTEGER NOT NULL,"
        " PRIMARY KEY (band, published, entry_id),"
        " FOREIGN KEY(entry_id) REFERENCES entries (id))"
        + (" WITHOUT ROWID" if without_rowid else "")
    )
    op.execute(
        "INSERT OR IGNORE INTO entry_bands_new (band, published, entry_id)"
        f" SELECT band, {published}, entry_id FROM entry_bands"
    )
    op.execute("DROP TABLE entry_bands")
    op.execute("ALTER TABLE entry_bands_new RENAME TO entry_bands")
    op.execute("CREATE INDEX ix_entry_bands_entry ON entry_bands (entry_id)")


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("BIGINT", True, MICROSECONDS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild("DATETIME", False, TEXT)
