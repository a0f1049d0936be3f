"""article_pages: each page kept under the address policy that fetched it

A page a source allowed a private address fetched was served from the cache to any source that
linked to it. Rows are now keyed by the policy and the URL, and name the policy. The rows kept
so far do not say which policy fetched them, so they are dropped: the cache is only read for new
entries, which fetch their page again.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def _columns() -> list[sa.Column[object]]:
    return [
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("image_url", sa.String(length=2048), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.drop_table("article_pages")
    op.create_table(
        "article_pages",
        sa.Column("page_key", sa.String(length=64), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("page_key"),
    )


def downgrade() -> None:
    op.drop_table("article_pages")  # 0012's table holds no policy: none of these rows fit it
    op.create_table(
        "article_pages",
        sa.Column("url_hash", sa.String(length=64), nullable=False),
        *_columns(),
        sa.PrimaryKeyConstraint("url_hash"),
    )
