"""Which stories a feed or a listing page holds: the whole site, a section, a tag or a source.

Shared by the feeds (feed_pages) and the web front's listings, so that a page and its feed hold
the same stories, read the same way: a source's or a tag's stories from its own list of them
when it has few, by walking the newest stories when it has many (`stories_among`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    bindparam,
    exists,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from aggregator.storage.models import Entry, Story, StoryTag, Tag
from aggregator.stories import review

# Our feeds' formats and their media types: a feed is a query in one of them.
FORMATS: dict[str, str] = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
KINDS = ("all", "section", "tag", "source")


@dataclass(frozen=True)
class FeedQuery:
    """Which stories a feed holds: all, or those of one section, tag (slug) or source (id)."""

    kind: str = "all"
    value: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS or (self.kind == "all") != (self.value == ""):
            raise ValueError(f"bad feed query {self.kind!r} {self.value!r}")

    @property
    def path(self) -> str:
        """The URL prefix of its feeds and page: "" for the site, "/section/world"..."""
        return "" if self.kind == "all" else f"/{self.kind}/{self.value}"

    def feed_path(self, fmt: str) -> str:
        return f"{self.path}/feed.{fmt}"


def members(query: FeedQuery) -> ColumnElement[bool]:
    """The stories of the feed's query, visible ones only."""
    return membership(query.kind, literal(query.value))


def membership(kind: str, value: ColumnElement[str]) -> ColumnElement[bool]:
    """The feed's stories; held and rejected ones are in no feed (nor in its version)."""
    return review.visible() & _scope(kind, value)


def _scope(kind: str, value: ColumnElement[str]) -> ColumnElement[bool]:
    if kind == "section":
        return Story.section == value
    rows = story_rows(kind, value)
    return true() if rows is None else stories_listed(*rows)


def story_rows(
    kind: str, value: ColumnElement[str]
) -> tuple[InstrumentedAttribute[int], ColumnElement[bool]] | None:
    """The rows naming a source's or a tag's stories: their story id column and condition."""
    if kind == "source":
        return Entry.story_id, Entry.source_id == value
    if kind == "tag":
        return StoryTag.story_id, StoryTag.tag_id == (
            select(Tag.id).where(Tag.slug == value).scalar_subquery()
        )
    return None


# A source or a tag with more stories than this is read by walking the newest stories and
# checking each (EXISTS), not from its own list of them (IN): see `stories_among`.
LIST_LIMIT = 2000


def stories_listed(
    story_id: InstrumentedAttribute[int], *where: ColumnElement[bool]
) -> ColumnElement[bool]:
    """Stories among those of the rows matching `where`: SQLite makes the list of them first."""
    return Story.id.in_(select(story_id).where(*where))


def stories_walked(
    story_id: InstrumentedAttribute[int], *where: ColumnElement[bool]
) -> ColumnElement[bool]:
    """The same stories, checked one by one with an index probe as a walk meets them."""
    return exists().where(*where, story_id == Story.id)


def stories_counted(
    story_id: InstrumentedAttribute[int], *where: ColumnElement[bool]
) -> Select[Any]:
    """How many stories the rows matching `where` name, counted no further than LIST_LIMIT + 1
    (the limit a bound parameter, `list_limit`, so cached statements follow it)."""
    limit = bindparam("list_limit", type_=Integer)
    listed = select(story_id).where(*where).limit(limit + 1).subquery()
    return select(func.count()).select_from(listed)


def stories_among(
    bind: Session | Connection, story_id: InstrumentedAttribute[int], *where: ColumnElement[bool]
) -> ColumnElement[bool]:
    """The stories the rows matching `where` name (a source's entries, a tag's), in the form
    that stays cheap for this source or tag as the archive grows.

    A page of a source with many stories is quickest found by walking the stories newest
    first, rather than from the list of its stories (SQLite builds and sorts it). With few, the
    walk would pass most of the archive before it found them, and the list is short. Which it
    is, is counted no further than LIST_LIMIT.
    """
    counted = bind.scalar(stories_counted(story_id, *where), {"list_limit": LIST_LIMIT})
    if (counted or 0) > LIST_LIMIT:
        return stories_walked(story_id, *where)
    return stories_listed(story_id, *where)
