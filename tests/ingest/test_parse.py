"""parse.py on real feed files: the values feedparser (or our JSON Feed reader) finds in them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aggregator.errors import ParseError
from aggregator.ingest.parse import feed_refresh_hint, parse_feed
from aggregator.types import FetchResult, FetchStatus, ParsedFeed
from tests.conftest import FeedServer, corpus_path

FEED_URL = "http://feeds.test/feed.xml"


def fetched(body: bytes, content_type: str | None = None, url: str = FEED_URL) -> FetchResult:
    headers = (("Content-Type", content_type),) if content_type else ()
    return FetchResult("src", url, FetchStatus.OK, http_status=200, body=body, headers=headers)


def parse_file(*parts: str, max_entries: int = 1000, content_type: str | None = None) -> ParsedFeed:
    body = corpus_path("feeds", "real", *parts).read_bytes()
    return parse_feed(fetched(body, content_type), max_entries)


def at(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- formats --------------------------------------------------------------------------------


def test_rss2_wire_feed_entries_have_titles_links_guids_and_utc_dates() -> None:
    feed = parse_file("wire", "reuters-worldnews-2018-01-30.rss")

    assert (feed.title, feed.link, feed.language) == (
        "Reuters: World News",
        "http://www.reuters.com",
        "en-us",
    )
    assert len(feed.entries) == 10
    first = feed.entries[0]
    assert first.title == "U.S. general says North Korea not demonstrated all components of ICBM"
    assert first.link == (
        "http://feeds.reuters.com/~r/Reuters/worldNews/~3/c3wXZD4kLB8/"
        "u-s-general-says-north-korea-not-demonstrated-all-components-of-icbm-idUSKBN1FJ23Z"
    )
    assert first.id == (
        "http://www.reuters.com/article/us-northkorea-missiles-usa/u-s-general-says-north-korea-"
        "not-demonstrated-all-components-of-icbm-idUSKBN1FJ23Z?feedType=RSS&feedName=worldNews"
    )
    # <pubDate>Tue, 30 Jan 2018 12:29:57 -0500</pubDate>
    assert first.published == at(2018, 1, 30, 17, 29, 57)
    assert first.updated is None
    assert first.categories == ("worldNews",)
    assert first.summary is not None and first.summary.startswith(
        "WASHINGTON (Reuters) - North Korea's nuclear program has made strides"
    )
    assert first.base == FEED_URL
    assert (
        feed.entries[1].title == "Publication of Russia 'oligarch list' may affect investors: group"
    )


def test_rdf_rss1_feed_from_dw_is_read_with_dc_dates() -> None:
    feed = parse_file("fastfeedparser-2026", "14dda539770f94e3.rdf")

    assert feed.title == "Deutsche Welle"
    assert len(feed.entries) == 141
    first = feed.entries[0]
    assert first.title == "France arrests nine in right-wing activist's death"  # &apos; decoded
    assert first.link == (
        "https://www.dw.com/en/france-arrests-nine-in-right-wing-activist-s-death/a-75995188"
        "?maca=en-rss-en-all-1573-rdf"
    )
    assert first.summary == (
        "Far-right activist Quentin Deranque was killed last week, seemingly in a clash with the "
        "far left."
    )
    # <dc:date>2026-02-18T00:15:00Z</dc:date> is the only date an RSS 1.0 item has.
    assert first.updated == at(2026, 2, 18, 0, 15)
    assert first.categories == ("News",)
    # <sy:updatePeriod>hourly</sy:updatePeriod> (its frequency element is misspelt, so 1).
    assert feed.refresh_hint == 3600


def test_atom_feed_entries_have_author_published_and_updated() -> None:
    feed = parse_file("feedjira", "FeedjiraBlog.xml")

    assert (feed.title, feed.link) == ("Feedjira Blog", "http://feedjira.com/blog")
    [entry] = feed.entries
    assert entry.title == "Feedjira Goes One-Point-Oh"
    assert entry.link == "http://feedjira.com/blog/2014/03/17/feedjira-goes-one-point-oh.html"
    assert entry.id == entry.link
    assert entry.author == "Jon Allured"
    assert entry.published == at(2014, 3, 17)
    assert entry.updated == at(2014, 3, 17, 13, 2, 45)


def test_atom_relative_links_are_kept_with_the_fetched_url_as_base() -> None:
    feed = parse_file("feedjira", "SamRuby.xml")

    first = feed.entries[0]
    assert (first.title, first.id) == ("Plex", "tag:intertwingly.net,2004:3308")
    # Resolved by normalise against `base`, the URL the document was fetched from.
    assert first.link == "/blog/2013/01/30/Plex"
    assert first.base == FEED_URL
    assert first.summary is not None and "Scott Hanselman" in first.summary
    # Ill-formed (text before the XML declaration), read anyway, and said so.
    assert feed.warning is not None and "SAXParseException" in feed.warning


def test_json_feed_items_are_read() -> None:
    feed = parse_file("fastfeedparser-integration", "json_feed_sample.json")

    assert (feed.title, feed.link, feed.language) == (
        "Example JSON Feed",
        "https://example.org/",
        "en-US",
    )
    first, second = feed.entries
    assert first.id == first.link == "https://example.org/item1"
    assert first.title == "First JSON Feed Item"
    assert first.title_is_html is False
    assert first.content == "<p>This is the first item in our JSON feed.</p>"
    assert first.summary == "<p>First item summary</p>"
    assert first.published == at(2024, 1, 15, 12)
    assert first.updated == at(2024, 1, 15, 13)
    assert first.author == "Jane Smith"
    assert first.categories == ("test", "json", "feed")
    assert first.image_url == "https://example.org/item1.jpg"
    assert first.language == "en-US"
    # content_text is plain text: kept as text inside a paragraph, never read as markup.
    assert second.content == "<p>This is plain text content for the second item.</p>"
    assert second.author == "John Doe"  # the feed's author when the item names none
    assert second.image_url is None


def test_json_feed_authors_come_before_the_legacy_author() -> None:
    feed = parse_file("rsparser", "authors.json")
    assert [(e.id, e.author) for e in feed.entries] == [
        ("Item without authors", "Root Author 1"),
        ("Item with legacy author", "Legacy Item Author"),
        ("Item with modern authors", "Item Author 1"),
        ("Item with both", "Item Author 1"),
    ]


def test_json_feed_dates_with_offsets_become_utc() -> None:
    feed = parse_file("rsparser", "jsonfeed-extension.json")
    # "date_published": "2021-03-05T13:04:04+02:00"; its attachment is a zip, not an image.
    assert (feed.entries[0].id, feed.entries[0].published) == ("2", at(2021, 3, 5, 11, 4, 4))
    assert feed.entries[0].image_url is None


def test_json_feed_text_with_markup_is_escaped() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "t",
            "items": [
                {"id": 7, "content_text": "a <script>x</script>\n\nsecond", "summary": "<b>"}
            ],
        }
    ).encode()
    [entry] = parse_feed(fetched(body, "text/plain"), 10).entries
    assert entry.id == "7"
    assert entry.content == "<p>a &lt;script&gt;x&lt;/script&gt;</p><p>second</p>"
    assert entry.summary == "<p>&lt;b&gt;</p>"


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        (("rsparser", "ScriptingNews.json"), "without a jsonfeed.org version"),
        (("rsparser", "allthis-partial.json"), "invalid JSON"),
    ],
)
def test_json_that_is_not_a_json_feed_is_a_parse_error(parts: tuple[str, str], reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_file(*parts)


# --- encodings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("parts", "title"),
    [
        (("rss-parser", "latin2.rss"), "ZAŻÓŁĆ GĘSLĄ JAŹŃ"),  # ISO-8859-2
        (
            ("node-feedparser", "iconv.xml"),  # windows-1251
            "В Бузулуке главные стройплощадки – детсад и Ледовый дворец",
        ),
        (("rss-parser", "encoding-gb2312.xml"), "拟298亿元重组盛大游戏后 世纪华通发20亿回购预案"),
        (
            ("rss-parser", "uolNoticias.rss"),  # no declaration, windows-1252 bytes
            "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno",
        ),
    ],
)
def test_non_utf8_feeds_are_decoded(parts: tuple[str, str], title: str) -> None:
    feed = parse_file(*parts)
    assert feed.entries[0].title == title


def test_feed_declared_utf8_but_written_in_windows_1252_is_decoded_as_1252() -> None:
    feed = parse_file("feedjira-2009", "IanLandsmansWeblogv20.xml")

    assert feed.warning is not None and "declared as utf-8" in feed.warning
    [entry] = [e for e in feed.entries if e.title == "Advice for Peldi"]
    text = (entry.content or "") + (entry.summary or "")
    # The byte 0x92 is windows-1252's right single quote.
    assert "I don\u2019t really feel like" in text
    assert "\ufffd" not in text


def test_feed_declared_utf16_but_written_in_utf8_is_read() -> None:
    feed = parse_file("fastfeedparser-integration", "utf16_encoded.xml")
    assert feed.title == "UTF-16 Encoded Feed"
    assert [e.title for e in feed.entries] == ["UTF-16 Entry 1"]


def test_charset_from_the_response_header_is_honoured() -> None:
    body = corpus_path("feeds", "real", "rss-parser", "latin2.rss").read_bytes()
    undeclared = body.replace(b'<?xml version="1.0" encoding="ISO-8859-2"?>', b"", 1)
    assert undeclared != body

    with_header = parse_feed(fetched(undeclared, "application/rss+xml; charset=ISO-8859-2"), 10)
    without = parse_feed(fetched(undeclared, "application/rss+xml"), 10)

    assert with_header.entries[0].title == "ZAŻÓŁĆ GĘSLĄ JAŹŃ"
    assert without.entries[0].title != "ZAŻÓŁĆ GĘSLĄ JAŹŃ"


# --- not feeds ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parts",
    [("node-feedparser", "notafeed.html"), ("feedjira-2009", "titleunknown.xml")],
)
def test_html_page_is_a_parse_error(parts: tuple[str, str]) -> None:
    with pytest.raises(ParseError, match="not a feed"):
        parse_file(*parts, content_type="text/html; charset=utf-8")


def test_empty_body_is_a_parse_error() -> None:
    with pytest.raises(ParseError, match="0 bytes"):
        parse_feed(fetched(b""), 10)


def test_body_naming_a_file_is_not_opened() -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(fetched(b"/etc/passwd"), 10)
    assert "11 bytes" in str(caught.value)  # the 11 bytes given, not the file they name
    assert "root:" not in str(caught.value)


def test_body_naming_a_feed_file_does_not_read_that_feed(tmp_path: Path) -> None:
    # If the parser opened the path it was given, this would parse as a one-entry feed.
    feed_file = tmp_path / "feed.xml"
    feed_file.write_bytes(corpus_path("feeds", "real", "rss-parser", "latin2.rss").read_bytes())
    for body in (str(feed_file).encode(), f"file://{feed_file}".encode()):
        with pytest.raises(ParseError):
            parse_feed(fetched(body), 10)


def test_body_naming_a_url_is_not_fetched(feed_server: FeedServer) -> None:
    url = feed_server.add_file(
        "/feed.xml", corpus_path("feeds", "real", "rss-parser", "latin2.rss")
    )
    with pytest.raises(ParseError):
        parse_feed(fetched(url.encode()), 10)
    assert feed_server.requests["/feed.xml"] == 0


def test_external_entities_are_not_resolved(feed_server: FeedServer) -> None:
    target = feed_server.add("/secret", b"SECRET-FROM-SERVER", content_type="text/plain")
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY f SYSTEM "file:///etc/passwd">'
        f'<!ENTITY h SYSTEM "{target}">]><rss version="2.0"><channel><title>t</title>'
        f"<item><title>a &f; b &h; c</title><description>&f;&h;</description></item>"
        f"</channel></rss>"
    ).encode()

    [entry] = parse_feed(fetched(body), 10).entries

    seen = f"{entry.title} {entry.summary}"
    assert "root:" not in seen and "SECRET" not in seen
    assert feed_server.requests["/secret"] == 0


# --- limits and media -----------------------------------------------------------------------


def test_entries_beyond_max_entries_are_dropped_and_reported() -> None:
    full = parse_file("fastfeedparser-2026", "14dda539770f94e3.rdf")
    window = parse_file("fastfeedparser-2026", "14dda539770f94e3.rdf", max_entries=10)

    assert full.truncated_from is None
    assert window.truncated_from == 141
    assert window.entries == full.entries[:10]


def test_json_feed_entries_beyond_max_entries_are_reported() -> None:
    window = parse_file("feedjira", "json_feed.json", max_entries=5)
    assert (len(window.entries), window.truncated_from) == (5, 20)


def test_media_content_image_and_media_credit_are_picked_up() -> None:
    first = parse_file("feedjira", "HuffPostCanada.xml").entries[0]
    assert first.image_url == (
        "http://o.aolcdn.com/hss/storage/midas/b1726dd5e5cde1fb967d92d963537957/205775479/"
        "Untitled+design+%2857%29.png"
    )
    assert first.image_credit == "Dakota Collegiate/Twitter"


def test_media_credit_beside_thumbnail_content_and_enclosure() -> None:
    [entry] = parse_file("node-feedparser", "mediacontent-dupes.xml").entries
    assert entry.image_url == (
        "http://i.mol.im/i/pix/2013/02/03/article-2272640-174FCEE2000005DC-697_154x115.jpg"
    )
    assert entry.image_credit == "© Bettmann/CORBIS"


def test_media_thumbnail_alone_gives_the_image() -> None:
    first = parse_file("feedjira", "youtube_atom.xml").entries[0]
    assert first.image_url == "https://i2.ytimg.com/vi/5shykyfmb28/hqdefault.jpg"


def test_image_enclosure_gives_the_image() -> None:
    [entry] = parse_file("rss-parser", "latin2.rss").entries
    assert entry.image_url == "http://www.example.pl/image.jpg"
    assert entry.author == "Adam Gżegżółka"


def test_audio_enclosure_is_not_an_image() -> None:
    feed = parse_file("feedjira", "CRE.xml")
    assert feed.entries and all(e.image_url is None for e in feed.entries)


@pytest.mark.parametrize(
    ("ttl", "period", "frequency", "seconds"),
    [
        ("30", None, None, 1800),
        (None, "daily", "4", 21600),
        ("60", "hourly", None, 3600),
        ("soon", "fortnightly", None, None),
    ],
)
def test_feed_refresh_hint(
    ttl: str | None, period: str | None, frequency: str | None, seconds: int | None
) -> None:
    assert feed_refresh_hint(ttl, period, frequency) == seconds
