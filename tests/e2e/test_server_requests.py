"""Where Caulbart's own requests may go, as editors and attackers reach them: `caulbart fetch`
with `full_text` sources, `caulbart check --probe` and `caulbart add`.

Every server here is on loopback, each port playing its own service: the feed's host, and an
"admin" service beside it that no feed may steer Caulbart into. A private address is reached
only at the host and port an editor wrote in feeds.yaml (a source's `url`, its
`full_text.allow_private` list) or typed to `caulbart add`; the admin service counts what it
was asked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from aggregator.storage.models import Entry
from tests.article_pages import LAYOUT_LIST, Article
from tests.article_pages import render as render_page
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.e2e.test_fulltext_cli import Link, articles, feed, serve_articles, summary_of
from tests.e2e.test_onboard_cli import FEEDS_YAML, HOME, channel, editor

__all__ = ["articles", "editor"]  # fixtures shared with the full-text and onboarding tests

SECRET = "<html><body><h1>Admin</h1><p>root password: hunter2</p></body></html>"


@pytest.fixture
def admin() -> Iterator[FeedServer]:
    """Another private service on loopback, on a port of its own: nobody's feed."""
    server = FeedServer()
    yield server
    server.close()


def loopback(server: FeedServer) -> str:
    return f"address refused: 127.0.0.1:{server.port} is a loopback address (127.0.0.1)"


def source(source_id: str, url: str, full_text: object) -> dict[str, object]:
    return {"id": source_id, "url": url, "section": "news", "full_text": full_text}


def configure(caulbart: Caulbart, *sources: dict[str, object]) -> None:
    write_feeds_yaml(caulbart.config, list(sources), defaults={"host_spacing": "0s"})


def fetch(caulbart: Caulbart) -> str:
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    return result.stdout


def entry(engine: Engine, source_id: str, guid: str) -> Entry:
    with Session(engine) as session:
        return session.scalars(
            select(Entry).where(Entry.source_id == source_id, Entry.guid == guid)
        ).one()


def status(caulbart: Caulbart, source_id: str) -> dict[str, object]:
    result = caulbart("status", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}
    return rows[source_id]  # type: ignore[no-any-return]


def serve_page(server: FeedServer, path: str, article: Article) -> Link:
    """An article page at `path` on `server`; the link names it absolutely."""
    server.add(path, render_page(LAYOUT_LIST[0], article), content_type="text/html")
    return Link(server.url(path), article.title, summary_of(article))


# --- the article page cache -----------------------------------------------------------------


