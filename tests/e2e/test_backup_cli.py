"""`caulbart backup` and `caulbart restore` end to end: a site fetched by `caulbart fetch` from
loopback HTTP (a real wire feed and two small ones, one held for review), with a reader's
comment, a withdrawn and a pinned story, is backed up from SQLite, restored into PostgreSQL and
backed up again (the same records), then back into SQLite; the restored site serves the same
story page and /feed.atom. Restores into a database that holds rows, from a damaged file or from
a newer format are refused, and leave the database as it was."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import func, select

from aggregator.storage.db import open_database
from aggregator.storage.models import Comment, Source, Story
from tests import feeds
from tests.conftest import Caulbart, FeedServer, corpus_path, database_for, write_feeds_yaml
from web import create_app

TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
ATOM = {"a": "http://www.w3.org/2005/Atom"}
WIRE = "reuters-worldnews-2018-01-30.rss"
DESK = [
    ("desk-1", "Lighthouse keeper retires after forty winters", "The lamp passes to his niece."),
    ("desk-2", "Glassblowers revive a forgotten cobalt recipe", "The furnace ran all night."),
]
HARBOUR = [
    ("port-1", "Harbour cranes return after a winter of repairs", "Dockers cheered the crews."),
    ("port-2", "Ferry timetable doubles for the summer season", "Boats leave every half hour."),
    ("port-3", "Fishing fleet lands a record catch of mackerel", "Prices fell at the market."),
]


def rss(items: list[tuple[str, str, str]]) -> str:
    now = datetime.now(UTC)
    return feeds.rss(
        *(
            feeds.Item(
                guid=guid,
                title=title,
                link=f"https://news.example/{guid}",
                published=now - timedelta(hours=1 + n),
                description=f"<p>{text}</p>",
                extra=f'<enclosure url="https://news.example/{guid}.jpg" type="image/jpeg"'
                ' length="1000"/>',
            )
            for n, (guid, title, text) in enumerate(items)
        ),
        title="F",
    )


def records(path: Path) -> list[dict[str, Any]]:
    """A backup's records, the header's creation time (the one thing two backups of the same
    rows may differ in) left out."""
    with gzip.open(path, "rt", encoding="utf-8") as archive:
        lines = [json.loads(line) for line in archive]
    assert lines[0]["kind"] == "header" and lines[-1]["kind"] == "end"
    del lines[0]["created"]
    return lines


def stories(caulbart: Caulbart) -> dict[str, dict[str, Any]]:
    exported = caulbart("export")
    assert exported.returncode == 0, exported.stderr
    return {story["title"]: story for story in map(json.loads, exported.stdout.splitlines())}


@dataclass
class Site:
    """A site on SQLite, fetched and edited as an editor would."""

    caulbart: Caulbart
    feed_server: FeedServer
    paths: dict[str, str]

    @contextmanager
    def web(self, url: str) -> Iterator[FlaskClient]:
        engine = open_database(url)
        config = {"CAULBART_CONFIG": str(self.caulbart.config), "SECRET_KEY": "test-secret-key"}
        app = create_app(engine, config | {"COMMENTS_RATE_LIMIT": "1000 per minute"})
        try:
            yield app.test_client()
        finally:
            app.extensions["caulbart.feeds"].close()
            engine.dispose()


def comment(client: FlaskClient, path: str, body: str) -> None:
    """Post the story page's reply form as a reader would."""
    page = client.get(path)
    assert page.status_code == 200
    token = TOKEN_FIELD.search(page.get_data(as_text=True))
    assert token
    form = {"csrf_token": token.group(1), "comment": body, "name": "Ada"}
    form |= {"email": "ada@example.org", "url": "", "homepage": ""}
    assert client.post(path, data=form).status_code == 303


