"""Comments through the real web app (Flask test client) and the real `caulbart comments`
commands, on SQLite and PostgreSQL: a story ingested by `caulbart fetch` from loopback HTTP,
replies posted through its form, moderated from the command line and /admin/comments."""

from __future__ import annotations

import json
import logging
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from aggregator.storage.db import open_database
from aggregator.storage.models import Comment
from tests.conftest import Caulbart, FeedServer, recorded_statements, write_feeds_yaml
from tests.feeds import Item, rss
from web import create_app

EMAIL = "ada.private@example.org"
AWAITING = "Your comment is awaiting moderation"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


STORIES = [
    (1, "Harbour council approves the new ferry terminal", "The vote was close."),
    (2, "Museum reopens its observatory after repairs", "Visitors queued early."),
]


def agency_feed(stories: list[tuple[int, str, str]] = STORIES) -> str:
    now = datetime.now(UTC)
    return rss(
        *(
            Item(
                guid=f"story-{n}",
                title=title,
                link=f"https://agency.example/{n}",
                published=now - timedelta(hours=n),
                description=text,
            )
            for n, title, text in stories
        ),
        title="Agency",
    )


@dataclass
class Site:
    app: Flask
    engine: Engine
    caulbart: Caulbart
    path: str  # the first story's page
    story_id: int
    other_path: str

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def stored(self) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(select(func.count()).select_from(Comment)) or 0)


def make_app(caulbart: Caulbart, engine: Engine, **config: Any) -> Flask:
    return create_app(
        engine,
        {"CAULBART_CONFIG": str(caulbart.config), "SECRET_KEY": "test-secret-key", **config},
    )


@pytest.fixture
def site(caulbart: Caulbart, feed_server: FeedServer) -> Iterator[Site]:
    url = feed_server.add("/agency.rss", agency_feed())
    write_feeds_yaml(caulbart.config, [{"id": "agency", "url": url}])
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    exported = caulbart("export")
    stories = sorted(
        (json.loads(line) for line in exported.stdout.splitlines()), key=lambda s: s["id"]
    )
    assert len(stories) == 2
    engine = open_database(caulbart.database_url)
    # Generous here; the flood test below uses the shipped default limit.
    app = make_app(caulbart, engine, COMMENTS_RATE_LIMIT="1000 per minute")
    yield Site(
        app,
        engine,
        caulbart,
        urlsplit(stories[0]["url"]).path,
        stories[0]["id"],
        urlsplit(stories[1]["url"]).path,
    )
    app.extensions["caulbart.feeds"].close()
    engine.dispose()


def token_of(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200
    found = TOKEN_FIELD.search(page.get_data(as_text=True))
    assert found, "the story page has no reply form"
    return found.group(1)


def reply(client: FlaskClient, path: str, **fields: str) -> Any:
    """Post the story page's form as a browser would: its token, then the fields."""
    form = {
        "csrf_token": token_of(client, path),
        "comment": "Good to see the ferry back.",
        "name": "Ada",
        "email": EMAIL,
        "url": "",
        "homepage": "",
    }
    form.update(fields)
    return client.post(path, data=form)


def pending_lines(caulbart: Caulbart) -> list[dict[str, Any]]:
    result = caulbart("comments", "pending")
    assert result.returncode == 0, result.stderr
    assert EMAIL not in result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_reply_awaits_moderation_for_its_author_only_then_shows_once_approved(
    site: Site,
) -> None:
    author, reader = site.client(), site.client()
    sent = reply(author, site.path, comment="Good to see the ferry back.\nAbout time.")
    assert sent.status_code == 303
    assert sent.headers["Location"].endswith(f"{site.path}#comments")

    own = author.get(site.path).get_data(as_text=True)
    assert AWAITING in own and "Good to see the ferry back.<br>\nAbout time." in own
    other = reader.get(site.path).get_data(as_text=True)
    assert AWAITING not in other and "Good to see the ferry back." not in other
    assert "No comments yet." in other
    assert AWAITING not in author.get(site.other_path).get_data(as_text=True)

    [line] = pending_lines(site.caulbart)
    assert set(line) == {"id", "story", "name", "excerpt", "created"}
    assert (line["story"], line["name"]) == (site.story_id, "Ada")
    assert line["excerpt"] == "Good to see the ferry back. About time."
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line["created"])

    approved = site.caulbart("comments", "approve", str(line["id"]))
    assert approved.returncode == 0, approved.stderr
    assert pending_lines(site.caulbart) == []

    shown = reader.get(site.path).get_data(as_text=True)
    assert "1 Comment" in shown and "Good to see the ferry back.<br>\nAbout time." in shown
    assert f'id="comment-{line["id"]}"' in shown and '<span class="comment-author">Ada' in shown
    assert AWAITING not in author.get(site.path).get_data(as_text=True)
    count = f'<a class="comment-count" href="{site.path}#comments">1 Comment</a>'
    for listing in ("/", "/source/agency"):
        page = reader.get(listing).get_data(as_text=True)
        assert page.count(count) == 1, listing
        assert page.count('class="comment-count"') == 1, listing  # none for the other story
    feed = feedparser.parse(reader.get(site.path + "/comments.atom").data)
    assert [e.title for e in feed.entries] == ["Comment by Ada"]
    assert "About time." in feed.entries[0].content[0].value


