"""Retention end to end, on SQLite and PostgreSQL: `defaults.keep` and `caulbart prune
[--dry-run]`, `caulbart pin|unpin`, stories fetched by `caulbart fetch` from loopback HTTP,
comments posted through the story page's form; the database is left with no dangling row."""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from sqlalchemy import Engine, text

from aggregator.storage.db import open_database
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.e2e.test_worker import Process, wait_until
from tests.feeds import Item, rss
from web import create_app

TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

# (guid, days old, headline, category): the category makes a tag only that story has.
ITEMS = [
    ("old-pinned", 30, "Harbour wall rebuilt with granite from the old quarry", "Masonry"),
    ("old-commented", 20, "Harbour ferry timetable changes for the winter", "Timetables"),
    ("old-plain", 12, "Harbour lighthouse lamp replaced by volunteers", "Lighthouses"),
    ("old-pending", 10, "Harbour seals counted by schoolchildren on the pier", "Wildlife"),
    ("fresh", 0, "Harbour festival returns with boats and brass bands", "Festivals"),
]
KEEP = "7d"


def port_feed(items: list[tuple[str, int, str, str]] = ITEMS) -> str:
    now = datetime.now(UTC)
    return rss(
        *(
            Item(
                guid=guid,
                title=title,
                link=f"https://port.example/{guid}",
                categories=(category,),
                published=now - timedelta(days=days, hours=1),
                description=f"{title}. The harbour master said the work went to plan and the "
                "quay stays open to visitors.",
            )
            for guid, days, title, category in items
        ),
        title="Port news",
    )


@dataclass
class Archive:
    caulbart: Caulbart
    feed_server: FeedServer
    engine: Engine
    app: Flask
    sources: list[dict[str, object]]

    def stories(self) -> dict[str, dict[str, Any]]:
        exported = self.caulbart("export")
        assert exported.returncode == 0, exported.stderr
        by_guid = {}
        for story in map(json.loads, exported.stdout.splitlines()):
            for entry in story["entries"]:
                by_guid[entry["guid"]] = story
        return by_guid

    def keep(self, keep: str | None) -> None:
        top: dict[str, object] = {"defaults": {"keep": keep}} if keep else {}
        write_feeds_yaml(self.caulbart.config, self.sources, **top)

    def comment(self, path: str, body: str) -> None:
        """Post the story page's reply form as a reader would."""
        client = self.app.test_client()
        page = client.get(path)
        assert page.status_code == 200
        token = TOKEN_FIELD.search(page.get_data(as_text=True))
        assert token
        form = {"csrf_token": token.group(1), "comment": body, "name": "Ada"}
        form |= {"email": "ada@example.org", "url": "", "homepage": ""}
        assert client.post(path, data=form).status_code == 303

    def prune(self, *args: str) -> list[dict[str, Any]]:
        pruned = self.caulbart("prune", "--json", *args)
        assert pruned.returncode == 0, pruned.stderr
        return [json.loads(line) for line in pruned.stdout.splitlines()]


@pytest.fixture
def archive(caulbart: Caulbart, feed_server: FeedServer) -> Iterator[Archive]:
    sources: list[dict[str, object]] = [
        {"id": "port", "url": feed_server.add("/port.rss", port_feed()), "tags": ["Harbour"]}
    ]
    write_feeds_yaml(caulbart.config, sources)
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    engine = open_database(caulbart.database_url)
    app = create_app(
        engine,
        {
            "CAULBART_CONFIG": str(caulbart.config),
            "SECRET_KEY": "test-secret-key",
            "COMMENTS_RATE_LIMIT": "1000 per minute",
        },
    )
    yield Archive(caulbart, feed_server, engine, app, sources)
    app.extensions["caulbart.feeds"].close()
    engine.dispose()