@pytest.fixture
def site(tmp_path: Path, feed_server: FeedServer) -> Iterator[Site]:
    (tmp_path / "first").mkdir()
    with database_for("sqlite", tmp_path / "first") as url:
        caulbart = Caulbart(config=tmp_path / "feeds.yaml", database_url=url, cwd=tmp_path)
        wire = feed_server.add_file("/wire.rss", corpus_path("feeds", "real", "wire", WIRE))
        sources: list[dict[str, object]] = [
            {"id": "wire", "url": wire, "section": "world"},
            {"id": "port", "url": feed_server.add("/port.rss", rss(HARBOUR)), "tags": ["Harbour"]},
            {"id": "desk", "url": feed_server.add("/desk.rss", rss(DESK)), "publish": "review"},
        ]
        sources[1] |= {"rights": "Port Gazette, used with permission"}
        write_feeds_yaml(caulbart.config, sources)
        fetched = caulbart("fetch", "--all")
        assert fetched.returncode == 0, fetched.stderr
        paths = {title: urlsplit(s["url"]).path for title, s in stories(caulbart).items()}
        built = Site(caulbart, feed_server, paths)
        with built.web(url) as client:
            comment(client, paths[HARBOUR[0][1]], "The cranes are a fine sight again.")
            comment(client, paths[HARBOUR[0][1]], "Still waiting for this one to be approved.")
        pending = caulbart("comments", "pending")
        first_comment = json.loads(pending.stdout.splitlines()[0])["id"]
        assert caulbart("comments", "approve", str(first_comment)).returncode == 0
        withdrawn = stories(caulbart)[HARBOUR[1][1]]["id"]
        unpublished = caulbart("unpublish", str(withdrawn), "--reason", "Wrong timetable")
        assert unpublished.returncode == 0, unpublished.stderr
        assert caulbart("pin", str(stories(caulbart)[HARBOUR[2][1]]["id"])).returncode == 0
        yield built


def page_and_feed(site: Site, url: str) -> dict[str, Any]:
    """What a reader sees of the site at `url`: a story page with its comment, the withdrawn
    story's answer, a search, and /feed.atom's entries."""
    with site.web(url) as client:
        page = client.get(site.paths[HARBOUR[0][1]])
        assert page.status_code == 200
        feed = etree.fromstring(client.get("/feed.atom").data)
        return {
            "page": TOKEN_FIELD.sub("", page.get_data(as_text=True)),
            "withdrawn": client.get(site.paths[HARBOUR[1][1]]).status_code,
            "search": site.paths[HARBOUR[2][1]]
            in client.get("/search?q=mackerel").get_data(as_text=True),
            "feed": [
                [
                    entry.findtext(f"a:{name}", namespaces=ATOM)
                    for name in ("id", "title", "updated")
                ]
                for entry in feed.iterfind("a:entry", ATOM)
            ],
        }


def test_a_backup_restored_into_postgresql_and_back_is_the_same_site(
    site: Site, tmp_path: Path
) -> None:
    first = tmp_path / "first.caulbart.gz"
    done = site.caulbart("backup", str(first))
    assert done.returncode == 0, done.stderr
    assert "backed up" in done.stdout and str(first) in done.stdout
    before = page_and_feed(site, site.caulbart.database_url)
    assert "The cranes are a fine sight again." in before["page"]
    assert "Still waiting" not in before["page"]
    assert before["withdrawn"] == 410 and before["search"] and before["feed"]

    (tmp_path / "pg").mkdir()
    with database_for("postgresql", tmp_path / "pg") as url:
        postgres = replace(site.caulbart, database_url=url)
        restored = postgres("restore", str(first))
        assert restored.returncode == 0, restored.stderr
        assert "restored" in restored.stdout
        second = tmp_path / "second.caulbart.gz"
        assert postgres("backup", str(second)).returncode == 0
        assert records(second) == records(first)
        assert stories(postgres) == stories(site.caulbart)
        assert page_and_feed(site, url) == before

        # The sources' fetch state came along: the wire feed is asked with its ETag (and
        # answers 304), and a new story takes an id after the restored ones.
        with gzip.open(second, "rt", encoding="utf-8") as archive:
            top = max(
                r["values"]["id"] for r in map(json.loads, archive) if r.get("table") == "stories"
            )
        site.feed_server.add(
            "/port.rss", rss([("port-4", "Lock gates open at dawn", "Tide."), *HARBOUR])
        )
        fetched = postgres("fetch", "--all")
        assert fetched.returncode == 0, fetched.stderr
        assert "If-None-Match" in site.feed_server.request_headers["/wire.rss"][-1]
        assert stories(postgres)["Lock gates open at dawn"]["id"] > top

    (tmp_path / "again").mkdir()
    with database_for("sqlite", tmp_path / "again") as url:
        again = replace(site.caulbart, database_url=url)
        assert again("restore", str(second)).returncode == 0
        third = tmp_path / "third.caulbart.gz"
        assert again("backup", str(third)).returncode == 0
        assert records(third) == records(first)


