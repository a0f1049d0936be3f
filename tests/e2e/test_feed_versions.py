"""A cached feed must change when a story leaves it, though no story still in it changed.

Feeds are rendered once per version (aggregator.publishing.feed_cache.FeedCache); the version
reads only the feed's newest and latest story, never a count of its stories. These tests keep
one web process (its cache warm) while `caulbart fetch` and `caulbart retag` change the database
from another, and check that each way a story leaves a feed reaches that process's next answer."""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs

import feedparser
import pytest
from flask.testing import FlaskClient

from aggregator.storage.db import open_database
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import Item, rss
from web import create_app


@dataclass(frozen=True)
class Story:
    guid: str
    title: str
    categories: tuple[str, ...] = ()
    day: int = 1
    note: str = ""  # a sentence more: an edit of the same entry


def wire_feed(stories: list[Story]) -> str:
    items = [
        Item(
            guid=s.guid,
            title=s.title,
            link=f"https://news.example/{s.guid}",
            published=f"Tue, {s.day:02d} Sep 2026 10:00:00 GMT",
            categories=s.categories,
            description=f"<p>{html.escape(s.title)}, told in full. {s.note}</p>",
        )
        for s in stories
    ]
    return rss(*items, title="W")


@pytest.fixture
def web(caulbart: Caulbart) -> Iterator[FlaskClient]:
    """One web process for the whole test: its rendered feeds stay cached between requests."""
    engine = open_database(caulbart.database_url)
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    yield app.test_client()
    app.extensions["caulbart.feeds"].close()
    engine.dispose()


def titles(web: FlaskClient, path: str) -> list[str]:
    response = web.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return [entry.title for entry in feedparser.parse(response.data).entries]


def with_hub(feed_server: FeedServer) -> dict[str, object]:
    """feeds.yaml's site, with a WebSub hub on loopback that records the pings it hears."""
    hubs = [feed_server.url("/hub")]
    return {"title": "Caulbart", "base_url": "http://caulbart.test", "websub_hubs": hubs}


def pinged(feed_server: FeedServer, since: int = 0) -> set[str]:
    """The feeds the hub was told of, in the pings after the first `since`."""
    return {
        url
        for path, _, body in feed_server.posts[since:]
        if path == "/hub"
        for url in parse_qs(body.decode())["hub.url"]
    }


def fetch(caulbart: Caulbart) -> None:
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr


HARBOUR = Story("harbour", "Harbour ferry timetable changes", ("Harbour Board", "Ferries"), 1)
QUAY = Story("quay", "Quay lights are repaired", ("Harbour Board",), 2)


def test_a_story_that_loses_a_tag_leaves_that_tags_feed(
    caulbart: Caulbart, feed_server: FeedServer, web: FlaskClient
) -> None:
    url = feed_server.add("/wire.rss", wire_feed([HARBOUR]))
    write_feeds_yaml(caulbart.config, [{"id": "wire", "url": url}], site=with_hub(feed_server))
    fetch(caulbart)
    feed_server.add("/wire.rss", wire_feed([QUAY, HARBOUR]))  # a newer story stays in the tag
    fetch(caulbart)
    path = "/tag/harbour-board/feed.atom"
    assert sorted(titles(web, path)) == sorted([HARBOUR.title, QUAY.title])

    # The agency re-sends the first story without that category.
    pings = len(feed_server.posts)
    edited = Story(HARBOUR.guid, HARBOUR.title, ("Ferries",), 1, "Times from Monday.")
    feed_server.add("/wire.rss", wire_feed([QUAY, edited]))
    fetch(caulbart)
    assert titles(web, path) == [QUAY.title]
    assert titles(web, "/tag/ferries/feed.atom") == [HARBOUR.title]
    # The hub hears of the feed the story left, though the story no longer names it.
    assert f"http://caulbart.test{path}" in pinged(feed_server, pings)


def test_retag_after_an_editors_rule_reaches_every_cached_feed(
    caulbart: Caulbart, feed_server: FeedServer, web: FlaskClient
) -> None:
    url = feed_server.add("/wire.rss", wire_feed([HARBOUR, QUAY]))
    source = {"id": "wire", "url": url, "section": "world"}
    write_feeds_yaml(caulbart.config, [source], site=with_hub(feed_server))
    fetch(caulbart)
    paths = ["/feed.atom", "/section/world/feed.atom", "/source/wire/feed.atom"]
    for path in paths:
        assert "Ferries" in web.get(path).get_data(as_text=True)
    tag_feed = "/tag/ferries/feed.atom"
    assert titles(web, tag_feed) == [HARBOUR.title]

    write_feeds_yaml(
        caulbart.config, [source], site=with_hub(feed_server), tags={"ignore": ["Ferries"]}
    )
    pings = len(feed_server.posts)
    result = caulbart("retag")
    assert result.returncode == 0, result.stderr
    for path in paths:
        assert "Ferries" not in web.get(path).get_data(as_text=True), path
    assert titles(web, tag_feed) == []  # no story has the tag any more
    # One ping names every feed that changed: those the stories are in and the one they left.
    assert len(feed_server.posts) == pings + 1
    told = pinged(feed_server, pings)
    assert {f"http://caulbart.test{path}" for path in [*paths, tag_feed]} <= told
    assert "http://caulbart.test/tag/harbour-board/feed.json" in told
