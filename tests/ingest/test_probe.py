"""Feed discovery from a page's <link rel="alternate">, and the JSON Feed format name."""

from __future__ import annotations

import pytest

from aggregator.ingest.parse import parse_feed
from aggregator.ingest.probe import feed_links, on_site
from aggregator.types import FetchResult, FetchStatus

PAGE = b"""<html><head><base href="/news/">
<link rel="alternate" type="application/feed+json" href="feed.json">
<link rel="Alternate stylesheet" type="text/css" href="x.css">
<link rel="alternate" type="application/atom+xml; charset=utf-8" href="atom.xml">
<link rel="alternate" type="application/rss+xml" href="https://cdn.example/rss.xml">
<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">
<link rel="alternate" type="text/html" hreflang="fr" href="/fr/">
</head></html>"""


def test_feed_links_are_absolute_http_and_rss_atom_come_before_json() -> None:
    assert feed_links(PAGE, "https://site.example/home") == [
        "https://cdn.example/rss.xml",
        "https://site.example/news/atom.xml",
        "https://site.example/news/feed.json",
    ]


def test_a_page_without_alternate_feeds_has_none() -> None:
    assert feed_links(b"<html><p>no feeds</p>", "http://site.example/") == []


def test_json_feed_format_names_its_version() -> None:
    body = b'{"version": "https://jsonfeed.org/version/1.1", "title": "J", "items": []}'
    result = FetchResult("j", "http://j.example/", FetchStatus.OK, 200, body)
    assert parse_feed(result, 10).format == "json1.1"


@pytest.mark.parametrize(
    ("url", "own"),
    [
        ("https://news.example/feed.atom", True),
        ("https://NEWS.example:443/section/world/feed.rss", True),
        ("https://news.example", True),
        ("http://news.example/feed.atom", False),  # another scheme, another port
        ("https://news.example:8443/feed.atom", False),
        ("https://other.example/feed.atom", False),
    ],
)
def test_on_site_is_the_sites_scheme_host_and_port(url: str, own: bool) -> None:
    assert on_site("https://news.example/", url) is own


def test_on_site_with_a_base_path_is_below_it_only() -> None:
    assert on_site("http://example.org/news", "http://example.org/news/feed.atom")
    assert not on_site("http://example.org/news", "http://example.org/newsroom/feed.atom")
    assert not on_site("http://example.org/news", "http://example.org/feed.atom")
