"""listing indexes: section pages and feeds, and source pages, stay flat as the archive grows

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-25
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_stories_section_published", "stories", ["section", "published", "id"], unique=False
    )
    op.create_index("ix_stories_section_updated", "stories", ["section", "updated"], unique=False)
    # Newest story of a section (its feed's version) in id order, on every database.
    op.create_index("ix_stories_section_id", "stories", ["section", "id"], unique=False)
    op.create_index("ix_stories_section_review", "stories", ["section", "review"], unique=False)
    op.drop_index("ix_stories_section", table_name="stories")
    op.create_index("ix_entries_source_story", "entries", ["source_id", "story_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_entries_source_story", table_name="entries")
    op.create_index("ix_stories_section", "stories", ["section"], unique=False)
    op.drop_index("ix_stories_section_id", table_name="stories")
    op.drop_index("ix_stories_section_review", table_name="stories")
    op.drop_index("ix_stories_section_updated", table_name="stories")
    op.drop_index("ix_stories_section_published", table_name="stories")
