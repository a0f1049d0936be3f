"""full-text search over stories: SQLite FTS5 with triggers, PostgreSQL tsvector + GIN

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-25

Kept in sync by the database itself, so every writer (workers, CLI, editors' tools) updates it:
- SQLite: `stories_fts`, an external-content FTS5 table over stories (title, lede, body_html),
  with insert/update/delete triggers on `stories` (replaced by 0022's, which index the body's
  words instead of its markup).
- PostgreSQL: `stories.search_vector`, a stored generated tsvector (headline A, lede B, body
  text C, markup stripped), with a GIN index.
Neither is in models.py: tests/storage/test_migrations.py leaves these objects out of its comparison.
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0005"
branch_labels = None
depends_on = None

FTS_COLUMNS = "title, lede, body_html"
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN
        INSERT INTO stories_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, new.title, new.lede, new.body_html);
    END""",
    f"""CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN
        INSERT INTO stories_fts(stories_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.title, old.lede, old.body_html);
    END""",
    f"""CREATE TRIGGER stories_fts_update AFTER UPDATE OF title, lede, body_html ON stories BEGIN
        INSERT INTO stories_fts(stories_fts, rowid, {FTS_COLUMNS})
        VALUES ('delete', old.id, old.title, old.lede, old.body_html);
        INSERT INTO stories_fts(rowid, {FTS_COLUMNS})
        VALUES (new.id, new.title, new.lede, new.body_html);
    END""",
)
POSTGRES_VECTOR = """
    setweight(to_tsvector('english', coalesce(title, '')), 'A')
    || setweight(to_tsvector('english', coalesce(lede, '')), 'B')
    || setweight(to_tsvector('english',
         regexp_replace(coalesce(body_html, ''), '<[^>]*>', ' ', 'g')), 'C')
"""


def create_sqlite_triggers() -> None:
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            f"CREATE VIRTUAL TABLE stories_fts USING fts5({FTS_COLUMNS}, content='stories', "
            "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')"
        )
        create_sqlite_triggers()
        op.execute("INSERT INTO stories_fts(stories_fts) VALUES ('rebuild')")
        return
    op.execute(
        f"ALTER TABLE stories ADD COLUMN search_vector tsvector "
        f"GENERATED ALWAYS AS ({POSTGRES_VECTOR}) STORED"
    )
    op.execute("CREATE INDEX ix_stories_search ON stories USING gin (search_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS stories_fts_{name}")
        op.execute("DROP TABLE IF EXISTS stories_fts")
        return
    op.execute("DROP INDEX IF EXISTS ix_stories_search")
    op.execute("ALTER TABLE stories DROP COLUMN IF EXISTS search_vector")