def test_the_website_links_the_name_with_nofollow_ugc(site: Site) -> None:
    client = site.client()
    reply(client, site.path, url="https://ada.example/about?x=1&y=2")
    [line] = pending_lines(site.caulbart)
    site.caulbart("comments", "approve", str(line["id"]))
    page = site.client().get(site.path).get_data(as_text=True)
    assert '<a href="https://ada.example/about?x=1&amp;y=2" rel="nofollow ugc">Ada</a>' in page


def test_missing_and_invalid_fields_are_shown_next_to_them_with_the_input_kept(
    site: Site,
) -> None:
    client = site.client()
    answer = reply(
        client, site.path, comment="  ", name="Ada", email="not-an-email", url="ftp://ada.example"
    )
    assert answer.status_code == 422
    page = answer.get_data(as_text=True)
    assert "Your comment was not sent" in page
    for field, message in [
        ("comment", "Please write a comment."),
        ("email", "Please give a valid email address"),
        ("url", "starting with http:// or https://"),
    ]:
        error = re.search(
            rf'<span class="field-error" id="reply-{field}-error">([^<]*)</span>', page
        )
        assert error and message in error.group(1), field
        assert f'aria-describedby="reply-{field}-error"' in page
    assert 'id="reply-name-error"' not in page
    assert 'value="Ada"' in page and 'value="not-an-email"' in page
    assert 'value="ftp://ada.example"' in page
    missing = reply(client, site.path, comment="Kept text", name="", email="")
    text = missing.get_data(as_text=True)
    assert missing.status_code == 422 and ">Kept text</textarea>" in text
    assert "Please give your name." in text and "Please give your email address" in text
    too_long = reply(client, site.path, comment="x" * 5001)
    assert too_long.status_code == 422 and "the limit is 5000" in too_long.get_data(as_text=True)
    assert site.stored() == 0


def test_a_post_without_a_valid_csrf_token_is_refused_and_nothing_stored(site: Site) -> None:
    client, stranger = site.client(), site.client()
    fields = {"comment": "Hello", "name": "Ada", "email": EMAIL}
    assert client.post(site.path, data=fields).status_code == 400
    token_of(client, site.path)  # the session now has a token, but the form does not send it
    assert client.post(site.path, data={**fields, "csrf_token": "forged"}).status_code == 400
    assert client.post(site.path, data={**fields, "csrf_token": "é"}).status_code == 400
    # Another reader's token is no good in this reader's session.
    theirs = token_of(stranger, site.path)
    refused = client.post(site.path, data={**fields, "csrf_token": theirs})
    assert refused.status_code == 400
    assert "Please reload the story" in refused.get_data(as_text=True)
    assert site.stored() == 0
    assert reply(client, site.path).status_code == 303  # with its own token it goes through
    assert site.stored() == 1


def test_a_filled_honeypot_is_discarded_with_the_answer_of_a_success(site: Site) -> None:
    client = site.client()
    trapped = reply(client, site.path, homepage="https://spam.example")
    genuine = reply(site.client(), site.path)
    assert trapped.status_code == genuine.status_code == 303
    assert trapped.headers["Location"] == genuine.headers["Location"]
    assert site.stored() == 1  # the genuine one only
    assert AWAITING not in client.get(site.path).get_data(as_text=True)


