"""The web front's reads: plain values for views and templates, never SQL in a view."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, literal, select
from sqlalchemy.orm import Session, load_only

from aggregator.permalinks import story_path, story_url
from aggregator.publishing.scope import stories_among
from aggregator.publishing.stories import PublishedStory, load_stories
from aggregator.storage.db import read_sessions
from aggregator.storage.models import Comment, Entry, Prune, Source, Story, StoryTag, Tag
from aggregator.storage.sources import DISABLED_IN_CONFIG, GONE_PREFIX, REMOVED_FROM_CONFIG
from aggregator.stories import tag_index
from aggregator.stories.comments import Status
from aggregator.stories.review import Review, visible
from aggregator.types import SiteConfig
from web.routing import ID_MAX


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
    with read_sessions(engine)() as session:
        rows = session.scalars(
            select(Source).where(Source.disabled_reason.is_(None)).order_by(Source.id)
        )
        return [SourceLink(s.id, s.name, s.agency, s.section, s.url, s.feed_title) for s in rows]


def story_page(engine: Engine, site: SiteConfig, story_id: int) -> PublishedStory | None:
    """A story as its page shows it (the same terms and credits as the feeds), or None."""
    with read_sessions(engine)() as session:
        shown = session.scalar(select(Story.id).where(Story.id == story_id, visible()))
        if shown is None:  # unknown, or held / rejected in review: no page at all
            return None
        return load_stories(session, site, [story_id]).get(story_id)


@dataclass(frozen=True)
class RelatedLink:
    title: str
    url: str


def related_posts(engine: Engine, site: SiteConfig, story_id: int) -> list[RelatedLink]:
    """The story's kept related posts, most related first; withdrawn stories left out."""
    with read_sessions(engine)() as session:
        ids = tag_index.related_ids(session, [story_id])[story_id]
        stories = {
            story.id: story
            for story in session.scalars(
                select(Story)
                .options(_CARD_COLUMNS)
                .where(Story.id.in_(ids), Story.withdrawn_at.is_(None), visible())
            )
        }
        return [
            RelatedLink(
                story.title, story_url(site.base_url, story.id, story.slug, story.published)
            )
            for story in (stories.get(i) for i in ids)
            if story is not None
        ]


# --- listings -------------------------------------------------------------------------------
# Every listing is newest first through the index on stories.published (or the tag index), and
# fetches one row more than a page instead of counting, so a page costs the same at any size.


@dataclass(frozen=True)
class StoryCard:
    """A story as listings show it: no body, no image (those carry the source's terms)."""

    id: int
    title: str
    lede: str
    section: str
    published: datetime
    updated: datetime
    path: str


@dataclass(frozen=True)
class Listing:
    cards: tuple[StoryCard, ...]
    page: int
    has_next: bool


# What a card reads of a story: never its body, kilobytes a story and most of its row (reading
# it, and a later column past it, costs overflow pages). Anything else read would raise.
_CARD_COLUMNS = load_only(
    Story.id,
    Story.title,
    Story.lede,
    Story.section,
    Story.published,
    Story.updated,
    Story.slug,
    raiseload=True,
)


def _card(story: Story) -> StoryCard:
    return StoryCard(
        story.id,
        story.title,
        story.lede,
        story.section,
        story.published,
        max(story.updated, story.published),
        story_path(story.id, story.slug, story.published),
    )


def _listing(
    session: Session, where: list[ColumnElement[bool]], page: int, per_page: int
) -> Listing:
    rows = list(
        session.scalars(
            select(Story)
            .options(_CARD_COLUMNS)
            .where(Story.withdrawn_at.is_(None), visible(), *where)
            .order_by(Story.published.desc(), Story.id.desc())
            .limit(per_page + 1)
            .offset((page - 1) * per_page)
        )
    )
    return Listing(tuple(_card(s) for s in rows[:per_page]), page, len(rows) > per_page)


def latest_stories(engine: Engine, page: int, per_page: int, section: str | None = None) -> Listing:
    """The newest published stories, of one section or all."""
    where = [] if section is None else [Story.section == section]
    with read_sessions(engine)() as session:
        return _listing(session, where, page, per_page)


def tag_stories(engine: Engine, slug: str, page: int, per_page: int) -> tuple[str, Listing] | None:
    """The tag's label and its newest stories, or None for an unknown tag."""
    with read_sessions(engine)() as session:
        tag = session.scalars(select(Tag).where(Tag.slug == slug)).first()
        if tag is None:
            return None
        tagged = stories_among(session, StoryTag.story_id, StoryTag.tag_id == tag.id)
        return tag.label, _listing(session, [tagged], page, per_page)


