"""The editors' side of the web through the real app (Flask test client), on SQLite and
PostgreSQL: sources fetched by the real `caulbart fetch` from 127.0.0.1 into every state a source
can be in (ok, failing, 410 Gone, disabled, removed from feeds.yaml, not fetched yet), a story
held for review, and replies posted through a story's form; then /admin and /admin/sources."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine

from aggregator.storage.db import open_database
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import Item, rss
from web import create_app

TOKEN = "editors-only-token-long-enough"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
# Each source's id and the state /admin/sources files it under.
STATES = {
    "agency": "ok",
    "desk": "ok",
    "failing": "failing",
    "gone": "gone",
    "paused": "disabled",
    "dropped": "removed",
    "fresh": "new",
}


def news_feed(prefix: str, count: int) -> str:
    now = datetime.now(UTC)
    return rss(
        *(
            Item(
                guid=f"{prefix}-{n}",
                title=f"{prefix.title()} story number {n} about the harbour",
                link=f"https://{prefix}.example/{n}",
                published=now - timedelta(hours=n + 1),
                description=f"What {prefix} says about the harbour, part {n}.",
            )
            for n in range(count)
        ),
        title=prefix.title(),
    )


@dataclass
class Newsroom:
    app: Flask
    engine: Engine
    caulbart: Caulbart
    story_path: str

    def editor(self) -> FlaskClient:
        return self.app.test_client()


@pytest.fixture
def newsroom(caulbart: Caulbart, feed_server: FeedServer) -> Iterator[Newsroom]:
    urls = {
        "agency": feed_server.add("/agency.rss", news_feed("agency", 2)),
        "desk": feed_server.add("/desk.rss", news_feed("desk", 1)),
        "failing": feed_server.add("/failing.rss", "no", status=500),
        "gone": feed_server.add("/gone.rss", "gone", status=410),
        "paused": feed_server.add("/paused.rss", news_feed("paused", 1)),
        "dropped": feed_server.add("/dropped.rss", news_feed("dropped", 1)),
        "fresh": feed_server.add("/fresh.rss", news_feed("fresh", 1)),
    }
    first = [
        {"id": "agency", "url": urls["agency"]},
        {"id": "desk", "url": urls["desk"], "publish": "review"},
        {"id": "failing", "url": urls["failing"]},
        {"id": "gone", "url": urls["gone"]},
        {"id": "paused", "url": urls["paused"], "enabled": False},
        {"id": "dropped", "url": urls["dropped"]},
    ]
    write_feeds_yaml(caulbart.config, first)
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    # The editor then drops a source and adds one that no pass has fetched yet.
    later = [s for s in first if s["id"] != "dropped"] + [{"id": "fresh", "url": urls["fresh"]}]
    write_feeds_yaml(caulbart.config, later)
    again = caulbart("fetch", "--source", "failing")
    assert again.returncode == 0, again.stderr
    stories = [json.loads(line) for line in caulbart("export").stdout.splitlines()]
    published = next(s for s in stories if s["review"] is None and "Agency" in s["title"])
    engine = open_database(caulbart.database_url)
    app = create_app(
        engine,
        {
            "CAULBART_CONFIG": str(caulbart.config),
            "SECRET_KEY": "test-secret-key",
            "CAULBART_ADMIN_TOKEN": TOKEN,
            "COMMENTS_RATE_LIMIT": "1000 per minute",
        },
    )
    yield Newsroom(app, engine, caulbart, urlsplit(published["url"]).path)
    app.extensions["caulbart.feeds"].close()
    engine.dispose()


def post_reply(client: FlaskClient, path: str, text: str) -> None:
    page = client.get(path)
    found = TOKEN_FIELD.search(page.get_data(as_text=True))
    assert found, "the story page has no reply form"
    form = {"csrf_token": found.group(1), "comment": text, "name": "Ada", "email": "a@b.org"}
    sent = client.post(path, data={**form, "url": "", "homepage": ""})
    assert sent.status_code == 303, sent.get_data(as_text=True)


def text_of(html: str) -> str:
    """The page's words, tags dropped and spaces collapsed, as a reader reads them."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_admin_is_a_page_behind_the_editors_token(newsroom: Newsroom) -> None:
    client = newsroom.editor()
    refused = client.get("/admin")
    assert refused.status_code == 401
    assert "Comments" not in refused.get_data(as_text=True)
    assert client.get("/admin", headers={"Authorization": "Bearer guess"}).status_code == 401

    page = client.get("/admin", headers=BEARER)
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Robots-Tag"] == "noindex, nofollow"
    html = page.get_data(as_text=True)
    assert '<meta name="robots" content="noindex, nofollow">' in html
    assert '<h1 class="page-title">Editors</h1>' in html
    assert '<a href="/" rel="home">Caulbart</a>' in html  # the site's own masthead

    newsroom.app.config["CAULBART_ADMIN_TOKEN"] = ""
    assert client.get("/admin", headers=BEARER).status_code == 404  # no token set: no admin


