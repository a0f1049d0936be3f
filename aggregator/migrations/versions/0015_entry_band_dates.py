"""entry_bands dates on SQLite in the text every other date is stored as

The store wrote band keys' dates through the driver's own datetime adapter ('2026-11-01
10:00:00') while every other date is SQLAlchemy's text ('2026-11-01 10:00:00.000000'). Dates
compare as text on SQLite, so a key dated exactly at the dedup window's lower bound fell
outside it. PostgreSQL stores timestamps, not text: nothing to do there.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # OR REPLACE: were a key already stored in both forms, the two rows are one key.
        op.execute(
            "UPDATE OR REPLACE entry_bands SET published = published || '.000000'"
            " WHERE length(published) = 19"
        )


def downgrade() -> None:
    pass  # the longer form is what SQLAlchemy writes and reads: nothing to undo
