"""aggregator.publishing.links: where a feed document sits among its pages and archives."""

from __future__ import annotations

from aggregator.publishing import links
from aggregator.publishing.scope import FeedQuery
from tests.publishing.values import SITE, page_of


def test_pages_link_next_previous_and_the_newest_archive() -> None:
    query = FeedQuery("tag", "berlin")
    first = links.feed_links(SITE, query, "rss", page_of(pages=3, archives=2))
    assert first.self_url == "https://news.example/tag/berlin/feed.rss"
    assert first.next == "https://news.example/tag/berlin/feed.rss?page=2"
    assert first.previous is None
    assert first.prev_archive == "https://news.example/tag/berlin/feed.rss?archive=2"
    last = links.feed_links(SITE, query, "rss", page_of(page=3, pages=3, archives=2))
    assert last.next is None and last.prev_archive is None
    assert last.previous == "https://news.example/tag/berlin/feed.rss?page=2"
