"""aggregator.publishing.publish with plain values, a real database and a real hub on loopback."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import feedparser
import pytest
import sqlalchemy
from lxml import etree
from sqlalchemy.orm import Session

from aggregator.config.load import ConfigError, parse_config
from aggregator.publishing import publish
from aggregator.publishing.publish import FeedCache, FeedPage, FeedQuery, Original, PublishedStory
from aggregator.storage.entries import save_items
from aggregator.storage.models import Source, Story
from aggregator.storage.sources import sync_sources
from aggregator.stories import withdrawals
from aggregator.types import Config, Defaults, Item, SiteConfig, SourceConfig
from tests.conftest import FeedServer

SITE = SiteConfig(base_url="https://news.example", feed_length=2)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
HOSTILE = 'Bombs & "bullets" </title></content><script>alert(1)</script>'


def published_story(story_id: int, **changes: object) -> PublishedStory:
    story = PublishedStory(
        id=story_id,
        tag_uri=publish.story_tag_uri("news.example", story_id, NOW),
        url=f"https://news.example/2026/11/24/story-{story_id}",
        title=f"Story {story_id}",
        lede="The lede.",
        body_html="<p>The body &amp; more.</p>",
        published=NOW,
        updated=NOW,
        section="world",
        language="en",
        authors=("Reuters",),
        tags=("Berlin",),
        image_url="https://img.example/a.png",
        image_credit="Photo: A. Person",
        rights="© Reuters",
        originals=(
            Original("reuters", "Reuters", "Reuters", "https://wire.example/rss", "Wire",
                     "https://wire.example/a", "Story"),
        ),
    )  # fmt: skip
    return replace(story, **changes)  # type: ignore[arg-type]


def page_of(*stories: PublishedStory, **changes: object) -> FeedPage:
    page = FeedPage("Caulbart", None, tuple(stories), (), 1, 1, None, 0)
    return replace(page, **changes)  # type: ignore[arg-type]


# --- rendering with plain values ------------------------------------------------------------


def test_hostile_text_is_escaped_in_every_format() -> None:
    story = published_story(1, title=HOSTILE, lede=HOSTILE, body_html=f"<p>{HOSTILE}</p>")
    page = page_of(story)
    for fmt in ("atom", "rss"):
        body = publish.render(SITE, page, FeedQuery(), fmt, NOW, 300)
        tree = etree.fromstring(body)
        assert not list(tree.iter("script")), fmt
        parsed = feedparser.parse(body, sanitize_html=False)
        assert parsed.bozo == 0
        assert parsed.entries[0].title == HOSTILE
    json_body = publish.render(SITE, page, FeedQuery(), "json", NOW, 300)
    assert publish.json.loads(json_body)["items"][0]["title"] == HOSTILE


def test_atom_tombstone_names_the_withdrawn_story_with_reason_and_date() -> None:
    gone = published_story(7, withdrawn_at=NOW, withdrawn_reason="Legal & <advice>")
    body = publish.render(SITE, page_of(published_story(8), tombstones=(gone,)), FeedQuery(),
                          "atom", NOW, 300)  # fmt: skip
    tree = etree.fromstring(body)
    (tombstone,) = tree.findall(f"{{{publish.TOMBSTONE_NS}}}deleted-entry")
    assert tombstone.get("ref") == gone.tag_uri
    assert tombstone.get("when") == "2026-11-24T12:00:00Z"
    assert tombstone.findtext(f"{{{publish.TOMBSTONE_NS}}}comment") == "Legal & <advice>"
    entry_ids = [e.findtext("{http://www.w3.org/2005/Atom}id") for e in tree.iter("{*}entry")]
    assert entry_ids == [published_story(8).tag_uri]


def test_archive_document_is_marked_and_links_its_neighbours() -> None:
    archive = page_of(published_story(3), page=None, pages=0, archive=2, archives=3)
    body = publish.render(SITE, archive, FeedQuery("section", "world"), "atom", NOW, 300)
    tree = etree.fromstring(body)
    assert tree.find(f"{{{publish.HISTORY_NS}}}archive") is not None
    links = {
        link.get("rel"): link.get("href")
        for link in tree.findall("{http://www.w3.org/2005/Atom}link")
    }
    feed = "https://news.example/section/world/feed.atom"
    assert links["self"] == f"{feed}?archive=2"
    assert links["prev-archive"] == f"{feed}?archive=1"
    assert links["next-archive"] == f"{feed}?archive=3"
    assert links["current"] == feed
    assert "next" not in links


def test_pages_link_next_previous_and_the_newest_archive() -> None:
    query = FeedQuery("tag", "berlin")
    first = publish.feed_links(SITE, query, "rss", page_of(pages=3, archives=2))
    assert first.self_url == "https://news.example/tag/berlin/feed.rss"
    assert first.next == "https://news.example/tag/berlin/feed.rss?page=2"
    assert first.previous is None
    assert first.prev_archive == "https://news.example/tag/berlin/feed.rss?archive=2"
    last = publish.feed_links(SITE, query, "rss", page_of(page=3, pages=3, archives=2))
    assert last.next is None and last.prev_archive is None
    assert last.previous == "https://news.example/tag/berlin/feed.rss?page=2"


def test_story_tag_uri_depends_only_on_authority_day_and_id() -> None:
    uri = publish.story_tag_uri("news.example", 42, NOW)
    assert uri == "tag:news.example,2026-11-24:story:42"
    later = NOW + timedelta(hours=5)
    assert publish.story_tag_uri("news.example", 42, later) == uri


def test_without_images_keeps_everything_but_img() -> None:
    body = (
        '<figure><img src="https://i.example/x.jpg" alt="x"><figcaption>Cap</figcaption>'
        "</figure><p>Text</p>"
    )
    assert (
        publish.without_images(body) == "<figure><figcaption>Cap</figcaption></figure><p>Text</p>"
    )


# --- the database: versions and the cache ---------------------------------------------------


def _item(guid: str, title: str, published: datetime) -> Item:
    return Item(
        guid=guid, link=f"https://wire.example/{guid}", title=title, lede=f"{title}.",
        body_html=f"<p>{title}, told in full with enough words to be a story of its own.</p>",
        published=published, updated=published, author=None, categories=("Berlin",),
        image_url=None, image_credit=None, language="en", text_hash=None,
        content_hash=guid + title, has_full_text=True,
    )  # fmt: skip


def _config(rights: str | None = None) -> Config:
    source = SourceConfig(id="wire", name="Wire", url="https://wire.example/rss", agency="Wire",
                          rights=rights)  # fmt: skip
    return Config(path="feeds.yaml", site=SITE, defaults=Defaults(), sources=(source,))


def _ingest(engine: sqlalchemy.Engine, config: Config, items: list[Item], now: datetime) -> None:
    with Session(engine) as session, session.begin():
        sync_sources(session, config, now)
        source = session.get_one(Source, "wire")
        save_items(session, source, items, now)


def test_unchanged_feed_is_served_from_cache_without_rendering(engine: sqlalchemy.Engine) -> None:
    config = _config()
    _ingest(engine, config, [_item(f"g{i}", f"Story {i}", NOW) for i in range(5)], NOW)
    cache = FeedCache(engine, config)
    first = cache.document(FeedQuery(), "atom")
    assert cache.document(FeedQuery(), "atom") is first  # the same object: nothing rendered
    other_process = FeedCache(engine, config).document(FeedQuery(), "atom")
    assert other_process.etag == first.etag and other_process.body == first.body
    _ingest(engine, config, [_item("g9", "Story nine", NOW)], NOW + timedelta(minutes=5))
    changed = cache.document(FeedQuery(), "atom")
    assert changed.etag != first.etag
    assert changed.last_modified == NOW + timedelta(minutes=5)


def test_withdrawal_and_new_rights_change_the_feed_version(engine: sqlalchemy.Engine) -> None:
    config = _config()
    _ingest(engine, config, [_item("g1", "Story one", NOW), _item("g2", "Story two", NOW)], NOW)
    with Session(engine) as session:
        before = publish.feed_version(session.connection(), FeedQuery("source", "wire"))
        story_id = session.scalars(sqlalchemy.select(Story.id)).first()
    assert before.newest_id is not None
    with Session(engine) as session, session.begin():
        withdrawals.withdraw_story(session, story_id, "wrong", NOW + timedelta(minutes=1))
    with Session(engine) as session:
        withdrawn = publish.feed_version(session.connection(), FeedQuery("source", "wire"))
    assert withdrawn != before
    _ingest(engine, _config(rights="© Wire"), [], NOW + timedelta(minutes=2))
    with Session(engine) as session:
        after = publish.feed_version(session.connection(), FeedQuery())
        page = publish.load_page(session, SITE, FeedQuery(), 1)
    assert after.last_modified == NOW + timedelta(minutes=2)
    assert [s.rights for s in page.stories] == ["© Wire"]
    assert [s.id for s in page.tombstones] == [story_id]


def test_unknown_scope_and_page_beyond_the_end_are_not_found(engine: sqlalchemy.Engine) -> None:
    config = _config()
    _ingest(engine, config, [_item(f"g{i}", f"Story {i}", NOW) for i in range(3)], NOW)
    cache = FeedCache(engine, config)
    assert cache.document(FeedQuery("source", "wire"), "json", page=2).body
    for query, page in ((FeedQuery("source", "nobody"), 1), (FeedQuery(), 3)):
        with pytest.raises(publish.FeedNotFound):
            cache.document(query, "atom", page=page)
    with pytest.raises(publish.FeedNotFound):
        cache.document(FeedQuery(), "atom", archive=2)  # 3 stories: one full archive of 2


def test_a_story_committed_out_of_order_shows_once_its_document_is_rendered_again(
    postgres: sqlalchemy.Engine,
) -> None:
    """Two workers on PostgreSQL: the one that took the lower story id commits last. A version
    read between the two commits has the later story as newest and latest already, so the
    earlier story's commit cannot move it; the cache renders again after `recheck_after`."""
    sources = tuple(
        SourceConfig(id=name, name=name.title(), url=f"https://{name}.example/rss", agency=name)
        for name in ("early", "late")
    )
    config = Config(path="feeds.yaml", site=SITE, defaults=Defaults(), sources=sources)
    with Session(postgres) as session, session.begin():
        sync_sources(session, config, NOW)
    cache = FeedCache(postgres, config, recheck_after=3600)
    with Session(postgres) as early:
        early.begin()
        save_items(early, early.get_one(Source, "early"), [_item("e", "Early", NOW)], NOW)
        with Session(postgres) as late, late.begin():
            late.execute(sqlalchemy.text("SET LOCAL lock_timeout = '10s'"))  # fail, never hang
            later = NOW + timedelta(minutes=1)
            save_items(late, late.get_one(Source, "late"), [_item("l", "Late", later)], later)
        first = cache.document(FeedQuery(), "atom")
        early.commit()
    assert b"Late" in first.body and b"Early" not in first.body
    assert cache.document(FeedQuery(), "atom") is first  # the version did not move
    cache.recheck_after = 0
    again = cache.document(FeedQuery(), "atom")
    assert b"Early" in again.body and b"Late" in again.body
    assert again.version == first.version
    assert again.last_modified > first.last_modified  # If-Modified-Since sees the change
    assert cache.document(FeedQuery(), "atom").last_modified == again.last_modified


