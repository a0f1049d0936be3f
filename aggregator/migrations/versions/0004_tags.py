"""tags, story tags, related stories; source tags and story terms

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch_op:
        batch_op.add_column(sa.Column("tags", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("stories") as batch_op:
        batch_op.add_column(sa.Column("terms", sa.JSON(), nullable=False, server_default="[]"))
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=200), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "story_tags",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"]),
        sa.ForeignKeyConstraint(["tag_id"], ["tags.id"]),
        sa.PrimaryKeyConstraint("story_id", "tag_id"),
    )
    op.create_index("ix_story_tags_tag_story", "story_tags", ["tag_id", "story_id"])
    op.create_table(
        "related_stories",
        sa.Column("story_id", sa.Integer(), nullable=False),
        sa.Column("related_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["story_id"], ["stories.id"]),
        sa.ForeignKeyConstraint(["related_id"], ["stories.id"]),
        sa.PrimaryKeyConstraint("story_id", "related_id"),
    )


def downgrade() -> None:
    op.drop_table("related_stories")
    op.drop_index("ix_story_tags_tag_story", table_name="story_tags")
    op.drop_table("story_tags")
    op.drop_table("tags")
    with op.batch_alter_table("stories") as batch_op:
        batch_op.drop_column("terms")
    with op.batch_alter_table("sources") as batch_op:
        batch_op.drop_column("tags")
