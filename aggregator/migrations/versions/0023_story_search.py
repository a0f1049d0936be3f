"""PostgreSQL: the search vectors move from `stories` to their own table, `story_search`

0007 kept each story's tsvector in `stories.search_vector`, a stored generated column with a
GIN index. A story's row is updated thousands of times in a first ingest (its date, its best
entry: some 16,000 updates for 20,000 entries), and every such update wrote a new version of
the row, so a new entry in each of its indexes, the GIN index among them: some 60 of each
update's 100 microseconds (5,000 updates of `stories.updated`: 340-490 ms with the GIN index,
130-150 ms without), while the storing process waited. `story_search(story_id, vector)` now
holds the vectors and the GIN index; triggers fill it on INSERT (one statement per batch,
through a transition table) and on an UPDATE that sets the headline, lede or body, and the
foreign key's cascade empties it with the story. SQLite's index (0022) was already a table of
its own.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def vector(row: str) -> str:
    """0007's expression over the columns of `row` ("" for the table's own)."""
    return f"""
        setweight(to_tsvector('english', coalesce({row}title, '')), 'A')
        || setweight(to_tsvector('english', coalesce({row}lede, '')), 'B')
        || setweight(to_tsvector('english',
             regexp_replace(coalesce({row}body_html, ''), '<[^>]*>', ' ', 'g')), 'C')
    """


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE story_search (story_id INTEGER PRIMARY KEY "
        "REFERENCES stories (id) ON DELETE CASCADE, vector TSVECTOR NOT NULL)"
    )
    op.execute("INSERT INTO story_search (story_id, vector) SELECT id, search_vector FROM stories")
    op.execute("DROP INDEX ix_stories_search")
    op.execute("ALTER TABLE stories DROP COLUMN search_vector")
    op.execute("CREATE INDEX ix_story_search ON story_search USING gin (vector)")
    op.execute(
        "CREATE FUNCTION story_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "INSERT INTO story_search (story_id, vector) "
        f"SELECT n.id, {vector('n.')} FROM new_stories n; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER story_search_insert AFTER INSERT ON stories "
        "REFERENCING NEW TABLE AS new_stories FOR EACH STATEMENT "
        "EXECUTE FUNCTION story_search_insert()"
    )
    op.execute(
        "CREATE FUNCTION story_search_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"UPDATE story_search SET vector = {vector('NEW.')} WHERE story_id = NEW.id; "
        "RETURN NULL; END $$"
    )
    op.execute(
        "CREATE TRIGGER story_search_update AFTER UPDATE OF title, lede, body_html ON stories "
        "FOR EACH ROW EXECUTE FUNCTION story_search_update()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in ("insert", "update"):
        op.execute(f"DROP TRIGGER story_search_{name} ON stories")
        op.execute(f"DROP FUNCTION story_search_{name}()")
    op.execute("DROP TABLE story_search")
    op.execute(
        f"ALTER TABLE stories ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({vector('')}) "
        "STORED"
    )
    op.execute("CREATE INDEX ix_stories_search ON stories USING gin (search_vector)")