def dangling_rows(engine: Engine) -> dict[str, int]:
    """Rows pointing at a story, entry or tag that is gone (all should be 0)."""
    checks = {
        "entries": "SELECT count(*) FROM entries e "
        "WHERE NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = e.story_id)",
        "matched": "SELECT count(*) FROM entries e WHERE e.matched_entry_id IS NOT NULL "
        "AND NOT EXISTS (SELECT 1 FROM entries m WHERE m.id = e.matched_entry_id)",
        "bands": "SELECT count(*) FROM entry_bands b "
        "WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.id = b.entry_id)",
        "story_tags": "SELECT count(*) FROM story_tags t "
        "WHERE NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = t.story_id)",
        "unused_tags": "SELECT count(*) FROM tags t "
        "WHERE NOT EXISTS (SELECT 1 FROM story_tags st WHERE st.tag_id = t.id)",
        "related": "SELECT count(*) FROM related_stories r WHERE "
        "NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = r.story_id) "
        "OR NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = r.related_id)",
        "comments": "SELECT count(*) FROM comments c "
        "WHERE NOT EXISTS (SELECT 1 FROM stories s WHERE s.id = c.story_id)",
        "stories_without_entries": "SELECT count(*) FROM stories s "
        "WHERE NOT EXISTS (SELECT 1 FROM entries e WHERE e.story_id = s.id)",
    }
    with engine.connect() as connection:
        found = {name: connection.execute(text(sql)).scalar_one() for name, sql in checks.items()}
        if engine.dialect.name == "sqlite":
            # FTS5 external content: the index must match the stories table row for row.
            check = "INSERT INTO stories_fts(stories_fts) VALUES ('integrity-check')"
            connection.execute(text(check))
    return found