def test_a_flood_of_replies_is_answered_429(site: Site) -> None:
    app = make_app(site.caulbart, site.engine)  # the shipped default: 5 per minute
    client = app.test_client()
    answers = [reply(client, site.path, comment=f"Reply {n}").status_code for n in range(6)]
    assert answers == [303] * 5 + [429]
    refused = reply(client, site.path, comment="One more")
    assert refused.status_code == 429
    assert "Too many comments" in refused.get_data(as_text=True)
    assert refused.headers["Retry-After"]
    assert site.stored() == 5
    app.extensions["caulbart.feeds"].close()


HOSTILE = {
    "comment": '<script>alert("c")</script><img src=x onerror=alert(1)> see '
    'https://ok.example/"><script>alert(2)</script>',
    "name": '<b onmouseover="alert(3)">Ada</b>',
    "url": 'https://ada.example/?q="><script>alert(4)</script>',
}


def assert_inert(text: str) -> None:
    for raw in ("<script>alert", "<img src=x", "<b onmouseover", '"><script>'):
        assert raw not in text, raw


def test_markup_in_every_field_is_shown_as_text(site: Site) -> None:
    author = site.client()
    # On the error page (the reader's input kept in the form) ...
    refused = reply(author, site.path, **HOSTILE, email='"><script>alert(5)</script>')
    assert refused.status_code == 422
    assert_inert(refused.get_data(as_text=True))
    assert "&lt;b onmouseover=&#34;alert(3)&#34;&gt;Ada&lt;/b&gt;" in refused.get_data(as_text=True)
    # ... while awaiting moderation ...
    assert reply(author, site.path, **HOSTILE).status_code == 303
    own = author.get(site.path).get_data(as_text=True)
    assert AWAITING in own
    assert_inert(own)
    # ... once approved, on the page, in the admin queue and in the comments feed.
    [line] = pending_lines(site.caulbart)
    assert line["name"] == HOSTILE["name"]  # JSON carries the text as it was written
    site.caulbart("comments", "approve", str(line["id"]))
    page = site.client().get(site.path).get_data(as_text=True)
    assert_inert(page)
    assert "&lt;script&gt;alert(&#34;c&#34;)&lt;/script&gt;" in page
    assert '<a href="https://ok.example/" rel="nofollow ugc noopener">https://ok.example/</a>' in (
        page
    )
    assert 'href="https://ada.example/?q=&#34;&gt;&lt;script&gt;alert(4)&lt;/script&gt;"' in page
    feed = site.client().get(site.path + "/comments.atom")
    parsed = feedparser.parse(feed.data)
    assert parsed.entries[0].author == HOSTILE["name"]  # text in XML, escaped by the writer
    assert_inert(parsed.entries[0].content[0].value)


