"""Caulbart's own feeds: Atom 1.0 and RSS 2.0 (feedgen) and JSON Feed 1.1, for a query.

A query is the whole site, a section, a tag or a source. Each document is rendered once per
change and kept per process; a request first asks the database for the feed's version (one
statement of index probes) and only renders when it moved or the document is a minute old, so
several web processes are never stale (FeedCache).

Paging follows RFC 5005: `?page=N` pages newest first (section 3, `rel="next"`), and `?archive=K`
archives of `feed_length` stories each in id order, which never change once full (section 4,
`rel="prev-archive"`). Withdrawn stories appear in Atom as RFC 6721 tombstones.
"""

from __future__ import annotations

import atexit
import hashlib
import html
import json
import logging
import mimetypes
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit

import httpx
import nh3
from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    String,
    bindparam,
    case,
    exists,
    func,
    literal,
    select,
    true,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import InstrumentedAttribute, Session

from aggregator import limits
from aggregator.errors import FeedNotFound as FeedNotFound
from aggregator.ingest import normalise
from aggregator.permalinks import iso_utc, story_url
from aggregator.storage.db import make_engine, read_sessions
from aggregator.storage.models import (
    Entry,
    FeedChange,
    Prune,
    Setting,
    Source,
    Story,
    StoryTag,
    Tag,
)
from aggregator.stories import review, tag_index, tagging
from aggregator.types import Config, Enclosure, SiteConfig

log = logging.getLogger(__name__)

FORMATS: dict[str, str] = {
    "atom": "application/atom+xml; charset=utf-8",
    "rss": "application/rss+xml; charset=utf-8",
    "json": "application/feed+json; charset=utf-8",
}
KINDS = ("all", "section", "tag", "source")
ATOM_NS = "http://www.w3.org/2005/Atom"
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721
HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
MEDIA_NS = "http://search.yahoo.com/mrss/"
DC_NS = "http://purl.org/dc/elements/1.1/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GENERATOR = "Caulbart"
OCTET_STREAM = "application/octet-stream"
# media:content's `medium` values (MRSS 1.5); other files go without one.
MRSS_MEDIA = ("image", "audio", "video", "document", "executable")


# --- values ---------------------------------------------------------------------------------


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
class FeedDocument:
    body: bytes
    media_type: str
    etag: str  # strong: a digest of the body, the same in every process
    last_modified: datetime
    version: FeedVersion
    rendered_at: float  # time.monotonic(), for FeedCache.recheck_after


@dataclass(frozen=True)
class Original:
    """One source's telling of a story, credited in the feeds."""

    source_id: str
    source_name: str
    agency: str
    feed_url: str
    feed_title: str
    link: str | None
    title: str


@dataclass(frozen=True)
class PublishedStory:
    """A story as Caulbart republishes it, with its source's terms already applied."""

    id: int
    tag_uri: str
    url: str
    title: str
    lede: str
    body_html: str | None  # None: the source allows the lede and a link only
    published: datetime
    updated: datetime
    section: str
    language: str | None
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    image_url: str | None
    image_credit: str | None
    rights: str | None
    originals: tuple[Original, ...]
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None
    # The best telling's files (audio, video...), under its source's terms.
    enclosures: tuple[Enclosure, ...] = ()

    @property
    def external_url(self) -> str | None:
        """The original article of the best telling."""
        return next((o.link for o in self.originals if o.link), None)


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


@dataclass(frozen=True)
class FeedLinks:
    """Absolute URLs of a document and its neighbours (RFC 5005), plus WebSub hubs."""

    self_url: str
    subscription: str
    alternate: str
    first: str | None = None
    last: str | None = None
    next: str | None = None
    previous: str | None = None
    prev_archive: str | None = None
    next_archive: str | None = None
    hubs: tuple[str, ...] = ()

    def rels(self) -> list[tuple[str, str]]:
        """(rel, href) for the feed-level links other than self and alternate."""
        pairs = [
            ("first", self.first),
            ("last", self.last),
            ("next", self.next),
            ("previous", self.previous),
            ("prev-archive", self.prev_archive),
            ("next-archive", self.next_archive),
        ]
        if self.prev_archive or self.next_archive:
            pairs.append(("current", self.subscription))
        pairs += [("hub", hub) for hub in self.hubs]
        return [(rel, href) for rel, href in pairs if href]


