"""entry_bands without a foreign key to entries: band keys are an index of entries' texts

Every band key written checked its entry (PostgreSQL runs a trigger and a locking read a key,
some 40 keys an entry). The store writes an entry's keys in the transaction that writes the
entry, and deletes them before the entry (edits, retention), so the check guarded nothing the
code does not already do; a key left without its entry would only be a candidate that finds no
telling. The index by entry stays: it is how an entry's keys are deleted.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _rebuild_sqlite(foreign_key: bool) -> None:
    """SQLite cannot drop or add a constraint: the table is copied (as 0016 made it)."""
    op.execute(
        "CREATE TABLE entry_bands_new ("
        " band BIGINT NOT NULL,"
        " published BIGINT NOT NULL,"
        " entry_id INTEGER NOT NULL,"
        " PRIMARY KEY (band, published, entry_id)"
        + (", FOREIGN KEY(entry_id) REFERENCES entries (id)" if foreign_key else "")
        + ") WITHOUT ROWID"
    )
    op.execute(
        "INSERT INTO entry_bands_new (band, published, entry_id)"
        " SELECT band, published, entry_id FROM entry_bands"
        + (" WHERE entry_id IN (SELECT id FROM entries)" if foreign_key else "")
    )
    op.execute("DROP TABLE entry_bands")
    op.execute("ALTER TABLE entry_bands_new RENAME TO entry_bands")
    op.execute("CREATE INDEX ix_entry_bands_entry ON entry_bands (entry_id)")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rebuild_sqlite(foreign_key=False)
        return
    for foreign_key in sa.inspect(bind).get_foreign_keys("entry_bands"):
        op.drop_constraint(foreign_key["name"], "entry_bands", type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite(foreign_key=True)
        return
    op.execute("DELETE FROM entry_bands WHERE entry_id NOT IN (SELECT id FROM entries)")
    op.create_foreign_key(
        "entry_bands_entry_id_fkey", "entry_bands", "entries", ["entry_id"], ["id"]
    )
