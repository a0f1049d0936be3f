"""The full-text log line of `caulbart fetch` counts what happened to each article page: pages
refused for their address are not counted as fetched, and the counts add up to those tried."""

from __future__ import annotations

import logging
import re

import pytest
from click.testing import CliRunner

from aggregator.cli import main
from tests.article_pages import Article
from tests.conftest import Caulbart, FeedServer
from tests.e2e.test_fulltext_cli import Link, articles, configure, feed, serve_articles

__all__ = ["articles"]  # the fixture, shared with the full-text tests

COUNTS = re.compile(r"full_text tried=(\d+) cached=(\d+) refused=(\d+) robots=(\d+) fetched=(\d+)")


def full_text_counts(
    caulbart: Caulbart, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> dict[str, int]:
    monkeypatch.setenv("CAULBART_DATABASE_URL", caulbart.database_url)
    monkeypatch.setenv("CAULBART_PREPARE_PROCESSES", "0")
    caplog.set_level(logging.INFO, logger="aggregator.ingest.fulltext")
    result = CliRunner().invoke(main, ["--config", str(caulbart.config), "fetch", "--all"])
    assert result.exit_code == 0, result.output
    lines = [r.getMessage() for r in caplog.records if "full_text tried=" in r.getMessage()]
    assert len(lines) == 1, lines
    found = COUNTS.search(lines[0])
    assert found, lines[0]
    names = ("tried", "cached", "refused", "robots", "fetched")
    return dict(zip(names, map(int, found.groups()), strict=True))


def test_pages_refused_for_their_address_are_not_counted_as_fetched(
    caulbart: Caulbart,
    feed_server: FeedServer,
    articles: list[Article],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A public-only source (`full_text: true`) whose articles are on loopback: all 3 refused
    before any request."""
    links = [link for _, _, link in serve_articles(feed_server, articles[:3])]
    configure(caulbart, feed(feed_server, links), True)

    counts = full_text_counts(caulbart, monkeypatch, caplog)

    assert counts == {"tried": 3, "cached": 0, "refused": 3, "robots": 0, "fetched": 0}
    assert all(feed_server.requests.get(link.path, 0) == 0 for link in links)


def test_pages_whose_redirect_is_refused_are_counted_as_refused(
    caulbart: Caulbart,
    feed_server: FeedServer,
    articles: list[Article],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Articles at the feed's own (allowed) host that redirect to another private service: the
    three pages are refused at their redirect, and none is counted as fetched."""
    elsewhere = FeedServer()
    try:
        served = serve_articles(elsewhere, articles[:3])
        links = []
        for n, (_, _, page) in enumerate(served):
            feed_server.add(f"/story/{n}", status=302, location=elsewhere.url(page.path))
            links.append(Link(f"/story/{n}", page.title, page.summary))
        configure(caulbart, feed(feed_server, links), {"allow_private": True})

        counts = full_text_counts(caulbart, monkeypatch, caplog)
    finally:
        elsewhere.close()

    assert counts == {"tried": 3, "cached": 0, "refused": 3, "robots": 0, "fetched": 0}
    assert sum(elsewhere.requests.values()) == 0


def test_pages_fetched_and_then_cached_are_counted_as_such(
    caulbart: Caulbart,
    feed_server: FeedServer,
    articles: list[Article],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    links = [link for _, _, link in serve_articles(feed_server, articles[:3])]
    configure(caulbart, feed(feed_server, links), {"allow_private": True})

    counts = full_text_counts(caulbart, monkeypatch, caplog)

    assert counts == {"tried": 3, "cached": 0, "refused": 0, "robots": 0, "fetched": 3}