# --- WebSub ---------------------------------------------------------------------------------


def test_publish_ping_reaches_a_live_hub_and_survives_a_dead_one(feed_server: FeedServer) -> None:
    site = replace(SITE, websub_hubs=("http://127.0.0.1:9/dead-hub", feed_server.url("/hub")))
    topics = publish.topics(site, [FeedQuery(), FeedQuery("section", "world")])
    publish.notify_hubs(site, topics)
    ((path, _, body),) = feed_server.posts
    assert path == "/hub"
    form = parse_qs(body.decode())
    assert form["hub.mode"] == ["publish"]
    assert form["hub.url"] == topics
    assert "https://news.example/section/world/feed.json" in topics


def test_many_topics_go_to_the_hub_in_pings_of_a_bounded_size(
    feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publish.limits, "WEBSUB_TOPICS_PER_PING", 4)
    site = replace(SITE, websub_hubs=(feed_server.url("/hub"),))
    topics = publish.topics(site, [FeedQuery(), FeedQuery("tag", "a"), FeedQuery("tag", "b")])
    publish.notify_hubs(site, topics)
    sent = [parse_qs(body.decode())["hub.url"] for _, _, body in feed_server.posts]
    assert [len(urls) for urls in sent] == [4, 4, 1]
    assert [url for urls in sent for url in urls] == topics


