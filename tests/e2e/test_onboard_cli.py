"""Bringing sources in: `caulbart import-opml`, `caulbart check --probe` and `caulbart add`, run
as an editor runs them, against feeds served on 127.0.0.1. None of them opens the database, so
each runs once (not once per backend)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Caulbart, FeedServer, corpus_path
from tests.feeds import Item, rss

FEEDS_YAML = """\
# Our sources. Keep this comment: editors read it.
site:
  title: Test Desk   # the masthead
  base_url: http://caulbart.test

sources:
  # --- wires ---
  - id: wire-one
    url: http://wire.example/feed.xml   # the first wire
    section: world
  - id: wire-two
    name: Wire Two
    url: "http://wire2.example/rss"
"""


@pytest.fixture
def editor(tmp_path: Path) -> Caulbart:
    """The CLI with a feeds.yaml written by hand; the database is never opened by these."""
    config = tmp_path / "feeds.yaml"
    config.write_text(FEEDS_YAML, encoding="utf-8")
    return Caulbart(config=config, database_url=f"sqlite:///{tmp_path}/unused.db", cwd=tmp_path)


FULL_TEXT = "<p>" + " ".join(["Full text of the story, paragraph after paragraph."] * 8) + "</p>"


def channel(title: str, items: list[dict[str, Any]]) -> str:
    """An RSS 2.0 channel; an item may carry full text (content:encoded) and a credited image."""
    entries = []
    for n, item in enumerate(items):
        media = ""
        if item.get("image"):
            media += f'<media:content url="http://img.example/{n}.jpg" medium="image"/>'
        if item.get("credit"):
            media += f"<media:credit>{item['credit']}</media:credit>"
        entries.append(
            Item(
                guid=f"g{n}",
                title=f"Story {n}",
                link=f"http://x.example/{n}",
                published=item["published"],
                description=f"Short summary {n}.",
                content=FULL_TEXT if item.get("full") else None,
                extra=media,
            )
        )
    return rss(*entries, title=title)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- import-opml ----------------------------------------------------------------------------

OPML = """\
<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="World News">
      <outline text="Wire One again" type="rss" xmlUrl="HTTP://WIRE.example/feed.xml/"/>
      <outline text="Daily Planet — Europe" type="rss" xmlUrl="http://planet.example/europe.rss"/>
    </outline>
    <outline title="Science &amp; Space" text="ignored" type="rss" xmlUrl="http://sci.example/a"/>
    <outline text="Science again" type="rss" xmlUrl="http://sci.example/a"/>
    <outline text="Gopher" type="rss" xmlUrl="gopher://old.example/feed"/>
  </body>
</opml>
"""


def test_import_opml_appends_new_feeds_keeping_comments_and_order(editor: Caulbart) -> None:
    opml = editor.cwd / "subs.opml"
    opml.write_text(OPML, encoding="utf-8")

    result = editor("import-opml", str(opml))

    assert result.returncode == 0, result.stderr
    text = editor.config.read_text(encoding="utf-8")
    # Every line the editor wrote is still there, untouched, in its place; new ones follow.
    assert text.startswith(FEEDS_YAML)
    sources = yaml.safe_load(text)["sources"]
    assert [s["id"] for s in sources] == [
        "wire-one",
        "wire-two",
        "daily-planet-europe",
        "science-space",
    ]
    assert sources[2] == {
        "id": "daily-planet-europe",
        "name": "Daily Planet — Europe",
        "url": "http://planet.example/europe.rss",
        "section": "world-news",
    }
    assert sources[3] == {
        "id": "science-space",
        "name": "Science & Space",
        "url": "http://sci.example/a",
    }
    out = result.stdout
    assert "added daily-planet-europe: http://planet.example/europe.rss (section world-news)" in out
    assert "skipped HTTP://WIRE.example/feed.xml/: already in feeds.yaml as wire-one" in out
    assert "skipped http://sci.example/a: listed twice; added once as science-space" in out
    assert "not taken: Gopher: bad URL 'gopher://old.example/feed'" in out
    assert "2 added, 2 already present, 1 not taken" in out
    check = editor("check")
    assert check.returncode == 0 and "OK, 4 sources" in check.stdout

    again = editor("import-opml", str(opml))
    assert again.returncode == 0, again.stderr
    assert "0 added, 4 already present" in again.stdout
    assert editor.config.read_text(encoding="utf-8") == text


def test_import_of_a_real_opml_export_gives_a_valid_feeds_yaml(editor: Caulbart) -> None:
    opml = corpus_path("feeds", "real", "rsparser", "Subs.opml")
    result = editor("import-opml", str(opml))
    assert result.returncode == 0, result.stderr
    sources = yaml.safe_load(editor.config.read_text(encoding="utf-8"))["sources"]
    urls = [s["url"] for s in sources]
    assert len(urls) == len(set(urls)) > 100
    assert {"id": "daring-fireball", "name": "Daring Fireball",
            "url": "http://daringfireball.net/feeds/main"} in sources  # fmt: skip
    assert editor("check").returncode == 0


def test_import_into_a_missing_feeds_yaml_creates_it(editor: Caulbart) -> None:
    editor.config.unlink()
    opml = editor.cwd / "subs.opml"
    opml.write_text(OPML, encoding="utf-8")
    assert editor("import-opml", str(opml)).returncode == 0
    assert "OK, 3 sources" in editor("check").stdout


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<opml version="2.0"><body><outline text="&lol2;" xmlUrl="http://a.example/f"/></body></opml>
"""


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            '<opml version="2.0">\n<body>\n<outline text="a" xmlUrl="http://a.example/f">\n</body>',
            "subs.opml:4: not well-formed XML: mismatched tag",
        ),
        (BILLION_LAUGHS, "subs.opml:1: refused: DTDForbidden (DTDs and entities are not allowed)"),
        ('<rss version="2.0"><channel/></rss>', "subs.opml:1: not OPML: the root element is <rss>"),
        (
            '<opml version="2.0"><body><outline text="folder"/></body></opml>',
            "subs.opml:1: no feeds: no <outline> has an xmlUrl",
        ),
    ],
    ids=["malformed", "entities", "not-opml", "no-feeds"],
)
def test_bad_opml_is_refused_with_file_and_line_and_feeds_yaml_is_untouched(
    editor: Caulbart, document: str, message: str
) -> None:
    opml = editor.cwd / "subs.opml"
    opml.write_text(document, encoding="utf-8")
    before = editor.config.read_bytes()

    result = editor("import-opml", str(opml))

    assert result.returncode == 1
    assert message in result.stderr
    assert "left unchanged" in result.stderr
    assert editor.config.read_bytes() == before