def test_export_marks_held_withdrawn_and_pinned_stories(site: Site) -> None:
    exported = stories(site.caulbart)
    held = exported[DESK[0][1]]
    assert held["held"] is True and held["review"] == "held"
    withdrawn = exported[HARBOUR[1][1]]
    assert withdrawn["withdrawn"] is True and withdrawn["withdrawn_reason"] == "Wrong timetable"
    assert withdrawn["withdrawn_at"].endswith("Z")
    assert exported[HARBOUR[2][1]]["pinned"] is True
    plain = exported[HARBOUR[0][1]]
    assert (plain["held"], plain["withdrawn"], plain["pinned"]) == (False, False, False)
    assert plain["review"] is None and plain["withdrawn_at"] is None
    # The contract's fields are all still there.
    for field in ("id", "url", "title", "published", "updated", "section", "tags", "related"):
        assert field in plain
    assert set(plain["entries"][0]) == {"source", "guid", "link", "title", "published"}


def rewritten(path: Path, target: Path, change: Any) -> Path:
    """A copy of the backup at `path` whose records `change` rewrote (a list in, a list out)."""
    with gzip.open(path, "rt", encoding="utf-8") as archive:
        lines = [json.loads(line) for line in archive]
    with gzip.open(target, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(record) + "\n" for record in change(lines))
    return target


def count(url: str, model: Any) -> int:
    engine = open_database(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


def test_restore_refuses_damaged_newer_and_non_empty_leaving_the_database_as_it_was(
    site: Site, caulbart: Caulbart, tmp_path: Path
) -> None:
    good = tmp_path / "good.caulbart.gz"
    assert site.caulbart("backup", str(good)).returncode == 0
    raw = good.read_bytes()
    refusals = {
        "cut": (tmp_path / "cut.gz", "not a readable Caulbart backup"),
        "no end": (tmp_path / "noend.gz", "cut short"),
        "spliced": (tmp_path / "spliced.gz", "do not add up"),
        "newer format": (tmp_path / "v2.gz", "format version 2 is newer"),
        "newer schema": (tmp_path / "schema.gz", "made by a newer Caulbart"),
        "not a backup": (tmp_path / "feeds.yaml", "not a readable Caulbart backup"),
    }
    refusals["cut"][0].write_bytes(raw[: len(raw) // 2])
    rewritten(good, refusals["no end"][0], lambda lines: lines[:-1])
    rewritten(good, refusals["spliced"][0], lambda lines: [*lines[:-2], lines[-1]])
    rewritten(
        good, refusals["newer format"][0], lambda lines: [lines[0] | {"version": 2}, *lines[1:]]
    )
    rewritten(
        good, refusals["newer schema"][0], lambda lines: [lines[0] | {"schema": "9999"}, *lines[1:]]
    )
    for case, (path, message) in refusals.items():
        refused = caulbart("restore", str(path))
        assert refused.returncode == 1, (case, refused.stdout, refused.stderr)
        assert message in refused.stderr, (case, refused.stderr)
        assert "Traceback" not in refused.stderr
        assert count(caulbart.database_url, Story) == 0, case

    # A backup of an older schema, before a column with a default was added (0029), restores:
    # the column takes its default. One without a default is refused with its name.
    def older(lines: list[dict[str, Any]], column: str) -> list[dict[str, Any]]:
        for record in lines[1:-1]:
            if record["table"] == "sources":
                del record["values"][column]
        return [lines[0] | {"schema": "0028"}, *lines[1:]]

    lacking = rewritten(good, tmp_path / "lacking.gz", lambda lines: older(lines, "url"))
    refused = caulbart("restore", str(lacking))
    assert refused.returncode == 1 and "lacks columns that have no default (url)" in refused.stderr
    assert count(caulbart.database_url, Story) == 0
    old = rewritten(good, tmp_path / "old.gz", lambda lines: older(lines, "repeated_items"))
    restored = caulbart("restore", str(old))
    assert restored.returncode == 0, restored.stderr
    engine = open_database(caulbart.database_url)
    with engine.connect() as connection:
        assert set(connection.scalars(select(Source.repeated_items))) == {0}
    engine.dispose()
    stored = (count(caulbart.database_url, Story), count(caulbart.database_url, Comment))
    assert stored[0] > 0 and stored[1] == 2

    again = caulbart("restore", str(good))
    assert again.returncode == 1
    assert "is not empty" in again.stderr and "nothing was changed" in again.stderr
    assert (count(caulbart.database_url, Story), count(caulbart.database_url, Comment)) == stored
