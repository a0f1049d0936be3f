"""Every real-world feed of ../shared/corpus/feeds/real goes through fetch -> parse -> normalise.

One HTTP server and one Fetcher serve the whole module, so ~370 files take seconds, not minutes.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.ingest.fetch import Fetcher, FetchRequest, user_agent
from aggregator.ingest.normalise import normalise_entry
from aggregator.ingest.parse import parse_feed
from aggregator.types import Defaults, FetchStatus, Item, ParsedFeed
from tests.conftest import CORPUS, FeedServer, corpus_path
from tests.safety import HEADLINE_MARKUP

REAL = CORPUS / "feeds" / "real"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
FILES = sorted(p.relative_to(REAL).as_posix() for p in REAL.rglob("*") if p.is_file()) or [
    "(corpus missing)"
]

# The files that are not feeds, each with why. Everything else must parse.
NOT_FEEDS = {
    "feedjira/AmazonWebServicesBlogFirstEntryContent.xml": "an HTML fragment (one entry's body)",
    "feedjira/HREFConsideredHarmfulFirstEntry.xml": "an HTML fragment (one entry's body)",
    "feedjira/PaulDixExplainsNothingFirstEntryContent.xml": "an HTML fragment",
    "feedjira/TechCrunchFirstEntry.xml": "an HTML fragment",
    "feedjira/TechCrunchFirstEntryDescription.xml": "an HTML fragment",
    "feedjira/TenderLovemakingFirstEntry.xml": "an HTML fragment",
    "feedjira-2009/JoomlapoweredSite.xml": "an HTML page",
    "feedjira-2009/SFRubyorgHome.xml": "an HTML page",
    "feedjira-2009/scRUBYt.xml": "an HTML page",
    "feedjira-2009/titleunknown.xml": "an HTML login page",
    "feedjira-2009/google-reader-subscriptions.xml": "an OPML export",
    "node-feedparser/notafeed.html": "an HTML page",
    "rss-parser/unrecognized.rss": "an HTML 'Document Moved' page",
    "rsparser/Subs.opml": "an OPML export",
    "rsparser/SubsNoTitleAttributes.opml": "an OPML export",
    "rsparser/ScriptingNews.json": "RSS translated to JSON, not JSON Feed",
    "rsparser/allthis-partial.json": "a JSON Feed cut off mid-string",
}
CONTENT_TYPES = {
    ".json": "application/feed+json",
    ".html": "text/html; charset=utf-8",
    ".opml": "text/x-opml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".rss": "application/rss+xml",
}
GZIP_MAGIC = b"\x1f\x8b"


@pytest.fixture(scope="module")
def corpus_server() -> Iterator[FeedServer]:
    """Every file of the corpus at /<its path>, served as a publisher would serve it."""
    server = FeedServer()
    if REAL.is_dir():
        for name in FILES:
            body = (REAL / name).read_bytes()
            content_type = CONTENT_TYPES.get(Path(name).suffix, "application/xml")
            # Two files are gzip-compressed bodies as they came off the wire: say so, as a
            # server would, rather than hand the parser compressed bytes.
            headers = {"Content-Encoding": "gzip"} if body.startswith(GZIP_MAGIC) else {}
            server.add(f"/{name}", body, content_type=content_type, headers=headers)
    yield server
    server.close()


@pytest.fixture(scope="module")
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(Defaults(), user_agent("http://caulbart.test")) as shared:
        yield shared


def _manifest_entries() -> dict[str, int]:
    """Entry counts another tool (feedparser, run by the corpus's curator) found in each file."""
    manifest = CORPUS / "feeds" / "MANIFEST.tsv"
    if not manifest.exists():
        return {}
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return {r["file"].removeprefix("feeds/real/"): int(r["entries"] or 0) for r in rows}


MANIFEST_ENTRIES = _manifest_entries()


def ingest(server: FeedServer, fetcher: Fetcher, name: str) -> tuple[ParsedFeed, list[Item]]:
    result = fetcher.fetch(FetchRequest("corpus", server.url(f"/{name}")))
    assert result.status is FetchStatus.OK, result.error
    feed = parse_feed(result, Defaults().max_entries)
    items = [i for e in feed.entries if (i := normalise_entry(e, now=NOW)) is not None]
    return feed, items


def _expected_count(name: str) -> int:
    """How many entries the file holds: the manifest's count, or for JSON Feed its items, or
    for a gzipped body the <item>s once decompressed (the manifest read compressed bytes)."""
    body = (REAL / name).read_bytes()
    if name.endswith(".json"):
        return len(json.loads(body, strict=False)["items"])
    if body.startswith(GZIP_MAGIC):
        return gzip.decompress(body).count(b"<item>")
    return MANIFEST_ENTRIES[name]


@pytest.mark.parametrize("name", FILES)
def test_real_feed_is_fetched_parsed_and_normalised(
    corpus_server: FeedServer, fetcher: Fetcher, name: str
) -> None:
    corpus_path("feeds", "real", name)

    if name in NOT_FEEDS:
        with pytest.raises(ParseError, match="not a feed"):
            ingest(corpus_server, fetcher, name)
        return
    feed, items = ingest(corpus_server, fetcher, name)

    expected = _expected_count(name)
    max_entries = Defaults().max_entries
    assert len(feed.entries) == min(expected, max_entries)
    assert feed.truncated_from == (expected if expected > max_entries else None)
    for item in items:
        # A headline is text ("#include </etc/shadow>" is a real one): no markup, brackets kept.
        # JSON Feed titles are plain text by the spec: "Die Rückkehr von <i> und <b>" is one.
        assert item.title
        assert name.endswith(".json") or not HEADLINE_MARKUP.search(item.title), item.title
        assert item.link is None or item.link.startswith(("http://", "https://"))
        assert item.guid and len(item.guid) <= 1024
        assert item.published.tzinfo is not None and item.published.utcoffset() == timedelta(0)
        assert item.published <= item.updated <= NOW + timedelta(minutes=10)
        assert "<script" not in item.body_html.lower()


def test_not_feeds_are_all_in_the_corpus() -> None:
    corpus_path("feeds", "real")
    assert set(NOT_FEEDS) <= set(FILES)


# --- spot checks of normalised values -------------------------------------------------------


def test_wire_story_is_normalised(corpus_server: FeedServer, fetcher: Fetcher) -> None:
    corpus_path("feeds", "real")
    _, items = ingest(corpus_server, fetcher, "wire/huffpost-worldnews-2019.rss")
    first = items[0]
    assert first.title == (
        "Thousands Of Protesters Demand Civilian Rule In Sudan, Soldiers Fire Shots In Air"
    )
    assert (
        first.link
        == first.guid
        == (
            "https://www.huffpost.com/entry/thousands-protesters-sudan-soldiers-fire-shots_n_"
            "5d19134de4b03d61163d842f"
        )
    )
    assert first.published == datetime(2019, 6, 30, 20, 9, 58, tzinfo=UTC)
    assert first.lede == (
        "Tens of thousands of protesters marched Sunday toward Sudan's defense ministry to "
        "demand the ruling military force hand power over to civilians."
    )
    assert first.image_url is not None
    assert first.image_url.startswith(
        "https://img.huffingtonpost.com/asset/5d1915be2400005f00faa061"
    )


def test_dw_rdf_story_is_normalised(corpus_server: FeedServer, fetcher: Fetcher) -> None:
    corpus_path("feeds", "real")
    _, items = ingest(corpus_server, fetcher, "fastfeedparser-2026/14dda539770f94e3.rdf")
    first = items[0]
    assert first.title == "France arrests nine in right-wing activist's death"
    # The "?maca=" campaign parameter is DW's own and stays; the fragment-free link is the guid.
    assert first.guid == first.link
    assert first.published == datetime(2026, 2, 18, 0, 15, tzinfo=UTC)
    assert first.lede.startswith("Far-right activist Quentin Deranque was killed last week")


def test_gzipped_windows_1251_feed_is_decoded(corpus_server: FeedServer, fetcher: Fetcher) -> None:
    corpus_path("feeds", "real")
    _, plain = ingest(corpus_server, fetcher, "node-feedparser/iconv.xml")
    _, gzipped = ingest(corpus_server, fetcher, "node-feedparser/compressed.xml")
    assert (
        gzipped[0].title
        == plain[0].title
        == ("В Бузулуке главные стройплощадки – детсад и Ледовый дворец")
    )
    assert gzipped[0].image_url == "http://www.oren.ru/upload/iblock/be8/stroitelstvo_krany.jpg"


def test_relative_atom_links_resolve_against_the_fetched_url(
    corpus_server: FeedServer, fetcher: Fetcher
) -> None:
    corpus_path("feeds", "real")
    _, items = ingest(corpus_server, fetcher, "feedjira/SamRuby.xml")
    assert items[0].link == corpus_server.url("/blog/2013/01/30/Plex")
    assert items[0].guid == "tag:intertwingly.net,2004:3308"


def test_json_feed_story_is_normalised(corpus_server: FeedServer, fetcher: Fetcher) -> None:
    corpus_path("feeds", "real")
    _, items = ingest(corpus_server, fetcher, "feedjira/json_feed.json")
    assert len(items) == 20
    first = items[0]
    assert first.title == "James Dempsey and the Breakpoints Benefit App Camp for Girls"
    assert first.author == "Brent Simmons"
    assert first.published == datetime(2017, 6, 3, 5, 5, 47, tzinfo=UTC)
    assert first.body_html and "<script" not in first.body_html
