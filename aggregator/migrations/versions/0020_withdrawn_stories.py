"""ix_stories_withdrawn: a feed's tombstones without reading every story of the feed

Rendering a feed read each of its stories' `withdrawn_at` to find the few withdrawn ones and to
count the rest (90 ms for the site's feed at 100,000 stories, SQLite). A partial index holds
only withdrawn stories, newest withdrawal first.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_stories_withdrawn",
        "stories",
        ["withdrawn_at", "id"],
        sqlite_where=sa.text("withdrawn_at IS NOT NULL"),
        postgresql_where=sa.text("withdrawn_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_stories_withdrawn", table_name="stories")
