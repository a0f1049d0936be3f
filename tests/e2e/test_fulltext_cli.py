"""Full text for summary-only feeds, end to end: `caulbart fetch` reads a feed of summaries from
the loopback server, fetches each linked article page (real layouts around BBC texts from
../shared/corpus), and stores the article's text; the story page shows it under the summary.

Politeness and safety are checked on the server's side: which paths were requested, how often,
and when.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from xml.sax.saxutils import escape

import lxml.html
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from aggregator.ingest.markup import plain_text
from aggregator.storage.models import Entry, Source, Story
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
from tests.conftest import CORPUS, Caulbart, FeedServer, corpus_path, write_feeds_yaml
from tests.feeds import Item, rss
from web import create_app

NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Link:
    """One feed item: a summary and the article page it links to."""

    path: str
    title: str
    summary: str


def summary_of(article: Article) -> str:
    """The feed's teaser: not the article's opening words, so the lede is seen on the page."""
    return f"In brief: {article.paragraphs[0].split('. ')[0]}."


def absolute(server: FeedServer, link: Link) -> str:
    return link.path if "://" in link.path else server.url(link.path)


def feed(server: FeedServer, links: list[Link], *, path: str = "/feed.rss") -> str:
    items = [
        Item(
            title=link.title,
            link=absolute(server, link),
            guid=link.path,
            permalink=False,
            published=NOON - timedelta(minutes=index),
            description=link.summary,
        )
        for index, link in enumerate(links)
    ]
    document = rss(*items, title="Courier", link=f"{server.base}/", description="summaries")
    return server.add(path, document)


@pytest.fixture
def articles() -> list[Article]:
    corpus_path("news", "articles.csv")
    return load_articles(CORPUS)


def serve_articles(
    server: FeedServer, articles: list[Article]
) -> list[tuple[Layout, Article, Link]]:
    """Each layout's page around one article, at /news/<layout>.html, with a lead image."""
    served = []
    for layout, article in zip(LAYOUT_LIST, articles, strict=False):
        path = f"/news/{layout.name}.html"
        image = server.url(f"/img/{layout.name}.jpg")
        server.add(
            path, render_page(layout, article, image), content_type="text/html; charset=utf-8"
        )
        served.append((layout, article, Link(path, article.title, summary_of(article))))
    return served


def configure(caulbart: Caulbart, feed_url: str, full_text: object, **defaults: object) -> None:
    write_feeds_yaml(
        caulbart.config,
        [{"id": "courier", "url": feed_url, "section": "news", "full_text": full_text}],
        defaults={"host_spacing": "0s", **defaults},
    )


def fetch(caulbart: Caulbart) -> str:
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    return result.stdout


def entries(engine: Engine) -> dict[str, Entry]:
    with Session(engine) as session:
        return {e.guid: e for e in session.scalars(select(Entry))}


def source_row(engine: Engine) -> Source:
    with Session(engine) as session:
        return session.get_one(Source, "courier")


