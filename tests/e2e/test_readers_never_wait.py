"""On the embedded default (SQLite in WAL mode) reading never waits for a writer: while an
ingest holds the write lock, pages, feeds, sitemaps, health and `caulbart export` still answer.

Until 2026-12-04 every web read began its transaction with BEGIN IMMEDIATE, the pipeline's
writers' mode: a page queued behind each ingest commit and failed after the 30 s busy
timeout. PostgreSQL readers never block on writers (MVCC), so this is about SQLite alone."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from aggregator.storage.db import open_database
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import Item, rss
from web import create_app

# Long enough for every request below on a slow machine; far below the 30 s busy timeout a
# blocked reader would wait for.
PATIENCE_SECONDS = 20


def ferry_feed() -> str:
    now = datetime.now(UTC)
    items = [
        Item(
            guid=f"n{n}",
            title=f"Harbour ferry story number {n}",
            link=f"https://agency.example/{n}",
            published=now - timedelta(hours=n),
            description=f"The harbour council met about ferry {n} and its new timetable.",
        )
        for n in range(1, 4)
    ]
    return rss(*items, title="A")


def test_pages_feeds_and_exports_answer_while_an_ingest_holds_the_write_lock(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    database = tmp_path / "caulbart.sqlite3"
    caulbart = Caulbart(tmp_path / "feeds.yaml", f"sqlite:///{database}", tmp_path)
    write_feeds_yaml(
        caulbart.config, [{"id": "agency", "url": feed_server.add("/a.rss", ferry_feed())}]
    )
    assert caulbart("fetch", "--all").returncode == 0
    story = json.loads(caulbart("export").stdout.splitlines()[0])
    engine = open_database(caulbart.database_url)
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    client = app.test_client()
    paths = [
        "/",
        "/section/news",
        urlsplit(story["url"]).path,
        "/source/agency",
        "/feed.atom",
        "/section/news/feed.json",
        "/search?q=harbour",
        "/sitemap.xml",
        "/sitemap-news.xml",
        "/sitemap-stories-1.xml",
        "/healthz",
    ]
    answered: dict[str, int] = {}
    exported: list[subprocess.CompletedProcess[str]] = []

    def read_everything() -> None:
        for path in paths:
            answered[path] = client.get(path).status_code
        exported.append(caulbart("export", timeout=PATIENCE_SECONDS))

    writer = sqlite3.connect(database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")  # what a `caulbart fetch` write group holds
    writer.execute("UPDATE sources SET consecutive_errors = consecutive_errors")
    reader = threading.Thread(target=read_everything)
    try:
        reader.start()
        reader.join(PATIENCE_SECONDS)
        still_waiting, in_time = reader.is_alive(), dict(answered)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        reader.join()
    assert not still_waiting, f"readers waited for the writer; in time only {in_time}"
    assert answered == dict.fromkeys(paths, 200)
    [export] = exported
    assert export.returncode == 0, export.stderr
    assert len(export.stdout.splitlines()) == 3
    app.extensions["caulbart.feeds"].close()
    engine.dispose()
