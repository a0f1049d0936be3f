"""Faithful to the feed: what a feed says reaches the reader whole and unaltered in meaning.

Each test serves its own small feeds on 127.0.0.1, ingests them with the real `caulbart fetch`
(SQLite and PostgreSQL), then reads what a reader or an editor meets: the story page, our
Atom/RSS/JSON feeds, `caulbart export` and `caulbart explain`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import lxml.html
import yaml
from flask.testing import FlaskClient

from aggregator.storage.db import open_database
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import rss
from web import create_app

BASE = "http://caulbart.test"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Plenty of words: enough for the text to be matched on (limits.MIN_WORDS_FOR_TEXT_MATCH).
SUMMIT = (
    "Leaders of thirty countries met in Geneva on Monday and agreed a plan drafted by NATO "
    "officials to share the cost of air defence along the eastern border, after two days of "
    "talks that ran late into the night and ended with a joint statement read by the chair."
)


def wire(host: str, *items: str, title: str = "Wire") -> str:
    """The feed of the site at `host`, its items as written."""
    return rss(*items, title=title, link=f"https://{host}/")


def item(
    guid: str,
    title: str | None,
    *,
    link: str | None = None,
    description: str | None = None,
    extra: str = "",
    date: str = "Tue, 10 Nov 2026 12:00:00 GMT",
) -> str:
    """An RSS <item>; `title` and `description` are inserted as written (escape them)."""
    parts = [f"<guid isPermaLink='false'>{guid}</guid>", f"<pubDate>{date}</pubDate>"]
    if title is not None:
        parts.append(f"<title>{title}</title>")
    if link is not None:
        parts.append(f"<link>{link}</link>")
    if description is not None:
        parts.append(f"<description>{description}</description>")
    return "<item>" + "".join(parts) + extra + "</item>"


@dataclass
class Site:
    caulbart: Caulbart
    client: FlaskClient

    def stories(self) -> list[dict[str, Any]]:
        exported = self.caulbart("export")
        assert exported.returncode == 0, exported.stderr
        return [json.loads(line) for line in exported.stdout.splitlines()]

    def story(self, title: str) -> dict[str, Any]:
        found = [s for s in self.stories() if s["title"] == title]
        assert len(found) == 1, (title, [s["title"] for s in self.stories()])
        return found[0]

    def page(self, url: str) -> Any:
        response = self.client.get(urlsplit(url).path)
        assert response.status_code == 200, (url, response.status_code)
        return response

    def html(self, url: str) -> Any:
        return lxml.html.fromstring(self.page(url).data)

    def explain(self, story_id: int) -> dict[str, Any]:
        explained = self.caulbart("explain", str(story_id), "--json")
        assert explained.returncode == 0, explained.stderr
        result: dict[str, Any] = json.loads(explained.stdout)
        return result

    def feed(self, fmt: str, path: str = "") -> Any:
        response = self.client.get(f"{path}/feed.{fmt}")
        assert response.status_code == 200, response.status_code
        if fmt == "json":
            return json.loads(response.data)
        return response.data


@contextmanager
def published(
    caulbart: Caulbart,
    feed_server: FeedServer,
    feeds: dict[str, tuple[str, dict[str, Any]]],
    **top: Any,
) -> Iterator[Site]:
    """Serve each source's document, fetch them all with the real command, open the web app."""
    sources = []
    for source_id, (body, options) in feeds.items():
        url = feed_server.add(f"/{source_id}.xml", body, content_type="application/xml")
        sources.append({"id": source_id, "url": url, **options})
    write_feeds_yaml(caulbart.config, sources, **top)
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    engine = open_database(caulbart.database_url)
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    try:
        yield Site(caulbart, app.test_client())
    finally:
        app.extensions["caulbart.feeds"].close()
        engine.dispose()


def has_control(value: object) -> bool:
    return bool(CONTROL.search(json.dumps(value, ensure_ascii=False)))


# --- a plain-text title is text -------------------------------------------------------------


