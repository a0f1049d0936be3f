"""feed_changes: when a story lost a tag (or all were tagged again), so feed versions need no count

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feed_changes_scope_at", "feed_changes", ["kind", "value", "at"])


def downgrade() -> None:
    op.drop_index("ix_feed_changes_scope_at", table_name="feed_changes")
    op.drop_table("feed_changes")
