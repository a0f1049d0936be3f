"""Hostile feeds: each ends as a recorded error or clean stories, in bounded time and memory,
while the honest source fetched in the same pass is stored whole. One real `caulbart fetch`
against the loopback server, then assertions per hostile source."""

from __future__ import annotations

import gzip
import json
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from aggregator.storage.db import open_database, session_factory
from aggregator.storage.models import Entry, Story
from tests.conftest import Caulbart, FeedServer, corpus_path, write_feeds_yaml
from tests.feeds import rss
from tests.safety import HEADLINE_MARKUP, MARKUP, executable

CAULBART = str(Path(sys.executable).parent / "caulbart")
JSON_LD = re.compile(r'<script type="application/ld\+json">.*?</script>', re.DOTALL)
# The story page's own comment form ("Leave a Reply"): the site's, not the feed's; what readers
# write there is checked by tests/e2e/test_comments_web.py.
COMMENTS = re.compile(r'<section class="replies" id="comments".*?</section>', re.DOTALL)
FED_PARTS = re.compile(r"<head>.*?</head>|<main\b.*?</main>", re.DOTALL)
SAME_SITE = re.compile(r"^\w+\[(href|src)=/(?!/)")
LIMITS = {"timeout": "3s", "max_bytes": "5MB", "max_entries": 1000, "per_host": 8,
          "concurrency": 8}  # fmt: skip


def hostile(items: str, prolog: str = "", title: str = "Hostile") -> str:
    """A feed of hostile.test; `items` and `prolog` (a DOCTYPE) as written."""
    return rss(items, prolog=prolog, title=title, link="http://hostile.test/")


def item(title: str, n: int = 1, extra: str = "", guid: str | None = None) -> str:
    return (
        f"<item><title>{title}</title><link>http://hostile.test/{n}</link>"
        f"<guid>{guid or f'g{n}'}</guid><description>Story number {n} of the feed.</description>"
        f"{extra}</item>"
    )


def doctype_of(name: str) -> str:
    text = corpus_path("nasty", "defusedxml", name).read_text()
    return text[: text.index("]>") + 2]


def xss_payloads() -> list[str]:
    lines = corpus_path("nasty", "payloadsallthethings", "xss", "RSNAKE_XSS.txt").read_text(
        encoding="utf-8", errors="replace"
    )
    return [line for line in lines.splitlines() if line.strip()][:80]


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


@dataclass
class Pass:
    result: subprocess.CompletedProcess[str]
    seconds: float
    peak_rss_mb: float
    status: dict[str, dict[str, object]]
    database_url: str


def serve_hostile(server: FeedServer) -> list[dict[str, object]]:
    """Every hostile source, plus one honest one; returns the feeds.yaml sources."""
    port = server.port
    bomb = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    payloads = xss_payloads()
    xss_items = "".join(
        item(
            cdata(payload),
            n,
            extra=(
                f"<content:encoded>{cdata('<p>Body</p>' + payload)}</content:encoded>"
                f"<author>{cdata(payload)}</author><category>{cdata(payload)}</category>"
                f'<enclosure url="javascript:alert({n})" type="image/jpeg" length="1"/>'
                f'<media:content url="javascript:alert({n})" medium="image"/>'
            ),
        )
        for n, payload in enumerate(payloads)
    )
    routes: dict[str, dict[str, object]] = {
        "billion-laughs": {
            "body": hostile(item("&l9;"), f'<!DOCTYPE rss [<!ENTITY l0 "lol">{bomb}]>')
        },
        "quadratic": {"body": hostile(item("&a;" * 2000), doctype_of("quadratic.xml"))},
        "xxe-file": {
            "body": hostile(
                item("&xxe;"), '<!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
            )
        },
        "xxe-http": {
            "body": hostile(
                item("&xxe;"),
                f'<!DOCTYPE rss [<!ENTITY xxe SYSTEM "http://127.0.0.1:{port}/xxe-target">]>',
            )
        },
        "external-dtd": {
            "body": hostile(item("Hi"), f'<!DOCTYPE rss SYSTEM "http://127.0.0.1:{port}/evil.dtd">')
        },
        "gzip-bomb": {
            "body": gzip.compress(b"\0" * (200 * 1024 * 1024), compresslevel=9),
            "headers": {"Content-Encoding": "gzip"},
        },
        "endless": {"endless_chunk": b"<item>" * 10000},
        "body-drip": {"body": hostile(item("slow")), "drip_delay": 0.5},
        "header-drip": {"header_drip": 0.5},
        "loop": {"status": 302, "location": f"http://127.0.0.1:{port}/loop"},
        "not-found": {"body": "no", "status": 404},
        "gone": {"body": "gone", "status": 410},
        "busy": {"body": "later", "status": 429, "headers": {"Retry-After": "3600"}},
        "broken": {"body": "oops", "status": 500},
        "html": {
            "body": "<!doctype html><html><body><p>Not a feed</p></body></html>",
            "content_type": "text/html",
        },
        "empty": {"body": b""},
        "malformed": {"body": hostile(item("Unclosed <b>tag", 1) + "<item><title>Second")},
        "control-chars": {"body": hostile(item("Bell\x07 and\x01 null\x0b chars"))},
        "huge": {"body": hostile("".join(item(f"Entry {n}", n) for n in range(20000)))},
        "long-title": {"body": hostile(item("A" * 100_000))},
        "dup-guids": {
            "body": hostile("".join(item(f"Copy {n}", n, guid="same") for n in range(3)))
        },
        "bare": {
            "body": hostile(
                "<item><description>Only a description here.</description></item>"
                "<item><description>Another bare one.</description></item>"
            )
        },
        "dates": {
            "body": hostile(
                item("Future", 1, "<pubDate>Fri, 01 Jan 2100 00:00:00 GMT</pubDate>")
                + item("Garbled", 2, "<pubDate>the day after tomorrow</pubDate>")
            )
        },
        "xss": {"body": hostile(xss_items)},
    }
    for step in range(7):
        target = f"http://127.0.0.1:{port}/chain{step + 1}"
        server.add(f"/chain{step}", "", status=301, location=target)
    server.add("/chain7", hostile(item("end of chain")))
    sources: list[dict[str, object]] = [
        {"id": "chain", "url": server.url("/chain0")},
        {"id": "honest", "url": server.add_file(
            "/honest", corpus_path("feeds", "real", "wire", "reuters-worldnews-2018-01-30.rss"))},
    ]  # fmt: skip
    for name, options in routes.items():
        body = options.pop("body", b"")
        sources.append({"id": name, "url": server.add(f"/{name}", body, **options)})  # type: ignore[arg-type]
    return sources


