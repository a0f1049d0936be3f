"""`caulbart fetch` and `caulbart export` end to end: real server, real database, real command."""

from __future__ import annotations

import json

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
