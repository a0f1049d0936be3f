"""filtered entries: arriving items an editor's filter turned away, with the rule

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "filtered_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("guid", sa.String(length=1100), nullable=False),
        sa.Column("link", sa.String(length=2048), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["source_id"], ["sources.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_id", "guid", name="uq_filtered_entries_source_guid"),
    )
    op.create_index("ix_filtered_entries_link", "filtered_entries", ["link"])
    op.create_index("ix_filtered_entries_seen_at", "filtered_entries", ["seen_at"])


def downgrade() -> None:
    op.drop_index("ix_filtered_entries_seen_at", table_name="filtered_entries")
    op.drop_index("ix_filtered_entries_link", table_name="filtered_entries")
    op.drop_table("filtered_entries")
