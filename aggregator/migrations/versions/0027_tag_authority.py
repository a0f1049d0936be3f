"""settings: values fixed once for the life of the database (the tag authority of feed ids)

Feed item ids were `tag:<host of site.base_url>,...`, so moving the site from a test host to
its real domain changed every id and re-delivered every story to every subscriber. The host is
now fixed in `settings` at the first run (store.sync_sources): on an existing database, from the
`base_url` of the first run after this upgrade, so the ids it has published stay as they were.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("name", sa.String(length=64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("settings")
