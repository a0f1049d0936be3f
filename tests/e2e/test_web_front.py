"""The web front against an outside attacker: idle connections, huge numbers in addresses, a
spammer under a new name, the editors' cookie, and invisible characters that spoof text.

Through the user's paths: a real `caulbart serve` on 127.0.0.1, the web app over stories that
`caulbart fetch` ingested from a loopback feed, the `caulbart comments` commands; both databases.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aggregator.storage.db import open_database
from aggregator.storage.models import Comment
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.e2e.test_comments_web import (
    Site,
    make_app,
    pending_lines,
    reply,
    site,
    token_of,
)
from tests.e2e.test_worker import Process, processes, serving, unused_port, wait_until

__all__ = ["processes", "site", "unused_port"]  # the fixtures

HUGE = "99999999999999999999999"
BEYOND = str(2**31)  # one more than the largest id PostgreSQL's INTEGER id columns hold

# --- idle connections -----------------------------------------------------------------------

IDLE_CONNECTIONS = 150  # more than waitress's default connection limit of 100


def test_serve_still_answers_healthz_with_150_idle_connections_open(
    caulbart: Caulbart, processes: list[Process], unused_port: int
) -> None:
    write_feeds_yaml(caulbart.config, [])
    web, base = serving(caulbart, processes, unused_port, what="caulbart serve")
    idle = [socket.create_connection(("127.0.0.1", unused_port)) for _ in range(IDLE_CONNECTIONS)]
    try:
        # Generous: an answer at all is what is proved; the bench measures how fast.
        answer = httpx.get(base + "/healthz", timeout=10)
        assert answer.status_code == 200 and answer.json()["status"] == "ok"
    finally:
        for connection in idle:
            connection.close()
    assert web.stop() == 0, web.log


# --- huge numbers and odd methods -----------------------------------------------------------


def test_out_of_range_story_ids_are_404_not_500(site: Site) -> None:
    client = site.client()
    day = site.path.rsplit("/", 1)[0]
    for number in (HUGE, BEYOND):
        for path in (f"{day}/x-{number}", f"{day}/x-{number}/comments.atom"):
            assert client.get(path).status_code == 404, path
        assert client.get(f"/sitemap-stories-{number}.xml").status_code == 404
    # In range, unknown:
    assert client.get(f"{day}/x-{2**31 - 1}").status_code == 404
    assert client.get(f"/sitemap-stories-{2**31 - 1}.xml").status_code == 404
    assert client.get(site.path).status_code == 200


def test_a_reply_to_an_out_of_range_story_id_is_404(site: Site) -> None:
    client = site.client()
    form = {"csrf_token": token_of(client, site.path), "comment": "Hi", "name": "Ada"}
    form |= {"email": "ada@example.org", "url": "", "homepage": ""}
    day = site.path.rsplit("/", 1)[0]
    assert client.post(f"{day}/x-{HUGE}", data=form).status_code == 404
    assert site.stored() == 0


def test_out_of_range_ids_in_the_admin_forms_are_400(site: Site) -> None:
    site.app.config["CAULBART_ADMIN_TOKEN"] = "an-editors-token-long-enough"
    editor = site.client()
    editor.get("/admin/comments?token=an-editors-token-long-enough")
    csrf = token_of(editor, site.path)  # one token per session, whichever page shows it
    for path, action in (("/admin/comments", "spam"), ("/admin/review", "approved")):
        assert editor.get(path).status_code == 200
        for number in (HUGE, BEYOND, "-" + HUGE, "١٢"):
            sent = {"id": number, "action": action, "csrf_token": csrf}
            assert editor.post(path, data=sent).status_code == 400, (path, number)


def test_methods_other_than_get_head_options_post_are_405(site: Site) -> None:
    client = site.client()
    for method in ("PUT", "DELETE", "PATCH", "TRACE", "PROPFIND"):
        for path in ("/", site.path, "/feed.atom", "/admin/comments"):
            answer = client.open(path, method=method)
            assert answer.status_code == 405, (method, path)
            assert "GET" in answer.headers["Allow"]
    assert client.open("/", method="OPTIONS").status_code == 200
    assert client.post("/").status_code == 405  # the home page takes no form
    assert client.post("/no/such/page").status_code == 404


# --- a spammer under another name -----------------------------------------------------------

EVE = "eve@example.com"


def test_a_spam_mark_withdraws_trust_from_every_name_of_that_email(site: Site) -> None:
    client = site.client()
    reply(client, site.path, comment="A fair point about the ferry.", name="Eve", email=EVE)
    [approved] = pending_lines(site.caulbart)
    assert site.caulbart("comments", "approve", str(approved["id"])).returncode == 0
    reply(client, site.path, comment="Cheap pills here.", name="Pill Shop", email=EVE)
    assert pending_lines(site.caulbart) == []  # trusted by email: published under a new name
    with Session(site.engine) as session:
        spam = session.scalar(select(func.max(Comment.id)))
    assert site.caulbart("comments", "spam", str(spam)).returncode == 0

    reply(client, site.path, comment="Back again, as Eve.", name="Eve", email=EVE.upper())
    assert [line["name"] for line in pending_lines(site.caulbart)] == ["Eve"]
    page = site.client().get(site.path).get_data(as_text=True)
    assert "Back again" not in page


def test_an_approved_email_is_trusted_under_a_new_name(site: Site) -> None:
    client = site.client()
    reply(client, site.path, comment="First, as Ada.", name="Ada")
    [line] = pending_lines(site.caulbart)
    site.caulbart("comments", "approve", str(line["id"]))
    reply(client, site.path, comment="Now signing as A. Lovelace.", name="A. Lovelace")
    assert pending_lines(site.caulbart) == []


# --- the editors' cookie --------------------------------------------------------------------

ADMIN_TOKEN = "correct-horse-battery-staple"


@pytest.mark.parametrize("base_url", ["http://caulbart.test", "https://caulbart.test"])
def test_the_admin_cookie_holds_nothing_the_token_alone_gives(
    caulbart: Caulbart, feed_server: FeedServer, base_url: str
) -> None:
    write_feeds_yaml(caulbart.config, [], site={"title": "Caulbart", "base_url": base_url})
    engine = open_database(caulbart.database_url)
    app = make_app(caulbart, engine, CAULBART_ADMIN_TOKEN=ADMIN_TOKEN)
    editor = app.test_client()
    entered = editor.get(f"{base_url}/admin/comments?token={ADMIN_TOKEN}")
    assert entered.status_code == 303
    header = "\n".join(entered.headers.getlist("Set-Cookie"))
    guessable = hashlib.sha256(f"admin:{ADMIN_TOKEN}".encode()).hexdigest()
    assert guessable not in header and ADMIN_TOKEN not in header
    assert guessable not in _session_payloads(header)
    [admin] = [c for c in entered.headers.getlist("Set-Cookie") if "Path=/admin" in c]
    attributes = {part.strip().lower() for part in admin.split(";")}
    assert {"httponly", "samesite=strict"} <= attributes
    assert ("secure" in attributes) is base_url.startswith("https")
    assert editor.get(f"{base_url}/admin/comments").status_code == 200  # the cookie lets in
    other = make_app(caulbart, engine, CAULBART_ADMIN_TOKEN="a-different-editors-token")
    stranger = other.test_client()
    cookie = SimpleCookie()
    cookie.load(admin)
    for name, morsel in cookie.items():
        stranger.set_cookie(name, morsel.value, domain="caulbart.test", path="/admin")
    refused = stranger.get(f"{base_url}/admin/comments")
    assert refused.status_code == 401  # a changed token ends every editor's session
    app.extensions["caulbart.feeds"].close()
    other.extensions["caulbart.feeds"].close()
    engine.dispose()


def _session_payloads(header: str) -> str:
    """The readable part of Flask's signed session cookie (base64 of JSON, maybe zlib)."""
    import base64
    import zlib

    found = re.search(r"session=\.?([A-Za-z0-9_-]+)", header)
    if not found:
        return ""
    raw = found.group(1) + "=" * (-len(found.group(1)) % 4)
    data = base64.urlsafe_b64decode(raw)
    if header.split("session=", 1)[1].startswith("."):
        data = zlib.decompress(data)
    return data.decode()


