"""entries.raw_title: the headline as the feed gave it, when the shown one is cleaned

Wire headline styles (ALL CAPS, " - Agency", "Politics:") are cleaned for readers
(aggregator.ingest.headlines); `caulbart explain` shows the feed's own from here. NULL: the headline is
shown as the feed gave it.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("raw_title", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("raw_title")
