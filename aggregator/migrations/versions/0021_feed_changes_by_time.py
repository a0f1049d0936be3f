"""ix_feed_changes_at: the departures a commit noted, found by their moment

After a commit, the WebSub ping names the tags' feeds stories left in it: `feed_changes` rows
at that commit's time. The table's one index leads with the feed's kind and name, so finding
them by time alone read every tag's rows; retention's delete of rows older than its cutoff
reads by time too.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_feed_changes_at", "feed_changes", ["at"])


def downgrade() -> None:
    op.drop_index("ix_feed_changes_at", table_name="feed_changes")
