"""comments: readers' replies held for moderation

Revision ID: 0008
Revises: 0006
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("author_token", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_comments_story_status_created", "comments", ["story_id", "status", "created_at"]
    )
    op.create_index("ix_comments_status_created", "comments", ["status", "created_at"])
    op.create_index("ix_comments_email_status", "comments", ["email", "status"])


def downgrade() -> None:
    op.drop_index("ix_comments_email_status", table_name="comments")
    op.drop_index("ix_comments_status_created", table_name="comments")
    op.drop_index("ix_comments_story_status_created", table_name="comments")
    op.drop_table("comments")