def source_stories(
    engine: Engine, source_id: str, page: int, per_page: int
) -> tuple[SourceLink, Listing] | None:
    """A source and the newest stories it told (alone or with others), or None."""
    with read_sessions(engine)() as session:
        source = session.get(Source, source_id)
        if source is None:
            return None
        link = SourceLink(
            source.id, source.name, source.agency, source.section, source.url, source.feed_title
        )
        told = stories_among(session, Entry.story_id, Entry.source_id == source_id)
        return link, _own_tellings(session, source_id, _listing(session, [told], page, per_page))


def _own_tellings(session: Session, source_id: str, listing: Listing) -> Listing:
    """The listing's cards with the source's own headline and lede (its latest telling of each
    story), not the story's, which may be another agency's."""
    ids = [card.id for card in listing.cards]
    rows = session.execute(
        select(Entry.story_id, Entry.title, Entry.lede)
        .where(Entry.source_id == source_id, Entry.story_id.in_(ids))
        .order_by(Entry.published, Entry.id)
    )
    own = {story_id: (title, lede) for story_id, title, lede in rows}  # the latest wins
    cards = tuple(
        replace(card, title=own[card.id][0], lede=own[card.id][1]) if card.id in own else card
        for card in listing.cards
    )
    return replace(listing, cards=cards)


def archive_stories(
    engine: Engine, start: datetime, end: datetime, page: int, per_page: int
) -> Listing:
    """Stories published in [start, end)."""
    where = [Story.published >= start, Story.published < end]
    with read_sessions(engine)() as session:
        return _listing(session, where, page, per_page)


@dataclass(frozen=True)
class Neighbours:
    previous: StoryCard | None  # the story published just before
    next: StoryCard | None  # the story published just after


def neighbours(engine: Engine, story_id: int, published: datetime) -> Neighbours:
    """The stories either side in time (ties broken by id), each one index probe."""
    with read_sessions(engine)() as session:
        same_moment = Story.published == published
        before = session.scalars(
            select(Story)
            .options(_CARD_COLUMNS)
            .where(
                Story.withdrawn_at.is_(None),
                visible(),
                Story.published <= published,
                ~(same_moment & (Story.id >= story_id)),
            )
            .order_by(Story.published.desc(), Story.id.desc())
            .limit(1)
        ).first()
        after = session.scalars(
            select(Story)
            .options(_CARD_COLUMNS)
            .where(
                Story.withdrawn_at.is_(None),
                visible(),
                Story.published >= published,
                ~(same_moment & (Story.id <= story_id)),
            )
            .order_by(Story.published.asc(), Story.id.asc())
            .limit(1)
        ).first()
        return Neighbours(
            _card(before) if before is not None else None,
            _card(after) if after is not None else None,
        )


def section_exists(engine: Engine, section: str) -> bool:
    with read_sessions(engine)() as session:
        configured = select(Source.id).where(Source.section == section).limit(1)
        if session.scalars(configured).first() is not None:
            return True
        return (
            session.scalars(select(Story.id).where(Story.section == section).limit(1)).first()
            is not None
        )


def known_sections(engine: Engine) -> list[str]:
    """Sections of the enabled sources, for the navigation when feeds.yaml names none."""
    with read_sessions(engine)() as session:
        return sorted(
            session.scalars(
                select(Source.section).where(Source.disabled_reason.is_(None)).distinct()
            )
        )


@dataclass(frozen=True)
class Health:
    """What /healthz reports: the newest successful ingest of any source, if any."""

    last_success_at: datetime | None


def health_summary(engine: Engine) -> Health:
    """One read that also proves the database answers."""
    with engine.connect() as connection:
        last = connection.execute(select(func.max(Source.last_success_at))).scalar()
    return Health(last_success_at=_utc(last))


def last_change(engine: Engine) -> datetime | None:
    """When any visible story last changed (stored, edited, withdrawn, approved) or stories were
    pruned: a walk down ix_stories_updated to the first story not held in review, and the newest
    row of the small `prunes` table."""
    with engine.connect() as connection:
        row = connection.execute(
            select(
                # ORDER BY ... LIMIT 1, not max(): with a WHERE, SQLite's max() reads every row.
                select(Story.updated)
                .where(visible())
                .order_by(Story.updated.desc())
                .limit(1)
                .scalar_subquery(),
                select(func.max(Prune.at)).scalar_subquery(),
            )
        ).one()
    moments = [moment for moment in map(_utc, row) if moment is not None]
    return max(moments, default=None)


