"""Plain values and a small database the publishing tests share: a published story, a feed
page of them, and one wire source's stories ingested through the store."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import sqlalchemy
from sqlalchemy.orm import Session

from aggregator.publishing.feed_pages import FeedPage
from aggregator.publishing.stories import Original, PublishedStory, story_tag_uri
from aggregator.storage.entries import save_items
from aggregator.storage.models import Source
from aggregator.storage.sources import sync_sources
from aggregator.types import Config, Defaults, Item, SiteConfig, SourceConfig

SITE = SiteConfig(base_url="https://news.example", feed_length=2)
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def published_story(story_id: int, **changes: object) -> PublishedStory:
    story = PublishedStory(
        id=story_id,
        tag_uri=story_tag_uri("news.example", story_id, NOW),
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


def wire_item(guid: str, title: str, published: datetime) -> Item:
    return Item(
        guid=guid, link=f"https://wire.example/{guid}", title=title, lede=f"{title}.",
        body_html=f"<p>{title}, told in full with enough words to be a story of its own.</p>",
        published=published, updated=published, author=None, categories=("Berlin",),
        image_url=None, image_credit=None, language="en", text_hash=None,
        content_hash=guid + title, has_full_text=True,
    )  # fmt: skip


def wire_config(rights: str | None = None) -> Config:
    source = SourceConfig(id="wire", name="Wire", url="https://wire.example/rss", agency="Wire",
                          rights=rights)  # fmt: skip
    return Config(path="feeds.yaml", site=SITE, defaults=Defaults(), sources=(source,))


def ingest(engine: sqlalchemy.Engine, config: Config, items: list[Item], now: datetime) -> None:
    with Session(engine) as session, session.begin():
        sync_sources(session, config, now)
        source = session.get_one(Source, "wire")
        save_items(session, source, items, now)
