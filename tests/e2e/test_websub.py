"""WebSub publish pings leave in the background: a hub that hangs holds up no source's ingest.

The ingest announces after every commit (aggregator.publishing.websub.announce). A hub that
takes its connection and never answers used to hold the storing thread for the ping's whole
timeout, once per source (per write group on SQLite), so a first ingest of many sources took
minutes more."""

from __future__ import annotations

import threading
import time
from collections import Counter
from subprocess import CompletedProcess
from urllib.parse import parse_qs

from sqlalchemy import func, select

from aggregator.storage.db import open_database
from aggregator.storage.models import Source
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import Item, rss

SOURCES = 40  # more than one SQLite write group (pipeline.GROUP_SOURCES, 32)


def report(number: int) -> str:
    item = Item(
        guid=f"story-{number}",
        title=f"Harbour report number {number}",
        link=f"https://news.example/{number}",
        published="Tue, 01 Sep 2026 10:00:00 GMT",
        description=f"Report {number} on the harbour, told in full.",
    )
    return rss(item, title="Wire")


def fetched_sources(database_url: str) -> int:
    engine = open_database(database_url)
    try:
        with engine.connect() as connection:
            done = select(func.count()).where(Source.last_fetch_at.is_not(None))
            return int(connection.scalar(done) or 0)
    finally:
        engine.dispose()


def test_a_hub_that_never_answers_holds_up_no_source(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    sources = [
        {"id": f"wire{n}", "url": feed_server.add(f"/wire{n}.rss", report(n))}
        for n in range(SOURCES)
    ]
    site = {
        "title": "Caulbart",
        "base_url": "http://caulbart.test",
        "websub_hubs": [feed_server.url("/hub")],
    }
    write_feeds_yaml(caulbart.config, sources, site=site)
    assert caulbart("check").returncode == 0
    feed_server.posts_answered.clear()  # the hub takes each ping and answers none
    finished: list[CompletedProcess[str]] = []
    ingest = threading.Thread(target=lambda: finished.append(caulbart("fetch", "--all")))
    ingest.start()
    try:
        # Every source is stored while the hub still holds the first ping: far sooner than the
        # ping's timeout (limits.WEBSUB_TIMEOUT) once per source or write group.
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up and not (
            feed_server.posts and fetched_sources(caulbart.database_url) == SOURCES
        ):
            time.sleep(0.2)
        assert fetched_sources(caulbart.database_url) == SOURCES
        assert feed_server.posts  # the hub was asked, and has not answered
    finally:
        feed_server.posts_answered.set()
        ingest.join(120)
    (result,) = finished
    assert result.returncode == 0, result.stderr
    told = {url for _, _, body in feed_server.posts for url in parse_qs(body.decode())["hub.url"]}
    # Pings asked for meanwhile went together; before the command ended, every feed was named.
    assert {f"http://caulbart.test/source/wire{n}/feed.atom" for n in range(SOURCES)} <= told


def test_a_pass_pings_each_hub_once_per_topic(caulbart: Caulbart, feed_server: FeedServer) -> None:
    """Every source's commit changes the site's own feeds; a pass over many sources still names
    each feed to the hub once, in pings sent together when the pass has stored them all."""
    sources = [
        {"id": f"wire{n}", "url": feed_server.add(f"/wire{n}.rss", report(n))}
        for n in range(SOURCES)
    ]
    site = {
        "title": "Caulbart",
        "base_url": "http://caulbart.test",
        "websub_hubs": [feed_server.url("/hub")],
    }
    write_feeds_yaml(caulbart.config, sources, site=site)
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    named = Counter(
        url for _, _, body in feed_server.posts for url in parse_qs(body.decode())["hub.url"]
    )
    assert named["http://caulbart.test/feed.atom"] == 1
    assert {f"http://caulbart.test/source/wire{n}/feed.json" for n in range(SOURCES)} <= set(named)
    assert [url for url, pings in named.items() if pings > 1] == []
