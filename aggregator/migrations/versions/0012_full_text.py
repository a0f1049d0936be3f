"""full text: the article page cache; full-text errors on entries and sources

Revision ID: 0012
Revises: 0010
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_pages",
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("url_hash"),
    )
    op.add_column("entries", sa.Column("full_text_error", sa.String(length=500), nullable=True))
    op.add_column("sources", sa.Column("full_text_error", sa.Text(), nullable=True))


def downgrade() -> None:
    for table in ("sources", "entries"):
        with op.batch_alter_table(table) as batch_op:  # SQLite drops a column by copying
            batch_op.drop_column("full_text_error")
    op.drop_table("article_pages")
