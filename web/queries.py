"""The web front's reads: plain values for views and templates, never SQL in a view."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from aggregator import tag_index
from aggregator.db import session_factory
from aggregator.models import Source, Story
from aggregator.permalinks import story_url
from aggregator.publish import PublishedStory, load_stories
from aggregator.types import SiteConfig


@dataclass(frozen=True)
class SourceLink:
    id: str
    name: str
    agency: str
    section: str
    feed_url: str
    title: str | None


def enabled_sources(engine: Engine) -> list[SourceLink]:
    """Sources being fetched, by id: what /sources.opml lists."""
    with session_factory(engine)() as session:
        rows = session.scalars(
            select(Source).where(Source.disabled_reason.is_(None)).order_by(Source.id)
        )
        return [SourceLink(s.id, s.name, s.agency, s.section, s.url, s.feed_title) for s in rows]


def story_page(engine: Engine, site: SiteConfig, story_id: int) -> PublishedStory | None:
    """A story as its page shows it (the same terms and credits as the feeds), or None."""
    with session_factory(engine)() as session:
        return load_stories(session, site, [story_id]).get(story_id)


@dataclass(frozen=True)
class RelatedLink:
    title: str
    url: str


def related_posts(engine: Engine, site: SiteConfig, story_id: int) -> list[RelatedLink]:
    """The story's kept related posts, most related first; withdrawn stories left out."""
    with session_factory(engine)() as session:
        ids = tag_index.related_ids(session, [story_id])[story_id]
        stories = {
            story.id: story
            for story in session.scalars(
                select(Story).where(Story.id.in_(ids), Story.withdrawn_at.is_(None))
            )
        }
        return [
            RelatedLink(
                story.title, story_url(site.base_url, story.id, story.slug, story.published)
            )
            for story in (stories.get(i) for i in ids)
            if story is not None
        ]
