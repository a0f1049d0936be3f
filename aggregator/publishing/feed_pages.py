"""The feeds' read side: one document's page of stories, and the feed's version.

Paging follows RFC 5005: `?page=N` pages newest first (section 3), and `?archive=K` archives of
`feed_length` stories each in id order, which never change once full (section 4). A page's
withdrawn stories are its tombstones (RFC 6721). The version is what moves whenever any story
of the feed does, read in one statement of index probes (FeedCache asks it on every request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Select,
    String,
    bindparam,
    case,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session

from aggregator import limits
from aggregator.errors import FeedNotFound
from aggregator.publishing import scope
from aggregator.publishing.scope import KINDS, FeedQuery
from aggregator.publishing.stories import PublishedStory, load_stories
from aggregator.storage.models import FeedChange, Prune, Source, Story, Tag
from aggregator.stories import review
from aggregator.types import SiteConfig

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class FeedVersion:
    """What changes whenever any story of the feed does; equal versions render equal bytes."""

    newest_id: int | None
    latest_update: datetime | None
    newest_created: datetime | None
    terms_changed: datetime | None
    # The last retention run (aggregator.stories.retention): stories were deleted then.
    pruned: datetime | None = None
    # When a story last left the feed or every story was tagged again (models.FeedChange).
    departed: datetime | None = None

    @property
    def last_modified(self) -> datetime:
        """When the feed last changed, to the second (HTTP dates have no fractions)."""
        moments = [
            m
            for m in (
                self.latest_update,
                self.newest_created,
                self.terms_changed,
                self.pruned,
                self.departed,
            )
            if m
        ]
        return max(moments, default=EPOCH).replace(microsecond=0)


@dataclass(frozen=True)
class FeedPage:
    """The stories of one document and where it sits among the feed's pages and archives."""

    title: str
    rights: str | None
    stories: tuple[PublishedStory, ...]
    tombstones: tuple[PublishedStory, ...]
    page: int | None  # None for an archive document
    pages: int
    archive: int | None
    archives: int


@lru_cache(maxsize=len(KINDS))
def _version_statement(kind: str) -> Select[Any]:
    """Built once per kind (the value is a bound parameter): the hot path builds nothing.

    Every part is a probe of an index, so a feed's version costs the same at any archive size:
    no count of the feed's stories. A story that joins a feed was stored or edited, which moves
    the feed's newest or latest story; one that leaves is recorded in `feed_changes`.

    A source's or a tag's newest and latest story are found walking down the stories' indexes
    when it has many stories, in its own list of them when it has few: the statement counts
    which (no further than LIST_LIMIT) and runs only that branch, in the same round trip."""
    value = bindparam("value", type_=String)
    members = scope.membership(kind, value)

    def newest_of(stories: ColumnElement[bool]) -> ColumnElement[Any]:
        # ORDER BY ... LIMIT 1 rather than max(): with a WHERE (review, scope), SQLite's max()
        # reads every row, while a walk down the index stops at the first visible story.
        return select(Story.id).where(stories).order_by(Story.id.desc()).limit(1).scalar_subquery()

    def latest_of(stories: ColumnElement[bool]) -> ColumnElement[Any]:
        return (
            select(Story.updated).where(stories).order_by(Story.updated.desc()).limit(1)
        ).scalar_subquery()

    newest, latest = newest_of(members), latest_of(members)
    rows = scope.story_rows(kind, value)
    if rows is not None:
        many = scope.stories_counted(*rows).scalar_subquery() > bindparam(
            "list_limit", type_=Integer
        )
        walked = review.visible() & scope.stories_walked(*rows)
        newest = case((many, newest_of(walked)), else_=newest)
        latest = case((many, latest_of(walked)), else_=latest)

    def departed(feed_kind: str, name: ColumnElement[str]) -> ColumnElement[Any]:
        return (
            select(FeedChange.at)
            .where(FeedChange.kind == feed_kind, FeedChange.value == name)
            .order_by(FeedChange.at.desc())
            .limit(1)
            .scalar_subquery()
        )

    return select(
        newest,
        latest,
        select(Story.created_at).where(Story.id == newest).scalar_subquery(),
        select(func.max(Source.terms_changed_at)).scalar_subquery(),
        select(func.max(Prune.at)).scalar_subquery(),
        departed("all", literal("")),
        departed(kind, value) if kind != "all" else literal(None),
    )


