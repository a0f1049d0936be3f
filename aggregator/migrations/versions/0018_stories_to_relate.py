"""stories_to_relate: stories whose related posts a `caulbart fetch` pass works out at its end

A pass stores its stories, then relates them on every core; the ids waiting for that are kept
in the stories' own transactions, so a pass stopped in between leaves them to the next.

Also where the search branch (0007, from 0005) rejoins the others: from here the migrations have
one head again, which db.upgrade_schema compares a database's revision with.

Revision ID: 0018
Revises: 0007, 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = ("0007", "0017")
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stories_to_relate",
        sa.Column("story_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("story_id"),
    )


def downgrade() -> None:
    op.drop_table("stories_to_relate")
