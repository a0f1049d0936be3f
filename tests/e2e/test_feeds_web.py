"""Caulbart's own feeds end to end: real corpus feeds served over loopback, ingested by the real
`caulbart fetch`, then every feed read through the Flask app by feedparser as a reader would."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import feedparser
import jsonschema
import lxml.html
import pytest
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from aggregator import limits
from aggregator.publishing import feed_pages, scope
from aggregator.storage.db import open_database
from aggregator.storage.models import Entry, Source, Story
from aggregator.stories.tagging import tag_slug
from tests.conftest import (
    Caulbart,
    FeedServer,
    corpus_path,
    database_for,
    write_feeds_yaml,
)
from web import create_app

BASE = "http://caulbart.test"
PAGE = 20
ATOM = "{http://www.w3.org/2005/Atom}"
TOMBSTONES = "{http://purl.org/atompub/tombstones/1.0}"
HISTORY = "{http://purl.org/syndication/history/1.0}"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
RFC822 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
                    r"Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d ([+-]\d{4}|GMT|UT)$")  # fmt: skip
TAG_URI = re.compile(r"^tag:caulbart\.test,\d{4}-\d\d-\d\d:story:(\d+)$")
SCHEMA = json.loads((Path(__file__).parent.parent / "jsonfeed-1.1.schema.json").read_text())

SOURCES: dict[str, tuple[str, dict[str, object]]] = {
    "reuters": (
        "wire/reuters-worldnews-2018-01-30.rss",
        {"section": "world", "agency": "Reuters", "rights": "© Reuters 2018 <all rights>"},
    ),
    "huffpost": (
        "wire/huffpost-worldnews-2019.rss",
        {"section": "world", "agency": "HuffPost", "excerpt_only": True},
    ),
    "guardian": (
        "rss-parser/guardian.rss",
        {"section": "us", "agency": "The Guardian", "rights": "Guardian News & Media"},
    ),
    "media404": (
        "fastfeedparser-2026/a44f75939f245a7e.rss",
        {"section": "tech", "agency": "404 Media", "images": False},
    ),
}


@dataclass
class Site:
    caulbart: Caulbart
    feed_server: FeedServer
    engine: Engine
    client: FlaskClient
    config_path: Path
    apps: list[Flask]

    def get(self, url: str, **headers: str) -> Any:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.client.get(path, headers=headers)

    def parsed(self, url: str) -> Any:
        response = self.get(url)
        assert response.status_code == 200, (url, response.status_code)
        document = feedparser.parse(response.data, sanitize_html=False)
        assert document.bozo == 0, (url, document.get("bozo_exception"))
        return document

    def fresh_client(self) -> FlaskClient:
        """A second web process: its own app, its own cache."""
        app = create_app(self.engine, {"CAULBART_CONFIG": str(self.config_path)})
        self.apps.append(app)
        return app.test_client()

    def close(self) -> None:
        for app in self.apps:
            app.extensions["caulbart.feeds"].close()
        self.engine.dispose()


def _hub(feed_server: FeedServer) -> str:
    return feed_server.url("/hub")


def _publish_site(caulbart: Caulbart, feed_server: FeedServer) -> Iterator[Site]:
    """Serve the corpus feeds, fetch them with the real command, open the web app on the result."""
    sources = []
    for source_id, (name, options) in SOURCES.items():
        url = feed_server.add_file(f"/{source_id}.rss", corpus_path("feeds", "real", name))
        sources.append({"id": source_id, "url": url, **options})
    write_feeds_yaml(
        caulbart.config,
        sources,
        site={
            "title": "Caulbart",
            "base_url": BASE,
            "feed_length": PAGE,
            "websub_hubs": [_hub(feed_server)],
        },
    )
    fetched = caulbart("fetch", "--all")
    assert fetched.returncode == 0, fetched.stderr
    engine = open_database(caulbart.database_url)
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    published = Site(caulbart, feed_server, engine, app.test_client(), caulbart.config, [app])
    yield published
    published.close()


@pytest.fixture
def site(caulbart: Caulbart, feed_server: FeedServer) -> Iterator[Site]:
    """A site of its own, for tests that change it."""
    yield from _publish_site(caulbart, feed_server)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shared_site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    """One site per database for the tests that only read it (fetching the corpus is slow)."""
    folder = tmp_path_factory.mktemp("shared_site")
    with database_for(str(request.param), folder) as url:
        server = FeedServer()
        try:
            yield from _publish_site(Caulbart(folder / "feeds.yaml", url, folder), server)
        finally:
            server.close()


IMG = re.compile(r"<img\b[^>]*>")


@dataclass(frozen=True)
class Expected:
    """A story as the database holds it, gathered here independently of
    aggregator.publishing."""

    id: int
    url: str
    title: str
    lede: str
    body: str
    published: datetime
    updated: datetime
    section: str
    tags: list[str]
    agencies: list[str]
    links: list[str]
    best_source: str
    feed_url: str
    rights: str | None
    excerpt_only: bool
    images: bool
    image_url: str | None
    image_credit: str | None
    withdrawn: bool


def expected_stories(site: Site) -> dict[int, Expected]:
    exported = site.caulbart("export")
    assert exported.returncode == 0, exported.stderr
    records = {r["id"]: r for r in map(json.loads, exported.stdout.splitlines())}
    found: dict[int, Expected] = {}
    with Session(site.engine) as session:
        for story in session.scalars(select(Story)):
            tellings = session.execute(
                select(Entry, Source)
                .join(Source, Source.id == Entry.source_id)
                .where(Entry.story_id == story.id)
                .order_by(Entry.id)
            ).all()
            tellings.sort(key=lambda pair: (pair[0].id != story.best_entry_id, pair[0].id))
            best = tellings[0][1]
            record = records[story.id]
            found[story.id] = Expected(
                id=story.id,
                url=record["url"],
                title=story.title,
                lede=story.lede,
                body=story.body_html if best.images else IMG.sub("", story.body_html),
                published=story.published,
                updated=max(story.revised or story.published, story.published),
                section=story.section,
                tags=record["tags"],
                agencies=list(dict.fromkeys(source.agency for _, source in tellings)),
                links=[entry.link for entry, _ in tellings if entry.link],
                best_source=best.id,
                feed_url=best.url,
                rights=best.rights,
                excerpt_only=best.excerpt_only,
                images=best.images,
                image_url=story.image_url if best.images else None,
                image_credit=story.image_credit if best.images else None,
                withdrawn=story.withdrawn_at is not None,
            )
    return found


def same_html(read: str, stored: str) -> bool:
    """Equal as HTML: readers re-serialise (`<br />`, attribute order); nothing else may differ."""
    return _canonical(read) == _canonical(stored)


def _canonical(markup: str) -> bytes:
    root = lxml.html.fragment_fromstring(markup, create_parent="div")
    for element in root.iter():
        attributes = sorted(element.attrib.items())
        element.attrib.clear()
        element.attrib.update(attributes)
    return lxml.html.tostring(root)


def story_id(tag_uri: str) -> int:
    match = TAG_URI.match(tag_uri)
    assert match, tag_uri
    return int(match.group(1))


def walk(site: Site, url: str, rel: str = "next") -> list[Any]:
    """Every document reached from `url` by following `rel` links."""
    documents = []
    seen: set[str] = set()
    next_url: str | None = url
    while next_url:
        assert next_url not in seen, f"{rel} loop at {next_url}"
        seen.add(next_url)
        document = site.parsed(next_url)
        documents.append(document)
        next_url = next(
            (link.href for link in document.feed.get("links", []) if link.rel == rel), None
        )
    return documents


# --- every field ----------------------------------------------------------------------------


def test_atom_entries_carry_every_field_and_credit_the_originals(shared_site: Site) -> None:
    site = shared_site
    expected = expected_stories(site)
    seen: set[int] = set()
    for document in walk(site, f"{BASE}/feed.atom"):
        assert document.version == "atom10"
        for entry in document.entries:
            story = expected[story_id(entry.id)]
            seen.add(story.id)
            assert entry.link == story.url
            assert entry.title == story.title
            assert datetime.fromisoformat(entry.published) == story.published
            assert datetime.fromisoformat(entry.updated) == story.updated
            assert [a.name for a in entry.authors] == story.agencies
            assert [t.label for t in entry.get("tags", [])] == story.tags
            assert [t.term for t in entry.get("tags", [])] == [tag_slug(t) for t in story.tags]
            if story.lede:
                assert entry.summary == story.lede
            if story.excerpt_only:
                assert "content" not in entry
            else:
                assert same_html(entry.content[0].value, story.body)
                assert entry.content[0].type == "text/html"
            vias = [link.href for link in entry.links if link.rel == "via"]
            assert vias == story.links
            assert entry.source.id == story.feed_url
            assert entry.source.title
            if story.rights:
                assert entry.rights == story.rights
            else:
                assert "rights" not in entry
            if story.image_url and story.images:
                assert entry.media_content[0]["url"] == story.image_url
                enclosures = [link.href for link in entry.links if link.rel == "enclosure"]
                assert enclosures == [story.image_url]
                if story.image_credit:
                    assert entry.media_credit[0]["content"] == story.image_credit
            else:
                assert "media_content" not in entry
    assert seen == set(expected)


def test_rss_items_carry_every_field_and_credit_the_originals(shared_site: Site) -> None:
    site = shared_site
    expected = expected_stories(site)
    seen: set[int] = set()
    for document in walk(site, f"{BASE}/feed.rss"):
        assert document.version == "rss20"
        for item in document.entries:
            story = expected[story_id(item.id)]
            seen.add(story.id)
            assert item.link == story.url
            assert item.title == story.title
            assert parsedate_to_datetime(item.published) == story.published.replace(microsecond=0)
            assert [t.term for t in item.get("tags", [])] == story.tags
            assert item.author == story.agencies[-1]  # feedparser keeps the last dc:creator
            assert item.source.href == story.feed_url
            if story.links:  # the original, linked from the description
                assert f'href="{html.escape(story.links[0])}"' in item.summary
            if story.excerpt_only:
                assert "content" not in item
            else:
                content = item.content[0].value
                if story.image_url and f'src="{html.escape(story.image_url)}"' not in story.body:
                    # The image and its credit open the content.
                    figure, _, content = content.partition("</figure>")
                    image = lxml.html.fragment_fromstring(figure + "</figure>")
                    assert image.xpath("img/@src") == [story.image_url]
                    caption = story.image_credit or story.agencies[0]
                    assert image.xpath("string(figcaption)") == caption
                assert same_html(content, story.body)
            if story.rights:
                assert item.rights == story.rights
            if story.image_url and story.images:
                assert item.enclosures[0].href == story.image_url
                assert item.media_content[0]["url"] == story.image_url
                if story.image_credit:
                    assert item.media_credit[0]["content"] == story.image_credit
            else:
                assert not item.get("enclosures")
    assert seen == set(expected)


def test_json_feed_matches_the_schema_and_carries_every_field(shared_site: Site) -> None:
    site = shared_site
    expected = expected_stories(site)
    validator = jsonschema.Draft202012Validator(
        SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    seen: set[int] = set()
    url: str | None = f"{BASE}/feed.json"
    while url:
        response = site.get(url)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/feed+json")
        document = response.get_json()
        validator.validate(document)
        assert document["feed_url"] == url
        assert document["hubs"] == [{"type": "WebSub", "url": _hub(site.feed_server)}]
        for item in document["items"]:
            story = expected[story_id(item["id"])]
            seen.add(story.id)
            assert item["url"] == story.url
            assert item["external_url"] == story.links[0]
            assert item["title"] == story.title
            assert RFC3339.match(item["date_published"]) and RFC3339.match(item["date_modified"])
            assert datetime.fromisoformat(item["date_published"]) == story.published.replace(
                microsecond=0
            )
            assert [a["name"] for a in item["authors"]] == story.agencies
            assert item.get("tags", []) == story.tags
            if story.excerpt_only or not story.body:
                assert "content_html" not in item
                assert item["content_text"]
            else:
                assert item["content_html"] == story.body
            assert item["_caulbart"].get("rights") == story.rights
            assert item["_caulbart"]["sources"][0]["id"] == story.best_source
            if story.image_url and story.images:
                assert item["image"] == story.image_url
            else:
                assert "image" not in item
        url = document.get("next_url")
    assert seen == set(expected)


# --- the rules validators enforce -----------------------------------------------------------


def _absolute(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


@pytest.mark.parametrize("scope", ["", "/section/world", "/source/guardian", "/tag/donald-trump"])
def test_atom_and_rss_follow_the_validators_rules(shared_site: Site, scope: str) -> None:
    site = shared_site
    for fmt in ("atom", "rss"):
        response = site.get(f"{BASE}{scope}/feed.{fmt}")
        assert response.status_code == 200, (scope, fmt)
        tree = etree.fromstring(response.data)
        if fmt == "atom":
            selfs = tree.findall(f"{ATOM}link[@rel='self']")
            ids = [e.findtext(f"{ATOM}id") for e in tree.iter(f"{ATOM}entry")]
            dates = [
                el.text for tag in ("updated", "published") for el in tree.iter(f"{ATOM}{tag}")
            ]
            assert all(RFC3339.match(d or "") for d in dates), dates
            for content in tree.iter(f"{ATOM}content"):
                assert content.get("type") == "html"
                assert len(content) == 0  # escaped text, never raw markup
            for entry in tree.iter(f"{ATOM}entry"):
                assert entry.find(f"{ATOM}author") is not None
                assert entry.find(f"{ATOM}link") is not None
        else:
            channel = tree.find("channel")
            assert channel is not None
            selfs = channel.findall(f"{ATOM}link[@rel='self']")
            ids = [item.findtext("guid") for item in channel.iter("item")]
            dates = [el.text for el in channel.iter("pubDate")] + [
                channel.findtext("lastBuildDate")
            ]
            assert all(RFC822.match(d or "") for d in dates), dates
            for encoded in channel.iter("{http://purl.org/rss/1.0/modules/content/}encoded"):
                assert len(encoded) == 0
        assert len(selfs) == 1, (scope, fmt)
        assert selfs[0].get("href") == f"{BASE}{scope}/feed.{fmt}"
        assert ids and len(ids) == len(set(ids)), (scope, fmt)
        for element in tree.iter():
            for attribute in ("href", "url"):
                if element.get(attribute) is not None:
                    assert _absolute(element.get(attribute)), (element.tag, element.get(attribute))
        hubs = [link.get("href") for link in tree.iter(f"{ATOM}link") if link.get("rel") == "hub"]
        assert hubs == [_hub(site.feed_server)]


def test_scoped_feeds_hold_only_their_stories(shared_site: Site) -> None:
    site = shared_site
    expected = expected_stories(site)
    section = site.parsed(f"{BASE}/section/us/feed.atom")
    assert section.feed.title == "Caulbart — Us"
    assert {expected[story_id(e.id)].section for e in section.entries} == {"us"}
    source = site.parsed(f"{BASE}/source/reuters/feed.atom")
    assert {expected[story_id(e.id)].best_source for e in source.entries} <= {"reuters"}
    assert len(source.entries) == 10
    assert source.feed.rights == SOURCES["reuters"][1]["rights"]
    tag = site.parsed(f"{BASE}/tag/donald-trump/feed.atom")
    assert tag.entries
    assert all("Donald Trump" in expected[story_id(e.id)].tags for e in tag.entries)
    for missing in ("/section/nowhere", "/source/nobody", "/tag/no-such-tag"):
        assert site.get(f"{BASE}{missing}/feed.atom").status_code == 404
    assert site.get(f"{BASE}/feed.atom?page=99").status_code == 404
    assert site.get(f"{BASE}/feed.xml").status_code == 404


@pytest.mark.parametrize(("kind", "value"), [("source", "guardian"), ("tag", "donald-trump")])
def test_a_source_or_tag_feed_is_the_same_however_its_stories_are_found(
    shared_site: Site, monkeypatch: pytest.MonkeyPatch, kind: str, value: str
) -> None:
    """A feed of few stories reads its version from its own list of them, one of many walks
    down the stories' indexes (feed_pages._version_statement): the same version and bytes."""
    site = shared_site
    url = f"/{kind}/{value}/feed.atom"
    with site.engine.connect() as connection:
        listed = feed_pages.feed_version(connection, scope.FeedQuery(kind, value))
        listed_response = site.fresh_client().get(url)
        monkeypatch.setattr(scope, "LIST_LIMIT", 0)  # as if every source and tag had many
        walked = feed_pages.feed_version(connection, scope.FeedQuery(kind, value))
        walked_response = site.fresh_client().get(url)
    assert listed.newest_id is not None
    assert walked == listed
    assert walked_response.status_code == listed_response.status_code == 200
    assert walked_response.data == listed_response.data