def test_serve_warns_at_start_when_the_admin_token_is_short(
    caulbart: Caulbart, processes: list[Process], unused_port: int, monkeypatch: Any
) -> None:
    write_feeds_yaml(caulbart.config, [])
    monkeypatch.setenv("CAULBART_ADMIN_TOKEN", "hunter2")
    web = Process(caulbart, "serve", "--port", str(unused_port), name="web")
    processes.append(web)
    wait_until(lambda: "web listening" in web.log, timeout=60, what="caulbart serve started")
    assert web.stop() == 0, web.log
    [warning] = [line for line in web.log.splitlines() if "admin token" in line]
    assert " WARNING " in warning and "hunter2" not in warning


# --- invisible characters -------------------------------------------------------------------

BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "gnp.exe" shows as "exe.png"
INVISIBLE = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
INVISIBLE += "\u200b\u200c\u200d\u2060\ufeff"


def _spoofing_rss() -> str:
    when = format_datetime(datetime.now(UTC))
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>A</title>'
        f"<item><guid>spoof-1</guid><title>Invoice {BIDI}fdp.exe\u2066 from the\u200b harbour"
        "</title>"
        f"<link>https://agency.example/news/ferry\u200b-terminal</link>"
        f"<pubDate>{when}</pubDate><author>desk@agency.example (Ada{BIDI} Desk\u200d)</author>"
        f"<category>Fer\u200bries</category><category>{BIDI}Harbour</category>"
        f"<description>The council{BIDI} voted late\u2060 on the ferry terminal.</description>"
        "</item></channel></rss>"
    )