def test_the_token_once_in_the_address_signs_the_editor_in_for_every_admin_page(
    newsroom: Newsroom,
) -> None:
    client = newsroom.editor()
    entered = client.get(f"/admin?token={TOKEN}")
    assert entered.status_code == 303 and entered.headers["Location"] == "/admin"
    assert client.get("/admin").status_code == 200
    assert client.get("/admin/sources").status_code == 200
    assert client.get("/admin/comments").status_code == 200
    assert client.get("/admin/").headers["Location"] == "/admin"


def test_admin_links_each_queue_with_what_waits_in_it(newsroom: Newsroom) -> None:
    reader = newsroom.app.test_client()
    post_reply(reader, newsroom.story_path, "First reply.")
    post_reply(reader, newsroom.story_path, "Second reply.")

    html = newsroom.editor().get("/admin", headers=BEARER).get_data(as_text=True)
    words = text_of(html)
    assert '<a href="/admin/comments">Comments</a>' in html
    assert "Comments 2 awaiting moderation" in words
    assert '<a href="/admin/review">Review</a>' in html
    assert "Review 1 story held" in words
    assert '<a href="/admin/sources">Sources</a>' in html
    assert "Sources 6 live, 1 removed from feeds.yaml" in words
    for state, count in [("ok", 2), ("failing", 1), ("gone", 1), ("disabled", 1), ("new", 1)]:
        assert re.search(rf'<a href="/admin/sources\?state={state}">[^<]+</a>: {count}<', html)
    assert re.search(r'<a href="/admin/sources\?state=removed">[^<]+</a>: 1<', html)


def test_admin_says_when_nothing_waits(newsroom: Newsroom) -> None:
    words = text_of(newsroom.editor().get("/admin", headers=BEARER).get_data(as_text=True))
    assert "Comments 0 awaiting moderation" in words
    assert "Review 1 story held" in words


def _table(html: str, caption: str) -> str:
    found = re.search(rf"<table [^>]*>\s*<caption>{caption}.*?</table>", html, re.DOTALL)
    assert found, f"no table captioned {caption!r}"
    return found.group(0)


def _ids(table: str) -> list[str]:
    return re.findall(r'<tr id="source-([^"]+)"', table)


def test_sources_keeps_removed_sources_apart_from_live_ones(newsroom: Newsroom) -> None:
    page = newsroom.editor().get("/admin/sources", headers=BEARER)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    live = _table(html, "Live sources")
    assert _ids(live) == ["agency", "desk", "failing", "fresh", "gone", "paused"]
    removed = _table(html, "Removed from feeds.yaml")
    assert _ids(removed) == ["dropped"]
    assert "not fetched" in removed  # kept with their stories, never fetched again
    for source_id, state in STATES.items():
        row = re.search(rf'<tr id="source-{source_id}"[^>]*>', html)
        assert row and f'data-state="{state}"' in row.group(0), (source_id, row)


def test_sources_filter_by_state_with_a_link_for_each(newsroom: Newsroom) -> None:
    client = newsroom.editor()
    html = client.get("/admin/sources", headers=BEARER).get_data(as_text=True)
    nav = re.search(r'<nav class="admin-filter".*?</nav>', html, re.DOTALL)
    assert nav
    assert '<a href="/admin/sources" aria-current="page">All: 7</a>' in nav.group(0)
    for state, label, count in [
        ("ok", "OK", 2),
        ("failing", "Failing, backing off", 1),
        ("gone", "Gone (410)", 1),
        ("disabled", "Disabled", 1),
        ("new", "Not fetched yet", 1),
        ("removed", "Removed", 1),
    ]:
        assert f'<a href="/admin/sources?state={state}">{label}: {count}</a>' in nav.group(0)

    for state in ("ok", "failing", "gone", "disabled", "new", "removed"):
        page = client.get(f"/admin/sources?state={state}", headers=BEARER)
        assert page.status_code == 200
        shown = page.get_data(as_text=True)
        expected = sorted(s for s, kept in STATES.items() if kept == state)
        assert sorted(re.findall(r'<tr id="source-([^"]+)"', shown)) == expected, state
        assert f'href="/admin/sources?state={state}" aria-current="page"' in shown

    failing = client.get("/admin/sources?state=failing", headers=BEARER).get_data(as_text=True)
    assert "HTTP 500 Internal Server Error" in failing
    assert "Removed from feeds.yaml" not in failing  # an empty group is not drawn
    none = client.get("/admin/sources?state=bogus", headers=BEARER)
    assert none.status_code == 400
