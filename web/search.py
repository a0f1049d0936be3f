"""Full-text search over stories in the database: SQLite FTS5 or PostgreSQL tsvector.

Both indexes are kept by the database (migrations 0007, 0022, 0023), so a search is one
ranked, paged query. Matches come back marked with two control characters (never stored: ingest
removes them), so the view escapes the text first and only then turns the marks into `<mark>`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape
from sqlalchemy import Connection, Engine, text

from aggregator.storage.models import UTCDateTime

START, STOP = "\x02", "\x03"
MAX_QUERY = 200  # characters of a query looked at; longer ones are cut
MAX_TERMS = 12  # words of a query used on SQLite
WORD = re.compile(r"\w+", re.UNICODE)
_DATETIME = UTCDateTime()


@dataclass(frozen=True)
class SearchHit:
    id: int
    slug: str
    published: datetime
    section: str
    title: Markup  # escaped, matches in <mark>
    snippet: Markup


@dataclass(frozen=True)
class SearchResults:
    query: str
    hits: tuple[SearchHit, ...]
    total: int


def highlighted(marked: str) -> Markup:
    """Escape the text, then make the database's match marks <mark> elements."""
    safe = str(escape(marked))  # escaping leaves the two control characters alone
    return Markup(safe.replace(START, "<mark>").replace(STOP, "</mark>"))


def fts5_query(query: str) -> str:
    """The words of a reader's query as FTS5 strings, all required: no FTS5 syntax gets through,
    so no query is an error."""
    words = WORD.findall(query[:MAX_QUERY])[:MAX_TERMS]
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


def search_stories(engine: Engine, query: str, page: int, per_page: int) -> SearchResults:
    """Published stories (not withdrawn, not held in review) matching `query`, best first,
    one page of them."""
    query = query.strip()[:MAX_QUERY]
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            return _sqlite(connection, query, page, per_page)
        return _postgresql(connection, query, page, per_page)


# Readers' stories: not withdrawn, and not held or rejected in review (aggregator.stories.review).
SHOWN = "s.withdrawn_at IS NULL AND (s.review IS NULL OR s.review = 'approved')"
_SQLITE_COUNT = text(
    "SELECT count(*) FROM stories_fts JOIN stories s ON s.id = stories_fts.rowid "
    f"WHERE stories_fts MATCH :q AND {SHOWN}"
)
# bm25 weights: headline 10, lede 4, body 1 (lower bm25 is better in FTS5).
_SQLITE_PAGE = text(
    "SELECT s.id, s.slug, s.published, s.section, "
    f"highlight(stories_fts, 0, '{START}', '{STOP}'), "
    f"snippet(stories_fts, 1, '{START}', '{STOP}', '…', 40) "
    "FROM stories_fts JOIN stories s ON s.id = stories_fts.rowid "
    f"WHERE stories_fts MATCH :q AND {SHOWN} "
    "ORDER BY bm25(stories_fts, 10.0, 4.0, 1.0), s.published DESC LIMIT :limit OFFSET :offset"
)


def _sqlite(connection: Connection, query: str, page: int, per_page: int) -> SearchResults:
    match = fts5_query(query)
    if not match:
        return SearchResults(query, (), 0)
    total = connection.execute(_SQLITE_COUNT, {"q": match}).scalar_one()
    rows = connection.execute(
        _SQLITE_PAGE, {"q": match, "limit": per_page, "offset": (page - 1) * per_page}
    )
    return SearchResults(query, tuple(_hit(*row, connection=connection) for row in rows), total)


_POSTGRES_COUNT = text(
    "SELECT count(*) FROM story_search v JOIN stories s ON s.id = v.story_id "
    f"WHERE v.vector @@ websearch_to_tsquery('english', :q) AND {SHOWN}"
)
_POSTGRES_PAGE = text(
    "WITH q AS (SELECT websearch_to_tsquery('english', :q) AS tsq), "
    "found AS (SELECT s.id, s.slug, s.published, s.section, s.title, s.lede, "
    "  ts_rank_cd(v.vector, q.tsq) AS rank "
    "  FROM story_search v JOIN stories s ON s.id = v.story_id, q "
    f"  WHERE v.vector @@ q.tsq AND {SHOWN} "
    "  ORDER BY rank DESC, s.published DESC LIMIT :limit OFFSET :offset) "
    "SELECT found.id, found.slug, found.published, found.section, "
    f"ts_headline('english', found.title, q.tsq, 'StartSel={START}, StopSel={STOP}, "
    "HighlightAll=true'), "
    f"ts_headline('english', found.lede, q.tsq, 'StartSel={START}, StopSel={STOP}, "
    "MaxWords=40, MinWords=15, ShortWord=2') "
    "FROM found, q ORDER BY found.rank DESC, found.published DESC"
)


def _postgresql(connection: Connection, query: str, page: int, per_page: int) -> SearchResults:
    if not WORD.search(query):
        return SearchResults(query, (), 0)
    total = connection.execute(_POSTGRES_COUNT, {"q": query}).scalar_one()
    rows = connection.execute(
        _POSTGRES_PAGE, {"q": query, "limit": per_page, "offset": (page - 1) * per_page}
    )
    return SearchResults(query, tuple(_hit(*row, connection=connection) for row in rows), total)


def _hit(
    story_id: int,
    slug: str,
    published: object,
    section: str,
    title: str,
    snippet: str,
    *,
    connection: Connection,
) -> SearchHit:
    moment = _DATETIME.process_result_value(
        datetime.fromisoformat(published) if isinstance(published, str) else published,
        connection.dialect,
    )
    assert moment is not None
    return SearchHit(story_id, slug, moment, section, highlighted(title), highlighted(snippet))