# --- paging and archives --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["atom", "rss"])
def test_paging_walk_reaches_every_story_exactly_once(shared_site: Site, fmt: str) -> None:
    site = shared_site
    expected = expected_stories(site)
    documents = walk(site, f"{BASE}/feed.{fmt}")
    ids = [story_id(entry.id) for document in documents for entry in document.entries]
    assert len(ids) == len(set(ids)) == len(expected)
    assert len(documents) == -(-len(expected) // PAGE)
    assert all(len(d.entries) == PAGE for d in documents[:-1])
    assert ids == sorted(ids, reverse=True)  # newest in Caulbart first, across pages


def test_archives_are_full_disjoint_and_reach_back_to_the_first_story(shared_site: Site) -> None:
    site = shared_site
    expected = expected_stories(site)
    subscription = site.parsed(f"{BASE}/feed.atom")
    archives = walk(site, f"{BASE}/feed.atom", rel="prev-archive")[1:]
    assert len(archives) == len(expected) // PAGE
    archived: list[int] = []
    for document in archives:
        assert len(document.entries) == PAGE
        current = [link.href for link in document.feed.links if link.rel == "current"]
        assert current == [f"{BASE}/feed.atom"]
        raw = site.get(next(link.href for link in document.feed.links if link.rel == "self"))
        assert etree.fromstring(raw.data).find(f"{HISTORY}archive") is not None
        archived += [story_id(entry.id) for entry in document.entries]
    assert len(archived) == len(set(archived))
    assert min(archived) == min(expected)
    subscribed = {story_id(entry.id) for entry in subscription.entries}
    newest = set(sorted(expected)[len(archived) :])
    assert set(archived) | subscribed | newest >= set(expected)
    assert set(archived).isdisjoint(newest)


# --- conditional GET and caching ------------------------------------------------------------


@pytest.mark.parametrize("path", ["/feed.atom", "/feed.rss", "/feed.json", "/section/us/feed.atom"])
def test_conditional_get_answers_304(shared_site: Site, path: str) -> None:
    site = shared_site
    first = site.get(BASE + path)
    assert first.status_code == 200
    etag = first.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    last_modified = first.headers["Last-Modified"]
    assert "max-age=" in first.headers["Cache-Control"]
    assert site.get(BASE + path, **{"If-None-Match": etag}).status_code == 304
    assert site.get(BASE + path, **{"If-Modified-Since": last_modified}).status_code == 304
    assert site.get(BASE + path, **{"If-None-Match": '"other"'}).status_code == 200
    other = site.fresh_client().get(path)
    assert other.headers["ETag"] == etag  # strong validators agree across processes
    assert other.data == first.data


def test_new_ingest_invalidates_every_process_cached_feed(site: Site) -> None:
    before = site.get(f"{BASE}/feed.atom")
    before_section = site.get(f"{BASE}/section/world/feed.json")
    second_process = site.fresh_client()
    assert second_process.get("/feed.atom").data == before.data
    feed = corpus_path("feeds", "real", "wire", "reuters-worldnews-2018-01-30.rss").read_text()
    fresh = (
        "<item><title>Caulbart test: a brand new story</title>"
        "<link>https://www.reuters.com/article/brand-new-story</link>"
        "<guid>brand-new-story</guid><pubDate>Wed, 31 Jan 2018 12:00:00 GMT</pubDate>"
        "<description>Something new happened today in the test suite, and it is news.</description>"
        "</item>"
    )
    site.feed_server.add("/reuters.rss", feed.replace("<item>", fresh + "<item>", 1))
    assert site.caulbart("fetch", "--all").returncode == 0
    for client in (site.client, second_process):
        after = client.get("/feed.atom", headers={"If-None-Match": before.headers["ETag"]})
        assert after.status_code == 200
        titles = [e.title for e in feedparser.parse(after.data).entries]
        assert "Caulbart test: a brand new story" in titles
    section = site.get(f"{BASE}/section/world/feed.json")
    assert section.headers["ETag"] != before_section.headers["ETag"]
    unrelated = site.get(f"{BASE}/section/tech/feed.atom")
    again = site.get(
        f"{BASE}/section/tech/feed.atom", **{"If-None-Match": unrelated.headers["ETag"]}
    )
    assert again.status_code == 304


# --- withdrawals ----------------------------------------------------------------------------


def _story_path(url: str) -> str:
    return urlsplit(url).path


def test_story_page_shows_the_story_and_announces_its_feeds(shared_site: Site) -> None:
    site = shared_site
    expected = expected_stories(site)
    story = next(s for s in expected.values() if s.best_source == "guardian")
    page = site.get(story.url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'rel="alternate" type="application/atom+xml"' in html
    assert f'href="{BASE}/feed.atom"' in html and f'href="{BASE}/section/us/feed.atom"' in html
    assert "Guardian News &amp; Media" in html  # rights on the page, escaped
    parts = _story_path(story.url).rsplit("/", 1)
    moved = site.get(f"{parts[0]}/old-headline-{story.id}")
    assert moved.status_code == 301 and moved.headers["Location"].endswith(_story_path(story.url))
    assert site.get(f"{parts[0]}/nothing-99999").status_code == 404


def test_unpublish_answers_410_and_puts_a_tombstone_in_atom(site: Site) -> None:
    expected = expected_stories(site)
    story = next(s for s in expected.values() if s.best_source == "reuters")
    before = site.get(f"{BASE}/feed.atom")
    pings = len(site.feed_server.posts)
    result = site.caulbart("unpublish", str(story.id), "--reason", "Legal <advice> & errors")
    assert result.returncode == 0, result.stderr
    page = site.get(story.url)
    assert page.status_code == 410
    assert "Legal &lt;advice&gt; &amp; errors" in page.get_data(as_text=True)
    after = site.get(f"{BASE}/feed.atom", **{"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    tree = etree.fromstring(after.data)
    tombstones = tree.findall(f"{TOMBSTONES}deleted-entry")
    assert [t.get("ref") for t in tombstones] == [
        e.id for e in feedparser.parse(before.data).entries if story_id(e.id) == story.id
    ] or [story_id(t.get("ref")) for t in tombstones] == [story.id]
    assert RFC3339.match(tombstones[0].get("when"))
    assert tombstones[0].findtext(f"{TOMBSTONES}comment") == "Legal <advice> & errors"
    for fmt in ("atom", "rss"):
        for document in walk(site, f"{BASE}/feed.{fmt}"):
            assert story.id not in {story_id(e.id) for e in document.entries}
    items = site.get(f"{BASE}/source/reuters/feed.json").get_json()["items"]
    assert story.id not in {story_id(i["id"]) for i in items}
    assert len(site.feed_server.posts) == pings + 1  # the hub hears of the withdrawal
    again = site.caulbart("unpublish", str(story.id), "--reason", "twice")
    assert again.returncode == 0 and "already" in again.stdout
    assert site.caulbart("unpublish", "999999", "--reason", "x").returncode == 1


def test_wire_kill_advisory_withdraws_the_story_it_names(site: Site) -> None:
    expected = expected_stories(site)
    story = next(s for s in expected.values() if s.best_source == "reuters")
    feed = corpus_path("feeds", "real", "wire", "reuters-worldnews-2018-01-30.rss").read_text()
    kill = (
        f"<item><title>KILL - {story.title}</title>"
        "<link>https://www.reuters.com/article/kill-advisory</link><guid>kill-1</guid>"
        "<pubDate>Wed, 31 Jan 2018 12:00:00 GMT</pubDate>"
        "<description>Please kill this story. It is withdrawn. There will be no substitute story."
        "</description></item>"
    )
    site.feed_server.add("/reuters.rss", feed.replace("<item>", kill + "<item>", 1))
    assert site.caulbart("fetch", "--all").returncode == 0
    page = site.get(story.url)
    assert page.status_code == 410
    assert "Reuters: KILL - " in page.get_data(as_text=True)
    refs = [
        story_id(t.get("ref"))
        for t in etree.fromstring(site.get(f"{BASE}/feed.atom").data).findall(
            f"{TOMBSTONES}deleted-entry"
        )
    ]
    assert refs == [story.id]
    titles = [s.title for s in expected_stories(site).values()]
    assert not any(t.startswith("KILL") for t in titles)  # the advisory is not a story


# --- the sources' terms ---------------------------------------------------------------------


def test_excerpt_only_and_images_false_are_honoured_everywhere(shared_site: Site) -> None:
    site = shared_site
    expected = expected_stories(site)
    huffpost = [s for s in expected.values() if s.best_source == "huffpost"]
    media = [s for s in expected.values() if s.best_source == "media404"]
    with Session(site.engine) as session:
        stored = {
            s.id: s
            for s in session.scalars(select(Story).where(Story.id.in_([m.id for m in media])))
        }
    assert huffpost and media and any(s.image_url for s in stored.values())
    assert any("<img" in s.body_html for s in stored.values())  # there were images to drop
    atom = {story_id(e.id): e for d in walk(site, f"{BASE}/feed.atom") for e in d.entries}
    for story in huffpost:
        assert "content" not in atom[story.id] and atom[story.id].summary == story.lede
        page = site.get(story.url).get_data(as_text=True)
        assert "Read the full story at HuffPost" in page
    for story in media:
        entry = atom[story.id]
        assert "<img" not in entry.content[0].value
        assert "media_content" not in entry and not entry.get("enclosures")
        assert "<img" not in site.get(story.url).get_data(as_text=True)
    rss = site.get(f"{BASE}/source/media404/feed.rss").get_data(as_text=True)
    assert "<img" not in rss and "&lt;img" not in rss and "<enclosure" not in rss


# --- WebSub and OPML ------------------------------------------------------------------------


def test_ingest_that_changed_stories_pings_the_hub_with_each_feed(site: Site) -> None:
    # Each source's ingest changed stories and asked for a ping; those asked for while one was
    # under way went together (websub.HubPings), in requests of a bounded size.
    pings = len(site.feed_server.posts)
    sent = [parse_qs(b.decode())["hub.url"] for _, _, b in site.feed_server.posts]
    assert pings >= 1
    assert all(len(urls) <= limits.WEBSUB_TOPICS_PER_PING for urls in sent)
    path, headers, body = site.feed_server.posts[0]
    assert path == "/hub"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    form = parse_qs(body.decode())
    assert form["hub.mode"] == ["publish"]
    assert f"{BASE}/feed.atom" in form["hub.url"] and f"{BASE}/feed.json" in form["hub.url"]
    everything = {url for urls in sent for url in urls}
    assert {f"{BASE}/source/{s}/feed.rss" for s in SOURCES} <= everything
    assert f"{BASE}/section/tech/feed.atom" in everything
    unchanged = site.caulbart("fetch", "--all")  # all 304: nothing changed, no ping
    assert unchanged.returncode == 0 and "4 304" in unchanged.stdout
    assert len(site.feed_server.posts) == pings


def test_sources_opml_lists_the_enabled_sources(shared_site: Site) -> None:
    site = shared_site
    response = site.get(f"{BASE}/sources.opml")
    assert response.status_code == 200
    tree = etree.fromstring(response.data)
    assert tree.get("version") == "2.0"
    outlines = tree.findall("body/outline/outline")  # each feed in its section's folder
    assert {o.get("xmlUrl") for o in outlines} == {
        site.feed_server.url(f"/{source_id}.rss") for source_id in SOURCES
    }
    assert all(o.get("type") == "rss" and o.get("text") for o in outlines)
    guardian = next(o for o in outlines if o.get("text") == "guardian")
    assert guardian.get("title") == "The Guardian"
    assert (
        site.get(f"{BASE}/sources.opml", **{"If-None-Match": response.headers["ETag"]}).status_code
        == 304
    )
