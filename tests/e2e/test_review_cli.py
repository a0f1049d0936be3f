"""`publish: review` end to end, on SQLite and PostgreSQL: stories fetched by `caulbart fetch`
from loopback HTTP are held, invisible on every page and feed (Flask test client), until
`caulbart review approve` or /admin/review publishes them; rejected ones stay hidden."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree

from aggregator.storage.db import open_database
from tests.conftest import Caulbart, FeedServer, sitemaps, write_feeds_yaml
from tests.feeds import Item, rss
from web import create_app

TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
ADMIN_TOKEN = "editors-desk-token"

DESK = [
    ("desk-1", "Lighthouse keeper retires after forty winters", "The lamp passes to his niece."),
    ("desk-2", "Glassblowers revive a forgotten cobalt recipe", "The furnace ran all night."),
]
WIRE = [("wire-1", "Tram line extension opens to the airport", "Trains run every six minutes.")]


def news_feed(items: list[tuple[str, str, str]], hours_ago: int = 1) -> str:
    now = datetime.now(UTC)
    return rss(
        *(
            Item(
                guid=guid,
                title=title,
                link=f"https://news.example/{guid}",
                published=now - timedelta(hours=hours_ago + n),
                description=text,
            )
            for n, (guid, title, text) in enumerate(items)
        ),
        title="F",
    )


@dataclass
class Desk:
    app: Flask
    caulbart: Caulbart
    feed_server: FeedServer
    paths: dict[str, str] = field(default_factory=dict)

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def stories(self) -> dict[str, dict[str, Any]]:
        """Every stored story (held ones too: export is the backup) by title."""
        exported = self.caulbart("export")
        assert exported.returncode == 0, exported.stderr
        return {s["title"]: s for s in map(json.loads, exported.stdout.splitlines())}

    def path(self, title: str) -> str:
        """The story's page path (a permalink does not change: exported once per title)."""
        if title not in self.paths:
            self.paths.update({t: urlsplit(s["url"]).path for t, s in self.stories().items()})
        return self.paths[title]

    def held(self) -> list[dict[str, Any]]:
        listed = self.caulbart("review", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        return [json.loads(line) for line in listed.stdout.splitlines()]

    def fetch(self) -> None:
        fetched = self.caulbart("fetch", "--all")
        assert fetched.returncode == 0, fetched.stderr


@pytest.fixture
def desk(caulbart: Caulbart, feed_server: FeedServer) -> Iterator[Desk]:
    sources = [
        {"id": "desk", "url": feed_server.add("/desk.rss", news_feed(DESK)), "publish": "review"},
        {"id": "wire", "url": feed_server.add("/wire.rss", news_feed(WIRE))},
    ]
    write_feeds_yaml(caulbart.config, sources)
    engine = open_database(caulbart.database_url)
    app = create_app(
        engine, {"CAULBART_CONFIG": str(caulbart.config), "SECRET_KEY": "test-secret-key"}
    )
    site = Desk(app, caulbart, feed_server)
    site.fetch()
    yield site
    app.extensions["caulbart.feeds"].close()
    engine.dispose()


def visible_everywhere(
    client: FlaskClient, title: str, path: str, source: str = "desk"
) -> dict[str, bool]:
    """Where a reader meets the story: its page, listings, feeds, search, sitemap."""
    places = {
        "home": "/",
        "section": "/section/news",
        "source page": f"/source/{source}",
        "atom": "/feed.atom",
        "rss": "/feed.rss",
        "json": "/feed.json",
        "source feed": f"/source/{source}/feed.json",
        "search": f"/search?q={title.split()[0]}",
    }
    seen = {}
    for name, url in places.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        # Search highlights the words it matched, so it is known by the link to the story.
        seen[name] = (path if name == "search" else title) in response.get_data(as_text=True)
    seen["page"] = client.get(path).status_code == 200
    seen["comments feed"] = client.get(path + "/comments.atom").status_code == 200
    seen["sitemap"] = any(
        path in etree.tostring(document).decode() for document in sitemaps(client).values()
    )
    return seen


def test_review_source_is_held_until_approved_and_rejected_stays_hidden(desk: Desk) -> None:
    held = desk.held()
    assert sorted(h["title"] for h in held) == sorted(t for _, t, _ in DESK)
    assert all(h["sources"] == ["desk"] for h in held)
    ids = {h["title"]: h["id"] for h in held}
    keeper, glass = DESK[0][1], DESK[1][1]
    client = desk.client()

    for title in (keeper, glass):
        assert not any(visible_everywhere(client, title, desk.path(title)).values()), title
    # The auto source's story is published at once.
    assert all(visible_everywhere(client, WIRE[0][1], desk.path(WIRE[0][1]), "wire").values())

    # Nor as the previous/next article of a published story.
    wire_page = desk.path(WIRE[0][1])
    around = client.get(wire_page).get_data(as_text=True)
    assert keeper not in around and glass not in around

    approved = desk.caulbart("review", "approve", str(ids[keeper]))
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip() == f"approved: {ids[keeper]}"
    assert all(visible_everywhere(client, keeper, desk.path(keeper)).values())
    assert keeper in client.get(wire_page).get_data(as_text=True)  # now its neighbour

    rejected = desk.caulbart("review", "reject", str(ids[glass]))
    assert rejected.returncode == 0, rejected.stderr
    assert not any(visible_everywhere(client, glass, desk.path(glass)).values())
    assert desk.held() == []

    # A published story is withdrawn, not rejected; unknown ids change nothing.
    refused = desk.caulbart("review", "reject", str(ids[keeper]), "99999")
    assert refused.returncode == 1
    assert "withdraw it with `caulbart unpublish`" in refused.stderr
    assert "no story 99999" in refused.stderr
    assert all(visible_everywhere(client, keeper, desk.path(keeper)).values())
    # A rejected story may still be approved later.
    assert desk.caulbart("review", "approve", str(ids[glass])).returncode == 0
    assert all(visible_everywhere(client, glass, desk.path(glass)).values())


def test_held_stories_leave_feed_versions_alone_and_approval_moves_them(desk: Desk) -> None:
    client = desk.client()
    first = client.get("/feed.atom")
    etag = first.headers["ETag"]
    section_etag = client.get("/section/news/feed.json").headers["ETag"]
    home_etag = client.get("/").headers["ETag"]

    # A new held story arrives: no feed or page changes for readers.
    late = ("desk-3", "Orchard cooperative presses its first cider", "Apples came from six farms.")
    desk.feed_server.add("/desk.rss", news_feed([late, *DESK]))
    desk.fetch()
    assert late[1] in [h["title"] for h in desk.held()]
    again = client.get("/feed.atom", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert client.get("/section/news/feed.json").headers["ETag"] == section_etag
    assert client.get("/").headers["ETag"] == home_etag

    story_id = next(h["id"] for h in desk.held() if h["title"] == late[1])
    assert desk.caulbart("review", "approve", str(story_id)).returncode == 0
    moved = client.get("/feed.atom", headers={"If-None-Match": etag})
    assert moved.status_code == 200 and moved.headers["ETag"] != etag
    assert late[1] in moved.get_data(as_text=True)
    assert client.get("/section/news/feed.json").headers["ETag"] != section_etag


def test_an_auto_source_telling_the_same_news_releases_a_held_story(desk: Desk) -> None:
    title = DESK[0][1]
    assert title in [h["title"] for h in desk.held()]
    # The wire now carries the same article (same link): the story is public through it.
    same = ("wire-2", title, DESK[0][2])
    body = news_feed([*WIRE, same]).replace(
        "https://news.example/wire-2", "https://news.example/desk-1"
    )
    desk.feed_server.add("/wire.rss", body)
    desk.fetch()
    stories = desk.stories()
    assert sorted(e["source"] for e in stories[title]["entries"]) == ["desk", "wire"]
    assert title not in [h["title"] for h in desk.held()]
    assert all(visible_everywhere(desk.client(), title, desk.path(title)).values())
    assert DESK[1][1] in [h["title"] for h in desk.held()]  # the other stays held


def test_editors_approve_and_reject_at_admin_review_with_token_and_csrf(desk: Desk) -> None:
    ids = {h["title"]: h["id"] for h in desk.held()}
    keeper, glass = DESK[0][1], DESK[1][1]
    editor = desk.client()
    assert editor.get("/admin/review").status_code == 404  # no token configured: no admin
    desk.app.config["CAULBART_ADMIN_TOKEN"] = ADMIN_TOKEN
    assert editor.get("/admin/review").status_code == 401
    assert editor.get("/admin/review", auth=("editor", "wrong")).status_code == 401
    entered = editor.get(f"/admin/review?token={ADMIN_TOKEN}")
    assert entered.status_code == 303 and entered.headers["Location"] == "/admin/review"
    queue = editor.get("/admin/review")
    assert queue.status_code == 200 and queue.headers["Cache-Control"] == "no-store"
    text = queue.get_data(as_text=True)
    assert keeper in text and glass in text and WIRE[0][1] not in text
    csrf = TOKEN_FIELD.search(text)
    assert csrf
    # A reader with a valid form token of their own (from a story page) but no admin token.
    stranger = desk.client()
    page = stranger.get(desk.path(WIRE[0][1])).get_data(as_text=True)
    own = TOKEN_FIELD.search(page)
    assert own
    forged = stranger.post(
        "/admin/review",
        data={"id": str(ids[keeper]), "action": "approved", "csrf_token": own.group(1)},
    )
    assert forged.status_code == 401
    assert keeper in [h["title"] for h in desk.held()]
    without_csrf = editor.post("/admin/review", data={"id": str(ids[keeper]), "action": "approved"})
    assert without_csrf.status_code == 400
    assert keeper in [h["title"] for h in desk.held()]

    for story_id, action in [(ids[keeper], "approved"), (ids[glass], "rejected")]:
        done = editor.post(
            "/admin/review",
            data={"id": str(story_id), "action": action, "csrf_token": csrf.group(1)},
        )
        assert done.status_code == 303, done.get_data(as_text=True)
    assert "Nothing is held." in editor.get("/admin/review").get_data(as_text=True)
    client = desk.client()
    assert all(visible_everywhere(client, keeper, desk.path(keeper)).values())
    assert not any(visible_everywhere(client, glass, desk.path(glass)).values())
    bad = editor.post(
        "/admin/review", data={"id": "99999", "action": "approved", "csrf_token": csrf.group(1)}
    )
    assert bad.status_code == 409


def test_markup_in_a_held_headline_is_escaped_on_the_admin_page(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    # As the feed's parser reads it: entities that are text, and a script that is text too.
    headline = "Tom &amp; Jerry &lt;3 [/b] <script>alert(1)</script> Harbour"
    url = feed_server.add("/x.rss", news_feed([("x-1", headline, "Body.")]))
    write_feeds_yaml(caulbart.config, [{"id": "x", "url": url, "publish": "review"}])
    assert caulbart("fetch", "--all").returncode == 0
    [held] = [json.loads(line) for line in caulbart("review", "list", "--json").stdout.splitlines()]
    assert "Jerry <3 [/b]" in held["title"]  # plain text with markup characters in it
    table = caulbart("review", "list")
    assert table.returncode == 0 and "Jerry <3 [/b]" in table.stdout, table.stderr
    assert "1 held" in table.stdout
    engine = open_database(caulbart.database_url)
    app = create_app(
        engine,
        {
            "CAULBART_CONFIG": str(caulbart.config),
            "SECRET_KEY": "k",
            "CAULBART_ADMIN_TOKEN": ADMIN_TOKEN,
        },
    )
    try:
        page = app.test_client().get(
            "/admin/review", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        text = page.get_data(as_text=True)
        assert page.status_code == 200
        assert "Tom &amp; Jerry &lt;3" in text and "Jerry <3" not in text
        assert "<script>" not in text
    finally:
        app.extensions["caulbart.feeds"].close()
        engine.dispose()