# --- queries --------------------------------------------------------------------------------


def story_tags(session: Session, story_ids: list[int]) -> dict[int, list[str]]:
    """Each story's tag labels, best first: the one place feeds and pages read tags from."""
    return tag_index.story_tag_labels(session, story_ids)


def _members(query: FeedQuery) -> ColumnElement[bool]:
    return _membership(query.kind, literal(query.value))


def _membership(kind: str, value: ColumnElement[str]) -> ColumnElement[bool]:
    """The feed's stories; held and rejected ones are in no feed (nor in its version)."""
    return review.visible() & _scope(kind, value)


def _scope(kind: str, value: ColumnElement[str]) -> ColumnElement[bool]:
    if kind == "section":
        return Story.section == value
    rows = _story_rows(kind, value)
    return true() if rows is None else _stories_listed(*rows)


def _story_rows(
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


def _stories_listed(
    story_id: InstrumentedAttribute[int], *where: ColumnElement[bool]
) -> ColumnElement[bool]:
    """Stories among those of the rows matching `where`: SQLite makes the list of them first."""
    return Story.id.in_(select(story_id).where(*where))


def _stories_walked(
    story_id: InstrumentedAttribute[int], *where: ColumnElement[bool]
) -> ColumnElement[bool]:
    """The same stories, checked one by one with an index probe as a walk meets them."""
    return exists().where(*where, story_id == Story.id)


def _stories_counted(
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
    first: a wire agency's page at 100,000 stories took 23.5 ms from the list of its stories
    (SQLite builds and sorts it) and 0.56 ms walking. With few, the walk would pass most of the
    archive before it found them, and the list is short. Which it is, is counted no further
    than LIST_LIMIT.
    """
    counted = bind.scalar(_stories_counted(story_id, *where), {"list_limit": LIST_LIMIT})
    if (counted or 0) > LIST_LIMIT:
        return _stories_walked(story_id, *where)
    return _stories_listed(story_id, *where)


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
    members = _membership(kind, value)

    def newest_of(stories: ColumnElement[bool]) -> ColumnElement[Any]:
        # ORDER BY ... LIMIT 1 rather than max(): with a WHERE (review, scope), SQLite's max()
        # reads every row, while a walk down the index stops at the first visible story.
        return select(Story.id).where(stories).order_by(Story.id.desc()).limit(1).scalar_subquery()

    def latest_of(stories: ColumnElement[bool]) -> ColumnElement[Any]:
        return (
            select(Story.updated).where(stories).order_by(Story.updated.desc()).limit(1)
        ).scalar_subquery()

    newest, latest = newest_of(members), latest_of(members)
    rows = _story_rows(kind, value)
    if rows is not None:
        many = _stories_counted(*rows).scalar_subquery() > bindparam("list_limit", type_=Integer)
        walked = review.visible() & _stories_walked(*rows)
        newest = case((many, newest_of(walked)), else_=newest)
        latest = case((many, latest_of(walked)), else_=latest)

    def departed(scope: str, name: ColumnElement[str]) -> ColumnElement[Any]:
        return (
            select(FeedChange.at)
            .where(FeedChange.kind == scope, FeedChange.value == name)
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
    values = {"value": query.value, "list_limit": LIST_LIMIT}
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
    total = session.scalar(select(func.count(Story.id)).where(_members(query))) or 0
    archives = total // size  # only full archives exist: they never change afterwards
    # Read in pages the way that stays cheap for a big source or tag (walking the newest).
    rows = _story_rows(query.kind, literal(query.value))
    members = _members(query) if rows is None else review.visible() & stories_among(session, *rows)
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


class Telling(NamedTuple):
    """What a story's credits show of an entry that told it. Read as these columns alone: an
    entry's row is mostly its own copy of the text, its shingles and categories, and a wire
    story has many tellings."""

    id: int
    link: str | None
    title: str


def load_stories(
    session: Session, site: SiteConfig, story_ids: Sequence[int]
) -> dict[int, PublishedStory]:
    """Stories with their credits, tags and their best source's terms, in a few queries."""
    ids = list(dict.fromkeys(story_ids))
    if not ids:
        return {}
    stories = list(session.scalars(select(Story).where(Story.id.in_(ids))))
    rows = session.execute(
        select(Entry.id, Entry.story_id, Entry.link, Entry.title, Entry.source_id)
        .where(Entry.story_id.in_(ids))
        .order_by(Entry.id)
    ).all()
    # The few sources once each, not a copy of a source's row with every entry.
    named = sorted({row.source_id for row in rows})
    sources = {s.id: s for s in session.scalars(select(Source).where(Source.id.in_(named)))}
    tellings: dict[int, list[tuple[Telling, Source]]] = {i: [] for i in ids}
    for entry_id, story_id, link, title, source_id in rows:
        tellings[story_id].append((Telling(entry_id, link, title), sources[source_id]))
    tags = story_tags(session, ids)
    authority = tag_authority(session, site)
    files = _enclosures(session, [s.best_entry_id for s in stories if s.best_entry_id])
    return {
        story.id: published_story(
            site,
            authority,
            story,
            tellings[story.id],
            tags.get(story.id, []),
            files.get(story.best_entry_id or 0, ()),
        )
        for story in stories
    }


def _enclosures(session: Session, entry_ids: list[int]) -> dict[int, tuple[Enclosure, ...]]:
    """The files of these entries, by entry id (only those that carry some)."""
    if not entry_ids:
        return {}
    rows = session.execute(
        select(Entry.id, Entry.enclosures).where(
            Entry.id.in_(entry_ids), Entry.enclosures.is_not(None)
        )
    )
    return {
        entry_id: tuple(
            Enclosure(str(f["url"]), f.get("type"), f.get("length")) for f in files or ()
        )
        for entry_id, files in rows
    }


def published_story(
    site: SiteConfig,
    authority: str,
    story: Story,
    tellings: list[tuple[Telling, Source]],
    tags: list[str],
    enclosures: tuple[Enclosure, ...] = (),
) -> PublishedStory:
    """Apply the best telling's source terms: excerpt_only drops the body and the files (lede and
    link only), images: false images (image files too)."""
    ordered = sorted(tellings, key=lambda pair: (pair[0].id != story.best_entry_id, pair[0].id))
    best_source = ordered[0][1] if ordered else None
    excerpt_only = bool(best_source and best_source.excerpt_only)
    images = best_source is None or best_source.images
    body: str | None = None if excerpt_only else story.body_html
    if body is not None and not images:
        body = without_images(body)
    return PublishedStory(
        id=story.id,
        tag_uri=story_tag_uri(authority, story.id, story.created_at),
        url=story_url(site.base_url, story.id, story.slug, story.published),
        title=story.title,
        lede=story.lede,
        body_html=body,
        published=story.published,
        # Revised as told by its own source; another agency's copy joining it is no update.
        updated=max(story.revised or story.published, story.published),
        section=story.section,
        language=story.language,
        authors=tuple(dict.fromkeys(source.agency for _, source in ordered)),
        tags=tuple(tags),
        image_url=story.image_url if images else None,
        image_credit=story.image_credit if images and story.image_url else None,
        rights=best_source.rights if best_source else None,
        originals=tuple(
            Original(
                source_id=source.id,
                source_name=source.name,
                agency=source.agency,
                feed_url=source.url,
                feed_title=source.feed_title or source.name,
                link=entry.link,
                title=entry.title,
            )
            for entry, source in ordered
        ),
        withdrawn_at=story.withdrawn_at,
        withdrawn_reason=story.withdrawn_reason,
        enclosures=()
        if excerpt_only
        else tuple(e for e in enclosures if images or e.medium != "image"),
    )


def story_tag_uri(authority: str, story_id: int, created: datetime) -> str:
    """RFC 4151 tag URI: the site's tag authority (a host), the day Caulbart made the story,
    its id. Never changes with the headline, the slug or the site's address."""
    return f"tag:{authority},{created.astimezone(UTC):%Y-%m-%d}:story:{story_id}"


def tag_authority(session: Session, site: SiteConfig) -> str:
    """The host fixed in the database at the first run (models.Setting); before any run has
    fixed it (a web front started on an empty database), the host of `base_url`."""
    stored = session.scalar(select(Setting.value).where(Setting.name == "tag_authority"))
    return stored or urlsplit(site.base_url).hostname or "localhost"


def without_images(body_html: str) -> str:
    """The sanitised body without its images (a source republished with `images: false`)."""
    return nh3.clean(
        body_html,
        tags=normalise.ALLOWED_TAGS - {"img"},
        attributes=normalise.ALLOWED_ATTRIBUTES,
        url_schemes=normalise.URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )


# --- links ----------------------------------------------------------------------------------


def feed_links(site: SiteConfig, query: FeedQuery, fmt: str, page: FeedPage) -> FeedLinks:
    base = site.base_url.rstrip("/")
    subscription = base + query.feed_path(fmt)

    def at_page(number: int) -> str:
        return subscription if number == 1 else f"{subscription}?page={number}"

    def at_archive(number: int) -> str:
        return f"{subscription}?archive={number}"

    alternate = base + (query.path + "/" if query.path else "/")
    hubs = tuple(site.websub_hubs)
    if page.archive is not None:
        return FeedLinks(
            self_url=at_archive(page.archive),
            subscription=subscription,
            alternate=alternate,
            prev_archive=at_archive(page.archive - 1) if page.archive > 1 else None,
            next_archive=at_archive(page.archive + 1) if page.archive < page.archives else None,
            hubs=hubs,
        )
    number = page.page or 1
    return FeedLinks(
        self_url=at_page(number),
        subscription=subscription,
        alternate=alternate,
        first=at_page(1),
        last=at_page(page.pages),
        next=at_page(number + 1) if number < page.pages else None,
        previous=at_page(number - 1) if number > 1 else None,
        prev_archive=at_archive(page.archives) if number == 1 and page.archives else None,
        hubs=hubs,
    )


# --- rendering ------------------------------------------------------------------------------


class _CaulbartFeed(BaseExtension):  # type: ignore[misc]
    """Feed-level elements feedgen lacks: RFC 5005 links and fh:archive, RFC 6721 tombstones."""

    def __init__(self) -> None:
        self.links: FeedLinks | None = None
        self.archive = False
        self.tombstones: tuple[PublishedStory, ...] = ()

    def extend_ns(self) -> dict[str, str]:
        return {"at": TOMBSTONE_NS, "fh": HISTORY_NS, "media": MEDIA_NS, "dc": DC_NS}

    def extend_atom(self, feed: Any) -> Any:
        if self.archive:
            xml_elem(f"{{{HISTORY_NS}}}archive", feed)
        for story in self.tombstones:
            assert story.withdrawn_at is not None
            tombstone = xml_elem(
                f"{{{TOMBSTONE_NS}}}deleted-entry",
                feed,
                ref=story.tag_uri,
                when=iso_utc(story.withdrawn_at),
            )
            xml_elem(f"{{{ATOM_NS}}}link", tombstone, href=story.url)
            if story.withdrawn_reason:
                xml_elem(f"{{{TOMBSTONE_NS}}}comment", tombstone).text = story.withdrawn_reason
        return feed

    def extend_rss(self, feed: Any) -> Any:
        channel = feed.find("channel")
        if self.links is not None:
            for rel, href in self.links.rels():
                xml_elem(f"{{{ATOM_NS}}}link", channel, rel=rel, href=href)
        return feed


class _CaulbartEntry(BaseEntryExtension):  # type: ignore[misc]
    """Entry elements feedgen lacks or mangles: credits (via, source), image with its credit."""

    def __init__(self) -> None:
        self.story: PublishedStory | None = None

    def extend_atom(self, entry: Any) -> Any:
        story = self.story
        assert story is not None
        for original in story.originals:
            if original.link:
                xml_elem("link", entry, rel="via", href=original.link, title=original.title)
        if story.image_url:
            xml_elem("link", entry, rel="enclosure", href=story.image_url, type=_image_type(story))
        for enclosure in story.enclosures:
            if enclosure.url != story.image_url:
                xml_elem(
                    "link",
                    entry,
                    rel="enclosure",
                    href=enclosure.url,
                    **_file_attributes(enclosure, "length"),
                )
        if story.originals:
            best = story.originals[0]
            source = xml_elem("source", entry)
            xml_elem("id", source).text = best.feed_url
            xml_elem("title", source).text = best.feed_title
            xml_elem("link", source, rel="self", href=best.feed_url)
            if story.rights:
                xml_elem("rights", source).text = story.rights
        self._media(entry, story)
        return entry

    def extend_rss(self, item: Any) -> Any:
        story = self.story
        assert story is not None
        for agency in story.authors:
            xml_elem(f"{{{DC_NS}}}creator", item).text = agency
        if story.rights:
            xml_elem(f"{{{DC_NS}}}rights", item).text = story.rights
        played = rss_enclosure(story)
        if played is not None:
            xml_elem(
                "enclosure",
                item,
                url=played.url,
                length=str(played.length or 0),
                type=played.type or OCTET_STREAM,
            )
        elif story.image_url:
            xml_elem("enclosure", item, url=story.image_url, length="0", type=_image_type(story))
        self._media(item, story)
        if story.originals:
            best = story.originals[0]
            xml_elem("source", item, url=best.feed_url).text = best.feed_title
        return item

    @staticmethod
    def _media(parent: Any, story: PublishedStory) -> None:
        if story.image_url:
            content = xml_elem(
                f"{{{MEDIA_NS}}}content",
                parent,
                url=story.image_url,
                medium="image",
                type=_image_type(story),
            )
            if story.image_credit:
                xml_elem(f"{{{MEDIA_NS}}}credit", content).text = story.image_credit
        for enclosure in story.enclosures:
            if enclosure.url != story.image_url:
                medium = {"medium": enclosure.medium} if enclosure.medium in MRSS_MEDIA else {}
                xml_elem(
                    f"{{{MEDIA_NS}}}content",
                    parent,
                    url=enclosure.url,
                    **medium,
                    **_file_attributes(enclosure, "fileSize"),
                )


def rss_enclosure(story: PublishedStory) -> Enclosure | None:
    """RSS 2.0 allows one enclosure an item: the first audio or video file (what a podcast
    client plays), else none (the image takes the slot). Every file is also a media:content."""
    return next((e for e in story.enclosures if e.medium in ("audio", "video")), None)


def _file_attributes(enclosure: Enclosure, length_name: str) -> dict[str, str]:
    attributes = {"type": enclosure.type} if enclosure.type else {}
    if enclosure.length:
        attributes[length_name] = str(enclosure.length)
    return attributes


def _image_type(story: PublishedStory) -> str:
    guessed, _ = mimetypes.guess_type(urlsplit(story.image_url or "").path)
    return guessed if guessed and guessed.startswith("image/") else "image/jpeg"


def _generator(site: SiteConfig, page: FeedPage, links: FeedLinks, updated: datetime) -> Any:
    feed = FeedGenerator()
    feed.register_extension("caulbart", _CaulbartFeed, _CaulbartEntry)
    feed.caulbart.links = links
    feed.caulbart.archive = page.archive is not None
    feed.id(links.subscription)
    feed.title(page.title)
    feed.subtitle(site.tagline)
    feed.description(site.tagline)
    feed.language(site.language)
    feed.updated(updated)
    feed.generator(GENERATOR)
    feed.author({"name": site.title, "uri": site.base_url})
    feed.link(href=links.alternate, rel="alternate", type="text/html")
    feed.link(href=links.self_url, rel="self")
    if page.rights:
        feed.rights(page.rights)
    return feed


def render_atom(site: SiteConfig, page: FeedPage, links: FeedLinks, updated: datetime) -> bytes:
    feed = _generator(site, page, links, updated)
    for rel, href in links.rels():
        feed.link(href=href, rel=rel)
    feed.caulbart.tombstones = page.tombstones
    for story in page.stories:
        entry = feed.add_entry(order="append")
        entry.caulbart.story = story
        entry.id(story.tag_uri)
        entry.title(story.title)
        entry.link(href=story.url)  # no rel: alternate (RFC 4287 4.2.7.2)
        entry.published(story.published)
        entry.updated(story.updated)
        for agency in story.authors:
            entry.author({"name": agency})
        if story.lede:
            entry.summary(story.lede)
        if story.body_html:
            entry.content(story.body_html, type="html")
        for label in story.tags:
            entry.category(term=tagging.tag_slug(label), label=label, scheme=_tag_scheme(site))
        if story.rights:
            entry.rights(story.rights)
    return bytes(feed.atom_str(pretty=False))


def render_rss(
    site: SiteConfig, page: FeedPage, links: FeedLinks, updated: datetime, ttl: int
) -> bytes:
    feed = _generator(site, page, links, updated)
    feed.lastBuildDate(updated)
    feed.ttl(max(1, ttl // 60))
    for story in page.stories:
        entry = feed.add_entry(order="append")
        entry.caulbart.story = story
        entry.guid(story.tag_uri, permalink=False)
        entry.title(story.title)
        entry.link(href=story.url)
        entry.pubDate(story.published)
        entry.description(rss_description(story))
        if story.body_html:
            entry.content(rss_content(story, story.body_html))
        for label in story.tags:
            entry.category(term=label, scheme=_tag_scheme(site))
    return bytes(feed.rss_str(pretty=False))


def rss_description(story: PublishedStory) -> str:
    """The lede, then a link to the original article naming its agency: RSS has no `rel="via"`,
    and many readers show only the description."""
    text = f"<p>{html.escape(story.lede or story.title, quote=False)}</p>"
    original = next((o for o in story.originals if o.link), None)
    if original is None:
        return text
    link = html.escape(original.link or "")
    return f'{text}<p>Read the original at <a href="{link}">{html.escape(original.agency)}</a></p>'


def rss_content(story: PublishedStory, body_html: str) -> str:
    """The body, opened by the story's image and its credit (the agency's name when the feed
    gave none) unless the body shows that image already: readers of content:encoded ignore
    media:content."""
    if not story.image_url or f'src="{html.escape(story.image_url)}"' in body_html:
        return body_html
    credit = story.image_credit or (story.originals[0].agency if story.originals else "")
    caption = f"<figcaption>{html.escape(credit)}</figcaption>" if credit else ""
    image = f'<img src="{html.escape(story.image_url)}" alt="{html.escape(story.title)}">'
    return f"<figure>{image}{caption}</figure>{body_html}"


def render_json(site: SiteConfig, page: FeedPage, links: FeedLinks) -> bytes:
    """JSON Feed 1.1; credits and rights go in the `_caulbart` extension object."""
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": page.title,
        "home_page_url": links.alternate,
        "feed_url": links.self_url,
        "description": site.tagline,
        "language": site.language,
        "authors": [{"name": site.title, "url": site.base_url}],
    }
    if links.next:
        document["next_url"] = links.next
    if links.hubs:
        document["hubs"] = [{"type": "WebSub", "url": hub} for hub in links.hubs]
    document["items"] = [_json_item(story) for story in page.stories]
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _json_item(story: PublishedStory) -> dict[str, Any]:
    item: dict[str, Any] = {"id": story.tag_uri, "url": story.url}
    if story.external_url:
        item["external_url"] = story.external_url
    item["title"] = story.title
    if story.body_html:
        item["content_html"] = story.body_html
    else:
        item["content_text"] = story.lede or story.title
    if story.lede:
        item["summary"] = story.lede
    if story.image_url:
        item["image"] = story.image_url
    if story.enclosures:
        item["attachments"] = [_attachment(e) for e in story.enclosures]
    item["date_published"] = iso_utc(story.published)
    item["date_modified"] = iso_utc(story.updated)
    item["authors"] = [{"name": agency} for agency in story.authors]
    if story.tags:
        item["tags"] = list(story.tags)
    if story.language:
        item["language"] = story.language
    extension: dict[str, Any] = {
        "sources": [
            {
                "id": o.source_id,
                "name": o.source_name,
                "agency": o.agency,
                "feed_url": o.feed_url,
                "url": o.link,
                "title": o.title,
            }
            for o in story.originals
        ]
    }
    if story.rights:
        extension["rights"] = story.rights
    if story.image_credit:
        extension["image_credit"] = story.image_credit
    item["_caulbart"] = extension
    return item


def _attachment(enclosure: Enclosure) -> dict[str, Any]:
    """A JSON Feed attachment: `mime_type` is required, so an unknown type is a byte stream."""
    attachment: dict[str, Any] = {"url": enclosure.url, "mime_type": enclosure.type or OCTET_STREAM}
    if enclosure.length:
        attachment["size_in_bytes"] = enclosure.length
    return attachment


def _tag_scheme(site: SiteConfig) -> str:
    return site.base_url.rstrip("/") + "/tag/"


def render(
    site: SiteConfig, page: FeedPage, query: FeedQuery, fmt: str, updated: datetime, ttl: int
) -> bytes:
    links = feed_links(site, query, fmt, page)
    if fmt == "atom":
        return render_atom(site, page, links, updated)
    if fmt == "rss":
        return render_rss(site, page, links, updated, ttl)
    if fmt == "json":
        return render_json(site, page, links)
    raise ValueError(f"unknown feed format {fmt!r}")


# --- the per-process cache ------------------------------------------------------------------


@dataclass
class FeedCache:
    """Rendered documents per (query, format, page, archive), checked against the feed's version
    on every use: a request for an unchanged feed costs one query and no rendering.

    A document is also rendered again once it is `recheck_after` seconds old. Two workers'
    transactions may commit in the other order than they took their story ids and dates; a
    version read between the two commits already shows the later ones, so the earlier one's
    story would not move it. Rendering again bounds how long such a story can be missing."""

    engine: Engine
    config: Config
    max_entries: int = limits.FEED_CACHE_ENTRIES
    recheck_after: float = limits.FEED_RECHECK_SECONDS
    _documents: OrderedDict[tuple[FeedQuery, str, int, int | None], FeedDocument] = field(
        default_factory=OrderedDict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._sessions = read_sessions(self.engine)
        # Version checks run on a connection kept per thread, its transaction ended after each
        # check (so the next sees the latest commit): a pool checkout, ping and reset cost more
        # than the query. Their own engine, so held connections never starve the render path.
        self._version_engine = make_engine(self.engine.url.render_as_string(hide_password=False))
        self._local = threading.local()

    def version(self, query: FeedQuery) -> FeedVersion:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None or connection.invalidated or connection.closed:
            connection = self._version_engine.connect()
            if connection.dialect.name == "postgresql":  # no transaction to end: one round trip
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            self._local.connection = connection
        try:
            return feed_version(connection, query)
        except DBAPIError:  # a dropped connection (database restart): retry once on a new one
            self._local.connection = None
            connection.invalidate()
            with self._version_engine.connect() as fresh:
                return feed_version(fresh, query)
        finally:
            if not connection.invalidated and connection.in_transaction():
                connection.rollback()

    def clear(self) -> None:
        """Forget every rendered document (the next requests render again)."""
        with self._lock:
            self._documents.clear()

    def close(self) -> None:
        self._version_engine.dispose()

    def document(
        self, query: FeedQuery, fmt: str, page: int = 1, archive: int | None = None
    ) -> FeedDocument:
        if fmt not in FORMATS:
            raise FeedNotFound(f"no feed format {fmt!r}")
        key = (query, fmt, page, archive)
        version = self.version(query)
        with self._lock:
            cached = self._documents.get(key)
            if cached is None or cached.version != version:
                cached = None  # a new version: nothing to compare the new rendering with
            elif time.monotonic() - cached.rendered_at < self.recheck_after:
                self._documents.move_to_end(key)
                return cached
        with self._sessions() as session:  # an unknown scope: load_page raises FeedNotFound
            page_values = load_page(session, self.config.site, query, page, archive)
        body = render(
            self.config.site,
            page_values,
            query,
            fmt,
            version.last_modified,
            self.config.defaults.min_interval,
        )
        last_modified = version.last_modified
        if cached is not None:  # the same version, rendered again for its age
            if cached.body == body:
                last_modified = cached.last_modified
            else:  # a late commit the version could not show: now is when the feed changed
                last_modified = max(last_modified, datetime.now(UTC).replace(microsecond=0))
        document = FeedDocument(
            body=body,
            media_type=FORMATS[fmt],
            etag=hashlib.blake2b(body, digest_size=16).hexdigest(),
            last_modified=last_modified,
            version=version,
            rendered_at=time.monotonic(),
        )
        with self._lock:
            self._documents[key] = document
            self._documents.move_to_end(key)
            while len(self._documents) > self.max_entries:
                self._documents.popitem(last=False)
        return document


# --- WebSub ---------------------------------------------------------------------------------


def changed_feeds(
    session: Session, story_ids: Iterable[int], departed_at: datetime | None = None
) -> list[FeedQuery]:
    """The feeds the given stories appear in (subscription documents only), and, with
    `departed_at`, the tags' feeds that stories left at that moment (models.FeedChange): a
    story that lost a tag is no longer there to name that feed."""
    departed: list[FeedQuery] = []
    if departed_at is not None:
        slugs = session.scalars(
            select(FeedChange.value)
            .where(FeedChange.at == departed_at, FeedChange.kind == "tag")
            .distinct()
        )
        departed = [FeedQuery("tag", slug) for slug in sorted(slugs)]
    ids = sorted(set(story_ids))
    if ids:  # a held story changes no feed
        ids = list(session.scalars(select(Story.id).where(Story.id.in_(ids), review.visible())))
    if not ids:
        return departed
    queries = [FeedQuery()]
    sections = session.scalars(select(Story.section).where(Story.id.in_(ids)).distinct())
    queries += [FeedQuery("section", name) for name in sorted(sections)]
    sources = session.scalars(select(Entry.source_id).where(Entry.story_id.in_(ids)).distinct())
    queries += [FeedQuery("source", source_id) for source_id in sorted(sources)]
    slugs = session.scalars(
        select(Tag.slug)
        .join(StoryTag, StoryTag.tag_id == Tag.id)
        .where(StoryTag.story_id.in_(ids))
        .distinct()
    )
    queries += [FeedQuery("tag", slug) for slug in sorted(slugs)]
    return list(dict.fromkeys(queries + departed))


def topics(site: SiteConfig, queries: Iterable[FeedQuery]) -> list[str]:
    base = site.base_url.rstrip("/")
    return [base + query.feed_path(fmt) for query in queries for fmt in FORMATS]


def notify_hubs(site: SiteConfig, topic_urls: Sequence[str]) -> None:
    """WebSub publish ping (`hub.mode=publish`, one `hub.url` per topic) to every hub, in
    requests of at most WEBSUB_TOPICS_PER_PING topics.

    Best effort: a hub that fails is logged; subscribers still poll and get the change.
    """
    if not site.websub_hubs or not topic_urls:
        return
    step = limits.WEBSUB_TOPICS_PER_PING
    bodies = [
        urlencode(
            [("hub.mode", "publish")] + [("hub.url", url) for url in topic_urls[i : i + step]]
        )
        for i in range(0, len(topic_urls), step)
    ]
    for hub in site.websub_hubs:
        try:
            for body in bodies:
                response = httpx.post(
                    hub,
                    content=body.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    timeout=limits.WEBSUB_TIMEOUT,
                )
                response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("websub hub=%s publish failed: %s", hub, exc)
            continue
        log.info("websub hub=%s published topics=%d", hub, len(topic_urls))


class HubPings:
    """Publish pings sent by one background thread per process, so that a slow or unreachable hub
    holds up neither the ingest (which announces after every commit) nor a web request. Topics
    asked for while a ping is under way wait together and go in the next one.

    A command's process waits for them at its end, at most WEBSUB_EXIT_WAIT seconds (atexit).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Also in a forked child: the parent's thread is not there, and its lock may be held."""
        self._changed = threading.Condition()
        # Per site (its hubs): the topics waiting, in the order asked.
        self._waiting: dict[SiteConfig, dict[str, None]] = {}
        self._sending = False
        self._thread: threading.Thread | None = None

    def send(self, site: SiteConfig, topic_urls: Sequence[str]) -> None:
        """Queue a ping of these topics to the site's hubs; returns at once."""
        if not site.websub_hubs or not topic_urls:
            return
        with self._changed:
            self._waiting.setdefault(site, {}).update(dict.fromkeys(topic_urls))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="websub", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every ping asked for was sent or failed, at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._waiting or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sum(len(waiting) for waiting in self._waiting.values())
                    log.warning("websub gave up waiting for hubs: %d topics not pinged", topics)
                    return False
                self._changed.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting:
                    self._changed.wait()
                batch, self._waiting = self._waiting, {}
                self._sending = True
            try:
                for site, topic_urls in batch.items():
                    notify_hubs(site, list(topic_urls))
            except Exception:  # the thread must outlive any one ping
                log.exception("websub ping failed")
            finally:
                with self._changed:
                    self._sending = False
                    self._changed.notify_all()


PINGS = HubPings()
atexit.register(PINGS.flush, limits.WEBSUB_EXIT_WAIT)
os.register_at_fork(after_in_child=PINGS._reset)


def announce(
    engine: Engine,
    site: SiteConfig,
    story_ids: Iterable[int],
    departed_at: datetime | None = None,
) -> None:
    """After a commit that changed these stories: ping the hubs (in the background, HubPings)
    for every feed they are in, and for the tags' feeds stories left in that commit
    (`departed_at`, the time it noted)."""
    ids = list(story_ids)
    if not site.websub_hubs or not ids:  # a story that left a feed was itself changed
        return
    with read_sessions(engine)() as session:
        queries = changed_feeds(session, ids, departed_at)
    PINGS.send(site, topics(site, queries))
