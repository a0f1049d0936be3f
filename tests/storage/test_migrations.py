"""Models and migrations cannot drift: the migrated schema is exactly `Base.metadata`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session

from aggregator.storage.db import (
    MIGRATIONS,
    head_revision,
    make_engine,
    schema_revisions,
    upgrade_schema,
)
from aggregator.storage.models import Base, Story

# Full-text search objects made by migrations 0007, 0022, 0023 and 0030 in SQL the models cannot
# express (an FTS5 virtual table and its shadow tables; PostgreSQL's table of tsvectors, filled
# by triggers; views are not compared): they are checked by tests/e2e/test_pages_web.py
# (search on both databases) and below, not compared here.
SEARCH_TABLES = ("stories_fts", "story_search")


def _include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
    if type_ == "table":
        return not (name or "").startswith(SEARCH_TABLES)
    return True


def _differences(engine: sqlalchemy.Engine) -> list[Any]:
    with engine.connect() as connection:
        # Tables, columns, types, nullability, indexes, unique and foreign keys. Server defaults
        # are left out: migrations that add a NOT NULL column give it one to fill existing rows,
        # which the models (creating nothing themselves) need not repeat.
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _include_name}
        )
        return list(compare_metadata(context, Base.metadata))


def test_migrated_schema_matches_the_models(engine: sqlalchemy.Engine) -> None:
    assert _differences(engine) == []


def test_every_model_table_exists_after_migrating(engine: sqlalchemy.Engine) -> None:
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables


def test_a_model_change_without_a_migration_is_caught(engine: sqlalchemy.Engine) -> None:
    """The comparison above can fail: a column added to the models only is reported."""
    metadata = sqlalchemy.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(metadata)
    name = sorted(metadata.tables)[0]
    metadata.tables[name].append_column(sqlalchemy.Column("not_migrated", sqlalchemy.Integer))
    with engine.connect() as connection:
        context = MigrationContext.configure(connection)
        differences = compare_metadata(context, metadata)
    assert [(d[0], d[3].name) for d in differences if d[0] == "add_column"] == [
        ("add_column", "not_migrated")
    ]


def test_the_head_read_off_the_file_names_is_alembics_own() -> None:
    """db.upgrade_schema skips Alembic when a database is at `head_revision()`: it must be the
    head Alembic would migrate to."""
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(_alembic_config()).get_heads() == [head_revision()]


def test_a_database_at_the_head_is_not_migrated_again_and_an_older_one_is(
    engine: sqlalchemy.Engine,
) -> None:
    assert schema_revisions(engine) == {head_revision()}
    _downgrade(engine, "0022")  # 0023 undone by its own downgrade
    with engine.begin() as connection:  # as an earlier release left it: two heads
        connection.execute(sqlalchemy.text("DROP TABLE stories_to_relate"))
        connection.execute(sqlalchemy.text("DROP TABLE feed_changes"))
        connection.execute(sqlalchemy.text("DROP INDEX ix_stories_withdrawn"))
        if engine.dialect.name == "sqlite":  # 0022's view (its index it makes anew)
            connection.execute(sqlalchemy.text("DROP VIEW stories_search"))
        connection.execute(sqlalchemy.text("DELETE FROM alembic_version"))
        connection.execute(sqlalchemy.text("INSERT INTO alembic_version VALUES ('0007'), ('0017')"))
    upgrade_schema(engine)
    assert schema_revisions(engine) == {head_revision()}
    assert not _differences(engine)
    with engine.begin() as connection:  # at the head, whatever the tables: not looked at
        connection.execute(sqlalchemy.text("DROP TABLE feed_changes"))
    upgrade_schema(engine)
    assert "feed_changes" not in sqlalchemy.inspect(engine).get_table_names()


def test_sqlites_search_index_is_rebuilt_from_the_stories_words_by_0022(tmp_path: Path) -> None:
    """An archive indexed with its markup (0007 to 0021) is indexed anew from its words alone:
    a story that only links to a site is no longer found by the site's name. The downgrade
    brings the markup index back."""
    engine = make_engine(f"sqlite:///{tmp_path}/archive.sqlite3")
    upgrade_schema(engine)
    body = '<p>Harbour pilots <a href="https://quokka.example/">published</a> them.</p>'
    story_id = _add_story(engine, "Out today.", body)

    def matches(word: str) -> list[int]:
        query = sqlalchemy.text("SELECT rowid FROM stories_fts WHERE stories_fts MATCH :word")
        with engine.connect() as connection:
            return list(connection.scalars(query, {"word": word}))

    _downgrade(engine, "0021")
    assert matches("quokka") == [story_id] and matches("pilots") == [story_id]
    upgrade_schema(engine)
    assert schema_revisions(engine) == {head_revision()}
    assert matches("quokka") == [] and matches("pilots") == [story_id]
    with engine.begin() as connection:
        connection.execute(
            sqlalchemy.text("INSERT INTO stories_fts(stories_fts) VALUES ('integrity-check')")
        )
    engine.dispose()


def test_postgresqls_search_vectors_are_written_only_when_a_storys_text_changes(
    postgres: sqlalchemy.Engine,
) -> None:
    """An ingest updates a story's date and best entry thousands of times a pass: those updates
    leave its vector and the GIN index alone (0023: they live in `story_search`); an insert
    computes it, an update of the headline, lede or body computes it again, and deleting the
    story deletes it."""
    story_id = _add_story(postgres, "Pilots publish them.", "<p>Harbour <b>charts</b> too.</p>")

    def vector() -> tuple[str | None, str]:
        """The stored vector, and 0030's expression over the story as it is now."""
        query = sqlalchemy.text(
            "SELECT (SELECT vector::text FROM story_search WHERE story_id = s.id), "
            "(setweight(to_tsvector('simple', caulbart_search_words(title)), 'A') || "
            "setweight(to_tsvector('simple', caulbart_search_words(lede)), 'B') || "
            "setweight(to_tsvector('simple', caulbart_search_words("
            "regexp_replace(body_html, '<[^>]*>', ' ', 'g'))), 'C'))::text "
            "FROM stories s WHERE s.id = :id"
        )
        with postgres.connect() as connection:
            stored, computed = connection.execute(query, {"id": story_id}).one()
            return stored, computed

    def run(statement: str) -> None:
        with postgres.begin() as connection:
            connection.execute(sqlalchemy.text(statement), {"id": story_id})

    stored, computed = vector()
    assert stored == computed and "'charts':" in stored and "'pilots':4B" in stored
    run("UPDATE story_search SET vector = 'marked' WHERE story_id = :id")  # only a write undoes
    run(
        "UPDATE stories SET updated = updated + interval '1 hour', "
        "published = published - interval '1 hour', best_entry_id = NULL WHERE id = :id"
    )
    assert vector()[0] == "'marked'"
    run("UPDATE stories SET lede = 'Ferries resume.' WHERE id = :id")
    stored, computed = vector()
    assert stored == computed and "'ferries':" in stored and "pilot" not in stored
    run("DELETE FROM stories WHERE id = :id")
    with postgres.connect() as connection:
        assert connection.scalar(sqlalchemy.text("SELECT count(*) FROM story_search")) == 0


