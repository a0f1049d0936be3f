"""Entries keep what their feed said: every enclosure, whether the headline was derived

`entries.enclosures` holds the files an entry carries (podcast audio, video), which were
dropped; `entries.title_derived` marks an untitled item's headline as made from its text, its
file's name or its link (such items were kept only when they had text or a link).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.add_column(sa.Column("enclosures", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("title_derived", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("entries") as batch:
        batch.drop_column("title_derived")
        batch.drop_column("enclosures")
