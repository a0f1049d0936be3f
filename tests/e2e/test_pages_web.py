"""The site's pages end to end on SQLite and PostgreSQL: a newsroom's feeds served over loopback,
ingested by the real `caulbart fetch`, then every page read through the Flask app."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape
from typing import Any
from urllib.parse import urlsplit

import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

import web.sitemap
from aggregator.publishing import scope
from aggregator.storage.models import Story
from tests.conftest import (
    SITEMAP_NS,
    Caulbart,
    FeedServer,
    recorded_statements,
    sitemaps,
    write_feeds_yaml,
)
from tests.newsroom import ESCAPED_TITLE, SHARED_TITLE, serve_newsroom
from web import create_app

BASE = "http://caulbart.test"
TAGLINE = "News that matter to you."
SECURITY = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


@dataclass
class Site:
    app: Flask
    client: FlaskClient
    engine: Engine
    caulbart: Caulbart

    def page(self, path: str, status: int = 200) -> Any:
        response = self.client.get(path)
        assert response.status_code == status, (path, response.status_code)
        return lxml.html.fromstring(response.get_data(as_text=True))

    def story_path(self, title: str) -> str:
        with Session(self.engine) as session:
            story = session.scalars(select(Story).where(Story.title == title)).one()
            return f"/{story.published:%Y/%m/%d}/{story.slug}-{story.id}"


@pytest.fixture
def site(caulbart: Caulbart, feed_server: FeedServer, engine: Engine) -> Iterator[Site]:
    sources = serve_newsroom(feed_server)
    write_feeds_yaml(
        caulbart.config,
        sources,
        site={"title": "Caulbart", "tagline": TAGLINE, "base_url": BASE, "language": "en"},
    )
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    with opened_site(caulbart, engine) as site:
        yield site


@contextmanager
def opened_site(caulbart: Caulbart, engine: Engine) -> Iterator[Site]:
    """The web app over what `caulbart` stored, its feed cache closed afterwards."""
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    try:
        yield Site(app, app.test_client(), engine, caulbart)
    finally:
        app.extensions["caulbart.feeds"].close()


def texts(tree: Any, xpath: str) -> list[str]:
    return [" ".join(node.text_content().split()) for node in tree.xpath(xpath)]


def css_class(name: str) -> str:
    return f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"


# --- home and listings ----------------------------------------------------------------------


def test_home_groups_the_latest_stories_by_section_with_tagline_and_feeds(site: Site) -> None:
    home = site.page("/")
    assert texts(home, "//header//p[@class='tagline']") == [TAGLINE]
    assert texts(home, "//nav[@aria-label='Sections']//a") == ["World", "Tech"]
    assert texts(home, "//main//h2") == ["World", "Tech"]  # grouped, in feeds.yaml order
    world = texts(home, "//main//section[1]//h3")
    assert world[0] == SHARED_TITLE  # newest first
    assert ESCAPED_TITLE.replace("<small> ", "").replace(" </small>", "") in texts(
        home, "//main//section[2]//h3"
    )
    assert home.xpath("//link[@rel='alternate' and @href='http://caulbart.test/feed.atom']")
    feeds = home.xpath("//footer//a/@href")
    assert {"/feed.atom", "/feed.rss", "/feed.json"} <= set(feeds)
    assert home.xpath("//html/@lang") == ["en"]
    # 24 stories (the shared one told twice), 30 per page: one page, the next is a 404.
    assert len(home.xpath("//main//li[contains(@class, 'card')]")) == 24
    site.page("/?page=2", status=404)
    site.page("/?page=0", status=404)


def test_section_tag_source_and_archive_pages_list_their_stories(site: Site) -> None:
    world = site.page("/section/world")
    assert texts(world, "//h1") == ["World"]
    assert len(world.xpath("//main//h2[@class='card-title']")) == 15
    assert world.xpath("//nav[@aria-label='Sections']//a[@aria-current='page']") == []
    tech = site.page("/section/tech?page=1")
    assert len(tech.xpath("//main//h2[@class='card-title']")) == 9
    climate = site.page("/tag/climate")
    titles = texts(climate, "//main//h2[@class='card-title']")
    assert SHARED_TITLE in titles and len(titles) >= 3
    source = site.page("/source/southwire")
    assert SHARED_TITLE in texts(source, "//main//h2")
    assert len(source.xpath("//main//h2[@class='card-title']")) == 7
    # The story's own day: it was published an hour before the test, yesterday in the first
    # hour after midnight UTC.
    with Session(site.engine) as session:
        published = session.scalars(select(Story.published).where(Story.title == SHARED_TITLE))
        when = published.one()
    day = site.page(f"/archive/{when:%Y/%m/%d}")
    assert SHARED_TITLE in texts(day, "//main//h2")
    month = site.page(f"/archive/{when:%Y/%m}")
    year = site.page(f"/archive/{when:%Y}")
    assert len(texts(year, "//main//h2")) >= len(texts(month, "//main//h2")) > 0
    assert site.page("/archive/1999").xpath("//p[@class='empty']")
    for missing in (
        "/section/nowhere",
        "/tag/no-such-tag",
        "/source/nobody",
        "/archive/2026/02/30",
        "/archive/2026/13",
        "/archive/0001",
        "/archive/9999/12",
        "/archive/9999/12/31",
    ):
        site.page(missing, status=404)


def test_listings_and_the_sitemap_never_read_a_story_body(site: Site) -> None:
    """A body is kilobytes, most of a story's row: listings, a story's neighbours and related
    posts, and the sitemap read the columns they show and nothing more."""
    today = datetime.now(UTC)
    story = site.story_path(SHARED_TITLE)
    with recorded_statements(site.engine) as statements:
        for path in ("/", "/section/world", "/tag/climate", "/source/southwire",
                     f"/archive/{today:%Y/%m}", "/sitemap.xml", "/sitemap-news.xml",
                     "/sitemap-stories-1.xml"):  # fmt: skip
            assert site.client.get(path).status_code == 200, path
        read_by_lists = len(statements)
        page = site.page(story)
    assert read_by_lists > 8
    assert not [s for s in statements[:read_by_lists] if "body_html" in s]
    # The story page reads its own story's body, once; its neighbours and related posts none.
    assert page.xpath("//a[@rel='prev' or @rel='next']")
    assert len([s for s in statements[read_by_lists:] if "stories.body_html" in s]) == 1


def test_story_pages_and_feeds_read_no_entrys_own_copy_of_the_text(site: Site) -> None:
    """A story's credits name each entry that told it: its link and title. The entry's own copy
    of the text, its shingles and categories are most of its row, and a wire story has many."""
    with recorded_statements(site.engine) as statements:
        site.page(site.story_path(SHARED_TITLE))
        for path in ("/feed.atom", "/section/world/feed.rss", "/source/southwire/feed.json"):
            assert site.client.get(path).status_code == 200, path
    credits = [s for s in statements if "FROM entries" in s]
    assert len(credits) >= 4  # the page and each feed read their stories' tellings
    assert not [s for s in credits if "entries.body_html" in s or "entries.shingles" in s]


@pytest.mark.parametrize(("path", "count"), [("/source/southwire", 7), ("/tag/climate", 3)])
def test_a_source_or_tag_page_lists_the_same_stories_however_it_finds_them(
    site: Site, monkeypatch: pytest.MonkeyPatch, path: str, count: int
) -> None:
    """Few stories are listed from the source's (tag's) own list of them, many by walking the
    newest stories (aggregator/publishing/scope.py `stories_among`): the same page either way."""
    listed = texts(site.page(path), "//main//h2[@class='card-title']")
    monkeypatch.setattr(scope, "LIST_LIMIT", 0)  # as if every source and tag had many
    walked = texts(site.page(path), "//main//h2[@class='card-title']")
    assert len(listed) >= count and SHARED_TITLE in listed
    assert walked == listed


# --- the story page -------------------------------------------------------------------------


def test_story_page_shows_every_part_of_the_story(site: Site) -> None:
    path = site.story_path(SHARED_TITLE)
    story = site.page(path)
    article = story.xpath("//main/article")[0]
    assert texts(article, ".//p[@class='kicker']") == ["World"]
    assert texts(article, ".//h1") == [SHARED_TITLE]
    assert "forty Alpine glaciers" in article.text_content()  # the lede, as the body opens
    image = article.xpath(".//figure/img")[0]
    assert image.get("src").endswith("/img/glacier.png") and image.get("alt")
    assert texts(article, ".//figcaption") == ["Image source: Photo: A. Climber / Northwire"]
    assert article.xpath(".//div[@class='story-body']/p")
    assert article.xpath(".//p[contains(@class, 'dates')]/time/@datetime")
    reported = article.xpath(".//p[@class='reported']/a")[0]
    assert (reported.text, reported.get("href")) == (
        "Northwire",
        "https://northwire.example/world/glaciers",
    )
    also = article.xpath(".//p[@class='also']/a")
    assert [(a.text, a.get("href")) for a in also] == [
        ("Southwire", "https://southwire.example/world/glaciers")
    ]
    tags = article.xpath(".//p[@class='tags']/a/@href")
    assert "/tag/climate" in tags
    neighbours = story.xpath("//nav[@aria-label='Previous and next articles']")[0]
    assert texts(neighbours, ".//a[@rel='prev']/span[@class='label']") == ["Previous Article"]
    previous = neighbours.xpath(".//a[@rel='prev']")[0]
    assert site.client.get(previous.get("href")).status_code == 200
    related = story.xpath("//section[@aria-labelledby='related-heading']//a/@href")
    assert related and all(site.client.get(href).status_code == 200 for href in related)
    replies = story.xpath("//section[@aria-labelledby='reply-heading']")[0]
    assert texts(replies, ".//h2") == ["Leave a Reply"]
    assert (
        "Your email address will not be published. Required fields are marked *"
        in replies.text_content()
    )
    # Previous of the newest story's next is the story again.
    back = site.page(previous.get("href"))
    assert back.xpath("//a[@rel='next']/@href") == [path]


def test_story_page_head_has_canonical_open_graph_twitter_and_news_article(site: Site) -> None:
    path = site.story_path(SHARED_TITLE)
    head = site.page(path).xpath("//head")[0]
    assert head.xpath("link[@rel='canonical']/@href") == [BASE + path]

    def meta(attribute: str, name: str) -> list[str]:
        return [str(v) for v in head.xpath(f"meta[@{attribute}='{name}']/@content")]

    assert meta("property", "og:title") == [SHARED_TITLE]
    assert meta("property", "og:url") == [BASE + path]
    assert meta("property", "og:type") == ["article"]
    assert meta("property", "og:image")[0].endswith("/img/glacier.png")
    assert meta("name", "twitter:card") == ["summary_large_image"]
    (ld_text,) = head.xpath("script[@type='application/ld+json']/text()")
    data = json.loads(ld_text)
    assert data["@type"] == "NewsArticle" and data["headline"] == SHARED_TITLE
    assert data["isBasedOn"] == "https://northwire.example/world/glaciers"
    assert data["datePublished"].endswith("Z") and data["dateModified"].endswith("Z")
    assert data["image"][0].endswith("/img/glacier.png")
    assert [a["name"] for a in data["author"]] == ["Northwire", "Southwire"]
    assert data["publisher"]["name"] == "Caulbart"


def test_story_text_is_escaped_in_the_page_and_in_its_json_ld(site: Site) -> None:
    with Session(site.engine) as session, session.begin():
        story = session.scalars(select(Story).where(Story.title.like("Markets%"))).one()
        story.title = 'Markets </script><script>alert(1)</script> & "models"'
        path = f"/{story.published:%Y/%m/%d}/{story.slug}-{story.id}"
    html = site.client.get(path).get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert (
        "Markets &lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;models&#34;"
        in html
    )
    (ld_text,) = lxml.html.fromstring(html).xpath("//script[@type='application/ld+json']/text()")
    assert "</" not in ld_text
    assert json.loads(ld_text)["headline"].startswith("Markets </script><script>")


def test_old_slug_redirects_unknown_is_404_and_withdrawn_is_410(site: Site) -> None:
    path = site.story_path(SHARED_TITLE)
    folder, _, slug_id = path.rpartition("/")
    story_id = slug_id.rsplit("-", 1)[1]
    moved = site.client.get(f"{folder}/an-old-headline-{story_id}")
    assert moved.status_code == 301 and urlsplit(moved.headers["Location"]).path == path
    missing = site.page(f"{folder}/nothing-999999", status=404)
    assert texts(missing, "//h1") == ["Page not found"]
    assert missing.xpath("//nav[@aria-label='Sections']")  # in the site's style
    site.page("/no/such/page", status=404)
    result = site.caulbart("unpublish", story_id, "--reason", "Legal <advice>")
    assert result.returncode == 0, result.stderr
    gone = site.client.get(path)
    assert gone.status_code == 410
    assert "Legal &lt;advice&gt;" in gone.get_data(as_text=True)
    assert SHARED_TITLE not in texts(site.page("/"), "//main//h3")


def test_a_server_error_is_a_500_page_in_the_site_style(site: Site) -> None:
    app = create_app(site.engine, {"CAULBART_CONFIG": site.app.config["CAULBART_CONFIG"]})

    def broken() -> str:
        raise RuntimeError("a bug in a view")

    app.add_url_rule("/broken", view_func=broken)
    response = app.test_client().get("/broken")
    assert response.status_code == 500
    page = lxml.html.fromstring(response.get_data(as_text=True))
    assert texts(page, "//h1") == ["Something went wrong"]
    assert "a bug in a view" not in response.get_data(as_text=True)
    assert response.headers["X-Content-Type-Options"] == "nosniff"


# --- search ---------------------------------------------------------------------------------


def test_search_ranks_highlights_and_pages_through_matches(site: Site) -> None:
    results = site.page("/search?q=glaciers")
    titles = texts(results, "//ol[@class='results']//h2")
    assert titles[0] == SHARED_TITLE  # the headline match ranks first
    assert results.xpath("//ol[@class='results']/li[1]//h2//mark")[0].text.lower() == "glaciers"
    assert "found for" in texts(results, "//p[@role='status']")[0]
    # "report" closes every generated story's text (22 of them): 10 a page.
    first = site.page("/search?q=report")
    assert texts(first, "//p[@role='status']")[0].startswith("22 stories")
    assert first.xpath("//nav[@aria-label='Result pages']//a[@rel='next']")
    third = site.page("/search?q=report&page=3")
    assert len(third.xpath("//ol[@class='results']/li")) == 2
    site.page("/search?q=report&page=4", status=404)
    seen = set()
    for page in (1, 2, 3):
        seen |= set(site.page(f"/search?q=report&page={page}").xpath("//ol//h2/a/@href"))
    assert len(seen) == 22


def test_search_escapes_the_query_and_text_and_survives_any_syntax(site: Site) -> None:
    for query in ('"unbalanced', "NEAR( OR AND *", "-", "a:b", "'; DROP TABLE stories; --", "ü"):
        assert site.client.get("/search", query_string={"q": query}).status_code == 200
    response = site.client.get("/search", query_string={"q": "<b>banks</b>"})
    html = response.get_data(as_text=True)
    assert "<b>banks" not in html and "&lt;b&gt;banks&lt;/b&gt;" in html
    page = site.page("/search?q=banks")
    snippet = page.xpath("//ol[@class='results']/li[1]//p[@class='card-lede']")[0]
    assert [m.text.lower() for m in snippet.xpath(".//mark")] == ["banks"]
    assert "&" in snippet.text_content() and "models < people" in snippet.text_content()
    assert "models &lt; people" in site.client.get("/search?q=banks").get_data(as_text=True)


def test_search_index_follows_story_updates_and_withdrawals(site: Site) -> None:
    assert not site.page("/search?q=zeppelin").xpath("//ol[@class='results']/li")
    with Session(site.engine) as session, session.begin():
        session.execute(
            update(Story).where(Story.title == SHARED_TITLE).values(title="Zeppelin glaciers")
        )
    found = texts(site.page("/search?q=zeppelin"), "//ol[@class='results']//h2")
    assert found == ["Zeppelin glaciers"]
    assert "Glaciers retreat" not in " ".join(
        texts(site.page("/search?q=retreat"), "//ol[@class='results']//h2")
    )
    with Session(site.engine) as session, session.begin():
        session.execute(
            update(Story)
            .where(Story.title == "Zeppelin glaciers")
            .values(withdrawn_at=datetime.now(UTC), withdrawn_reason="test")
        )
    assert not site.page("/search?q=zeppelin").xpath("//ol[@class='results']/li")


def test_search_finds_a_bodys_words_not_its_markup_or_link_addresses(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine
) -> None:
    """A story that only links to a site is not found by the site's name, nor by `href`; its
    own words are, whether it was stored new or its body changed later."""
    body = (
        '<p>Harbour pilots <a href="https://quokka-gazette.example/pilots" title="Quokka">'
        'published</a> the tide tables &amp; charts.</p><img src="https://img.example/a.png" '
        'alt="wombat"/>'
    )
    item = (
        "<item><title>Tide tables out</title><link>https://port.example/tides</link>"
        f"<guid>tides</guid><description>{escape(body)}</description></item>"
    )
    url = feed_server.add("/port.rss", f'<rss version="2.0"><channel>{item}</channel></rss>')
    write_feeds_yaml(caulbart.config, [{"id": "port", "url": url}])
    assert caulbart("fetch", "--all").returncode == 0
    with opened_site(caulbart, engine) as site:

        def found(query: str) -> list[str]:
            return texts(site.page(f"/search?q={query}"), "//ol[@class='results']//h2")

        for words in ("pilots", "charts", "published"):
            assert found(words) == ["Tide tables out"], words
        for markup in ("quokka", "gazette", "href", "https", "wombat", "img", "amp"):
            assert found(markup) == [], markup
        with Session(engine) as session, session.begin():
            session.execute(
                update(Story).values(
                    lede="Ferries resume today.",
                    body_html='<p>Ferries <a href="https://otter.example/">resume</a> today.</p>',
                )
            )
        assert found("ferries") == ["Tide tables out"]
        assert found("otter") == [] and found("pilots") == []


# --- headers, caching, sitemap --------------------------------------------------------------


def test_every_response_carries_the_security_headers(site: Site) -> None:
    story = site.story_path(SHARED_TITLE)
    for path in ("/", story, "/search?q=x", "/feed.atom", "/healthz", "/nothing", "/robots.txt"):
        response = site.client.get(path)
        for name, value in SECURITY.items():
            assert response.headers[name] == value, (path, name)
        policy = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'none'" in policy
        assert "unsafe-inline" not in policy


def test_pages_answer_conditional_gets_with_304(site: Site) -> None:
    for path in ("/", site.story_path(SHARED_TITLE), "/section/world", "/tag/climate"):
        first = site.client.get(path)
        assert first.headers["ETag"] and first.headers["Last-Modified"], path
        by_etag = site.client.get(path, headers={"If-None-Match": first.headers["ETag"]})
        assert by_etag.status_code == 304 and by_etag.data == b""
        by_date = site.client.get(
            path, headers={"If-Modified-Since": first.headers["Last-Modified"]}
        )
        assert by_date.status_code == 304, path
        stale = site.client.get(path, headers={"If-None-Match": '"something-else"'})
        assert stale.status_code == 200
    # A story that changes gets a new ETag, and every page a later Last-Modified (each page
    # shows other stories too: neighbours, related posts, listings).
    path = site.story_path(SHARED_TITLE)
    before = site.client.get(path).headers["ETag"]
    other = site.story_path(ESCAPED_TITLE.replace("<small> ", "").replace(" </small>", ""))
    since = site.client.get(other).headers["Last-Modified"]
    with Session(site.engine) as session, session.begin():
        session.execute(
            update(Story)
            .where(Story.title == SHARED_TITLE)
            .values(lede="Changed.", updated=datetime.now(UTC) + timedelta(seconds=2))
        )
    assert site.client.get(path, headers={"If-None-Match": before}).status_code == 200
    assert site.client.get(other, headers={"If-Modified-Since": since}).status_code == 200


def test_every_story_is_in_the_sitemap_of_its_block_of_ids(
    site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stories sitemaps are fixed blocks of ids, so an archive of any size is listed whole:
    with blocks of 10 ids, the newsroom's 24 stories fill three, newest block first."""
    monkeypatch.setattr(web.sitemap, "STORIES_PER_SITEMAP", 10)
    with Session(site.engine) as session:
        ids = set(session.scalars(select(Story.id)))
    withdrawn = max(ids)
    assert site.caulbart("unpublish", str(withdrawn), "--reason", "test").returncode == 0
    blocks = sorted({(i - 1) // 10 + 1 for i in ids - {withdrawn}}, reverse=True)
    found = sitemaps(site.client)
    assert list(found)[2:] == [f"/sitemap-stories-{block}.xml" for block in blocks]
    listed: list[int] = []
    for block in blocks:
        locs = found[f"/sitemap-stories-{block}.xml"].xpath(
            "s:url/s:loc/text()", namespaces=SITEMAP_NS
        )
        in_block = [int(loc.rpartition("-")[2]) for loc in locs]
        assert in_block == sorted(in_block)
        assert all((block - 1) * 10 < i <= block * 10 for i in in_block), block
        listed += in_block
    assert sorted(listed) == sorted(ids - {withdrawn})
    for beyond in (0, blocks[0] + 1):
        assert site.client.get(f"/sitemap-stories-{beyond}.xml").status_code == 404


def test_sitemap_lists_stories_with_news_tags_for_the_last_two_days(site: Site) -> None:
    old = site.story_path(SHARED_TITLE)
    with Session(site.engine) as session, session.begin():
        session.execute(
            update(Story)
            .where(Story.section == "tech")
            .values(published=datetime.now(UTC) - timedelta(days=5))
        )
        tech = {
            f"{BASE}/{s.published:%Y/%m/%d}/{s.slug}-{s.id}"
            for s in session.scalars(select(Story).where(Story.section == "tech"))
        }
    found = sitemaps(site.client)
    assert list(found) == ["/sitemap-pages.xml", "/sitemap-news.xml", "/sitemap-stories-1.xml"]
    pages = found["/sitemap-pages.xml"].xpath("s:url/s:loc/text()", namespaces=SITEMAP_NS)
    assert pages == [f"{BASE}/", f"{BASE}/section/world", f"{BASE}/section/tech"]
    stories = found["/sitemap-stories-1.xml"].findall("s:url", SITEMAP_NS)
    assert len(stories) == 24
    by_loc = {u.findtext("s:loc", namespaces=SITEMAP_NS): u for u in stories}
    assert tech <= set(by_loc) and BASE + old in by_loc
    assert all(u.findtext("s:lastmod", namespaces=SITEMAP_NS) for u in stories)
    news = {
        u.findtext("s:loc", namespaces=SITEMAP_NS): u
        for u in found["/sitemap-news.xml"].findall("s:url", SITEMAP_NS)
    }
    assert set(news) == set(by_loc) - tech  # the world desk's 15, not the 5-day-old tech
    shared = news[BASE + old]
    assert shared.findtext("n:news/n:title", namespaces=SITEMAP_NS) == SHARED_TITLE
    assert shared.findtext("n:news/n:publication/n:language", namespaces=SITEMAP_NS) == "en"
    robots = site.client.get("/robots.txt").get_data(as_text=True)
    assert f"Sitemap: {BASE}/sitemap.xml" in robots and "Disallow: /search" in robots