def test_pings_asked_for_while_a_hub_is_busy_go_together_in_the_next(
    feed_server: FeedServer,
) -> None:
    site = replace(SITE, websub_hubs=(feed_server.url("/hub"),))
    pings = publish.HubPings()
    feed_server.posts_answered.clear()  # the hub holds the first ping
    try:
        pings.send(site, ["https://news.example/a"])
        for _ in range(100):
            if feed_server.posts:
                break
            time.sleep(0.05)
        pings.send(site, ["https://news.example/b", "https://news.example/c"])
        pings.send(site, ["https://news.example/b"])
        assert not pings.flush(0.2)  # waiting gives up at its timeout while the hub holds on
    finally:
        feed_server.posts_answered.set()
    assert pings.flush(10)
    sent = [parse_qs(body.decode())["hub.url"] for _, _, body in feed_server.posts]
    assert sent == [
        ["https://news.example/a"],
        ["https://news.example/b", "https://news.example/c"],
    ]


# --- feeds.yaml -----------------------------------------------------------------------------

YAML = """\
site:
  base_url: https://news.example
  websub_hubs:
    - https://hub.example/
  feed_length: 30
sources:
  - id: wire
    url: https://wire.example/rss
    rights: "© Wire Service"
    excerpt_only: true
    images: false
"""


