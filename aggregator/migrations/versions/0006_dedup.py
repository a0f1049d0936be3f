"""near-duplicate index (entry band keys), entries' shingles and match explanations

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries") as batch_op:
        batch_op.add_column(sa.Column("shingles", sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column("match_rule", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("match_score", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("matched_entry_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_entries_matched_entry_id_entries", "entries", ["matched_entry_id"], ["id"]
        )
    op.create_table(
        "entry_bands",
        sa.Column("band", sa.BigInteger(), nullable=False),
        sa.Column("published", sa.DateTime(timezone=True), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"]),
        sa.PrimaryKeyConstraint("band", "published", "entry_id"),
    )


def downgrade() -> None:
    op.drop_table("entry_bands")
    with op.batch_alter_table("entries") as batch_op:
        batch_op.drop_constraint("fk_entries_matched_entry_id_entries", type_="foreignkey")
        batch_op.drop_column("matched_entry_id")
        batch_op.drop_column("match_score")
        batch_op.drop_column("match_rule")
        batch_op.drop_column("shingles")