def feed_version(connection: Connection, query: FeedQuery) -> FeedVersion:
    """One round trip: newest story, latest change, sources' terms, prunes, departures."""
    values = {"value": query.value, "list_limit": scope.LIST_LIMIT}
    row = connection.execute(_version_statement(query.kind), values).one()
    departures = [moment for moment in map(_utc, row[5:]) if moment is not None]
    return FeedVersion(
        newest_id=row[0],
        latest_update=_utc(row[1]),
        newest_created=_utc(row[2]),
        terms_changed=_utc(row[3]),
        pruned=_utc(row[4]),
        departed=max(departures, default=None),
    )


def _utc(value: Any) -> datetime | None:
    """Aggregates in scalar subqueries come back raw on SQLite: naive text or datetime, in UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def scope_title(session: Session, query: FeedQuery) -> str | None:
    """The human name of the feed's scope, or None when no such section, tag or source exists."""
    if query.kind == "all":
        return ""
    if query.kind == "source":
        return session.scalar(select(Source.name).where(Source.id == query.value))
    if query.kind == "tag":
        return session.scalar(select(Tag.label).where(Tag.slug == query.value))
    known = session.scalar(
        select(Source.id).where(Source.section == query.value).limit(1)
    ) or session.scalar(select(Story.id).where(Story.section == query.value).limit(1))
    return query.value.replace("-", " ").title() if known else None


def load_page(
    session: Session, site: SiteConfig, query: FeedQuery, page: int = 1, archive: int | None = None
) -> FeedPage:
    """The stories of page `page` (newest first) or of archive `archive` (1 = oldest)."""
    name = scope_title(session, query)
    if name is None:
        raise FeedNotFound(f"no {query.kind} {query.value!r}")
    size = site.feed_length
    total = session.scalar(select(func.count(Story.id)).where(scope.members(query))) or 0
    archives = total // size  # only full archives exist: they never change afterwards
    # Read in pages the way that stays cheap for a big source or tag (walking the newest).
    rows = scope.story_rows(query.kind, literal(query.value))
    members = (
        scope.members(query)
        if rows is None
        else review.visible() & scope.stories_among(session, *rows)
    )
    live = members & Story.withdrawn_at.is_(None)
    # Withdrawn stories are few: read from their own (partial) index, then checked against the
    # feed, not found by reading every story of the feed for its `withdrawn_at`.
    withdrawn = select(Story.id).where(Story.withdrawn_at.is_not(None))
    withdrawn_ids = list(
        session.scalars(
            select(Story.id)
            .where(Story.id.in_(withdrawn), members)
            .order_by(Story.withdrawn_at.desc(), Story.id.desc())
        )
    )
    tombstone_ids: list[int] = []
    if archive is None:
        pages = max(1, -(-(total - len(withdrawn_ids)) // size))
        if not 1 <= page <= pages:
            raise FeedNotFound(f"page {page} of {pages}")
        ids = list(
            session.scalars(
                select(Story.id)
                .where(live)
                # Newest in Caulbart first, not by the sources' dates: a story that arrives late
                # with an old date must still reach subscribers who poll only the first page.
                .order_by(Story.id.desc())
                .offset((page - 1) * size)
                .limit(size)
            )
        )
        if page == 1:
            tombstone_ids = withdrawn_ids[: limits.FEED_TOMBSTONES]
    else:
        pages = 0
        if not 1 <= archive <= archives:
            raise FeedNotFound(f"archive {archive} of {archives}")
        ids = list(
            session.scalars(
                select(Story.id)
                .where(members)
                .order_by(Story.id)
                .offset((archive - 1) * size)
                .limit(size)
            )
        )
        ids.reverse()
    stories = load_stories(session, site, ids + tombstone_ids)
    listed = [stories[i] for i in ids if i in stories]
    title = f"{site.title} — {name}" if name else site.title
    rights = None
    if query.kind == "source":
        rights = session.scalar(select(Source.rights).where(Source.id == query.value))
    return FeedPage(
        title=title,
        rights=rights,
        stories=tuple(s for s in listed if s.withdrawn_at is None),
        tombstones=tuple(
            [s for s in listed if s.withdrawn_at is not None]
            + [stories[i] for i in tombstone_ids if i in stories]
        ),
        page=None if archive is not None else page,
        pages=pages,
        archive=archive,
        archives=archives,
    )