def test_plain_text_title_keeps_its_literal_angle_brackets(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Zoo</title><id>urn:zoo</id><updated>2026-11-10T12:00:00Z</updated>"
        '<entry><id>urn:zoo:2</id><title type="html">Bold &lt;b&gt;move&lt;/b&gt;</title>'
        '<link href="https://zoo.example/2"/><updated>2026-11-10T12:00:00Z</updated>'
        "<summary>The keepers made a bold move today.</summary></entry></feed>"
    )
    feeds = {
        "zoo": (
            wire(
                "zoo.example",
                item(
                    "zoo-1",
                    "Nice &#x3C;gorilla&#x3E;",
                    link="https://zoo.example/1",
                    description="The gorilla is nice.",
                ),
            ),
            {"agency": "Zoo News"},
        ),
        "zoo-atom": (atom, {"agency": "Zoo Atom"}),
    }
    with published(caulbart, feed_server, feeds) as site:
        story = site.story("Nice <gorilla>")
        page = site.page(story["url"]).data.decode()
        assert '<h1 class="headline">Nice &lt;gorilla&gt;</h1>' in page
        titles = [e["title"] for e in feedparser.parse(site.feed("atom")).entries]
        assert "Nice <gorilla>" in titles
        # A title the feed marks as HTML is still read as markup: its tags are not text.
        assert site.story("Bold move")["entries"][0]["title"] == "Bold move"


# --- control characters -----------------------------------------------------------------------


def test_control_characters_never_reach_a_body_a_page_a_feed_or_the_opml(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Bell\u0085 Wire\u009c",
        "items": [
            {
                "id": "bell-1",
                "url": "https://bell.example/1",
                "title": "Bells ring out",
                "content_html": "<p>The bell\u0007 rang\u009b twice\u0001 at noon.</p>"
                "<p>Then\u0085 it rang again.</p>",
                "date_published": "2026-11-10T12:00:00Z",
                "tags": ["bel\u0090ls"],
            }
        ],
    }
    feeds = {"bell": (json.dumps(document), {"agency": "Bell Wire"})}
    with published(caulbart, feed_server, feeds) as site:
        story = site.story("Bells ring out")
        page = site.page(story["url"]).data.decode()
        assert "The bell rang twice at noon." in page
        assert not CONTROL.search(page)
        item = site.feed("json")["items"][0]
        assert not has_control(item), item
        assert "rang twice" in item["content_html"]
        for fmt in ("atom", "rss"):
            assert not CONTROL.search(site.feed(fmt).decode())
        opml = site.client.get("/sources.opml")
        assert opml.status_code == 200
        assert not CONTROL.search(opml.data.decode())


def test_import_opml_strips_control_characters_from_outline_titles(
    caulbart: Caulbart, tmp_path: Path
) -> None:
    caulbart.config.write_text(
        "site:\n  base_url: http://caulbart.test\nsources: []\n", encoding="utf-8"
    )
    opml = tmp_path / "subs.opml"
    opml.write_text(
        '<?xml version="1.0" encoding="utf-8"?><opml version="2.0"><head><title>s</title></head>'
        '<body><outline text="News\u0085 Desk\u009c" xmlUrl="http://desk.example/feed.xml"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    imported = caulbart("import-opml", str(opml))
    assert imported.returncode == 0, imported.stderr
    sources = yaml.safe_load(caulbart.config.read_text(encoding="utf-8"))["sources"]
    assert [s["name"] for s in sources] == ["News Desk"]


# --- enclosures -------------------------------------------------------------------------------

MP3 = "https://cdn.pod.example/ep12.mp3?token=1"
MP4 = "https://cdn.pod.example/ep12.mp4"
OGG = "https://cdn.atom.example/talk.ogg"
WEBM = "https://cdn.json.example/clip-7.webm"


def podcast_feeds() -> dict[str, tuple[str, dict[str, Any]]]:
    episode = item(
        "ep-12",
        "Episode 12: Tides",
        link="https://pod.example/12",
        description="We talk about the tides of the northern sea and the people who read them.",
        extra=(
            f'<enclosure url="{MP3.replace("&", "&amp;")}" type="audio/mpeg" length="12345678"/>'
            f'<enclosure url="{MP4}" type="video/mp4" length="999"/>'
            '<enclosure url="javascript:alert(1)" type="audio/mpeg" length="1"/>'
        ),
    )
    # Media alone: no title, no link, no text.
    bare = item(
        "ep-13",
        None,
        extra='<enclosure url="https://cdn.pod.example/media/Morning%20Show%2014.mp3" '
        'type="audio/mpeg" length="100"/>',
    )
    untitled = item(
        "note-1",
        None,
        description="Short note from the studio about tomorrow's recording schedule, "
        "which moves to the afternoon because of the storm.",
    )
    atom = (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Talks</title><id>urn:talks</id><updated>2026-11-10T12:00:00Z</updated>"
        "<entry><id>urn:talks:1</id><title>A talk on rivers</title>"
        '<link href="https://talks.example/1"/>'
        f'<link rel="enclosure" href="{OGG}" type="audio/ogg" length="4321"/>'
        "<updated>2026-11-10T12:00:00Z</updated><summary>Rivers, and how they move.</summary>"
        "</entry></feed>"
    )
    clips = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Clips",
        "items": [
            {
                "id": "clip-6",
                "url": "https://clips.example/6",
                "title": "Clip six",
                "content_text": "A clip about the harbour at dawn.",
                "attachments": [{"url": WEBM, "mime_type": "video/webm", "size_in_bytes": 777}],
            },
            {
                "id": "clip-7",
                "attachments": [
                    {"url": "https://cdn.json.example/clip-7.webm", "mime_type": "video/webm"}
                ],
            },
        ],
    }
    return {
        "pod": (wire("pod.example", episode, bare, untitled, title="Pod"), {"agency": "Pod"}),
        "talks": (atom, {"agency": "Talks"}),
        "clips": (json.dumps(clips), {"agency": "Clips"}),
    }


