"""`caulbart serve --workers N`: the web front in several gunicorn processes over one database.

What each process caches (feed documents, pages' validators) must never be wrong after an
ingest made by another process: a `caulbart fetch` runs beside the server, then every answer,
whichever process gives it, carries the new story.
"""

from __future__ import annotations

import signal
import subprocess
from datetime import UTC, datetime, timedelta

import httpx

from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.e2e.test_worker import Process, processes, serving, unused_port, wait_until
from tests.feeds import Item, rss

__all__ = ["processes", "unused_port"]  # the fixtures, shared with the worker tests

REQUESTS = 40  # each on a new connection, so the processes' accept loops share them


def agency_feed(titles: list[str]) -> str:
    now = datetime.now(UTC)
    items = [
        Item(
            guid=f"g-{n}",
            title=title,
            link=f"https://agency.example/{n}",
            published=now - timedelta(minutes=n),
            description=f"{title}, in the words of the agency.",
        )
        for n, title in enumerate(titles)
    ]
    return rss(*items, title="A")


def children_of(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
    return [int(line) for line in out.stdout.split()]


def test_several_web_processes_never_serve_a_stale_cache_after_an_ingest(
    caulbart: Caulbart,
    feed_server: FeedServer,
    processes: list[Process],
    unused_port: int,
) -> None:
    first = "Harbour council approves the ferry terminal"
    later = "Observatory reopens after a winter of repairs"
    url = feed_server.add("/a.rss", agency_feed([first]))
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": url}])
    assert caulbart("fetch", "--all").returncode == 0

    web, base = serving(caulbart, processes, unused_port, "--workers", "2", what="gunicorn")

    def answers(path: str) -> list[str]:
        return [httpx.get(base + path, timeout=10).text for _ in range(REQUESTS)]

    wait_until(lambda: len(children_of(web.popen.pid)) == 2, what="two web processes")
    for path in ("/feed.atom", "/feed.json", "/"):
        assert all(first in body and later not in body for body in answers(path)), path

    feed_server.add("/a.rss", agency_feed([later, first]))
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr

    for path in ("/feed.atom", "/feed.rss", "/feed.json", "/"):
        stale = [body for body in answers(path) if later not in body]
        assert stale == [], f"{len(stale)} of {REQUESTS} answers to {path} missed the ingest"
    assert web.stop(signal.SIGTERM, timeout=30) == 0, web.log
    assert "gunicorn workers" in web.log