def _utc(value: object) -> datetime | None:
    """Aggregates come back raw on SQLite: naive text or datetime, in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return None


@dataclass(frozen=True)
class SitemapStory:
    path: str
    title: str
    language: str | None
    published: datetime
    updated: datetime


def sitemap_blocks(engine: Engine, size: int) -> list[int]:
    """Numbers of the blocks of `size` story ids (block n: ids (n-1)*size+1 .. n*size) that
    hold a published story, newest first: one walk down the primary key per block, so the
    cost follows the number of blocks, not of stories."""
    blocks: list[int] = []
    shown = select(Story.id).where(Story.withdrawn_at.is_(None), visible())
    with read_sessions(engine)() as session:
        below: int | None = None
        while below is None or below > 0:
            probe = shown if below is None else shown.where(Story.id <= below)
            newest = session.scalar(probe.order_by(Story.id.desc()).limit(1))
            if newest is None:
                break
            blocks.append((newest - 1) // size + 1)
            below = (blocks[-1] - 1) * size
    return blocks


def block_stories(engine: Engine, block: int, size: int) -> list[SitemapStory]:
    """The published stories of one block of ids (see sitemap_blocks), oldest first; none for
    a block beyond the ids the database can hold."""
    first = (block - 1) * size + 1
    if first > ID_MAX:
        return []
    in_block = Story.id.between(first, min(block * size, ID_MAX))
    return _sitemap_stories(engine, in_block, size, Story.id.asc())


def recent_stories(engine: Engine, since: datetime, limit: int) -> list[SitemapStory]:
    """The published stories of the window since `since` (at most `limit`), newest first."""
    recent = Story.published >= since
    return _sitemap_stories(engine, recent, limit, Story.published.desc(), Story.id.desc())


def _sitemap_stories(
    engine: Engine, where: ColumnElement[bool], limit: int, *order: ColumnElement[Any]
) -> list[SitemapStory]:
    """Plain rows of the six columns a sitemap shows, not ORM objects: for 50,000 stories the
    objects took 1.6 s, the rows 0.3 s."""
    with read_sessions(engine)() as session:
        rows = session.execute(
            select(
                Story.id, Story.slug, Story.title, Story.language, Story.published, Story.updated
            )
            .where(Story.withdrawn_at.is_(None), visible(), where)
            .order_by(*order)
            .limit(limit)
        )
        return [
            SitemapStory(
                story_path(story_id, slug, published),
                title,
                language,
                published,
                max(updated, published),
            )
            for story_id, slug, title, language, published, updated in rows
        ]


class SourceState(StrEnum):
    """Where a source stands for an editor, from its stored fetch state: the filters of
    /admin/sources, in the order they are listed."""

    OK = "ok"
    FAILING = "failing"  # its last fetches failed: retried later and later (backoff)
    GONE = "gone"  # the publisher answered 410 Gone: no longer fetched
    DISABLED = "disabled"  # `enabled: false` in feeds.yaml
    NEW = "new"  # in feeds.yaml, not fetched yet
    REMOVED = "removed"  # no longer in feeds.yaml: kept with its stories, never fetched

    @property
    def label(self) -> str:
        return STATE_LABELS[self]


STATE_LABELS = {
    SourceState.OK: "OK",
    SourceState.FAILING: "Failing, backing off",
    SourceState.GONE: "Gone (410)",
    SourceState.DISABLED: "Disabled",
    SourceState.NEW: "Not fetched yet",
    SourceState.REMOVED: "Removed",
}


def source_state(
    disabled_reason: str | None, last_status: str | None, consecutive_errors: int
) -> SourceState:
    """Why a source is not fetched comes first (removed, disabled, gone); then how its last
    fetch went."""
    if disabled_reason == REMOVED_FROM_CONFIG:
        return SourceState.REMOVED
    if disabled_reason == DISABLED_IN_CONFIG:
        return SourceState.DISABLED
    if disabled_reason and disabled_reason.startswith(GONE_PREFIX):
        return SourceState.GONE
    if consecutive_errors > 0:
        return SourceState.FAILING
    return SourceState.NEW if last_status is None else SourceState.OK


@dataclass(frozen=True)
class EditorsCounts:
    """What waits for editors, for /admin: each queue's length and the sources by state."""

    pending_comments: int
    held_stories: int
    # Every state, in SourceState's order, with its number of sources (0 included).
    sources: dict[SourceState, int]

    @property
    def live_sources(self) -> int:
        return sum(n for state, n in self.sources.items() if state is not SourceState.REMOVED)


def editors_counts(engine: Engine) -> EditorsCounts:
    """Three small reads: pending comments, held stories, every source's fetch state."""
    with read_sessions(engine)() as session:
        pending = session.scalar(
            select(func.count()).select_from(Comment).where(Comment.status == Status.PENDING.value)
        )
        held = session.scalar(
            select(func.count())
            .select_from(Story)
            # Inline, so the planner can prove the partial index ix_stories_held applies.
            .where(Story.review == literal(Review.HELD.value, literal_execute=True))
        )
        states = Counter(
            source_state(*row)
            for row in session.execute(
                select(Source.disabled_reason, Source.last_status, Source.consecutive_errors)
            )
        )
    return EditorsCounts(
        int(pending or 0), int(held or 0), {state: states[state] for state in SourceState}
    )