@pytest.fixture
def spoofed(caulbart: Caulbart, feed_server: FeedServer) -> Iterator[dict[str, Any]]:
    url = feed_server.add("/spoof.rss", _spoofing_rss(), content_type="application/rss+xml")
    write_feeds_yaml(caulbart.config, [{"id": "agency", "url": url}])
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    [story] = [json.loads(line) for line in caulbart("export").stdout.splitlines()]
    yield story


def _visible_only(text: str) -> bool:
    return not any(character in text for character in INVISIBLE)


def test_invisible_characters_are_stripped_from_headlines_tags_and_names(
    caulbart: Caulbart, spoofed: dict[str, Any]
) -> None:
    assert spoofed["title"] == "Invoice fdp.exe from the harbour"
    assert _visible_only(json.dumps(spoofed, ensure_ascii=False))
    [entry] = spoofed["entries"]
    assert entry["link"] == "https://agency.example/news/ferry%E2%80%8B-terminal"
    engine = open_database(caulbart.database_url)
    app = make_app(caulbart, engine)
    client = app.test_client()
    page = client.get(urlsplit(spoofed["url"]).path).get_data(as_text=True)
    title = re.search(r"<title>(.*?)</title>", page, re.S)
    description = re.search(r'<meta name="description" content="([^"]*)"', page)
    assert title and description
    assert _visible_only(title.group(1)) and "fdp.exe" in title.group(1)
    assert _visible_only(description.group(1)) and "voted late on" in description.group(1)
    headline = re.search(r"<h1[^>]*>(.*?)</h1>", page, re.S)
    assert headline and _visible_only(headline.group(1)) and "fdp.exe" in headline.group(1)
    assert f"Ada{BIDI}" not in page
    [item] = client.get("/feed.json").get_json()["items"]
    shown = [item["title"], *(a["name"] for a in item.get("authors", [])), *item["tags"]]
    assert "fdp.exe" in item["title"] and all(map(_visible_only, shown)), shown
    for feed in ("/feed.atom", "/feed.rss"):
        [item] = feedparser.parse(client.get(feed).data).entries
        shown = [item.title, item.get("author", ""), *(tag.term for tag in item.tags)]
        assert "fdp.exe" in item.title and all(map(_visible_only, shown)), (feed, shown)
        assert {"ferries", "harbour"} <= {text.lower() for text in shown}, (feed, shown)
    app.extensions["caulbart.feeds"].close()
    engine.dispose()


def test_invisible_characters_are_stripped_from_comment_names(site: Site) -> None:
    reply(site.client(), site.path, name=f"Ada{BIDI}\u200b Lovelace\u2069")
    assert [line["name"] for line in pending_lines(site.caulbart)] == ["Ada Lovelace"]


def test_a_comment_website_with_invisible_characters_is_refused(site: Site) -> None:
    refused = reply(site.client(), site.path, url="https://example.org/\u200bpay")
    assert refused.status_code == 422
    assert site.stored() == 0
