"""aggregator.publishing.websub against a real hub on loopback."""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import parse_qs

import pytest

from aggregator.publishing import websub
from aggregator.publishing.scope import FeedQuery
from tests.conftest import FeedServer
from tests.publishing.values import SITE


def test_publish_ping_reaches_a_live_hub_and_survives_a_dead_one(feed_server: FeedServer) -> None:
    site = replace(SITE, websub_hubs=("http://127.0.0.1:9/dead-hub", feed_server.url("/hub")))
    topics = websub.topics(site, [FeedQuery(), FeedQuery("section", "world")])
    websub.notify_hubs(site, topics)
    ((path, _, body),) = feed_server.posts
    assert path == "/hub"
    form = parse_qs(body.decode())
    assert form["hub.mode"] == ["publish"]
    assert form["hub.url"] == topics
    assert "https://news.example/section/world/feed.json" in topics


def test_many_topics_go_to_the_hub_in_pings_of_a_bounded_size(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(websub.limits, "WEBSUB_TOPICS_PER_PING", 4)
    site = replace(SITE, websub_hubs=(feed_server.url("/hub"),))
    topics = websub.topics(site, [FeedQuery(), FeedQuery("tag", "a"), FeedQuery("tag", "b")])
    websub.notify_hubs(site, topics)
    sent = [parse_qs(body.decode())["hub.url"] for _, _, body in feed_server.posts]
    assert [len(urls) for urls in sent] == [4, 4, 1]
    assert [url for urls in sent for url in urls] == topics


def test_pings_asked_for_while_a_hub_is_busy_go_together_in_the_next(
    feed_server: FeedServer,
) -> None:
    site = replace(SITE, websub_hubs=(feed_server.url("/hub"),))
    pings = websub.HubPings()
    feed_server.posts_answered.clear()  # the hub holds the first ping
    try:
        pings.send(site, ["https://news.example/a"])
        for _ in range(100):
            if feed_server.posts:
                break
            time.sleep(0.05)
        pings.send(site, ["https://news.example/b", "https://news.example/c"])
        pings.send(site, ["https://news.example/b"])
        assert not pings.flush(0.2)  # waiting gives up at its timeout while the hub holds on
    finally:
        feed_server.posts_answered.set()
    assert pings.flush(10)
    sent = [parse_qs(body.decode())["hub.url"] for _, _, body in feed_server.posts]
    assert sent == [
        ["https://news.example/a"],
        ["https://news.example/b", "https://news.example/c"],
    ]


def test_pings_asked_for_during_a_pass_go_once_each_at_its_end(feed_server: FeedServer) -> None:
    site = replace(SITE, websub_hubs=(feed_server.url("/hub"),))
    pings = websub.HubPings()
    with pings.held():
        pings.send(site, ["https://news.example/feed.atom", "https://news.example/a"])
        time.sleep(0.2)  # a ping thread free to send would have sent by now
        assert not feed_server.posts
        pings.send(site, ["https://news.example/feed.atom", "https://news.example/b"])
    assert pings.flush(10)
    sent = [parse_qs(body.decode())["hub.url"] for _, _, body in feed_server.posts]
    assert sent == [
        ["https://news.example/feed.atom", "https://news.example/a", "https://news.example/b"]
    ]
