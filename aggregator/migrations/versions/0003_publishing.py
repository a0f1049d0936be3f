"""publishing: sources' republishing terms, story withdrawals, index for feed version checks

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sources") as batch_op:
        batch_op.add_column(sa.Column("rights", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("excerpt_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("images", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("terms_changed_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("stories") as batch_op:
        batch_op.add_column(sa.Column("withdrawn_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_reason", sa.Text(), nullable=True))
        batch_op.create_index("ix_stories_updated", ["updated"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stories") as batch_op:
        batch_op.drop_index("ix_stories_updated")
        batch_op.drop_column("withdrawn_reason")
        batch_op.drop_column("withdrawn_at")
    with op.batch_alter_table("sources") as batch_op:
        batch_op.drop_column("terms_changed_at")
        batch_op.drop_column("images")
        batch_op.drop_column("excerpt_only")
        batch_op.drop_column("rights")