def count(engine: Engine, table: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_prune_deletes_old_stories_keeping_pinned_and_commented(archive: Archive) -> None:
    stories = archive.stories()
    assert set(stories) == {guid for guid, *_ in ITEMS}
    paths = {guid: urlsplit(story["url"]).path for guid, story in stories.items()}
    ids = {guid: story["id"] for guid, story in stories.items()}
    archive.comment(paths["old-commented"], "I remember the summer timetable.")
    archive.comment(paths["old-pending"], "Never approved, goes with its story.")
    pending = archive.caulbart("comments", "pending")
    by_story = {line["story"]: line["id"] for line in map(json.loads, pending.stdout.splitlines())}
    approve = archive.caulbart("comments", "approve", str(by_story[ids["old-commented"]]))
    assert approve.returncode == 0, approve.stderr
    pinned = archive.caulbart("pin", str(ids["old-pinned"]))
    assert pinned.returncode == 0 and pinned.stdout.strip() == f"pinned: {ids['old-pinned']}"

    assert archive.caulbart("prune").returncode == 1  # no defaults.keep: nothing to do
    archive.keep(KEEP)
    tables = {name: count(archive.engine, name) for name in ("stories", "entries", "tags")}
    client = archive.app.test_client()
    feed_etag = client.get("/feed.atom").headers["ETag"]
    home_modified = client.get("/").headers["Last-Modified"]

    *dry, totals = archive.prune("--dry-run")
    assert sorted(line["id"] for line in dry) == sorted([ids["old-plain"], ids["old-pending"]])
    assert all(not line["deleted"] and line["entries"] == 1 for line in dry)
    assert totals["totals"] | {"cutoff": None} == {
        "cutoff": None, "stories": 2, "entries": 2, "kept_pinned": 1, "kept_commented": 1,
        "dry_run": True,
    }  # fmt: skip
    assert {name: count(archive.engine, name) for name in tables} == tables
    assert client.get("/feed.atom", headers={"If-None-Match": feed_etag}).status_code == 304

    text_out = archive.caulbart("prune")
    assert text_out.returncode == 0, text_out.stderr
    assert "deleted 2 stories and 2 entries" in text_out.stdout
    assert "kept 1 pinned and 1 with approved comments" in text_out.stdout
    assert set(archive.stories()) == {"old-pinned", "old-commented", "fresh"}
    assert count(archive.engine, "stories") == tables["stories"] - 2
    assert count(archive.engine, "comments") == 1  # the pending one went with its story
    assert dangling_rows(archive.engine) == dict.fromkeys(
        [
            "entries", "matched", "bands", "story_tags", "unused_tags", "related", "comments",
            "stories_without_entries",
        ],
        0,
    )  # fmt: skip
    # Readers: gone from pages, tags, search and feeds; the feeds' version moved.
    assert client.get(paths["old-plain"]).status_code == 404
    assert client.get("/tag/lighthouses").status_code == 404
    assert paths["old-plain"] not in client.get("/search?q=lighthouse").get_data(as_text=True)
    assert client.get(paths["old-pinned"]).status_code == 200
    moved = client.get("/feed.atom", headers={"If-None-Match": feed_etag})
    assert moved.status_code == 200 and "lighthouse" not in moved.get_data(as_text=True)
    # A reader revalidating the home page by date alone gets the page without the deleted ones.
    home = client.get("/", headers={"If-Modified-Since": home_modified})
    assert home.status_code == 200 and "lighthouse" not in home.get_data(as_text=True)

    # The feed still lists the old items: they are not stored again.
    archive.feed_server.add("/port.rss", port_feed())
    fetched = archive.caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    assert "entries older than defaults.keep skipped" in fetched.stdout
    assert set(archive.stories()) == {"old-pinned", "old-commented", "fresh"}

    # Unpinned, it goes at the next prune; a second prune finds nothing more.
    assert archive.caulbart("unpin", str(ids["old-pinned"])).returncode == 0
    *gone, _ = archive.prune()
    assert [line["id"] for line in gone] == [ids["old-pinned"]] and gone[0]["deleted"]
    assert archive.prune()[:-1] == []
    assert set(archive.stories()) == {"old-commented", "fresh"}
    assert all(value == 0 for value in dangling_rows(archive.engine).values())


def test_prune_forgets_departures_older_than_the_stories_it_keeps(archive: Archive) -> None:
    """Rows of `feed_changes` (a story lost a tag) only serve feeds' versions: the prune's own
    row moves every version anyway, so those older than its cutoff go with the stories."""
    now = datetime.now(UTC)
    with archive.engine.begin() as connection:
        for value, days in (("masonry", 30), ("festivals", 1)):
            connection.execute(
                text("INSERT INTO feed_changes (kind, value, at) VALUES ('tag', :value, :at)"),
                {"value": value, "at": (now - timedelta(days=days)).replace(tzinfo=None)},
            )
    archive.keep(KEEP)
    archive.prune()
    with archive.engine.connect() as connection:
        left = list(connection.scalars(text("SELECT value FROM feed_changes")))
    assert left == ["festivals"]


def test_pinning_an_unknown_story_pins_none(archive: Archive) -> None:
    ids = {guid: story["id"] for guid, story in archive.stories().items()}
    refused = archive.caulbart("pin", str(ids["old-pinned"]), "99999")
    assert refused.returncode == 1 and "no story 99999" in refused.stderr
    archive.keep(KEEP)
    *dry, _ = archive.prune("--dry-run")
    assert ids["old-pinned"] in [line["id"] for line in dry]  # not pinned after all


def test_keep_rejects_bad_values_with_their_line(caulbart: Caulbart) -> None:
    sources: list[dict[str, object]] = [{"id": "a", "url": "http://a.example/"}]
    write_feeds_yaml(caulbart.config, sources, defaults={"keep": "soon"})
    checked = caulbart("check")
    assert checked.returncode == 1
    assert re.search(r"feeds\.yaml:\d+: defaults\.keep: bad duration 'soon'", checked.stdout)


@pytest.fixture
def worker(archive: Archive) -> Iterator[Process]:
    """`caulbart worker` with a fast tick, killed if a test leaves it running."""
    archive.keep(KEEP)
    process = Process(archive.caulbart, "worker", "--tick", "0.3")
    yield process
    if process.popen.poll() is None:
        process.stop(signal.SIGKILL)


def test_the_worker_prunes_once_a_day_by_itself(archive: Archive, worker: Process) -> None:
    wait_until(lambda: count(archive.engine, "prunes") > 0, timeout=60, what="a prune")
    time.sleep(2)  # several more ticks: no second prune within the day
    assert worker.stop() == 0, worker.log
    assert count(archive.engine, "prunes") == 1
    assert set(archive.stories()) == {"fresh"}
    assert all(value == 0 for value in dangling_rows(archive.engine).values())
