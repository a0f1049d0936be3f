"""Search gives the same answer on SQLite and PostgreSQL: one set of stories, ingested by the real
`caulbart fetch` from a feed served over loopback, and one list of queries whose ordered results
(read off the /search page) are written once and must hold on both databases."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape

import lxml.html
import pytest
import sqlalchemy
from sqlalchemy import Engine

from aggregator.storage.search_words import index_words
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from web import create_app
from web.search import parse_query, search_stories

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
# (headline, text), oldest first: each a day newer than the one before.
STORIES = [
    ("Café society returns to São Paulo", "Zoë Müller opened the first café on the square."),
    ("Paulo Sao meets the press", "A footballer named Paulo Sao spoke about the season."),
    (
        "Cafe prices climb",
        "In Sao Carlos, not Paulo, a coffee costs more; write to an e-mail desk.",
    ),
    ("Łódź museum reopens", "The Straße exhibit shows bbc.co.uk pages and a 3.14 metre model."),
    ("Glaciers retreat", "Glacier lakes grow, and the CAFÉ at the top of the pass closed."),
    ("Zoe Muller writes again", "Her column on markets AND near-term risk NEAR the border."),
    ("Market traders see a -3% day", 'Traders said "sell" at 9:30 and bought back by noon.'),
]
TITLES = [title for title, _ in STORIES]
CAFE_SOCIETY, PAULO_SAO, CAFE_PRICES, LODZ, GLACIERS, ZOE, MARKETS = TITLES

# Query -> the headlines found, in order. Headline matches first, then headline + lede, then the
# body; newest first within each.
EXPECTED = {
    # Phrases: words next to each other, in this order.
    '"sao paulo"': [CAFE_SOCIETY],
    '"paulo sao"': [PAULO_SAO],
    "sao paulo": [PAULO_SAO, CAFE_SOCIETY, CAFE_PRICES],
    '"SAO PAULO"': [CAFE_SOCIETY],
    '"paulo sao': [PAULO_SAO],  # an unclosed quote runs to the end
    # Accents and case folded both ways.
    "cafe": [CAFE_PRICES, CAFE_SOCIETY, GLACIERS],
    "café": [CAFE_PRICES, CAFE_SOCIETY, GLACIERS],
    "CAFÉ": [CAFE_PRICES, CAFE_SOCIETY, GLACIERS],
    "zoe muller": [ZOE, CAFE_SOCIETY],
    "Zoë Müller": [ZOE, CAFE_SOCIETY],
    "lodz": [LODZ],
    "Łódź": [LODZ],
    "strasse": [LODZ],
    "straße": [LODZ],
    # Prefixes: a trailing *.
    "glacier": [GLACIERS],
    "glacier*": [GLACIERS],
    "glaci*": [GLACIERS],
    "glaciers": [GLACIERS],
    '"sao pau"*': [CAFE_SOCIETY],
    "pau*": [PAULO_SAO, CAFE_SOCIETY, CAFE_PRICES],
    "mark*": [MARKETS, ZOE],
    # Words holding signs are their parts, side by side.
    "e-mail": [CAFE_PRICES],
    "mail": [CAFE_PRICES],
    "bbc.co.uk": [LODZ],
    "bbc": [LODZ],
    "3.14": [LODZ],
    "14": [LODZ],
    "9:30": [MARKETS],
    # No stemming on either database.
    "retreats": [],
    "glacie": [],
    # Query syntax of either database is plain words.
    "markets AND near": [ZOE],
    "NEAR": [ZOE],
    "near-term": [ZOE],
    "-3%": [MARKETS, LODZ],  # the 3 of 3.14 too
    "market -3": [MARKETS],
    '"sell"': [MARKETS],
    "a:b": [],
    "sao OR paulo": [],
    "*": [],
    '"': [],
    "!!! ??? ...": [],
    "NEAR( OR AND *": [],
    "'; DROP TABLE stories; --": [],
    "paulo " * 60: [PAULO_SAO, CAFE_SOCIETY, CAFE_PRICES],  # cut at 200 characters
    "x" * 500: [],
}


@pytest.fixture
def newsroom(caulbart: Caulbart, feed_server: FeedServer, engine: Engine) -> Engine:
    items = "".join(
        f"<item><title>{escape(title)}</title><link>https://news.example/{number}</link>"
        f"<guid>story-{number}</guid><pubDate>{format_datetime(NOW + timedelta(days=number))}"
        f"</pubDate><description>{escape(f'<p>{body}</p>')}</description></item>"
        for number, (title, body) in enumerate(STORIES)
    )
    url = feed_server.add("/news.rss", f'<rss version="2.0"><channel>{items}</channel></rss>')
    write_feeds_yaml(caulbart.config, [{"id": "news", "url": url}])
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    return engine


def test_the_same_queries_give_the_same_ordered_answers_on_both_databases(
    newsroom: Engine, caulbart: Caulbart
) -> None:
    app = create_app(newsroom, {"CAULBART_CONFIG": str(caulbart.config)})
    client = app.test_client()
    try:
        answers = {}
        for query in EXPECTED:
            response = client.get("/search", query_string={"q": query})
            assert response.status_code == 200, query
            page = lxml.html.fromstring(response.get_data(as_text=True))
            headlines = [
                " ".join(node.text_content().split())
                for node in page.xpath("//ol[@class='results']//h2")
            ]
            found = search_stories(newsroom, query, 1, 10)
            assert len(found.hits) == found.total == len(headlines), query
            answers[query] = headlines
    finally:
        app.extensions["caulbart.feeds"].close()
    assert answers == EXPECTED


def test_matches_are_marked_as_the_reader_typed_them_and_the_page_stays_escaped(
    newsroom: Engine, caulbart: Caulbart
) -> None:
    found = search_stories(newsroom, '"sao paulo" cafe', 1, 10)
    assert [str(hit.title) for hit in found.hits] == [
        "<mark>Café</mark> society returns to <mark>São</mark> <mark>Paulo</mark>"
    ]
    found = search_stories(newsroom, '"sell"', 1, 10)
    assert str(found.hits[0].snippet) == (
        "Traders said &#34;<mark>sell</mark>&#34; at 9:30 and bought back by noon."
    )
    assert [str(hit.title) for hit in search_stories(newsroom, "glaci*", 1, 10).hits] == [
        "<mark>Glaciers</mark> retreat"
    ]


def test_sqlites_folding_table_is_what_postgresql_folds(postgres: Engine) -> None:
    """Every character of the Latin, IPA, Greek and Cyrillic blocks and Latin-1's signs is read
    into the same words by PostgreSQL's index and by SQLite's (unicode61 over `index_words`)."""
    characters = [chr(c) for c in (*range(0xA0, 0x2B0), *range(0x370, 0x500))]
    characters = [c for c in characters if c.isprintable()]
    with postgres.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text(
                "SELECT c, (SELECT string_agg(word, ' ' ORDER BY word) FROM "
                "unnest(tsvector_to_array(to_tsvector('simple', caulbart_search_words(c)))) "
                "AS word) FROM unnest(CAST(:characters AS text[])) AS c"
            ),
            {"characters": characters},
        )
        on_postgresql = {c: words or "" for c, words in rows}
    index = sqlite3.connect(":memory:")
    index.execute("CREATE VIRTUAL TABLE t USING fts5(x, tokenize='unicode61 remove_diacritics 2')")
    index.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    index.executemany(
        "INSERT INTO t(rowid, x) VALUES (?, ?)",
        [(ord(c), index_words(c)) for c in characters],
    )
    on_sqlite: dict[str, list[str]] = {c: [] for c in characters}
    for row, word in index.execute("SELECT doc, term FROM v"):
        on_sqlite[chr(row)].append(word)
    differ = {
        c: (" ".join(sorted(on_sqlite[c])), on_postgresql[c])
        for c in characters
        if " ".join(sorted(on_sqlite[c])) != on_postgresql[c]
    }
    # Left as they are: letters whose lower case Unicode 6.1 (SQLite's tables) did not know yet,
    # and Greek letter variants unicode61 folds to the plain letter (ς σ, ϐ β, µ μ).
    assert set(differ) <= set("µϐϑϕϖϰϱϵςϏͿԨԪԬԮ"), json.dumps(differ, ensure_ascii=False)


def test_a_query_is_read_into_clauses_without_any_database_syntax() -> None:
    assert [(c.words, c.prefix) for c in parse_query('"sao pau"* e-mail NEAR(x) glaci*')] == [
        (("sao", "pau"), True),
        (("e", "mail"), False),
        (("NEAR", "x"), False),
        (("glaci",), True),
    ]
    assert parse_query("!!! * \" ' -") == []