@pytest.fixture
def hostile_pass(caulbart: Caulbart, feed_server: FeedServer) -> Pass:
    write_feeds_yaml(caulbart.config, serve_hostile(feed_server), defaults=LIMITS)
    env = {
        **os.environ,
        "CAULBART_DATABASE_URL": caulbart.database_url,
        "CAULBART_CONFIG": str(caulbart.config),
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [CAULBART, "fetch", "--all"],
        cwd=caulbart.cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    seconds = time.monotonic() - started
    # The largest resident set of any child reaped so far: an upper bound for this one.
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    rows = caulbart("status", "--json").stdout.splitlines()
    status = {row["id"]: row for row in map(json.loads, rows)}
    return Pass(result, seconds, peak, status, caulbart.database_url)


def error_of(run: Pass, source: str) -> str:
    return str(run.status[source]["last_error"] or "")


def test_hostile_feeds_end_as_recorded_errors_or_clean_stories(
    hostile_pass: Pass, feed_server: FeedServer
) -> None:
    run = hostile_pass
    assert run.result.returncode == 0, run.result.stderr[-3000:]
    assert run.seconds < 120  # every limit held: nothing hung the pass
    assert run.peak_rss_mb < 600, run.peak_rss_mb  # a 200 MB bomb never reached memory
    assert run.status["honest"]["entries"] == 10 and not error_of(run, "honest")

    # Limits are named in the recorded error.
    assert "max_bytes" in error_of(run, "gzip-bomb")
    assert "max_bytes" in error_of(run, "endless")
    assert "timeout" in error_of(run, "body-drip")
    assert "timeout" in error_of(run, "header-drip")
    assert "too many redirects" in error_of(run, "loop")
    assert "too many redirects" in error_of(run, "chain")
    assert error_of(run, "not-found").startswith("HTTP 404")
    assert error_of(run, "broken").startswith("HTTP 500")
    assert error_of(run, "busy").startswith("HTTP 429")
    assert str(run.status["gone"]["disabled_reason"]).startswith("410 Gone")
    assert error_of(run, "html").startswith("parse error: not a feed")
    assert error_of(run, "empty").startswith("parse error")

    # Nothing outside the feed was read or fetched by the XML parser.
    assert feed_server.requests["/xxe-target"] == 0
    assert feed_server.requests["/evil.dtd"] == 0

    engine = open_database(run.database_url)
    with session_factory(engine)() as session:
        entries = {e.source_id: e for e in session.scalars(select(Entry))}
        titles = {source: entry.title for source, entry in entries.items()}
        assert "root:" not in " ".join(titles.values())
        for source in ("billion-laughs", "quadratic"):
            assert len(titles.get(source, "")) <= 500  # never expanded beyond a title's limit
        assert titles["control-chars"] == "Bell and null chars"
        assert len(titles["long-title"]) <= 500
        count = {
            source: len(session.scalars(select(Entry.id).where(Entry.source_id == source)).all())
            for source in ("huge", "dup-guids", "bare", "dates", "malformed")
        }
        assert count["huge"] == 1000
        assert "only the first 1000" in str(run.result.stdout)
        assert count["dup-guids"] == 1
        assert count["bare"] == 2
        assert count["dates"] == 2
        assert count["malformed"] >= 1  # read leniently, as feedparser can
        dated = session.scalars(select(Entry).where(Entry.source_id == "dates")).all()
        assert all(entry.published.year < 2100 for entry in dated)

        xss = session.scalars(select(Entry).where(Entry.source_id == "xss")).all()
        assert len(xss) >= 60
        for entry in xss:
            assert not executable(entry.body_html), (executable(entry.body_html), entry.body_html)
            for text in (entry.lede, entry.author or "", *entry.categories):
                assert not MARKUP.search(text), text  # plain text: no tags survive, even encoded
            # A headline is text: literal brackets stay ("<XSS>"), escaped wherever it is shown.
            assert not HEADLINE_MARKUP.search(entry.title), entry.title
            for url in (entry.link, entry.image_url):
                assert url is None or url.startswith(("http://", "https://")), url
        for story in session.scalars(select(Story)):
            assert not executable(story.body_html)
            assert not HEADLINE_MARKUP.search(story.title) and not MARKUP.search(story.lede)
    engine.dispose()


def test_a_hostile_pass_leaves_every_honest_entry_exportable(
    hostile_pass: Pass, caulbart: Caulbart
) -> None:
    exported = caulbart("export")
    assert exported.returncode == 0
    stories = [json.loads(line) for line in exported.stdout.splitlines()]
    honest = [e for s in stories for e in s["entries"] if e["source"] == "honest"]
    assert len(honest) == 10
    for story in stories:
        assert str(story["url"]).startswith("http://caulbart.test/")
        for entry in story["entries"]:
            assert entry["link"] is None or entry["link"].startswith(("http://", "https://"))
            assert not HEADLINE_MARKUP.search(entry["title"])


def test_nothing_executable_reaches_a_republished_feed_or_a_page(
    hostile_pass: Pass, caulbart: Caulbart
) -> None:
    import feedparser

    from aggregator.permalinks import story_path
    from web import create_app

    engine = open_database(hostile_pass.database_url)
    client = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)}).test_client()
    checked = 0
    for fmt in ("atom", "rss"):
        page = 1
        while page and page < 60:
            response = client.get(f"/feed.{fmt}?page={page}")
            assert response.status_code == 200
            document = feedparser.parse(response.data, sanitize_html=False)
            assert not document.bozo, document.bozo_exception
            for entry in document.entries:
                for part in [*entry.get("content", []), entry.get("summary_detail", {})]:
                    assert not executable(part.get("value", "")), part.get("value")
                assert not HEADLINE_MARKUP.search(entry.get("title", ""))
                checked += 1
            page = page + 1 if any(l.rel == "next" for l in document.feed.links) else 0  # noqa: E741
    feed_json = client.get("/feed.json").get_json()
    for item in feed_json["items"]:
        assert not executable(item.get("content_html", ""))
        assert item["url"].startswith("http")
    with session_factory(engine)() as session:
        ids = set(session.scalars(select(Entry.story_id).where(Entry.source_id == "xss")))
        stories = session.scalars(select(Story).where(Story.id.in_(ids))).all()
        paths = [story_path(s.id, s.slug, s.published) for s in stories]
    assert paths
    for path in paths:
        page_html = client.get(path).get_data(as_text=True)
        # The page's own JSON-LD is a data block: taken out whole (up to its first "</script>",
        # so a headline that broke out of it would leave a <script> behind and be found).
        page_html, blocks = JSON_LD.subn("", page_html, count=1)
        assert blocks == 1, path
        page_html, forms = COMMENTS.subn("", page_html, count=1)
        assert forms == 1, path
        # Feed text reaches the head and <main>; the header and footer around them are the
        # site's own (its search form). Paths on the site itself ("/tag/...") are not code.
        fed = "".join(m.group(0) for m in FED_PARTS.finditer(page_html))
        assert "<main" in fed and "<head" in fed, path
        found = [
            f
            for f in executable(fed)
            if not f.startswith(("<meta>", "<link>")) and not SAME_SITE.match(f)
        ]
        assert not found, (path, found)
    engine.dispose()
    assert checked >= 100
