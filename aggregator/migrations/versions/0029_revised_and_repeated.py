"""stories.revised: when a story's own headline or text last changed; sources.repeated_items

`stories.updated` moves whenever a story changes (another agency's copy joins it, a withdrawal),
because it is the published feeds' version check; shown as "Updated" it told readers a story
had been revised when only a copy had joined it. `revised` is set only when the story's
headline or text changes as told by the same source; existing stories start without one.
`sources.repeated_items` counts the entries of the last document read that repeated another's
identity and were skipped, so `caulbart status` says so instead of nothing.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: a batch rebuild of `stories` on SQLite would drop its search triggers.
    op.add_column("stories", sa.Column("revised", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "sources",
        sa.Column("repeated_items", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("sources", "repeated_items")
    op.drop_column("stories", "revised")