def test_audio_and_video_enclosures_reach_the_page_and_every_feed(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    with published(caulbart, feed_server, podcast_feeds()) as site:
        story = site.story("Episode 12: Tides")
        response = site.page(story["url"])
        policy = response.headers["Content-Security-Policy"]
        assert "media-src 'self' https: http:" in policy
        page = lxml.html.fromstring(response.data)
        audio = page.xpath("//audio")
        video = page.xpath("//video")
        assert [a.get("src") for a in audio] == [MP3]
        assert [v.get("src") for v in video] == [MP4]
        for player in audio + video:
            assert player.get("controls") is not None and player.get("preload") == "none"
        downloads = [a.get("href") for a in page.xpath("//a[@download]")]
        assert downloads == [MP3, MP4]
        assert b"javascript:" not in response.data

        atom = feedparser.parse(site.feed("atom"))
        entry = next(e for e in atom.entries if e.title == "Episode 12: Tides")
        enclosures = [(l.href, l.type, l.length) for l in entry.links if l.rel == "enclosure"]  # noqa: E741
        assert enclosures == [(MP3, "audio/mpeg", "12345678"), (MP4, "video/mp4", "999")]

        # RSS allows one enclosure an item: the first audio or video.
        rss_feed = feedparser.parse(site.feed("rss"))
        rss_item = next(e for e in rss_feed.entries if e.title == "Episode 12: Tides")
        assert [(e.href, e.type, e.length) for e in rss_item.enclosures] == [
            (MP3, "audio/mpeg", "12345678")
        ]

        json_item = next(i for i in site.feed("json")["items"] if i["title"] == "Episode 12: Tides")
        assert json_item["attachments"] == [
            {"url": MP3, "mime_type": "audio/mpeg", "size_in_bytes": 12345678},
            {"url": MP4, "mime_type": "video/mp4", "size_in_bytes": 999},
        ]

        talk = site.html(site.story("A talk on rivers")["url"])
        assert [a.get("src") for a in talk.xpath("//audio")] == [OGG]
        clip = site.html(site.story("Clip six")["url"])
        assert [v.get("src") for v in clip.xpath("//video")] == [WEBM]


# --- untitled items ---------------------------------------------------------------------------


def test_untitled_items_are_kept_with_a_derived_headline_that_explain_names(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    with published(caulbart, feed_server, podcast_feeds()) as site:
        titles = {s["title"] for s in site.stories()}
        assert "Morning Show 14.mp3" in titles  # media alone: the file's name
        assert "clip-7.webm" in titles  # an untitled JSON Feed item with an attachment
        note = next(t for t in titles if t.startswith("Short note from the studio"))

        bare = site.story("Morning Show 14.mp3")
        page = site.html(bare["url"])
        assert page.xpath("//h1[@class='headline']")[0].text_content() == "Morning Show 14.mp3"
        assert [a.get("src") for a in page.xpath("//audio")] == [
            "https://cdn.pod.example/media/Morning%20Show%2014.mp3"
        ]
        for title in ("Morning Show 14.mp3", "clip-7.webm", note):
            explained = site.explain(site.story(title)["id"])
            assert [e["title_derived"] for e in explained["entries"]] == [True], title
        titled = site.explain(site.story("Episode 12: Tides")["id"])
        assert [e["title_derived"] for e in titled["entries"]] == [False]
        text = caulbart("explain", str(bare["id"]))
        assert "headline derived from the enclosure" in text.stdout, text.stdout


# --- ids that never change --------------------------------------------------------------------


def feed_ids(site: Site) -> dict[str, list[str]]:
    return {
        "atom": [e.id for e in feedparser.parse(site.feed("atom")).entries],
        "rss": [e.id for e in feedparser.parse(site.feed("rss")).entries],
        "json": [i["id"] for i in site.feed("json")["items"]],
    }


def test_feed_ids_stay_the_same_when_base_url_moves_to_the_real_domain(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    feeds = podcast_feeds()
    with published(caulbart, feed_server, feeds) as site:
        before = feed_ids(site)
    assert len(before["atom"]) == 6 and before["atom"] == before["rss"] == before["json"]
    assert all(i.startswith("tag:caulbart.test,") for i in before["atom"])

    config = yaml.safe_load(caulbart.config.read_text(encoding="utf-8"))
    config["site"]["base_url"] = "https://news.example.org"
    caulbart.config.write_text(yaml.safe_dump(config), encoding="utf-8")
    fetched = caulbart("fetch", "--all")  # a pass under the new address stores nothing new
    assert fetched.returncode == 0, fetched.stderr
    engine = open_database(caulbart.database_url)
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    try:
        moved = Site(caulbart, app.test_client())
        assert feed_ids(moved) == before
        # Links follow the new address; only the ids stay.
        assert all(s["url"].startswith("https://news.example.org/") for s in moved.stories())
    finally:
        app.extensions["caulbart.feeds"].close()
        engine.dispose()


# --- our RSS: the original and the image ------------------------------------------------------


def test_rss_items_link_the_original_and_carry_the_image_with_its_credit(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    photo = "https://img.vesper.example/summit.jpg"
    summit = item(
        "v-1",
        "Leaders agree air defence plan",
        link="https://vesper.example/world/summit",
        description=SUMMIT,
        extra=(
            f'<media:content url="{photo}" medium="image">'
            "<media:credit>Photo: Ana Lund / Vesper</media:credit></media:content>"
        ),
    )
    feeds = {"vesper": (wire("vesper.example", summit), {"agency": "Vesper Dispatch"})}
    with published(caulbart, feed_server, feeds) as site:
        parsed = feedparser.parse(site.feed("rss"))
        entry = parsed.entries[0]
        assert entry.source.href == feed_server.url("/vesper.xml")
        assert entry.source.title
        summary = lxml.html.fromstring(f"<div>{entry.summary}</div>")
        links = {a.get("href"): a.text_content() for a in summary.xpath("//a")}
        assert links.get("https://vesper.example/world/summit") == "Vesper Dispatch"
        content = lxml.html.fromstring(f"<div>{entry.content[0].value}</div>")
        assert [i.get("src") for i in content.xpath("//figure/img")] == [photo]
        assert content.xpath("//figure/figcaption")[0].text_content() == "Photo: Ana Lund / Vesper"
        assert "eastern border" in entry.content[0].value  # the body follows the image


# --- a source's page --------------------------------------------------------------------------


def test_a_source_page_shows_that_source_s_own_telling_of_each_story(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    alpha = item(
        "a-1",
        "Leaders agree NATO air defence plan",
        link="https://alpha.example/summit",
        description=f"<p>{SUMMIT}</p>",
    )
    vesper = item(
        "v-1",
        "Thirty nations sign air defence pact in Geneva",
        link="https://vesper.example/summit",
        description=html.escape(f"<p>Thirty nations signed a pact in Geneva.</p><p>{SUMMIT}</p>"),
    )
    feeds = {
        "alpha": (wire("alpha.example", alpha), {"agency": "Alpha Wire", "priority": 10}),
        "vesper": (wire("vesper.example", vesper), {"agency": "Vesper Dispatch"}),
    }
    with published(caulbart, feed_server, feeds) as site:
        [story] = site.stories()
        assert sorted(e["source"] for e in story["entries"]) == ["alpha", "vesper"]
        assert story["title"] == "Leaders agree NATO air defence plan"  # the voice: priority

        def cards(source_id: str) -> list[tuple[str, str]]:
            page = site.html(f"{BASE}/source/{source_id}")
            return [
                (card.xpath("string(.//*[@class='card-title'])").strip(),
                 card.xpath("string(.//*[@class='card-lede'])").strip())
                for card in page.xpath("//li[@class='card']")
            ]  # fmt: skip

        assert cards("vesper") == [
            (
                "Thirty nations sign air defence pact in Geneva",
                "Thirty nations signed a pact in Geneva.",
            )
        ]
        [(title, lede)] = cards("alpha")
        assert title == "Leaders agree NATO air defence plan" and lede.startswith(
            "Leaders of thirty"
        )


# --- wire headline styles ---------------------------------------------------------------------


def test_wire_headline_styles_are_cleaned_for_readers_and_kept_raw_for_explain(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    vesper = wire(
        "vesper.example",
        item(
            "v-1",
            "WORLD LEADERS AGREE NATO PLAN IN GENEVA - Vesper Dispatch",
            link="https://vesper.example/1",
            description=SUMMIT,
        ),
        item(
            "v-2",
            "Politics: Senate passes budget bill",
            link="https://vesper.example/2",
            description="The Senate passed the budget bill by a narrow margin late on Tuesday.",
        ),
        item(
            "v-3",
            "Vesper Dispatch: Storm hits the coast",
            link="https://vesper.example/3",
            description="A storm hit the northern coast overnight, cutting power to thousands.",
        ),
    )
    raw = wire(
        "raw.example",
        item(
            "r-1",
            "Politics: Farm bill stalls - Raw Wire",
            link="https://raw.example/1",
            description="The farm bill stalled in committee for a third week running.",
        ),
    )
    feeds = {
        "vesper": (vesper, {"agency": "Vesper Dispatch"}),
        "raw": (raw, {"agency": "Raw Wire", "clean_headlines": False}),
    }
    with published(caulbart, feed_server, feeds) as site:
        titles = {s["title"] for s in site.stories()}
        assert titles == {
            "World leaders agree NATO plan in Geneva",
            "Senate passes budget bill",
            "Storm hits the coast",
            "Politics: Farm bill stalls - Raw Wire",  # its source opted out
        }
        summit = site.story("World leaders agree NATO plan in Geneva")
        page = site.html(summit["url"])
        assert page.xpath("string(//h1)") == "World leaders agree NATO plan in Geneva"
        atom_titles = {e.title for e in feedparser.parse(site.feed("atom")).entries}
        assert "World leaders agree NATO plan in Geneva" in atom_titles
        json_titles = {i["title"] for i in site.feed("json")["items"]}
        assert "Senate passes budget bill" in json_titles

        explained = site.explain(summit["id"])
        [entry] = explained["entries"]
        assert entry["raw_title"] == "WORLD LEADERS AGREE NATO PLAN IN GENEVA - Vesper Dispatch"
        text = caulbart("explain", str(summit["id"]))
        assert "WORLD LEADERS AGREE NATO PLAN IN GENEVA - Vesper Dispatch" in text.stdout


def test_clean_headlines_is_a_source_setting_checked_with_file_and_line(caulbart: Caulbart) -> None:
    source = {"id": "vesper", "url": "http://vesper.example/feed.xml"}
    write_feeds_yaml(caulbart.config, [{**source, "clean_headlines": False}])
    checked = caulbart("check")
    assert checked.returncode == 0, checked.stdout + checked.stderr

    write_feeds_yaml(caulbart.config, [{**source, "clean_headlines": "maybe"}])
    checked = caulbart("check")
    assert checked.returncode == 1
    problems = checked.stdout + checked.stderr
    assert re.search(r"feeds\.yaml:\d+: sources\[0\]\.clean_headlines: ", problems), problems
