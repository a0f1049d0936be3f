"""Feed discovery from a page's <link rel="alternate">, and the JSON Feed format name."""

from __future__ import annotations

from aggregator.parse import parse_feed
from aggregator.probe import feed_links
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
