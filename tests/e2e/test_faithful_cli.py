"""Faithful to the feed: what a feed says reaches the reader whole and unaltered in meaning.

Each test serves its own small feeds on 127.0.0.1, ingests them with the real `caulbart fetch`
(SQLite and PostgreSQL), then reads what a reader or an editor meets: the story page, our
Atom/RSS/JSON feeds, `caulbart export` and `caulbart explain`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import lxml.html
import yaml
from flask.testing import FlaskClient

from aggregator.storage.db import open_database
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from web import create_app

BASE = "http://caulbart.test"
RSS_HEAD = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>{title}</title>'
    "<link>https://{host}/</link>"
)
RSS_TAIL = "</channel></rss>"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Plenty of words: enough for the text to be matched on (limits.MIN_WORDS_FOR_TEXT_MATCH).
SUMMIT = (
    "Leaders of thirty countries met in Geneva on Monday and agreed a plan drafted by NATO "
    "officials to share the cost of air defence along the eastern border, after two days of "
    "talks that ran late into the night and ended with a joint statement read by the chair."
)


def rss(host: str, *items: str, title: str = "Wire") -> str:
    return RSS_HEAD.format(title=title, host=host) + "".join(items) + RSS_TAIL


def item(
    guid: str,
    title: str | None,
    *,
    link: str | None = None,
    description: str | None = None,
    extra: str = "",
    date: str = "Tue, 10 Nov 2026 12:00:00 GMT",
) -> str:
    """An RSS <item>; `title` and `description` are inserted as written (escape them)."""
    parts = [f"<guid isPermaLink='false'>{guid}</guid>", f"<pubDate>{date}</pubDate>"]
    if title is not None:
        parts.append(f"<title>{title}</title>")
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if description is not None:
        parts.append(f"<description>{description}</description>")
    return "<item>" + "".join(parts) + extra + "</item>"


@dataclass
class Site:
    caulbart: Caulbart
    client: FlaskClient

    def stories(self) -> list[dict[str, Any]]:
        exported = self.caulbart("export")
        assert exported.returncode == 0, exported.stderr
        return [json.loads(line) for line in exported.stdout.splitlines()]

    def story(self, title: str) -> dict[str, Any]:
        found = [s for s in self.stories() if s["title"] == title]
        assert len(found) == 1, (title, [s["title"] for s in self.stories()])
        return found[0]

    def page(self, url: str) -> Any:
        response = self.client.get(urlsplit(url).path)
        assert response.status_code == 200, (url, response.status_code)
        return response

    def html(self, url: str) -> Any:
        return lxml.html.fromstring(self.page(url).data)

    def explain(self, story_id: int) -> dict[str, Any]:
        explained = self.caulbart("explain", str(story_id), "--json")
        assert explained.returncode == 0, explained.stderr
        result: dict[str, Any] = json.loads(explained.stdout)
        return result

    def feed(self, fmt: str, path: str = "") -> Any:
        response = self.client.get(f"{path}/feed.{fmt}")
        assert response.status_code == 200, response.status_code
        if fmt == "json":
            return json.loads(response.data)
        return response.data


@contextmanager
def published(
    caulbart: Caulbart,
    feed_server: FeedServer,
    feeds: dict[str, tuple[str, dict[str, Any]]],
    **top: Any,
) -> Iterator[Site]:
    """Serve each source's document, fetch them all with the real command, open the web app."""
    sources = []
    for source_id, (body, options) in feeds.items():
        url = feed_server.add(f"/{source_id}.xml", body, content_type="application/xml")
        sources.append({"id": source_id, "url": url, **options})
    write_feeds_yaml(caulbart.config, sources, **top)
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    engine = open_database(caulbart.database_url)
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    try:
        yield Site(caulbart, app.test_client())
    finally:
        app.extensions["caulbart.feeds"].close()
        engine.dispose()


def has_control(value: object) -> bool:
    return bool(CONTROL.search(json.dumps(value, ensure_ascii=False)))


# --- a plain-text title is text -------------------------------------------------------------


def test_plain_text_title_keeps_its_literal_angle_brackets(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Zoo</title><id>urn:zoo</id><updated>2026-11-10T12:00:00Z</updated>"
        '<entry><id>urn:zoo:2</id><title type="html">Bold &lt;b&gt;move&lt;/b&gt;</title>'
        '<link href="https://zoo.example/2"/><updated>2026-11-10T12:00:00Z</updated>'
        "<summary>The keepers made a bold move today.</summary></entry></feed>"
    )
    feeds = {
        "zoo": (
            rss(
                "zoo.example",
                item(
                    "zoo-1",
                    "Nice &#x3C;gorilla&#x3E;",
                    link="https://zoo.example/1",
                    description="The gorilla is nice.",
                ),
            ),
            {"agency": "Zoo News"},
        ),
        "zoo-atom": (atom, {"agency": "Zoo Atom"}),
    }
    with published(caulbart, feed_server, feeds) as site:
        story = site.story("Nice <gorilla>")
        page = site.page(story["url"]).data.decode()
        assert '<h1 class="headline">Nice &lt;gorilla&gt;</h1>' in page
        titles = [e["title"] for e in feedparser.parse(site.feed("atom")).entries]
        assert "Nice <gorilla>" in titles
        # A title the feed marks as HTML is still read as markup: its tags are not text.
        assert site.story("Bold move")["entries"][0]["title"] == "Bold move"


# --- control characters -----------------------------------------------------------------------


def test_control_characters_never_reach_a_body_a_page_a_feed_or_the_opml(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Bell\u0085 Wire\u009c",
        "items": [
            {
                "id": "bell-1",
                "url": "https://bell.example/1",
                "title": "Bells ring out",
                "content_html": "<p>The bell\u0007 rang\u009b twice\u0001 at noon.</p>"
                "<p>Then\u0085 it rang again.</p>",
                "date_published": "2026-11-10T12:00:00Z",
                "tags": ["bel\u0090ls"],
            }
        ],
    }
    feeds = {"bell": (json.dumps(document), {"agency": "Bell Wire"})}
    with published(caulbart, feed_server, feeds) as site:
        story = site.story("Bells ring out")
        page = site.page(story["url"]).data.decode()
        assert "The bell rang twice at noon." in page
        assert not CONTROL.search(page)
        item = site.feed("json")["items"][0]
        assert not has_control(item), item
        assert "rang twice" in item["content_html"]
        for fmt in ("atom", "rss"):
            assert not CONTROL.search(site.feed(fmt).decode())
        opml = site.client.get("/sources.opml")
        assert opml.status_code == 200
        assert not CONTROL.search(opml.data.decode())


def test_import_opml_strips_control_characters_from_outline_titles(
    caulbart: Caulbart, tmp_path: Path
) -> None:
    caulbart.config.write_text(
        "site:\n  base_url: http://caulbart.test\nsources: []\n", encoding="utf-8"
    )
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0" encoding="utf-8"?><opml version="2.0"><head><title>s</title></head>'
        '<body><outline text="News\u0085 Desk\u009c" xmlUrl="http://desk.example/feed.xml"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    imported = caulbart("import-opml", str(opml))
    assert imported.returncode == 0, imported.stderr
    sources = yaml.safe_load(caulbart.config.read_text(encoding="utf-8"))["sources"]
    assert [s["name"] for s in sources] == ["News Desk"]
