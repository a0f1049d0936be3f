"""Search folds, splits and stems words the same way on SQLite and PostgreSQL

Until now SQLite's index stemmed with Porter (`porter unicode61 remove_diacritics 2`) and
PostgreSQL's with Snowball's English (`to_tsvector('english', ...)`), two stemmers that disagree on
many words, and PostgreSQL folded no accents (`cafe` missed "Café") and read `bbc.co.uk`, `3.14`
or `e-mail` as single words where SQLite read their parts. Both now index words unstemmed, case
and accents folded, split at every sign that is not a letter or digit:

- PostgreSQL: `caulbart_search_words(text)`, an immutable wrapper of the `unaccent` extension
  (created here if missing; installed with the server's contrib package) that also turns the
  signs the default parser would join words with (`. @ / : - _ + & < > ; = ? # % ~ ' \\`) into
  spaces, under the `simple` configuration (lower case, no stemming, no stop words). The body is
  its text with tags and the entities sanitised markup writes (&amp; &lt; &gt; &quot; &#39;) left
  out. `story_search`'s triggers (0023) compute the new vector and every stored one is computed
  anew.
- SQLite: `stories_fts` is made anew with `unicode61 remove_diacritics 2` (no Porter), over the
  view `stories_search` whose columns go through `caulbart_search_words`
  (`aggregator.storage.search_words.index_words`, registered on every connection): the letters
  `unaccent` folds and unicode61 would not (ß, æ, ø, ł ...).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import op
from sqlalchemy import text

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None

# --- SQLite ---------------------------------------------------------------------------------

TOKENIZER = "unicode61 remove_diacritics 2"
BODY = "caulbart_search_words(caulbart_search_text({row}body_html))"


def _sqlite_columns(row: str) -> str:
    return f"caulbart_search_words({row}title), caulbart_search_words({row}lede), " + BODY.format(
        row=row
    )


SQLITE_VIEW = (
    "CREATE VIEW stories_search AS SELECT id, caulbart_search_words(title) AS title, "
    "caulbart_search_words(lede) AS lede, "
    "caulbart_search_words(caulbart_search_text(body_html)) AS body FROM stories"
)
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER stories_fts_insert AFTER INSERT ON stories BEGIN
        INSERT INTO stories_fts(rowid, title, lede, body)
        VALUES (new.id, {_sqlite_columns("new.")});
    END""",
    f"""CREATE TRIGGER stories_fts_delete AFTER DELETE ON stories BEGIN
        INSERT INTO stories_fts(stories_fts, rowid, title, lede, body)
        VALUES ('delete', old.id, {_sqlite_columns("old.")});
    END""",
    f"""CREATE TRIGGER stories_fts_update AFTER UPDATE OF title, lede, body_html ON stories BEGIN
        INSERT INTO stories_fts(stories_fts, rowid, title, lede, body)
        VALUES ('delete', old.id, {_sqlite_columns("old.")});
        INSERT INTO stories_fts(rowid, title, lede, body)
        VALUES (new.id, {_sqlite_columns("new.")});
    END""",
)
# 0022's index, for the downgrade.
OLD_SQLITE_VIEW = """CREATE VIEW stories_search AS
    SELECT id, title, lede, caulbart_search_text(body_html) AS body FROM stories"""
