"""entries.date_note: why an entry's feed dates were set aside for the time it was fetched

A date out of range (`Sat, 01 Jan 0001`, year 9999, hours ahead of the clock) is not when the
news was published; the entry is dated when it was fetched, as an undated one is, and the
feed's date is kept here so that `caulbart explain` can say so.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("entries", sa.Column("date_note", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch_op:  # SQLite drops a column by copying
        batch_op.drop_column("date_note")