def test_a_cached_page_is_refused_to_a_source_not_allowed_its_address(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    """A source allowed its own private host fills the cache; a public-only source linking to
    the same page is refused it, as if it were not cached."""
    (_, _, link), = serve_articles(feed_server, articles[:1])  # fmt: skip
    intranet = source("intranet", feed(feed_server, [link], path="/intranet.rss"), {
        "allow_private": True})  # fmt: skip
    configure(caulbart, intranet)
    fetch(caulbart)
    assert entry(engine, "intranet", link.path).has_full_text

    configure(caulbart, intranet, source("courier", feed(feed_server, [link]), True))
    fetch(caulbart)

    refused = entry(engine, "courier", link.path)
    assert refused.full_text_error == loopback(feed_server)
    assert not refused.has_full_text
    assert feed_server.requests[link.path] == 1  # fetched once, for the source allowed it


def test_a_page_cached_under_one_policy_is_fetched_again_under_another(
    caulbart: Caulbart,
    feed_server: FeedServer,
    admin: FeedServer,
    engine: Engine,
    articles: list[Article],
) -> None:
    """A page whose link is allowed to both sources, but which redirects to a service only one
    of them may reach, is not served from the other's cache: it is fetched, and refused."""
    page = serve_page(admin, "/internal/report.html", articles[0])
    feed_server.add("/news/report", status=302, location=page.path)
    link = Link("/news/report", page.title, page.summary)
    wide = source("wide", feed(feed_server, [link], path="/wide.rss"), {
        "allow_private": [f"127.0.0.1:{admin.port}"]})  # fmt: skip
    narrow = source("narrow", feed(feed_server, [link], path="/narrow.rss"), {
        "allow_private": True})  # fmt: skip
    configure(caulbart, wide)
    fetch(caulbart)
    assert entry(engine, "wide", link.path).has_full_text

    configure(caulbart, wide, narrow)
    fetch(caulbart)

    refused = entry(engine, "narrow", link.path)
    assert refused.full_text_error == loopback(admin)
    assert not refused.has_full_text
    assert admin.requests["/internal/report.html"] == 1
    assert feed_server.requests["/news/report"] == 2  # asked again for the narrow source
    with engine.connect() as connection:  # the page remembers the policy that fetched it
        policies = list(connection.scalars(text("SELECT policy FROM article_pages")))
    ports = sorted([feed_server.port, admin.port])
    assert policies == [f"public 127.0.0.1:{ports[0]} 127.0.0.1:{ports[1]}"]


# --- allow_private names a host and a port --------------------------------------------------


def test_allow_private_true_exempts_the_feeds_own_port_and_no_other(
    caulbart: Caulbart,
    feed_server: FeedServer,
    admin: FeedServer,
    engine: Engine,
    articles: list[Article],
) -> None:
    (_, _, own), = serve_articles(feed_server, articles[:1])  # fmt: skip
    other = serve_page(admin, "/news/other.html", articles[1])
    configure(caulbart, source("intranet", feed(feed_server, [own, other]), {
        "allow_private": True}))  # fmt: skip
    fetch(caulbart)

    assert entry(engine, "intranet", own.path).has_full_text
    refused = entry(engine, "intranet", other.path)
    assert refused.full_text_error == loopback(admin)
    assert not refused.has_full_text
    assert sum(admin.requests.values()) == 0  # not even its robots.txt


def test_allow_private_lists_further_hosts_and_ports(
    caulbart: Caulbart,
    feed_server: FeedServer,
    admin: FeedServer,
    engine: Engine,
    articles: list[Article],
) -> None:
    (_, _, own), = serve_articles(feed_server, articles[:1])  # fmt: skip
    other = serve_page(admin, "/news/other.html", articles[1])
    configure(caulbart, source("intranet", feed(feed_server, [own, other]), {
        "allow_private": [f"127.0.0.1:{admin.port}"]}))  # fmt: skip
    fetch(caulbart)

    assert entry(engine, "intranet", own.path).has_full_text
    assert entry(engine, "intranet", other.path).has_full_text


# --- feeds and probes: redirects ------------------------------------------------------------


def test_a_feed_redirecting_to_another_private_service_is_refused_and_not_described(
    caulbart: Caulbart, feed_server: FeedServer, admin: FeedServer
) -> None:
    secret = admin.add("/admin/", SECRET, content_type="text/html")
    moved = feed_server.add("/feed.rss", status=302, location=secret)
    same = feed_server.add("/old.rss", status=301, location=feed_server.url("/new.rss"))
    feed_server.add("/new.rss", channel("Moved within its own service", []))
    configure(caulbart, source("moved", moved, False), source("same", same, False))
    fetch(caulbart)

    refused = status(caulbart, "moved")
    assert refused["last_error"] == loopback(admin)
    assert status(caulbart, "same")["last_status"] == "ok"  # its own host and port: followed
    probe = caulbart("check", "--probe", "--json")
    reports = {r["source_id"]: r for r in map(json.loads, probe.stdout.splitlines())}
    assert reports["moved"]["error"] == loopback(admin)
    assert reports["same"]["ok"]
    assert admin.requests["/admin/"] == 0


def test_add_refuses_a_feed_redirecting_to_another_private_service(
    editor: Caulbart, feed_server: FeedServer, admin: FeedServer
) -> None:
    admin.add("/feed.rss", channel("Admin's feed", []))
    moved = feed_server.add("/feed.rss", status=302, location=admin.url("/feed.rss"))
    before = editor.config.read_bytes()

    result = editor("add", moved)

    assert result.returncode == 1
    assert loopback(admin) in result.stderr and "left unchanged" in result.stderr
    assert "Admin" not in result.stdout + result.stderr
    assert editor.config.read_bytes() == before
    assert sum(admin.requests.values()) == 0


# --- caulbart add: discovery ----------------------------------------------------------------


def test_add_refuses_a_discovered_feed_on_another_private_service(
    editor: Caulbart, feed_server: FeedServer, admin: FeedServer
) -> None:
    admin.add("/feeds/main.xml", channel("Admin's feed", []))
    page = HOME.replace("feeds/main.xml", admin.url("/feeds/main.xml"))
    home = feed_server.add("/planet/", page, content_type="text/html")
    before = editor.config.read_bytes()

    result = editor("add", home)

    assert result.returncode == 1
    assert loopback(admin) in result.stderr and "left unchanged" in result.stderr
    assert editor.config.read_bytes() == before
    assert sum(admin.requests.values()) == 0


def _with_base_url(editor: Caulbart, base_url: str) -> bytes:
    text = FEEDS_YAML.replace("http://caulbart.test", base_url)
    editor.config.write_text(text, encoding="utf-8")
    return editor.config.read_bytes()


@pytest.mark.parametrize("typed", ["feed", "home page"])
def test_add_refuses_caulbarts_own_site_feed(
    editor: Caulbart, feed_server: FeedServer, typed: str
) -> None:
    """The site's own feed (here, Caulbart is served under /caulbart on the same host), typed
    or announced by a page, would feed the site into itself."""
    own_feed = feed_server.add("/caulbart/feed.atom", channel("Caulbart", []))
    home = feed_server.add(
        "/home.html", HOME.replace("feeds/main.xml", own_feed), content_type="text/html"
    )
    before = _with_base_url(editor, feed_server.url("/caulbart/"))

    result = editor("add", own_feed if typed == "feed" else home)

    assert result.returncode == 1
    assert f"{own_feed} is on this site (site.base_url" in result.stderr
    assert "left unchanged" in result.stderr
    assert editor.config.read_bytes() == before
    assert yaml.safe_load(before)["sources"] == yaml.safe_load(editor.config.read_text())["sources"]


# --- robots.txt -----------------------------------------------------------------------------


def test_a_robots_txt_refused_to_one_source_is_read_for_a_source_allowed_it(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, articles: list[Article]
) -> None:
    """One pass: the public-only source's pages (and robots.txt) are refused; the source
    allowed its own host, stored after it, still reads the same host's robots.txt and page."""
    (_, _, link), = serve_articles(feed_server, articles[:1])  # fmt: skip
    public = source("public", feed(feed_server, [link], path="/public.rss"), True)
    slow = feed(feed_server, [link], path="/intranet.rss")
    feed_server.routes["/intranet.rss"].drip_delay = 0.003  # stored after the public source
    configure(caulbart, public, source("intranet", slow, {"allow_private": True}))
    fetch(caulbart)

    assert entry(engine, "public", link.path).full_text_error == loopback(feed_server)
    assert entry(engine, "intranet", link.path).has_full_text
    assert feed_server.requests["/robots.txt"] == 1


def test_a_robots_txt_redirect_refused_to_one_source_is_followed_for_a_source_allowed_it(
    caulbart: Caulbart,
    feed_server: FeedServer,
    admin: FeedServer,
    engine: Engine,
    articles: list[Article],
) -> None:
    """Both sources may read the feed's host; its robots.txt lives on a service only one of
    them may reach. The other's refusal is not cached for it."""
    (_, _, link), = serve_articles(feed_server, articles[:1])  # fmt: skip
    admin.add("/robots.txt", "User-agent: *\nAllow: /\n", content_type="text/plain")
    feed_server.add("/robots.txt", status=302, location=admin.url("/robots.txt"))
    narrow = source("narrow", feed(feed_server, [link], path="/narrow.rss"), {
        "allow_private": True})  # fmt: skip
    slow = feed(feed_server, [link], path="/wide.rss")
    feed_server.routes["/wide.rss"].drip_delay = 0.003  # stored after the narrow source
    wide = source("wide", slow, {"allow_private": [f"127.0.0.1:{admin.port}"]})
    configure(caulbart, narrow, wide)
    fetch(caulbart)

    assert entry(engine, "narrow", link.path).full_text_error == loopback(admin)
    assert entry(engine, "wide", link.path).has_full_text
    assert admin.requests["/robots.txt"] == 1
