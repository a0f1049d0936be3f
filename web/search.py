"""Full-text search over stories, the same answer on SQLite (FTS5) and PostgreSQL (tsvector).

Both indexes are kept by the database (migrations 0007, 0022, 0023, 0030) and read words the
same way: case and accents folded, no stemming, split at every sign that is not a letter or
digit. A reader's query is read here, never by the database's own query syntax:

- words are all required; `"..."` asks for the words inside next to each other in that order, in
  one of headline, lede or body; a word (or a closing quote) followed by `*` is a prefix;
- a word holding signs (`e-mail`, `3.14`, `don't`) asks for its parts as a phrase; every other
  sign (`AND`, `NEAR`, `-`, `:` ...) is a plain word or a separator, so no query is an error.

Ranking, on both: stories whose headline alone holds the whole query, then those whose headline
and lede hold it, then the rest; newest first within each, then the higher id. Matches are marked
here, not by the database, so both show the same page.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.dialects import postgresql

from aggregator.storage.models import UTCDateTime
from aggregator.storage.search_words import index_words

MAX_QUERY = 200  # characters of a query looked at; longer ones are cut
MAX_WORDS = 16  # words of a query used
SNIPPET_WORDS = 40  # words of a lede shown around its first match
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


@dataclass(frozen=True)
class Clause:
    """Words that must stand next to each other in this order; the last one a prefix if asked."""

    words: tuple[str, ...]
    prefix: bool


def _is_word_character(character: str) -> bool:
    return unicodedata.category(character)[0] in "LNM"


def words_of(text: str) -> list[tuple[int, int]]:
    """(start, end) of each word of `text`: letters, digits and their marks."""
    spans, start = [], None
    for index, character in enumerate(text):
        if _is_word_character(character):
            if start is None:
                start = index
        elif start is not None:
            spans.append((start, index))
            start = None
    if start is not None:
        spans.append((start, len(text)))
    return [(a, b) for a, b in spans if any(c.isalnum() for c in text[a:b])]


def parse_query(query: str) -> list[Clause]:
    """The clauses of a reader's query (see the module's docstring), at most MAX_WORDS words."""
    chunks: list[tuple[str, bool]] = []
    rest = query[:MAX_QUERY]
    while rest.strip():
        rest = rest.lstrip()
        if rest[0] == '"':
            inside, _, rest = rest[1:].partition('"')
            chunks.append((inside, rest.startswith("*")))
        else:
            end = next((i for i, c in enumerate(rest) if c.isspace() or c == '"'), len(rest))
            inside, rest = rest[:end], rest[end:]
            chunks.append((inside, inside.endswith("*")))
    clauses: list[Clause] = []
    budget = MAX_WORDS
    for chunk, prefix in chunks:
        folded = index_words(chunk)
        words = tuple(folded[a:b] for a, b in words_of(folded))[:budget]
        if words:
            clauses.append(Clause(words, prefix))
            budget -= len(words)
    return clauses


def search_stories(engine: Engine, query: str, page: int, per_page: int) -> SearchResults:
    """Published stories (not withdrawn, not held in review) matching `query`, best first,
    one page of them."""
    query = query.strip()[:MAX_QUERY]
    clauses = parse_query(query)
    if not clauses:
        return SearchResults(query, (), 0)
    with engine.connect() as connection:
        found: Rows | None
        if connection.dialect.name == "sqlite":
            found = _sqlite(connection, clauses, page, per_page)
        else:
            found = _postgresql(connection, clauses, page, per_page)
        if found is None:
            return SearchResults(query, (), 0)
        total, rows = found
        keys = [[_key(word) for word in clause.words] for clause in clauses]
        hits = tuple(_hit(*row, keys=keys, clauses=clauses, connection=connection) for row in rows)
    return SearchResults(query, hits, total)


# Readers' stories: not withdrawn, and not held or rejected in review (aggregator.stories.review).
SHOWN = "s.withdrawn_at IS NULL AND (s.review IS NULL OR s.review = 'approved')"
ORDER = "ORDER BY tier, s.published DESC, s.id DESC LIMIT :limit OFFSET :offset"
Rows = tuple[int, list[Any]]


def fts5_query(clauses: list[Clause]) -> str:
    """The clauses as FTS5 strings, all required: words are quoted (they hold no quote), so no
    FTS5 syntax gets through."""
    return " AND ".join(
        '"' + " ".join(clause.words) + '"' + (" *" if clause.prefix else "") for clause in clauses
    )


_SQLITE_COUNT = text(
    "SELECT count(*) FROM stories_fts JOIN stories s ON s.id = stories_fts.rowid "
    f"WHERE stories_fts MATCH :q AND {SHOWN}"
)
_SQLITE_PAGE = text(
    "SELECT s.id, s.slug, s.published, s.section, s.title, s.lede, "
    "CASE WHEN s.id IN (SELECT rowid FROM stories_fts WHERE stories_fts MATCH :headline) THEN 0 "
    "WHEN s.id IN (SELECT rowid FROM stories_fts WHERE stories_fts MATCH :upper) THEN 1 "
    "ELSE 2 END AS tier "
    "FROM stories_fts JOIN stories s ON s.id = stories_fts.rowid "
    f"WHERE stories_fts MATCH :q AND {SHOWN} {ORDER}"
)


def _sqlite(connection: Connection, clauses: list[Clause], page: int, per_page: int) -> Rows:
    match = fts5_query(clauses)
    total = connection.execute(_SQLITE_COUNT, {"q": match}).scalar_one()
    rows = connection.execute(
        _SQLITE_PAGE,
        {
            "q": match,
            "headline": f"{{title}} : ({match})",
            "upper": f"{{title lede}} : ({match})",
            "limit": per_page,
            "offset": (page - 1) * per_page,
        },
    )
    return total, [tuple(row)[:6] for row in rows]


# The lexemes PostgreSQL's index makes of each clause's words (migration 0030's folding).
_POSTGRES_LEXEMES = text(
    "SELECT c.n, d.lexemes[1] FROM unnest(:clauses) WITH ORDINALITY AS c(words, n), "
    "LATERAL ts_debug('simple', caulbart_search_words(c.words)) WITH ORDINALITY "
    "AS d(alias, description, token, dictionaries, dictionary, lexemes, k) "
    "WHERE cardinality(d.lexemes) > 0 ORDER BY c.n, d.k"
).bindparams(bindparam("clauses", type_=postgresql.ARRAY(postgresql.TEXT)))
_POSTGRES_COUNT = text(
    "SELECT count(*) FROM story_search v JOIN stories s ON s.id = v.story_id "
    f"WHERE v.vector @@ CAST(:q AS tsquery) AND {SHOWN}"
)
_POSTGRES_PAGE = text(
    "SELECT s.id, s.slug, s.published, s.section, s.title, s.lede, "
    "CASE WHEN v.vector @@ CAST(:headline AS tsquery) THEN 0 "
    "WHEN v.vector @@ CAST(:upper AS tsquery) THEN 1 ELSE 2 END AS tier "
    "FROM story_search v JOIN stories s ON s.id = v.story_id "
    f"WHERE v.vector @@ CAST(:q AS tsquery) AND {SHOWN} {ORDER}"
)


def tsquery(clauses: list[tuple[list[str], bool]], weights: str) -> str:
    """The clauses as a tsquery over the fields `weights` (A headline, B lede, C body): a phrase
    must stand within one field (the vector's fields follow each other), a single word in any."""
    parts = []
    for lexemes, prefix in clauses:
        quoted = ["'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'" for lexeme in lexemes]
        star = "*" if prefix else ""
        if len(quoted) == 1:
            parts.append(f"{quoted[0]}:{star}{weights}")
            continue
        alternatives = []
        for weight in weights:
            marked = [f"{word}:{weight}" for word in quoted[:-1]] + [f"{quoted[-1]}:{star}{weight}"]
            alternatives.append("(" + " <-> ".join(marked) + ")")
        parts.append("(" + " | ".join(alternatives) + ")")
    return " & ".join(parts)


def _postgresql(
    connection: Connection, clauses: list[Clause], page: int, per_page: int
) -> Rows | None:
    lexemes: dict[int, list[str]] = {}
    for number, lexeme in connection.execute(
        _POSTGRES_LEXEMES, {"clauses": [" ".join(clause.words) for clause in clauses]}
    ):
        lexemes.setdefault(number, []).append(lexeme)
    read = [(lexemes[n], clauses[n - 1].prefix) for n in sorted(lexemes)]
    if not read:
        return None
    match = tsquery(read, "ABC")
    total = connection.execute(_POSTGRES_COUNT, {"q": match}).scalar_one()
    rows = connection.execute(
        _POSTGRES_PAGE,
        {
            "q": match,
            "headline": tsquery(read, "A"),
            "upper": tsquery(read, "AB"),
            "limit": per_page,
            "offset": (page - 1) * per_page,
        },
    )
    return total, [tuple(row)[:6] for row in rows]


# --- marking the matches ----------------------------------------------------------------------


def _key(word: str) -> str:
    """A word as both indexes compare it: folded as they fold, lower case, accents removed."""
    decomposed = unicodedata.normalize("NFD", index_words(word).lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c) and not c.isspace())


