"""The web front's reads: plain values for views and templates, never SQL in a view."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine, select

from aggregator.db import session_factory
from aggregator.models import Source
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
