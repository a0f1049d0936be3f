"""aggregator.ingest.fulltext with plain values: extraction from real page layouts, robots.txt
rules,
the address guard's verdicts, and how an item takes its article's text."""

from __future__ import annotations

import ipaddress
import logging
from datetime import UTC, datetime
from urllib.robotparser import RobotFileParser

import pytest

from aggregator.ingest.fetch import refused_reason
from aggregator.ingest.fulltext import _robots_rules, extract, merge
from aggregator.ingest.markup import plain_text
from aggregator.types import ArticleText, FetchResult, FetchStatus, Item
from tests.article_pages import (
    LAYOUT_LIST,
    Article,
    Layout,
    leaked,
    load_articles,
    recovered,
    render_odd,
)
from tests.article_pages import render as render_page
from tests.conftest import CORPUS, corpus_path

PAGE_URL = "https://news.example.org/2005/02/14/story.html"


def page(body: bytes | str, content_type: str = "text/html; charset=utf-8") -> FetchResult:
    data = body.encode() if isinstance(body, str) else body
    return FetchResult(
        source_id="courier",
        url=PAGE_URL,
        status=FetchStatus.OK,
        http_status=200,
        body=data,
        headers=(("Content-Type", content_type),),
        final_url=PAGE_URL,
    )


@pytest.fixture(scope="module")
def articles() -> list[Article]:
    corpus_path("news", "articles.csv")
    return load_articles(CORPUS)


@pytest.mark.parametrize("layout", LAYOUT_LIST, ids=lambda layout: layout.name)
def test_each_layout_gives_the_articles_paragraphs_and_none_of_the_page_around_them(
    layout: Layout, articles: list[Article]
) -> None:
    for article in articles:
        text = extract(page(render_page(layout, article, "/img/lead.jpg")))
        assert text.error is None, (layout.name, article.title, text.error)
        found = plain_text(text.body_html)
        # Most paragraphs at the least; every one on these layouts today.
        assert recovered(article.paragraphs, found) == len(article.paragraphs), article.title
        assert leaked(layout, found) == [], article.title
        assert article.title not in found[: len(article.title) + 5]  # the page's h1 is dropped
        assert "<script" not in text.body_html and " class=" not in text.body_html


def test_lead_image_is_the_pages_og_image_made_absolute(articles: list[Article]) -> None:
    text = extract(page(render_page(LAYOUT_LIST[0], articles[0], "/media/lead.jpg?w=1024")))
    assert text.image_url == "https://news.example.org/media/lead.jpg?w=1024"


def test_an_odd_page_is_read_by_trafilaturas_justext_fallback(
    articles: list[Article], caplog: pytest.LogCaptureFixture
) -> None:
    """jusText imports lxml.html.clean, a separate distribution since lxml 5.2: without it
    declared, the first odd page raised ImportError out of the pass."""
    caplog.set_level(logging.DEBUG, logger="trafilatura")
    for article in articles:
        caplog.clear()
        text = extract(page(render_odd(article)))
        # trafilatura's own debug line: the page still takes the path under test.
        assert any("using justext" in r.getMessage() for r in caplog.records), article.title
        assert text.error is None, (article.title, text.error)
        found = plain_text(text.body_html)
        assert recovered(article.paragraphs, found) == len(article.paragraphs), article.title


def test_pages_that_are_no_article_say_why() -> None:
    assert extract(page(b"%PDF-1.4", "application/pdf")).error == (
        "not an HTML page (application/pdf)"
    )
    empty = extract(page("<html><body><div class='app'></div></body></html>"))  # a JS app
    assert empty.error == "extraction failed: no article text found"
    assert empty.cacheable  # the same page would give the same answer: never fetched again
    missing = FetchResult("courier", PAGE_URL, FetchStatus.ERROR, 404, error="HTTP 404 Not Found")
    assert extract(missing).cacheable
    down = FetchResult("courier", PAGE_URL, FetchStatus.ERROR, 503, error="HTTP 503")
    assert not extract(down).cacheable  # tried again when the entry next changes


