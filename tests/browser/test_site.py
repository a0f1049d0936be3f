"""The site in a real browser: Debian's Chromium driven by Playwright over the real app.

The newsroom's feeds are served on loopback, ingested by the real `caulbart fetch` into SQLite,
and the Flask app is served by waitress on a random port. A reader's path is followed (home,
a story, next/previous, a related post, a tag, search) with no console errors allowed; pages are
screenshot at phone and desktop widths into test-artifacts/browser/, and checked with axe-core.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregator.storage.db import open_database
from tests.conftest import IN_CI, Caulbart, FeedServer, write_feeds_yaml
from tests.newsroom import SHARED_TITLE, serve_newsroom
from web import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ROOT = Path(__file__).resolve().parent.parent.parent
AXE = Path(__file__).resolve().parent / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "browser"
WIDTHS = {"phone": (390, 844), "desktop": (1280, 900)}
SERIOUS = {"serious", "critical"}
TAGLINE = "News that matter to you."


def _missing(what: str) -> None:
    """Outside CI a missing browser piece skips with the reason; in CI it fails."""
    if IN_CI:
        pytest.fail(f"{what}: the browser tests must run in CI")
    pytest.skip(what)


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real app over a SQLite database filled by the real ingest, served by waitress."""
    from waitress.server import create_server

    folder = tmp_path_factory.mktemp("browser_site")
    feed_server = FeedServer()
    caulbart = Caulbart(folder / "feeds.yaml", f"sqlite:///{folder / 'site.sqlite3'}", folder)
    # The port is known once the server is bound; the app (whose base_url is that address, so
    # absolute links stay on this server) is created after and answers from then on.
    apps: list[Any] = []
    server = create_server(
        lambda environ, start: apps[0](environ, start), host="127.0.0.1", port=0, threads=4
    )
    base = f"http://127.0.0.1:{server.effective_port}"
    write_feeds_yaml(
        caulbart.config,
        serve_newsroom(feed_server),
        site={"title": "Caulbart", "tagline": TAGLINE, "base_url": base, "language": "en"},
    )
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    engine = open_database(caulbart.database_url)
    # Generous: the form's browser tests post several replies within a minute.
    app = create_app(
        engine, {"CAULBART_CONFIG": str(caulbart.config), "COMMENTS_RATE_LIMIT": "1000 per minute"}
    )
    apps.append(app)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield base
    server.close()
    app.extensions["caulbart.feeds"].close()
    engine.dispose()
    feed_server.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        chromium.close()