def test_the_email_is_never_published_nor_logged(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    author = site.client()
    assert reply(author, site.path).status_code == 303
    assert reply(author, site.path, comment="Second thoughts.").status_code == 303
    lines = pending_lines(site.caulbart)
    verbose = site.caulbart("-vv", "comments", "approve", str(lines[0]["id"]))
    assert verbose.returncode == 0 and EMAIL not in verbose.stdout + verbose.stderr
    token = "admin-token-for-tests"
    site.app.config["CAULBART_ADMIN_TOKEN"] = token
    reader = site.client()
    paths = [
        site.path,
        site.path + "/comments.atom",
        "/",
        "/feed.atom",
        "/feed.rss",
        "/feed.json",
        "/sitemap.xml",
        "/sitemap-news.xml",
        "/sitemap-stories-1.xml",
    ]
    for client in (author, reader):
        for path in paths:
            response = client.get(path)
            assert response.status_code == 200, path
            assert EMAIL not in response.get_data(as_text=True), path
    queue = reader.get("/admin/comments", headers={"Authorization": f"Bearer {token}"})
    assert queue.status_code == 200 and "Second thoughts." in queue.get_data(as_text=True)
    assert EMAIL not in queue.get_data(as_text=True)
    exported = site.caulbart("export")
    assert exported.returncode == 0 and EMAIL not in exported.stdout
    assert caplog.records and EMAIL not in caplog.text


def test_editors_moderate_at_admin_comments_with_the_token(site: Site) -> None:
    reply(site.client(), site.path, comment="First.")
    reply(site.client(), site.path, comment="Second.", name="Bob", email="bob@example.org")
    reply(site.client(), site.path, comment="Third.", name="Cy", email="cy@example.org")
    first, second, third = (line["id"] for line in pending_lines(site.caulbart))
    editor = site.client()
    assert editor.get("/admin/comments").status_code == 404  # no token configured: no admin
    token = "s3cret-admin-token"
    site.app.config["CAULBART_ADMIN_TOKEN"] = token
    refused = editor.get("/admin/comments")
    assert refused.status_code == 401 and "Basic" in refused.headers["WWW-Authenticate"]
    assert editor.get("/admin/comments?token=wrong").status_code == 401
    assert editor.get("/admin/comments", auth=("editor", "wrong")).status_code == 401
    assert editor.get("/admin/comments", auth=("editor", token)).status_code == 200
    bearer = editor.get("/admin/comments", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 200
    # ?token= once: the session remembers it, and the address loses it.
    entered = editor.get(f"/admin/comments?token={token}")
    assert entered.status_code == 303 and entered.headers["Location"] == "/admin/comments"
    queue = editor.get("/admin/comments")
    assert queue.status_code == 200 and queue.headers["Cache-Control"] == "no-store"
    text = queue.get_data(as_text=True)
    assert all(f"#{i} by" in text for i in (first, second, third))
    csrf = TOKEN_FIELD.search(text)
    assert csrf
    without = editor.post("/admin/comments", data={"id": str(first), "action": "approved"})
    assert without.status_code == 400
    for comment_id, action in [(first, "approved"), (second, "rejected"), (third, "spam")]:
        done = editor.post(
            "/admin/comments",
            data={"id": str(comment_id), "action": action, "csrf_token": csrf.group(1)},
        )
        assert done.status_code == 303
    assert "Nothing is waiting." in editor.get("/admin/comments").get_data(as_text=True)
    page = site.client().get(site.path).get_data(as_text=True)
    assert "First." in page and "Second." not in page and "Third." not in page
    unknown = editor.post(
        "/admin/comments", data={"id": "99999", "action": "spam", "csrf_token": csrf.group(1)}
    )
    assert unknown.status_code == 404


def test_moderating_unknown_ids_from_the_cli_fails_clearly(site: Site) -> None:
    reply(site.client(), site.path)
    [line] = pending_lines(site.caulbart)
    for command in ("approve", "reject", "spam"):
        result = site.caulbart("comments", command, str(line["id"]), "424242")
        assert result.returncode == 1
        assert "no comment 424242; nothing was changed" in result.stderr
    assert [p["id"] for p in pending_lines(site.caulbart)] == [line["id"]]
    rejected = site.caulbart("comments", "reject", str(line["id"]))
    assert rejected.returncode == 0 and rejected.stdout.strip() == f"rejected: {line['id']}"
    assert "Good to see" not in site.client().get(site.path).get_data(as_text=True)


def test_an_approved_commenter_is_published_at_once_next_time(site: Site) -> None:
    client = site.client()
    reply(client, site.path, comment="My first.")
    [line] = pending_lines(site.caulbart)
    site.caulbart("comments", "approve", str(line["id"]))
    reply(client, site.path, comment="My second.", email=EMAIL.upper())
    assert pending_lines(site.caulbart) == []
    assert "My second." in site.client().get(site.path).get_data(as_text=True)


def test_story_pages_stay_conditional_and_private_to_their_reader(site: Site) -> None:
    client = site.client()
    first = client.get(site.path)
    assert first.headers["Cache-Control"] == "private, no-cache"
    assert "Cookie" in first.headers["Vary"]
    again = client.get(site.path, headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    # The feed of comments holds nothing personal: shared caches may keep it.
    feed = client.get(site.path + "/comments.atom")
    assert feed.headers["Cache-Control"].startswith("public") and "Set-Cookie" not in feed.headers


def test_the_secret_key_is_made_once_and_kept_under_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from web.guard import secret_key

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CAULBART_SECRET_KEY", raising=False)
    first = secret_key()
    assert len(first) == 64 and secret_key() == first
    kept = tmp_path / "instance" / "secret_key"
    assert kept.read_text().strip() == first and kept.stat().st_mode & 0o777 == 0o600
    monkeypatch.setenv("CAULBART_SECRET_KEY", "from-the-environment")
    assert secret_key() == "from-the-environment"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server not installed")
    port = _free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}"
    process.terminate()
    process.wait(timeout=10)


def test_web_processes_sharing_redis_share_one_rate_limit(
    site: Site, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAULBART_RATELIMIT_STORAGE", redis_url)
    one = make_app(site.caulbart, site.engine, COMMENTS_RATE_LIMIT="3 per minute")
    two = make_app(site.caulbart, site.engine, COMMENTS_RATE_LIMIT="3 per minute")
    first, second = one.test_client(), two.test_client()
    answers = [
        reply(client, site.path, comment=f"Reply {n}").status_code
        for n, client in enumerate([first, second, first, second])
    ]
    assert answers == [303, 303, 303, 429]
    assert site.stored() == 3
    for app in (one, two):
        app.extensions["caulbart.feeds"].close()


def test_a_withdrawn_story_takes_no_replies_and_unknown_ones_have_no_feed(site: Site) -> None:
    client = site.client()
    token = token_of(client, site.path)
    withdrawn = site.caulbart("unpublish", str(site.story_id), "--reason", "Legal advice.")
    assert withdrawn.returncode == 0, withdrawn.stderr
    fields = {"csrf_token": token, "comment": "Hello", "name": "Ada", "email": EMAIL}
    assert client.post(site.path, data=fields).status_code == 410
    assert client.get(site.path + "/comments.atom").status_code == 410
    assert site.stored() == 0
    unknown = site.path.rsplit("-", 1)[0] + "-99999"
    assert client.post(unknown, data=fields).status_code == 404
    assert client.get(unknown + "/comments.atom").status_code == 404


def test_the_client_address_is_kept_then_forgotten(site: Site) -> None:
    reply(site.client(), site.path)
    with Session(site.engine) as session:
        assert session.scalar(select(Comment.ip)) == "127.0.0.1"
        session.execute(update(Comment).values(created_at=datetime.now(UTC) - timedelta(days=31)))
        session.commit()
    assert site.caulbart("comments", "pending").returncode == 0  # default keep_ip_days: 30
    with Session(site.engine) as session:
        assert session.scalar(select(Comment.ip)) is None


CITY = [(3, "Tram line to the stadium opens a year late", "Fares stay the same.")]


def test_the_home_page_counts_every_sections_replies_in_one_query(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    """The home page groups its cards by section; each group's counts are shown, and the
    comments table is asked once for all of them (it was asked once a group)."""
    world, city = (
        feed_server.add("/w.rss", agency_feed(STORIES[:1])),
        feed_server.add("/c.rss", agency_feed(CITY)),
    )
    write_feeds_yaml(
        caulbart.config,
        [
            {"id": "world-desk", "url": world, "section": "world"},
            {"id": "city-desk", "url": city, "section": "city"},
        ],
    )
    assert caulbart("fetch", "--all").returncode == 0
    stories = [json.loads(line) for line in caulbart("export").stdout.splitlines()]
    by_section = {story["section"]: urlsplit(story["url"]).path for story in stories}
    assert set(by_section) == {"world", "city"}
    engine = open_database(caulbart.database_url)
    app = make_app(caulbart, engine, COMMENTS_RATE_LIMIT="1000 per minute")
    client = app.test_client()
    for path in by_section.values():
        assert reply(client, path).status_code == 303
    for line in pending_lines(caulbart):
        assert caulbart("comments", "approve", str(line["id"])).returncode == 0

    with recorded_statements(engine) as statements:
        home = app.test_client().get("/").get_data(as_text=True)
    for path in by_section.values():
        assert f'<a class="comment-count" href="{path}#comments">1 Comment</a>' in home
    assert home.count('class="group-title"') == 2
    assert len([s for s in statements if re.search(r"\bFROM comments\b", s)]) == 1
    app.extensions["caulbart.feeds"].close()
    engine.dispose()