def test_import_refuses_to_edit_an_invalid_feeds_yaml(editor: Caulbart) -> None:
    editor.config.write_text(FEEDS_YAML + "  - id: Bad Id\n    url: http://b.example/\n")
    before = editor.config.read_bytes()
    opml = editor.cwd / "subs.opml"
    opml.write_text(OPML, encoding="utf-8")
    result = editor("import-opml", str(opml))
    assert result.returncode == 1
    assert "feeds.yaml:14: sources[2].id: 'Bad Id' must be lower-case" in result.stderr
    assert editor.config.read_bytes() == before


# --- check --probe --------------------------------------------------------------------------


def _write_sources(editor: Caulbart, sources: list[tuple[str, str]]) -> None:
    lines = ["site:\n  base_url: http://caulbart.test\ndefaults:\n  timeout: 5s\nsources:\n"]
    lines += [f"  - id: {source_id}\n    url: {url}\n" for source_id, url in sources]
    editor.config.write_text("".join(lines), encoding="utf-8")


def test_check_probe_reports_each_source_once_including_an_unreachable_one(
    editor: Caulbart, feed_server: FeedServer
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    newest = now - timedelta(hours=2)
    items = [
        {"published": newest, "full": True, "image": True, "credit": "Photo: Ada / Agency"},
        {"published": now - timedelta(days=1), "full": True, "image": True},
        {"published": now - timedelta(days=2)},
    ]
    atom = (
        '<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>Atom one</title>'
        "<id>urn:a</id><updated>2024-05-01T10:00:00Z</updated><entry><id>urn:a:1</id>"
        "<title>Only entry</title><updated>2024-05-01T10:00:00Z</updated>"
        "<summary>Short.</summary></entry></feed>"
    )
    _write_sources(
        editor,
        [
            ("wire", feed_server.add("/wire.rss", channel("Wire", items))),
            ("atom", feed_server.add("/a.atom", atom, content_type="application/atom+xml")),
            ("page", feed_server.add("/page", "<html><p>hi</p></html>", content_type="text/html")),
            ("broken", feed_server.add("/broken", "oops", status=500)),
            ("gone", f"http://127.0.0.1:{closed_port()}/feed.xml"),
        ],
    )

    result = editor("check", "--probe", "--json")

    assert result.returncode == 0, result.stderr
    reports = {r["source_id"]: r for r in map(json.loads, result.stdout.splitlines())}
    assert list(reports) == ["wire", "atom", "page", "broken", "gone"]
    wire = reports["wire"]
    assert (wire["ok"], wire["reachable"], wire["http_status"], wire["format"]) == (
        True, True, 200, "rss20",
    )  # fmt: skip
    assert (wire["items"], wire["full_text_items"]) == (3, 2)
    assert (wire["image_items"], wire["credited_images"]) == (2, 1)
    assert wire["newest"] == newest.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert wire["title"] == "Wire" and wire["error"] is None
    assert (reports["atom"]["format"], reports["atom"]["items"]) == ("atom10", 1)
    assert reports["atom"]["newest"] == "2024-05-01T10:00:00Z"
    assert reports["page"]["reachable"] and reports["page"]["error"].startswith(
        "parse error: not a feed (text/html"
    )
    assert reports["broken"]["error"] == "HTTP 500 Internal Server Error"
    assert reports["gone"]["reachable"] is False
    assert reports["gone"]["error"].startswith("connection failed: ConnectError")
    assert all(feed_server.requests[path] == 1 for path in ("/wire.rss", "/a.atom", "/page"))

    table = editor("check", "--probe")
    assert table.returncode == 0
    assert "OK, 5 sources" in table.stdout
    assert "5 sources: 2 readable, 3 with errors" in table.stdout
    wire_row = next(line for line in table.stdout.splitlines() if "│ wire" in line)
    assert "rss20" in wire_row and "2/3" in wire_row and "1/2" in wire_row
    gone_row = next(line for line in table.stdout.splitlines() if "│ gone" in line)
    assert "│ no " in gone_row and "connection failed" in gone_row


def test_check_without_probe_fetches_nothing(editor: Caulbart, feed_server: FeedServer) -> None:
    _write_sources(editor, [("wire", feed_server.add("/wire.rss", channel("Wire", [])))])
    result = editor("check")
    assert result.returncode == 0 and "OK, 1 sources" in result.stdout
    assert feed_server.requests["/wire.rss"] == 0


# --- add ------------------------------------------------------------------------------------

HOME = """<!doctype html><html><head><title>Daily Planet</title>
<link rel="stylesheet" href="/site.css">
<link rel="alternate" type="application/json" href="/comments.json" title="not a feed">
<link rel="alternate" type="application/rss+xml" title="Daily Planet" href="feeds/main.xml">
</head><body><h1>Daily Planet</h1></body></html>"""


def test_add_discovers_the_feed_from_a_home_page_probes_and_appends_it(
    editor: Caulbart, feed_server: FeedServer
) -> None:
    feed = channel("The Daily Planet: Metropolis", [{"published": datetime.now(UTC), "full": True}])
    feed_server.add("/planet/feeds/main.xml", feed)
    home = feed_server.add("/planet/", HOME, content_type="text/html; charset=utf-8")

    result = editor("add", home, "--section", "metro")

    assert result.returncode == 0, result.stderr
    feed_url = feed_server.url("/planet/feeds/main.xml")  # the relative href, resolved
    assert f"added the-daily-planet-metropolis: {feed_url} (section metro)" in result.stdout
    assert "rss20" in result.stdout  # the probe's report is shown before it is added
    text = editor.config.read_text(encoding="utf-8")
    assert text.startswith(FEEDS_YAML)
    assert yaml.safe_load(text)["sources"][-1] == {
        "id": "the-daily-planet-metropolis",
        "name": "The Daily Planet: Metropolis",
        "url": feed_url,
        "section": "metro",
    }
    assert editor("check").returncode == 0

    again = editor("add", home)
    assert again.returncode == 0, again.stderr
    assert (
        f"skipped {feed_url}: already in feeds.yaml as the-daily-planet-metropolis" in again.stdout
    )
    assert editor.config.read_text(encoding="utf-8") == text


def test_add_takes_a_feed_url_as_it_is_and_makes_its_id_unique(
    editor: Caulbart, feed_server: FeedServer
) -> None:
    url = feed_server.add("/w.rss", channel("Wire One", [{"published": datetime.now(UTC)}]))
    result = editor("add", url)
    assert result.returncode == 0, result.stderr
    # "wire-one" is taken by the hand-written source: the generated id steps aside.
    assert f"added wire-one-2: {url}" in result.stdout
    assert feed_server.requests["/w.rss"] == 1


def test_add_writes_the_address_a_feed_has_moved_to(
    editor: Caulbart, feed_server: FeedServer
) -> None:
    new = feed_server.add("/new.rss", channel("Moved Wire", [{"published": datetime.now(UTC)}]))
    old = feed_server.add("/old.rss", status=308, location=new)
    result = editor("add", old)
    assert result.returncode == 0, result.stderr
    assert f"added moved-wire: {new}" in result.stdout
    assert yaml.safe_load(editor.config.read_text(encoding="utf-8"))["sources"][-1]["url"] == new


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "<html><head><title>No feed</title></head></html>",
            "not a feed, and the page announces none",
        ),
        (HOME, "no announced feed could be read"),
    ],
    ids=["no-link", "dead-link"],
)
def test_add_without_a_readable_feed_fails_and_leaves_feeds_yaml(
    editor: Caulbart, feed_server: FeedServer, body: str, message: str
) -> None:
    home = feed_server.add("/planet/", body, content_type="text/html")
    before = editor.config.read_bytes()
    result = editor("add", home)
    assert result.returncode == 1
    assert message in result.stderr and "left unchanged" in result.stderr
    assert editor.config.read_bytes() == before


def test_add_refuses_an_address_that_is_not_http(editor: Caulbart) -> None:
    result = editor("add", "file:///etc/passwd")
    assert result.returncode == 2
    assert "must be an absolute http(s) URL" in result.stderr