def _item(**changes: object) -> Item:
    values: dict[str, object] = {
        "guid": "g1",
        "link": PAGE_URL,
        "title": "Headline",
        "lede": "In brief: the summary.",
        "body_html": "In brief: the summary.",
        "published": datetime(2026, 11, 20, tzinfo=UTC),
        "updated": datetime(2026, 11, 20, tzinfo=UTC),
        "author": None,
        "categories": (),
        "image_url": None,
        "image_credit": None,
        "language": None,
        "text_hash": None,
        "content_hash": "feed-hash",
        "has_full_text": False,
        "body_text": "In brief: the summary.",
    }
    values.update(changes)
    return Item(**values)  # type: ignore[arg-type]


def test_merge_keeps_the_summary_as_lede_and_the_feeds_content_hash() -> None:
    body = "<p>" + "The article's own words, sentence after sentence. " * 10 + "</p>"
    merged = merge(_item(), ArticleText(PAGE_URL, body_html=body, image_url="https://i/x.jpg"))
    assert merged.body_html == body and merged.has_full_text
    assert merged.lede == "In brief: the summary."
    assert merged.content_hash == "feed-hash"  # unchanged in the feed = unchanged here
    assert merged.text_hash is not None and merged.full_text_error is None
    assert merged.image_url == "https://i/x.jpg"
    # The feed's own image wins over the page's.
    assert merge(_item(image_url="https://f/y.jpg"), ArticleText(PAGE_URL, body)).image_url == (
        "https://f/y.jpg"
    )


def test_merge_keeps_the_summary_when_the_page_says_less() -> None:
    merged = merge(_item(), ArticleText(PAGE_URL, body_html="<p>Subscribe to read.</p>"))
    assert merged.body_html == "In brief: the summary." and not merged.has_full_text
    assert merged.full_text_error == "extraction failed: no text longer than the summary"


def _robots(
    status: FetchStatus, http: int | None, body: str = "", error: str | None = None
) -> RobotFileParser | str:
    return _robots_rules(
        FetchResult("s", "https://x/robots.txt", status, http, body.encode(), error=error)
    )


def test_robots_txt_rules_follow_rfc_9309() -> None:
    agent = "Caulbart/0.1.0 (+http://caulbart.test; news aggregator)"
    rules = _robots(FetchStatus.OK, 200, "User-agent: caulbart\nDisallow: /private/\n")
    assert not isinstance(rules, str)
    assert rules.can_fetch(agent, "https://x/news/a.html")
    assert not rules.can_fetch(agent, "https://x/private/a.html")
    missing = _robots(FetchStatus.ERROR, 404)  # no robots.txt: everything allowed
    assert not isinstance(missing, str) and missing.can_fetch(agent, "https://x/private/a")
    assert _robots(FetchStatus.ERROR, 503, error="HTTP 503") == "robots.txt unreachable: HTTP 503"
    refused = "address refused: x is a loopback address (127.0.0.1)"
    assert _robots(FetchStatus.ERROR, None, error=refused) == refused


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("93.184.215.14", None),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", None),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("10.0.0.8", "a private or reserved address"),
        ("192.168.1.1", "a private or reserved address"),
        ("172.16.0.1", "a private or reserved address"),
        ("100.64.0.1", "a private or reserved address"),
        ("fc00::1", "a private or reserved address"),
        ("0.0.0.0", "a private or reserved address"),
        ("240.0.0.1", "a private or reserved address"),
        ("169.254.10.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("169.254.169.254", "a cloud metadata address"),
        ("fd00:ec2::254", "a cloud metadata address"),
        ("224.0.0.251", "a multicast address"),
        ("ff02::1", "a multicast address"),
    ],
)
def test_guard_refuses_every_address_that_is_not_public(address: str, reason: str | None) -> None:
    assert refused_reason(ipaddress.ip_address(address)) == reason


def test_article_html_is_sanitised_like_feed_html(articles: list[Article]) -> None:
    words = articles[1].paragraphs[0]
    hostile = (
        f'<p>{words} Read <a href="javascript:alert(1)">this</a> and <a href="/next">the next'
        f' report</a>.<img src="x" onerror="alert(2)"><script>alert(3)</script> {words}</p>'
    )
    html = render_page(LAYOUT_LIST[0], articles[0]).replace(
        '<div class="entry-content">', f'<div class="entry-content">{hostile}'
    )
    text = extract(page(html))
    assert text.error is None
    assert "the next report" in text.body_html  # the paragraph is there...
    for bad in ("javascript:", "onerror", "<script", "alert("):
        assert bad not in text.body_html, bad  # ...without anything executable
    assert 'href="https://news.example.org/next"' in text.body_html  # made absolute
