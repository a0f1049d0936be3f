"""`caulbart fetch` and `caulbart export` end to end: real server, real database, real command."""

from __future__ import annotations

import csv
import html
import itertools
import json

import pytest
import sqlalchemy

from aggregator.storage.db import ANALYZE_FLOOR_BYTES, GROWING_TABLES, analyze_grown_tables
from tests import feeds
from tests.conftest import Caulbart, FeedServer, corpus_path, write_feeds_yaml

WIRE = ("reuters-worldnews-2018-01-30.rss", "huffpost-worldnews-2019.rss")


def _serve_wire(feed_server: FeedServer) -> list[dict[str, object]]:
    sources: list[dict[str, object]] = []
    for name in WIRE:
        url = feed_server.add_file(f"/{name}", corpus_path("feeds", "real", "wire", name))
        sources.append({"id": name.split("-")[0], "url": url, "section": "world"})
    return sources


def _export(caulbart: Caulbart) -> list[dict[str, object]]:
    result = caulbart("export")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_fetch_twice_stores_each_entry_once_and_third_pass_is_all_304(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    write_feeds_yaml(caulbart.config, _serve_wire(feed_server))

    first = caulbart("fetch", "--all")
    assert first.returncode == 0, first.stderr
    assert "2 sources: 41 new" in first.stdout
    stories = _export(caulbart)
    entries = [(e["source"], e["guid"]) for s in stories for e in s["entries"]]  # type: ignore[union-attr]
    assert len(entries) == len(set(entries)) == 41

    # Second pass: the server answers 304 to the stored validators; nothing new is stored.
    second = caulbart("fetch", "--all")
    assert second.returncode == 0, second.stderr
    assert "0 new, 0 updated, 0 unchanged, 2 304, 0 error" in second.stdout
    assert _export(caulbart) == stories

    third = caulbart("fetch", "--all")
    assert "2 304" in third.stdout
    assert feed_server.requests["/reuters-worldnews-2018-01-30.rss"] == 3
    sent = feed_server.request_headers["/reuters-worldnews-2018-01-30.rss"][-1]
    assert sent.get("If-None-Match")
    assert sent["User-Agent"].startswith("Caulbart/")


def test_export_lists_every_entry_with_source_and_guid(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    write_feeds_yaml(caulbart.config, _serve_wire(feed_server))
    assert caulbart("fetch", "--all").returncode == 0
    stories = _export(caulbart)
    first = stories[0]
    assert set(first) == {
        "id", "url", "title", "published", "updated", "section", "tags", "related", "entries",
        # The editorial state (README, "Export format"): fields are only ever added.
        "review", "held", "withdrawn", "withdrawn_at", "withdrawn_reason", "pinned",
    }  # fmt: skip
    assert str(first["url"]).startswith("http://caulbart.test/")
    assert str(first["published"]).endswith("Z")
    reuters = [e for s in stories for e in s["entries"] if e["source"] == "reuters"]  # type: ignore[union-attr]
    assert len(reuters) == 10
    assert all(e["guid"] and e["title"] and e["published"] for e in reuters)


def test_broken_source_is_recorded_and_others_are_stored(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    sources = _serve_wire(feed_server)
    sources.append(
        {
            "id": "html-page",
            "url": feed_server.add(
                "/page", "<html><body>hi</body></html>", content_type="text/html"
            ),
        }
    )
    sources.append({"id": "down", "url": feed_server.add("/down", "oops", status=500)})
    write_feeds_yaml(caulbart.config, sources)
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    assert "41 new" in result.stdout
    assert "2 error" in result.stdout
    status = caulbart("status", "--json")
    rows = {row["id"]: row for row in map(json.loads, status.stdout.splitlines())}
    assert rows["html-page"]["last_error"].startswith("parse error: not a feed")
    assert rows["down"]["last_error"] == "HTTP 500 Internal Server Error"
    assert rows["down"]["consecutive_errors"] == 1
    assert rows["reuters"]["entries"] == 10


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_first_ingest_leaves_postgresql_statistics_of_the_tables_it_grew(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    """Autovacuum samples a table a minute apart at best, and a first ingest fills an empty
    database faster: with no statistics the planner scanned whole tables to look up a few keys.
    The ingest analyses the tables it doubled in size, and only those."""
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        articles = [row for _, row in zip(range(400), csv.DictReader(handle), strict=False)]
    items = "".join(
        f"<item><guid>a{n}</guid><title>{html.escape(row['title'])}</title>"
        f"<link>https://news.example/{n}</link><pubDate>Tue, 01 Sep 2026 10:00:00 GMT</pubDate>"
        f"<description>{html.escape(row['body'])}</description></item>"
        for n, row in enumerate(articles)
    )
    url = feed_server.add("/bbc.rss", f'<rss version="2.0"><channel>{items}</channel></rss>')
    write_feeds_yaml(caulbart.config, [{"id": "bbc", "url": url}])
    assert caulbart("status").returncode == 0
    engine = sqlalchemy.create_engine(caulbart.database_url)
    statistics = sqlalchemy.text(
        "SELECT relname, reltuples, pg_relation_size(oid) FROM pg_class"
        " WHERE oid = ANY(CAST(:tables AS regclass[]))"
    )
    try:
        with engine.connect() as connection:
            before = {
                row[0]: row[1] for row in connection.execute(statistics, {"tables": ["entries"]})
            }
        assert before == {"entries": -1}  # never analysed
        fetched = caulbart("fetch", "--all")
        assert fetched.returncode == 0, fetched.stderr
        with engine.connect() as connection:
            after = {
                name: (tuples, size)
                for name, tuples, size in connection.execute(
                    statistics, {"tables": list(GROWING_TABLES)}
                )
            }
            entries = connection.scalar(sqlalchemy.text("SELECT count(*) FROM entries"))
        assert entries == len(articles)
        assert after["entries"][1] > ANALYZE_FLOOR_BYTES  # below it nothing is analysed
        assert after["entries"][0] == entries  # sampled whole: the count itself
        # Tables under the floor are left to autovacuum (and there are some to look at).
        small = [tuples for tuples, size in after.values() if size <= ANALYZE_FLOOR_BYTES]
        assert small and all(tuples == -1 for tuples in small)
        assert analyze_grown_tables(engine) == []  # nothing has doubled since
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_tags_grown_past_the_floor_are_analysed_too(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    """Each batch looks its tags up by slug: on a never-analysed `tags` of some 11,000 rows
    (the 200-feed bench) those lookups took 7.7 s of a first ingest, 1.8 s once analysed."""
    name = "reuters-worldnews-2018-01-30.rss"
    url = feed_server.add_file(f"/{name}", corpus_path("feeds", "real", "wire", name))
    write_feeds_yaml(caulbart.config, [{"id": "reuters", "url": url}])
    assert caulbart("status").returncode == 0
    engine = sqlalchemy.create_engine(caulbart.database_url)
    tuples = sqlalchemy.text("SELECT reltuples FROM pg_class WHERE oid = CAST('tags' AS regclass)")
    try:
        with engine.begin() as connection:  # tags other sources brought, past the floor
            connection.execute(
                sqlalchemy.text(
                    "INSERT INTO tags (slug, label) SELECT 'tag-' || n, 'Tag ' || n"
                    " FROM generate_series(1, 6000) AS n"
                )
            )
            assert connection.scalar(tuples) == -1  # never analysed
        fetched = caulbart("fetch", "--all")
        assert fetched.returncode == 0, fetched.stderr
        with engine.connect() as connection:
            analysed = connection.scalar(tuples)
            tags = connection.scalar(sqlalchemy.text("SELECT count(*) FROM tags"))
        assert tags > 6000  # the ingest added its own
        assert analysed == tags
    finally:
        engine.dispose()


def _one_item_feeds(feed_server: FeedServer, prefix: str, count: int) -> list[dict[str, object]]:
    """`count` sources on the server's host, each a feed of one story of its own."""
    sources: list[dict[str, object]] = []
    for n in range(count):
        story = feeds.Item(f"{prefix}-{n}", f"Story {prefix} {n}", f"http://news.example/{n}")
        url = feed_server.add(f"/{prefix}{n}.rss", feeds.rss(story))
        sources.append({"id": f"{prefix}{n}", "url": url})
    return sources


def test_fetch_all_starts_requests_to_one_host_host_spacing_apart(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    write_feeds_yaml(
        caulbart.config,
        _one_item_feeds(feed_server, "s", 6),
        defaults={"per_host": 2, "host_spacing": "1s"},
    )
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    assert "6 sources: 6 new" in result.stdout
    arrivals = [moment for moment, _ in feed_server.request_log]
    assert len(arrivals) == 6
    # Each request starts a second after the one before, although two may be in flight at
    # once: per_host bounds how many, host_spacing how close. Tolerance: a request on a new
    # connection reaches the server a little later after it starts than one on a kept-alive one.
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.85, gaps


def test_fetch_all_goes_on_with_other_hosts_while_one_host_waits_its_turn(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    other = FeedServer(host="127.0.0.2")  # another host: its own budget and turns
    try:
        # The spaced host's sources come first in the pass, and two slots are all there are.
        spaced = _one_item_feeds(feed_server, "a", 3)
        elsewhere = _one_item_feeds(other, "z", 1)
        write_feeds_yaml(
            caulbart.config,
            spaced + elsewhere,
            defaults={"per_host": 2, "host_spacing": "1s", "concurrency": 2},
        )
        result = caulbart("fetch", "--all")
        assert result.returncode == 0, result.stderr
        assert "4 sources: 4 new" in result.stdout
    finally:
        other.close()
    (elsewhere_at,) = [moment for moment, _ in other.request_log]
    spaced_at = [moment for moment, _ in feed_server.request_log]
    # The other host's source is fetched while the first host waits for its next turn: a
    # request waiting for its host's turn holds none of the pass's slots.
    assert elsewhere_at < spaced_at[1], (elsewhere_at, spaced_at)