def status(caulbart: Caulbart) -> dict[str, Any]:
    result = caulbart("status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}["courier"]


ALLOW_OWN_HOST = {"allow_private": True}


# --- the article's text ---------------------------------------------------------------------


def test_summary_only_entries_get_the_article_text_and_keep_the_summary_as_lede(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles)
    configure(caulbart, feed(feed_server, [link for _, _, link in served]), ALLOW_OWN_HOST)

    out = fetch(caulbart)
    assert f"1 sources: {len(LAYOUT_LIST)} new" in out

    stored = entries(engine)
    for layout, article, link in served:
        entry = stored[link.path]
        assert entry.full_text_error is None, (layout.name, entry.full_text_error)
        assert entry.has_full_text
        text = lxml.html.fromstring(entry.body_html).text_content()
        assert recovered(article.paragraphs, text) == len(article.paragraphs), layout.name
        assert leaked(layout, text) == [], layout.name
        assert "<script" not in entry.body_html and "class=" not in entry.body_html
        assert entry.lede == link.summary  # the feed's summary stays the lede
        # The lead image is the page's og:image or twitter:image (the feed gives none); the
        # legacy page has neither.
        image = None if layout.name == "legacy" else feed_server.url(f"/img/{layout.name}.jpg")
        assert entry.image_url == image, layout.name
    assert source_row(engine).full_text_error is None
    assert status(caulbart)["full_text_error"] is None

    # The story page shows the summary as its lede, the article below it, the image credited.
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    try:
        layout, article, link = served[0]
        with Session(engine) as session:
            story = session.scalars(select(Story).where(Story.title == link.title)).one()
            path = f"/{story.published:%Y/%m/%d}/{story.slug}-{story.id}"
        response = app.test_client().get(path)
        assert response.status_code == 200
        page = lxml.html.fromstring(response.get_data(as_text=True))
        assert [p.text_content() for p in page.xpath("//p[@class='lede']")] == [link.summary]
        body = page.xpath("//div[@class='story-body']")[0].text_content()
        assert recovered(article.paragraphs, body) == len(article.paragraphs)
        caption = page.xpath("//figure[@class='story-image']/figcaption")[0].text_content()
        assert caption.startswith("Image source:")
    finally:
        app.extensions["caulbart.feeds"].close()


def test_an_odd_article_page_gets_its_text_from_the_fallback_extractor(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    """A page only jusText reads (tests/ingest/test_fulltext.py checks that it takes that path): the
    pass stores its text, on the dependencies a plain install brings."""
    article = articles[0]
    feed_server.add("/news/odd.html", render_odd(article), content_type="text/html")
    link = Link("/news/odd.html", article.title, summary_of(article))
    configure(caulbart, feed(feed_server, [link]), ALLOW_OWN_HOST)
    assert "1 sources: 1 new" in fetch(caulbart)

    entry = entries(engine)[link.path]
    assert entry.full_text_error is None
    text = lxml.html.fromstring(entry.body_html).text_content()
    assert recovered(article.paragraphs, text) == len(article.paragraphs)


def test_each_article_page_is_fetched_once_across_fetches_and_edits(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles)
    links = [link for _, _, link in served]
    configure(caulbart, feed(feed_server, links), ALLOW_OWN_HOST)
    fetch(caulbart)

    # The feed again, changed (a new ETag) but its entries the same: no article work at all.
    feed(feed_server, links)
    assert f"0 new, 0 updated, {len(links)} unchanged" in fetch(caulbart)
    # One entry edited in the feed: it is stored again, its article comes from the cache.
    edited = [Link(links[0].path, links[0].title + " (updated)", links[0].summary), *links[1:]]
    feed(feed_server, edited)
    assert f"0 new, 1 updated, {len(links) - 1} unchanged" in fetch(caulbart)

    assert {link.path: feed_server.requests[link.path] for link in links} == {
        link.path: 1 for link in links
    }
    assert feed_server.requests["/robots.txt"] == 1  # asked once, by the first fetch
    sent = feed_server.request_headers[links[0].path][0]
    assert sent["Accept"].startswith("text/html") and sent["User-Agent"].startswith("Caulbart/")
    assert entries(engine)[links[0].path].has_full_text


def test_article_requests_to_one_host_are_spaced(
    caulbart: Caulbart, feed_server: FeedServer, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles[:3])
    configure(
        caulbart, feed(feed_server, [link for _, _, link in served]), ALLOW_OWN_HOST,
        host_spacing="1s",
    )  # fmt: skip
    fetch(caulbart)
    times = [t for t, path in feed_server.request_log if path.startswith(("/news/", "/robots"))]
    assert len(times) == 4  # robots.txt, then three articles
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert min(gaps) >= 0.9, gaps


def test_article_requests_to_one_host_wait_for_a_free_per_host_slot(
    caulbart: Caulbart, feed_server: FeedServer, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles[:2])
    for layout, article, link in served:  # slow pages: each takes about a second to send
        page = render_page(layout, article, feed_server.url("/img/x.jpg"))
        feed_server.add(link.path, page[:6000], content_type="text/html", drip_delay=0.00015)
    configure(caulbart, feed(feed_server, [link for _, _, link in served]), ALLOW_OWN_HOST,
              per_host=1)  # fmt: skip
    fetch(caulbart)
    starts = [t for t, path in feed_server.request_log if path.startswith("/news/")]
    assert len(starts) == 2
    assert starts[1] - starts[0] >= 0.5  # the second began once the first was done


# --- politeness and safety ------------------------------------------------------------------


def test_robots_txt_disallow_keeps_the_summary_and_is_recorded(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles[:2])
    feed_server.add(
        "/robots.txt",
        "User-agent: *\nDisallow: /news/broadsheet\n\nUser-agent: OtherBot\nDisallow: /\n",
        content_type="text/plain",
    )
    configure(caulbart, feed(feed_server, [link for _, _, link in served]), ALLOW_OWN_HOST)
    out = fetch(caulbart)

    stored = entries(engine)
    allowed, disallowed = stored["/news/wordpress.html"], stored["/news/broadsheet.html"]
    assert allowed.has_full_text and allowed.full_text_error is None
    assert disallowed.full_text_error == "robots.txt disallows"
    assert not disallowed.has_full_text
    assert plain_text(disallowed.body_html) == served[1][2].summary  # the summary, kept
    assert feed_server.requests["/news/broadsheet.html"] == 0
    assert feed_server.requests["/news/wordpress.html"] == 1
    assert "robots.txt disallows" in out
    assert status(caulbart)["full_text_error"] == (
        f"1 of 2 articles kept their summary; first: {feed_server.url('/news/broadsheet.html')}:"
        " robots.txt disallows"
    )


def test_private_and_metadata_addresses_are_refused_without_the_sources_opt_in(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles[:1])
    metadata = Link("http://169.254.169.254/latest/meta-data/", "Metadata", "In brief: no.")
    configure(caulbart, feed(feed_server, [served[0][2], metadata]), True)
    fetch(caulbart)

    stored = entries(engine)
    assert stored["/news/wordpress.html"].full_text_error == (
        f"address refused: 127.0.0.1:{feed_server.port} is a loopback address (127.0.0.1)"
    )
    assert stored[metadata.path].full_text_error == (
        "address refused: 169.254.169.254:80 is a cloud metadata address (169.254.169.254)"
    )
    assert not any(e.has_full_text for e in stored.values())
    # Nothing but the feed itself was asked of the loopback server.
    assert set(feed_server.requests) == {"/feed.rss"}
    assert "address refused" in (status(caulbart)["full_text_error"] or "")


def test_redirect_to_a_private_address_is_refused(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles[:1])
    # The source may use its own host (127.0.0.1); "localhost" is another host, on loopback.
    target = f"http://localhost:{feed_server.port}/news/wordpress.html"
    feed_server.add("/moved", status=302, location=target)
    link = Link("/moved", served[0][2].title, served[0][2].summary)
    configure(caulbart, feed(feed_server, [link]), ALLOW_OWN_HOST)
    fetch(caulbart)

    entry = entries(engine)["/moved"]
    assert entry.full_text_error == (
        f"address refused: localhost:{feed_server.port} is a loopback address (127.0.0.1)"
    )
    assert not entry.has_full_text
    assert feed_server.requests["/moved"] == 1
    assert feed_server.requests["/news/wordpress.html"] == 0


def test_oversize_article_page_keeps_the_summary(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles[:1])
    page = render_page(LAYOUT_LIST[0], articles[0]).replace(
        "</body>", "<!-- " + "tracking " * 20_000 + "--></body>"
    )
    feed_server.add("/news/wordpress.html", page, content_type="text/html")
    configure(caulbart, feed(feed_server, [served[0][2]]), ALLOW_OWN_HOST, max_bytes="100KB")
    fetch(caulbart)

    entry = entries(engine)["/news/wordpress.html"]
    assert entry.full_text_error == (
        f"body too large: Content-Length {len(page.encode())} > max_bytes 100000"
    )
    assert not entry.has_full_text


def test_extraction_failures_keep_the_summary_and_are_recorded_on_entry_and_source(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles[:1])
    gallery = (
        "<html><head><title>In pictures</title></head><body><nav><a href='/'>Home</a></nav>"
        "<div class='gallery'><img src='/g/1.jpg' alt='Photo 1 of 20'></div>"
        "<footer>Copyright 2005</footer></body></html>"
    )
    feed_server.add("/news/gallery.html", gallery, content_type="text/html")
    feed_server.add("/news/report.pdf", b"%PDF-1.4 ...", content_type="application/pdf")
    links = [
        served[0][2],
        Link("/news/gallery.html", "In pictures: the week", "In brief: the week in pictures."),
        Link("/news/report.pdf", "The full report", "In brief: the report."),
        Link("/news/gone.html", "A removed story", "In brief: removed."),
    ]
    configure(caulbart, feed(feed_server, links), ALLOW_OWN_HOST)
    out = fetch(caulbart)
    assert "1 sources: 4 new" in out  # the entries are stored all the same

    stored = entries(engine)
    assert stored["/news/wordpress.html"].has_full_text
    # The gallery's few words of text are no article: no more than the summary says.
    assert stored["/news/gallery.html"].full_text_error == (
        "extraction failed: no text longer than the summary"
    )
    assert stored["/news/report.pdf"].full_text_error == "not an HTML page (application/pdf)"
    assert stored["/news/gone.html"].full_text_error == "HTTP 404 Not Found"
    for path in ("/news/gallery.html", "/news/report.pdf", "/news/gone.html"):
        assert stored[path].body_html.startswith("In brief:"), path
    health = status(caulbart)
    assert health["full_text_error"].startswith("3 of 4 articles kept their summary; first: ")
    assert health["last_status"] == "ok" and health["consecutive_errors"] == 0

    # `caulbart explain` says it per entry.
    story_id = stored["/news/report.pdf"].story_id
    explained = caulbart("explain", str(story_id), "--json")
    assert explained.returncode == 0, explained.stderr
    (reason,) = json.loads(explained.stdout)["entries"]
    assert reason["full_text_error"] == "not an HTML page (application/pdf)"
    text = caulbart("explain", str(story_id)).stdout
    assert "full text: not an HTML page (application/pdf) (the feed's summary is shown)" in text


def test_entries_with_full_content_in_the_feed_are_not_fetched(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    served = serve_articles(feed_server, articles[:1])
    whole = Item(
        title="Whole",
        link=feed_server.url(served[0][2].path),
        guid="whole",
        description=served[0][2].summary,
        content="".join(f"<p>{escape(p)}</p>" for p in articles[0].paragraphs),
    )
    document = rss(whole, title="Full", link=f"{feed_server.base}/", description="x")
    configure(caulbart, feed_server.add("/full.rss", document), ALLOW_OWN_HOST)
    fetch(caulbart)
    entry = entries(engine)["whole"]
    assert entry.has_full_text and entry.full_text_error is None
    assert feed_server.requests["/news/wordpress.html"] == 0
    assert feed_server.requests["/robots.txt"] == 0