def _marked_words(words: list[str], keys: list[list[str]], clauses: list[Clause]) -> set[int]:
    """Indexes of the words that match a clause (a phrase: each of its words, in a run)."""
    marked: set[int] = set()
    for clause_keys, clause in zip(keys, clauses, strict=True):
        size = len(clause_keys)
        for start in range(len(words) - size + 1):
            window = words[start : start + size]
            same = window[:-1] == clause_keys[:-1]
            last = (
                window[-1].startswith(clause_keys[-1])
                if clause.prefix
                else window[-1] == clause_keys[-1]
            )
            if same and last:
                marked.update(range(start, start + size))
    return marked


def highlighted(
    text_: str, keys: list[list[str]], clauses: list[Clause], limit: int | None = None
) -> Markup:
    """`text_` escaped, its matching words in <mark>; with `limit`, at most that many words
    around the first match, an ellipsis where the text was cut."""
    spans = words_of(text_)
    marked = _marked_words([_key(text_[a:b]) for a, b in spans], keys, clauses)
    first, last = 0, len(spans)
    if limit is not None and len(spans) > limit:
        first = max(0, min(min(marked, default=0) - limit // 4, len(spans) - limit))
        last = first + limit
    begin = spans[first][0] if first else 0
    end = spans[last - 1][1] if last < len(spans) else len(text_)
    out, at = [], begin
    for index in range(first, last):
        a, b = spans[index]
        if index in marked:
            out.append(f"{escape(text_[at:a])}<mark>{escape(text_[a:b])}</mark>")
            at = b
    out.append(str(escape(text_[at:end])))
    return Markup(("…" if first else "") + "".join(out) + ("…" if last < len(spans) else ""))


def _hit(
    story_id: int,
    slug: str,
    published: object,
    section: str,
    title: str,
    lede: str | None,
    *,
    keys: list[list[str]],
    clauses: list[Clause],
    connection: Connection,
) -> SearchHit:
    moment = _DATETIME.process_result_value(
        datetime.fromisoformat(published) if isinstance(published, str) else published,
        connection.dialect,
    )
    assert moment is not None
    return SearchHit(
        story_id,
        slug,
        moment,
        section,
        highlighted(title, keys, clauses),
        highlighted(lede or "", keys, clauses, SNIPPET_WORDS),
    )