def test_0023_goes_down_to_the_generated_column_and_up_again(postgres: sqlalchemy.Engine) -> None:
    generated = sqlalchemy.text(
        "SELECT attgenerated FROM pg_attribute "
        "WHERE attrelid = CAST('stories' AS regclass) AND attname = 'search_vector'"
    )
    _downgrade(postgres, "0022")
    with postgres.connect() as connection:
        assert connection.scalar(generated) == "s"
    upgrade_schema(postgres)
    with postgres.connect() as connection:
        assert connection.scalar(generated) is None
        assert "story_search" in sqlalchemy.inspect(connection).get_table_names()


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    return config


def _downgrade(engine: sqlalchemy.Engine, revision: str) -> None:
    with engine.begin() as connection:
        config = _alembic_config()
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


def _add_story(engine: sqlalchemy.Engine, lede: str, body_html: str) -> int:
    """A story headed "Tide tables out" with this lede and body; returns its id."""
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        story = Story(slug="tides", title="Tide tables out", lede=lede, section="world",
                      body_html=body_html, terms=[], published=now, updated=now,
                      created_at=now)  # fmt: skip
        session.add(story)
        session.flush()
        return story.id


def test_0030_reads_folded_unstemmed_words_and_goes_down_and_up_again(
    engine: sqlalchemy.Engine,
) -> None:
    """A story stored before 0030 is found by its unaccented words after it, on both databases;
    0030's downgrade brings back 0022's/0023's stemmed index."""
    from web.search import search_stories

    _downgrade(engine, "0029")
    _add_story(engine, "Café owners in Łódź reopen.", "<p>Bakers baked.</p>")

    def found(query: str) -> int:
        return search_stories(engine, query, 1, 10).total

    upgrade_schema(engine)
    assert schema_revisions(engine) == {head_revision()}
    assert [found(q) for q in ("cafe", "lodz", "baked", "bake", "bake*")] == [1, 1, 1, 0, 1]
    _downgrade(engine, "0029")
    with engine.connect() as connection:
        count = (
            "SELECT count(*) FROM stories_fts WHERE stories_fts MATCH 'bake'"
            if engine.dialect.name == "sqlite"
            else "SELECT count(*) FROM story_search WHERE vector @@ to_tsquery('english', 'bake')"
        )
        assert connection.scalar(sqlalchemy.text(count)) == 1  # stemmed again
    upgrade_schema(engine)
    assert found("lodz") == 1
