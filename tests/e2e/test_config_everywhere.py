"""An edit to feeds.yaml reaches every command and process that depends on it, with no fetch in
between: `caulbart retag` tags with the sources' new `tags`, and a running `caulbart serve`
republishes under the new `rights`/`excerpt_only` terms (docs/feeds.md: "at once"). A broken
edit while serving keeps the last good configuration and says where the problem is."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.e2e.test_onboard_cli import channel
from tests.e2e.test_tags_cli import articles, export, feed
from tests.e2e.test_worker import Process, processes, serving, unused_port, wait_until

__all__ = ["processes", "unused_port"]  # the fixtures, shared with the worker tests

BODY_WORDS = "paragraph after paragraph"  # test_onboard_cli.channel's full text, not its summary


def story_feed(feed_server: FeedServer) -> str:
    """A feed of one story whose body says more than its summary (the lede)."""
    return feed_server.add("/a.rss", channel("A", [{"published": datetime.now(UTC), "full": True}]))


def test_retag_applies_a_source_tag_added_to_feeds_yaml_without_a_fetch(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    url = feed_server.add("/bbc.rss", feed(articles({"business": 4})))
    write_feeds_yaml(caulbart.config, [{"id": "bbc", "url": url}])
    assert caulbart("fetch", "--all").returncode == 0
    assert all("Wire desk" not in s["tags"] for s in export(caulbart).values())  # type: ignore[operator]

    write_feeds_yaml(caulbart.config, [{"id": "bbc", "url": url, "tags": ["Wire desk"]}])
    result = caulbart("retag")

    assert result.returncode == 0, result.stderr
    assert "retagged 4 stories" in result.stdout
    tags = [s["tags"] for s in export(caulbart).values()]
    assert all(t[0] == "Wire desk" for t in tags), tags  # type: ignore[index]


def _edit(path: Path, sources: list[dict[str, object]]) -> None:
    """Rewrite feeds.yaml, its modification time moved on even on a coarse-clock file system."""
    write_feeds_yaml(path, sources)
    later = time.time() + 2
    os.utime(path, (later, later))


def _serve(caulbart: Caulbart, processes: list[Process], port: int) -> str:
    return serving(caulbart, processes, port, what="caulbart serve")[1]


def _feed_item(base: str) -> dict[str, object]:
    items = httpx.get(base + "/feed.json", timeout=10).json()["items"]
    assert len(items) == 1
    return items[0]  # type: ignore[no-any-return]


def test_a_running_serve_republishes_under_terms_edited_in_feeds_yaml(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process], unused_port: int
) -> None:
    url = story_feed(feed_server)
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": url}])
    assert caulbart("fetch", "--all").returncode == 0
    base = _serve(caulbart, processes, unused_port)
    item = _feed_item(base)
    assert BODY_WORDS in str(item["content_html"])
    story_page = httpx.get(str(item["url"]).replace("http://caulbart.test", base), timeout=10)
    assert "© Agency A" not in story_page.text

    terms = {"rights": "© Agency A, all rights reserved", "excerpt_only": True}
    _edit(caulbart.config, [{"id": "a", "url": url, **terms}])

    def republished() -> bool:
        return _feed_item(base).get("_caulbart", {}).get("rights") == terms["rights"]  # type: ignore[attr-defined, no-any-return]

    wait_until(republished, timeout=20, what="the feed under the new rights")
    item = _feed_item(base)
    assert BODY_WORDS not in json.dumps(item)  # excerpt only: the lede and a link, no body
    story_page = httpx.get(str(item["url"]).replace("http://caulbart.test", base), timeout=10)
    assert terms["rights"] in story_page.text


def test_a_broken_edit_keeps_serve_on_its_last_good_config_and_names_the_line(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process], unused_port: int
) -> None:
    url = story_feed(feed_server)
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": url, "rights": "© Agency A"}])
    assert caulbart("fetch", "--all").returncode == 0
    base = _serve(caulbart, processes, unused_port)

    caulbart.config.write_text(
        "site:\n  base_url: http://caulbart.test\nsources:\n"
        f"  - id: a\n    url: {url}\n    rights: Agency B\n    excerpt_only: perhaps\n",
        encoding="utf-8",
    )
    later = time.time() + 2
    os.utime(caulbart.config, (later, later))
    web = processes[-1]

    def rejected() -> bool:
        httpx.get(base + "/", timeout=10)  # the site looks at feeds.yaml before a request
        return "excerpt_only" in web.log

    wait_until(rejected, timeout=20, what="the rejected edit logged")

    line = next(line for line in web.log.splitlines() if "excerpt_only" in line)
    assert f"{caulbart.config}:7: sources[0].excerpt_only" in line, line
    assert "true or false" in line
    for path in ("/", "/feed.json", "/feed.atom"):
        assert httpx.get(base + path, timeout=10).status_code == 200, path
    assert _feed_item(base)["_caulbart"]["rights"] == "© Agency A"  # type: ignore[index]


def test_serve_applies_an_edit_made_while_it_was_stopped(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process], unused_port: int
) -> None:
    url = story_feed(feed_server)
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": url}])
    assert caulbart("fetch", "--all").returncode == 0
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": url, "rights": "© Agency A"}])

    base = _serve(caulbart, processes, unused_port)

    assert _feed_item(base)["_caulbart"]["rights"] == "© Agency A"  # type: ignore[index]
