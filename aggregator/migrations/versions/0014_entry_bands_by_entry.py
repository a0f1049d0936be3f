"""entry_bands by entry: an edited entry's old band keys, and a pruned story's, are found through
an index instead of a scan of every key stored

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_entry_bands_entry", "entry_bands", ["entry_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_entry_bands_entry", table_name="entry_bands")