def test_config_reads_the_publishing_keys() -> None:
    config = parse_config(YAML)
    assert config.site.websub_hubs == ("https://hub.example/",)
    assert config.site.feed_length == 30
    (source,) = config.sources
    assert (source.rights, source.excerpt_only, source.images) == ("© Wire Service", True, False)
    plain = parse_config("sources:\n  - id: a\n    url: https://a.example/\n")
    assert plain.site.websub_hubs == () and plain.site.feed_length == 50
    assert (plain.sources[0].excerpt_only, plain.sources[0].images) == (False, True)


def test_config_reports_bad_publishing_values_with_their_lines() -> None:
    bad = (
        YAML.replace("https://hub.example/", "ftp://hub.example/")
        .replace("feed_length: 30", "feed_length: 0")
        .replace("excerpt_only: true", "excerpt_only: sometimes")
        .replace("images: false", "imagery: false")
    )
    with pytest.raises(ConfigError) as error:
        parse_config(bad)
    lines = [str(problem) for problem in error.value.problems]
    assert lines[0].startswith("feeds.yaml:4: site.websub_hubs[0]: bad URL")
    assert lines[1].startswith("feeds.yaml:5: site.feed_length: must be above zero")
    assert lines[2].startswith("feeds.yaml:10: sources[0].excerpt_only: must be true or false")
    assert lines[3].startswith("feeds.yaml:11: sources[0]: unknown key 'imagery'")