class Reader:
    """One browser page that records every console error and uncaught exception."""

    def __init__(self, browser: Any, base: str, **context: Any) -> None:
        self.context = browser.new_context(**context)
        self.page = self.context.new_page()
        self.base = base
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def open(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None
        return response

    def follow(self, selector: str) -> None:
        with self.page.expect_navigation():
            self.page.locator(selector).first.click()

    def text(self, selector: str) -> str:
        return " ".join((self.page.locator(selector).first.text_content() or "").split())

    def close(self) -> None:
        self.context.close()


def test_a_reader_follows_stories_tags_related_posts_and_search(
    browser: Any, site_url: str
) -> None:
    reader = Reader(browser, site_url)
    page = reader.page
    assert reader.open("/").status == 200
    assert reader.text("header .tagline") == TAGLINE
    assert page.locator("main h2").all_text_contents() == ["World", "Tech"]

    reader.follow(f"main a:text-is('{SHARED_TITLE}')")
    assert reader.text("main h1") == SHARED_TITLE
    assert reader.text("article .kicker") == "World"
    assert "forty Alpine glaciers" in reader.text("article .story-body")
    image = page.locator("article figure img")
    assert image.evaluate("img => img.complete && img.naturalWidth") == 800  # loaded
    assert reader.text("article figcaption") == "Image source: Photo: A. Climber / Northwire"
    assert page.locator("article .dates time").count() >= 1
    reported = page.locator("article .reported a")
    assert reported.text_content() == "Northwire"
    assert reported.get_attribute("href") == "https://northwire.example/world/glaciers"
    assert page.locator("article .also a").all_text_contents() == ["Southwire"]
    assert page.locator("article .tags a").count() >= 1
    assert reader.text("nav.post-nav .prev .label") == "Previous Article"
    assert page.locator("section.related a").count() >= 1
    assert reader.text("section.replies h2") == "Leave a Reply"
    assert "Required fields are marked *" in reader.text("section.replies")
    data = json.loads(page.locator("script[type='application/ld+json']").text_content() or "")
    assert data["@type"] == "NewsArticle" and data["headline"] == SHARED_TITLE
    story_url = page.url

    previous_title = reader.text("nav.post-nav .prev .title")
    reader.follow("nav.post-nav a[rel=prev]")
    assert reader.text("main h1") == previous_title
    reader.follow("nav.post-nav a[rel=next]")
    assert page.url == story_url

    related_title = reader.text("section.related li a")
    reader.follow("section.related li a")
    assert reader.text("main h1") == related_title

    tag = page.locator("article .tags a").first
    tag_label = tag.text_content()
    reader.follow("article .tags a")
    assert reader.text("main h1") == tag_label
    assert page.locator("main .card-title a").count() >= 1

    page.fill("#site-search", "glaciers")
    with page.expect_navigation():
        page.press("#site-search", "Enter")
    assert "/search?q=glaciers" in page.url
    assert reader.text("ol.results li h2") == SHARED_TITLE
    assert page.locator("ol.results li:first-child h2 mark").first.text_content() == "Glaciers"

    assert reader.open("/no-such-page").status == 404
    reader.errors = [e for e in reader.errors if "404" not in e]  # the 404 we asked for
    assert reader.errors == []
    reader.close()


def _pages(site_url: str, browser: Any) -> dict[str, str]:
    reader = Reader(browser, site_url)
    reader.open("/")
    story = reader.page.locator(f"main a:text-is('{SHARED_TITLE}')").get_attribute("href")
    reader.close()
    assert story
    return {
        "home": "/",
        "story": story,
        "section": "/section/world",
        "tag": "/tag/climate",
        "search": "/search?q=glaciers",
        "not-found": "/no-such-page",
    }


def test_pages_are_screenshot_at_phone_and_desktop_widths(browser: Any, site_url: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for width_name, (width, height) in WIDTHS.items():
        for scheme in ("light", "dark"):
            reader = Reader(
                browser, site_url, viewport={"width": width, "height": height},
                color_scheme=scheme,
            )  # fmt: skip
            for name, path in _pages(site_url, browser).items():
                reader.open(path)
                # Nothing wider than the screen: no sideways scrolling on a phone.
                overflow = reader.page.evaluate(
                    "document.documentElement.scrollWidth - document.documentElement.clientWidth"
                )
                assert overflow <= 0, (name, width, overflow)
                shot = ARTIFACTS / f"{name}-{width_name}-{width}px-{scheme}.png"
                reader.page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 0
            reader.close()


def test_pages_have_no_serious_accessibility_violations(browser: Any, site_url: str) -> None:
    """axe-core in the page, light and dark; serious or critical violations fail the test."""
    if not AXE.exists():
        _missing(f"{AXE} not found (npm ci --prefix tests/browser, run by make test)")
    report: dict[str, Any] = {}
    failures = []
    for scheme in ("light", "dark"):
        # The CSP rightly forbids inline script; only this test context may inject axe.
        reader = Reader(browser, site_url, bypass_csp=True, color_scheme=scheme)
        for name, path in _pages(site_url, browser).items():
            reader.open(path)
            reader.page.add_script_tag(path=str(AXE))
            result = reader.page.evaluate("async () => await axe.run(document)")
            found = [
                {"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"]),
                 "example": v["nodes"][0]["html"][:200]}
                for v in result["violations"]
            ]  # fmt: skip
            report[f"{name}-{scheme}"] = {"passes": len(result["passes"]), "violations": found}
            failures += [(name, scheme, v) for v in found if v["impact"] in SERIOUS]
        reader.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "axe-report.json").write_text(json.dumps(report, indent=2))
    assert failures == [], failures
