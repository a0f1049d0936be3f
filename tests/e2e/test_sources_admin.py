"""Source health for editors, on SQLite and PostgreSQL: sources fetched by the real `caulbart
fetch` from 127.0.0.1 (one healthy, one failing, one permanently moved), then shown by
`caulbart status` and by /admin/sources in the real web app (Flask test client)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import Engine

from aggregator.storage.db import open_database
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import Item, rss
from web import create_app

TOKEN = "editors-only-token"
# Days ago each entry of the healthy source was published; 20 is outside the 14-day window.
AGES = [0, 0, 1, 3, 3, 3, 13, 20]


def agency_feed(published: list[datetime]) -> str:
    items = [
        Item(
            guid=f"g{n}",
            title=f"Story number {n}",
            link=f"http://agency.example/{n}",
            published=when,
            description=f"Text of story {n}.",
        )
        for n, when in enumerate(published)
    ]
    return rss(*items, title="A")


@dataclass
class Desk:
    caulbart: Caulbart
    engine: Engine
    app: Flask
    expected_per_day: list[int]
    moved_from: str
    moved_to: str


@pytest.fixture
def desk(caulbart: Caulbart, feed_server: FeedServer) -> Iterator[Desk]:
    now = datetime.now(UTC).replace(microsecond=0)
    published = [now - timedelta(days=age, minutes=1) for age in AGES]
    first_day = now.date() - timedelta(days=13)
    expected = [
        sum(1 for when in published if when.date() == first_day + timedelta(days=n))
        for n in range(14)
    ]
    new_url = feed_server.add("/new.rss", agency_feed([now - timedelta(hours=1)]))
    old_url = feed_server.add("/old.rss", status=301, location=new_url)
    write_feeds_yaml(
        caulbart.config,
        [
            {"id": "healthy", "url": feed_server.add("/healthy.rss", agency_feed(published))},
            {"id": "failing", "url": feed_server.add("/failing.rss", "no", status=500)},
            {"id": "moved", "url": old_url},
        ],
    )
    for _ in range(2):  # twice: the failing source's errors are consecutive
        fetched = caulbart("fetch", "--all")
        assert fetched.returncode == 0, fetched.stderr
    engine = open_database(caulbart.database_url)
    app = create_app(
        engine,
        {
            "CAULBART_CONFIG": str(caulbart.config),
            "SECRET_KEY": "test-secret-key",
            "CAULBART_ADMIN_TOKEN": TOKEN,
        },
    )
    yield Desk(caulbart, engine, app, expected, old_url, new_url)
    app.extensions["caulbart.feeds"].close()
    engine.dispose()


def status_rows(caulbart: Caulbart) -> dict[str, dict[str, Any]]:
    result = caulbart("status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}


def test_status_shows_items_per_day_errors_next_fetch_and_redirects(desk: Desk) -> None:
    rows = status_rows(desk.caulbart)

    healthy = rows["healthy"]
    assert healthy["items_per_day"] == desk.expected_per_day
    assert sum(healthy["items_per_day"]) == 7 and healthy["entries"] == 8
    assert healthy["last_status"] == "not_modified" and healthy["consecutive_errors"] == 0
    assert healthy["last_success_at"] and healthy["next_fetch_at"]
    failing = rows["failing"]
    assert failing["consecutive_errors"] == 2
    assert failing["last_error"] == "HTTP 500 Internal Server Error"
    assert failing["last_success_at"] is None
    assert failing["items_per_day"] == [0] * 14
    assert rows["moved"]["write_back"] == desk.moved_to
    assert rows["healthy"]["write_back"] is None

    table = desk.caulbart("status")
    assert table.returncode == 0, table.stderr
    assert "Moved permanently: write the new address into feeds.yaml" in table.stdout
    assert f"moved: url: {desk.moved_to}  (was {desk.moved_from})" in table.stdout
    healthy_line = next(line for line in table.stdout.splitlines() if "│ healthy" in line)
    assert "█" in healthy_line  # the busiest day's bar in the sparkline


def test_a_redirect_written_back_into_feeds_yaml_is_no_longer_listed(desk: Desk) -> None:
    text = desk.caulbart.config.read_text(encoding="utf-8")
    desk.caulbart.config.write_text(text.replace(desk.moved_from, desk.moved_to), "utf-8")
    fetched = desk.caulbart("fetch", "--source", "moved")
    assert fetched.returncode == 0, fetched.stderr
    assert status_rows(desk.caulbart)["moved"]["write_back"] is None
    assert "Moved permanently" not in desk.caulbart("status").stdout


def test_admin_sources_needs_the_editors_token(desk: Desk) -> None:
    client = desk.app.test_client()
    refused = client.get("/admin/sources")
    assert refused.status_code == 401
    assert "failing" not in refused.get_data(as_text=True)
    wrong = client.get("/admin/sources", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401

    desk.app.config["CAULBART_ADMIN_TOKEN"] = ""
    assert client.get("/admin/sources").status_code == 404  # no token set: no admin at all


def test_admin_sources_shows_errors_counts_chart_and_redirects(desk: Desk) -> None:
    page = desk.app.test_client().get(
        "/admin/sources", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)

    failing = _row(html, "failing")
    assert "HTTP 500 Internal Server Error" in failing
    assert '<td class="errors">2</td>' in failing
    assert "never" in failing  # no success yet

    healthy = _row(html, "healthy")
    counts = ", ".join(str(n) for n in desk.expected_per_day)
    assert f'aria-label="Items per day over the last 14 days, oldest first: {counts}"' in healthy
    heights = [int(h) for h in re.findall(r'<rect [^>]*height="(\d+)"', healthy)]
    assert len(heights) == 14
    assert [h > 0 for h in heights] == [n > 0 for n in desk.expected_per_day]
    assert max(heights) == heights[desk.expected_per_day.index(max(desk.expected_per_day))]
    assert "7 in 14 days" in healthy

    assert "Moved permanently: write the new address into feeds.yaml" in html
    assert f"<code>url: {desk.moved_to}</code> (feeds.yaml says {desk.moved_from})" in html


def test_admin_sources_escapes_what_a_server_sent(desk: Desk, feed_server: FeedServer) -> None:
    """An error text comes from a remote server's reason phrase: it is shown as text."""
    hostile = feed_server.add("/hostile.rss", "<rss><channel><title>x</title></channel>")
    write_feeds_yaml(desk.caulbart.config, [{"id": "hostile", "url": hostile + "?<b>x</b>"}])
    desk.caulbart("fetch", "--all")
    page = desk.app.test_client().get(
        "/admin/sources", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    html = page.get_data(as_text=True)
    assert "?&lt;b&gt;x&lt;/b&gt;" in html and "?<b>x</b>" not in html


def _row(html: str, source_id: str) -> str:
    found = re.search(rf'<tr id="source-{source_id}".*?</tr>', html, re.DOTALL)
    assert found, f"no row for {source_id}"
    return found.group(0)