OLD_SQLITE_TRIGGERS = (
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


def create_sqlite_triggers() -> None:
    """The index's triggers; a later migration that rebuilds `stories` must call this again."""
    for statement in SQLITE_TRIGGERS:
        op.execute(statement)


def _make_sqlite_index(view: str, tokenizer: str, triggers: tuple[str, ...]) -> None:
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS stories_fts_{name}")
    op.execute("DROP TABLE IF EXISTS stories_fts")
    op.execute("DROP VIEW IF EXISTS stories_search")
    op.execute(view)
    op.execute(
        "CREATE VIRTUAL TABLE stories_fts USING fts5(title, lede, body, "
        f"content='stories_search', content_rowid='id', tokenize='{tokenizer}')"
    )
    for statement in triggers:
        op.execute(statement)
    op.execute("INSERT INTO stories_fts(stories_fts) VALUES ('rebuild')")


# --- PostgreSQL -----------------------------------------------------------------------------

# Signs PostgreSQL's parser would read as part of one token (hosts, e-mail addresses, paths,
# numbers with a point, hyphenated words) where unicode61 sees separators.
JOINING_SIGNS = ".@/:-_+&<>;=?#%~'\\"
MISSING_UNACCENT = (
    "PostgreSQL's `unaccent` extension is not available on this server; search needs it to fold "
    "accents. Install the server's contrib package (Debian/Ubuntu: postgresql-contrib, "
    "RHEL: postgresql-contrib, it ships with the official Docker images) and run "
    "`caulbart migrate` again."
)
NO_RIGHT_TO_CREATE = (
    "PostgreSQL's `unaccent` extension is installed on the server but not in this database, and "
    "this role may not create it. Ask a superuser to run `CREATE EXTENSION unaccent;` in this "
    "database, then run `caulbart migrate` again."
)


def _words(expression: str, schema: str) -> str:
    folded = (
        f"\"{schema}\".unaccent('\"{schema}\".unaccent'::regdictionary, coalesce({expression}, ''))"
    )
    for sign in JOINING_SIGNS:
        literal = sign.replace("'", "''")
        folded = f"replace({folded}, '{literal}', ' ')"
    return folded


def vector(row: str) -> str:
    """The story's vector over the columns of `row` ("NEW.", "n.", "s.")."""
    body = (
        f"regexp_replace(coalesce({row}body_html, ''), '<[^>]*>|&(amp|lt|gt|quot|#39|#x27);', "
        "' ', 'g')"
    )
    return f"""
        setweight(to_tsvector('simple', caulbart_search_words({row}title)), 'A')
        || setweight(to_tsvector('simple', caulbart_search_words({row}lede)), 'B')
        || setweight(to_tsvector('simple', caulbart_search_words({body})), 'C')
    """


def old_vector(row: str) -> str:
    """0023's vector, for the downgrade."""
    return f"""
        setweight(to_tsvector('english', coalesce({row}title, '')), 'A')
        || setweight(to_tsvector('english', coalesce({row}lede, '')), 'B')
        || setweight(to_tsvector('english',
             regexp_replace(coalesce({row}body_html, ''), '<[^>]*>', ' ', 'g')), 'C')
    """


def _unaccent_schema() -> str:
    """The schema holding `unaccent`, created first if the server has it; a clear error if not."""
    bind = op.get_bind()
    found = bind.scalar(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
            "WHERE e.extname = 'unaccent'"
        )
    )
    if found:
        return str(found)
    if not bind.scalar(
        text("SELECT count(*) FROM pg_available_extensions WHERE name = 'unaccent'")
    ):
        raise RuntimeError(MISSING_UNACCENT)
    allowed = bind.scalar(
        text(
            "SELECT rolsuper OR has_database_privilege(current_database(), 'CREATE') "
            "FROM pg_roles WHERE rolname = current_user"
        )
    )
    if not allowed:
        raise RuntimeError(NO_RIGHT_TO_CREATE)
    # In `public` when this role may write there, so that dropping the application's own schema
    # never takes the extension from another schema's functions; else in the current schema.
    schema = bind.scalar(
        text(
            "SELECT CASE WHEN has_schema_privilege('public', 'CREATE') THEN 'public' "
            "ELSE current_schema() END"
        )
    )
    op.execute(f'CREATE EXTENSION unaccent SCHEMA "{schema}"')
    return str(schema)


def _set_postgres_vector(make: Callable[[str], str]) -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION story_search_insert() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN INSERT INTO story_search (story_id, vector) "
        f"SELECT n.id, {make('n.')} FROM new_stories n; RETURN NULL; END $$"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION story_search_update() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN UPDATE story_search SET vector = {make('NEW.')} "
        "WHERE story_id = NEW.id; RETURN NULL; END $$"
    )
    op.execute(
        f"UPDATE story_search v SET vector = {make('s.')} FROM stories s WHERE s.id = v.story_id"
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _make_sqlite_index(SQLITE_VIEW, TOKENIZER, SQLITE_TRIGGERS)
        return
    schema = _unaccent_schema()
    op.execute(
        "CREATE FUNCTION caulbart_search_words(words text) RETURNS text "
        f"LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT {_words('words', schema)} $$"
    )
    _set_postgres_vector(vector)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        _make_sqlite_index(
            OLD_SQLITE_VIEW, "porter unicode61 remove_diacritics 2", OLD_SQLITE_TRIGGERS
        )
        return
    _set_postgres_vector(old_vector)
    op.execute("DROP FUNCTION caulbart_search_words(text)")
    # The extension stays: other schemas of the database may use it.
