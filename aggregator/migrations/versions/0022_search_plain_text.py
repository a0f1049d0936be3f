"""SQLite's full-text index reads a story's words, not its markup

0007 indexed `body_html` as it is, so a search for `href`, `https` or the name of a site a body
only links to found that story. The index now reads its content through the view
`stories_search` (id, title, lede, body), whose body is `caulbart_search_text(body_html)`: the
markup and the addresses in it left out, entities decoded (`aggregator.ingest.normalise.search_text`,
registered on every connection by `aggregator.storage.db`). The triggers index the same words, and the
index is rebuilt from the view. PostgreSQL's tsvector already strips tags: unchanged.

The index is external-content: a story leaves it by the words the function gives for its old
body, so a change to what the function returns for a stored body needs a migration that
rebuilds the index ('rebuild', as below).

A tool that writes `stories` on another connection must register the same function: SQLite
refuses the write ("no such function: caulbart_search_text") rather than let the index drift.
A later migration that rebuilds `stories` (batch_alter_table) drops the triggers and must create
them again (`create_sqlite_triggers` below).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

TOKENIZER = "porter unicode61 remove_diacritics 2"
VIEW = """CREATE VIEW stories_search AS
    SELECT id, title, lede, caulbart_search_text(body_html) AS body FROM stories"""
SQLITE_TRIGGERS = (
    """CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN
        INSERT INTO stories_fts(rowid, title, lede, body)
        VALUES (new.id, new.title, new.lede, caulbart_search_text(new.body_html));
    END""",
    """CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN
        INSERT INTO stories_fts(stories_fts, rowid, title, lede, body)
        VALUES ('delete', old.id, old.title, old.lede, caulbart_search_text(old.body_html));
    END""",
    """CREATE TRIGGER stories_fts_update AFTER UPDATE OF title, lede, body_html ON stories BEGIN
        INSERT INTO stories_fts(stories_fts, rowid, title, lede, body)
        VALUES ('delete', old.id, old.title, old.lede, caulbart_search_text(old.body_html));
        INSERT INTO stories_fts(rowid, title, lede, body)
        VALUES (new.id, new.title, new.lede, caulbart_search_text(new.body_html));
    END""",
)
# 0007's triggers, for the downgrade: the markup indexed as it is.
MARKUP_TRIGGERS = (
    """CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN
        INSERT INTO stories_fts(rowid, title, lede, body_html)
        VALUES (new.id, new.title, new.lede, new.body_html);
    END""",
    """CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN
        INSERT INTO stories_fts(stories_fts, rowid, title, lede, body_html)
        VALUES ('delete', old.id, old.title, old.lede, old.body_html);
    END""",
    """CREATE TRIGGER stories_fts_update AFTER UPDATE OF title, lede, body_html ON stories BEGIN
        INSERT INTO stories_fts(stories_fts, rowid, title, lede, body_html)
        VALUES ('delete', old.id, old.title, old.lede, old.body_html);
        INSERT INTO stories_fts(rowid, title, lede, body_html)
        VALUES (new.id, new.title, new.lede, new.body_html);
    END""",
)


def create_sqlite_triggers() -> None:
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def _drop_index() -> None:
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS stories_fts_{name}")
    op.execute("DROP TABLE IF EXISTS stories_fts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_index()
    op.execute(VIEW)
    op.execute(
        "CREATE VIRTUAL TABLE stories_fts USING fts5(title, lede, body, "
        f"content='stories_search', content_rowid='id', tokenize='{TOKENIZER}')"
    )
    create_sqlite_triggers()
    op.execute("INSERT INTO stories_fts(stories_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _drop_index()
    op.execute("DROP VIEW IF EXISTS stories_search")
    op.execute(
        "CREATE VIRTUAL TABLE stories_fts USING fts5(title, lede, body_html, "
        f"content='stories', content_rowid='id', tokenize='{TOKENIZER}')"
    )
    for statement in MARKUP_TRIGGERS:
        op.execute(statement)
    op.execute("INSERT INTO stories_fts(stories_fts) VALUES ('rebuild')")
