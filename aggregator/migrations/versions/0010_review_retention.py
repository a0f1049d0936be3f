"""review and retention: sources.publish, stories.review and pinned_at, prunes

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25

Plain ADD COLUMNs (no table rebuild), so SQLite's full-text triggers on `stories` stay as 0007
made them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "sources",
        sa.Column("publish", sa.String(length=16), nullable=False, server_default="auto"),
    )
    op.add_column("stories", sa.Column("review", sa.String(length=16), nullable=True))
    op.add_column("stories", sa.Column("pinned_at", sa.DateTime(timezone=True), nullable=True))
    # Partial: only held stories are looked up by state (the editors' queue). A full index on
    # `review` would tempt the planner away from `published` on every listing.
    op.create_index(
        "ix_stories_held",
        "stories",
        ["created_at", "id"],
        sqlite_where=sa.text("review = 'held'"),
        postgresql_where=sa.text("review = 'held'"),
    )
    op.create_table(
        "prunes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cutoff", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stories", sa.Integer(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_prunes_at", "prunes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_prunes_at", table_name="prunes")
    op.drop_table("prunes")
    op.drop_index("ix_stories_held", table_name="stories")
    # Plain DROP COLUMN (SQLite 3.35+): a batch rebuild of `stories` would drop 0007's triggers.
    op.drop_column("stories", "pinned_at")
    op.drop_column("stories", "review")
    op.drop_column("sources", "publish")
