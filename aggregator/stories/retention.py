"""Retention (feeds.yaml `defaults.keep`): old stories go, with their entries and every row
that points at them, in one transaction; pinned stories and stories with approved comments stay.

A story is old when its newest entry was published (the source's date) before now - keep: a
story still being told is not cut. Entries older than keep are skipped at ingest, so a feed that
still lists an old item never brings a deleted story back.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Exists, delete, exists, func, select, update
from sqlalchemy.orm import Session

from aggregator.errors import UnknownStories as UnknownStories
from aggregator.storage.db import serialise
from aggregator.storage.models import (
    Comment,
    Entry,
    EntryBand,
    FeedChange,
    Prune,
    RelatedStory,
    Story,
    StoryTag,
    Tag,
)
from aggregator.stories.comments import Status
from aggregator.types import Item

log = logging.getLogger(__name__)

CHUNK = 500  # ids per IN list, below SQLite's and PostgreSQL's parameter limits
# The scheduler prunes once a day at most, whichever worker gets there first.
PRUNE_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class OldStory:
    id: int
    title: str
    published: datetime
    entries: int


@dataclass(frozen=True)
class PruneReport:
    """What a prune deleted (or, in a dry run, would delete) and what it kept on purpose."""

    cutoff: datetime
    stories: tuple[OldStory, ...]
    entries: int
    kept_pinned: int
    kept_commented: int
    dry_run: bool


def cutoff_for(now: datetime, keep: int) -> datetime:
    return now - timedelta(seconds=keep)


def recent_only(items: Sequence[Item], keep: int | None, now: datetime) -> list[Item]:
    """The items published within `keep` (all of them when nothing is pruned)."""
    if keep is None:
        return list(items)
    cutoff = cutoff_for(now, keep)
    return [item for item in items if item.published >= cutoff]


def _old(cutoff: datetime) -> list[ColumnElement[bool]]:
    """Stories whose every entry was published before the cutoff."""
    newer_entry = exists().where(Entry.story_id == Story.id, Entry.published >= cutoff)
    return [Story.published < cutoff, ~newer_entry]


def _has_approved_comment() -> Exists:
    return exists().where(Comment.story_id == Story.id, Comment.status == Status.APPROVED.value)


def prune(session: Session, keep: int, now: datetime, *, dry_run: bool = False) -> PruneReport:
    """Delete the stories older than `keep` (seconds), unless pinned or commented."""
    cutoff = cutoff_for(now, keep)
    old = _old(cutoff)
    commented = _has_approved_comment()
    kept_pinned = session.scalar(
        select(func.count(Story.id)).where(*old, Story.pinned_at.is_not(None))
    )
    kept_commented = session.scalar(
        select(func.count(Story.id)).where(*old, Story.pinned_at.is_(None), commented)
    )
    rows = session.execute(
        select(Story.id, Story.title, Story.published)
        .where(*old, Story.pinned_at.is_(None), ~commented)
        .order_by(Story.published, Story.id)
    ).all()
    ids = [row.id for row in rows]
    counts: dict[int, int] = {}
    for chunk in _chunks(ids):
        rows_in_chunk = session.execute(
            select(Entry.story_id, func.count(Entry.id))
            .where(Entry.story_id.in_(chunk))
            .group_by(Entry.story_id)
        )
        counts.update((story_id, entries) for story_id, entries in rows_in_chunk)
    report = PruneReport(
        cutoff=cutoff,
        stories=tuple(
            OldStory(row.id, row.title, row.published, counts.get(row.id, 0)) for row in rows
        ),
        entries=sum(counts.values()),
        kept_pinned=kept_pinned or 0,
        kept_commented=kept_commented or 0,
        dry_run=dry_run,
    )
    if dry_run:
        return report
    for chunk in _chunks(ids):
        delete_stories(session, chunk)
    session.add(Prune(at=now, cutoff=cutoff, stories=len(report.stories), entries=report.entries))
    # Departures older than the stories kept: the new prune moves every feed's version anyway.
    session.execute(delete(FeedChange).where(FeedChange.at < cutoff))
    log.info(
        "pruned stories=%d entries=%d cutoff=%s kept_pinned=%d kept_commented=%d",
        len(report.stories),
        report.entries,
        cutoff.isoformat(),
        report.kept_pinned,
        report.kept_commented,
    )
    return report


def delete_stories(session: Session, story_ids: list[int]) -> None:
    """Remove these stories and everything pointing at them, leaving no dangling row: band keys,
    entries (and other entries' `matched_entry_id` to them), tags no story uses any more,
    related posts both ways, the stories' unpublished comments. SQLite's full-text rows go with
    the stories (0022's delete trigger), PostgreSQL's vectors by their foreign key's cascade
    (0023)."""
    entry_ids = select(Entry.id).where(Entry.story_id.in_(story_ids)).scalar_subquery()
    tag_ids = list(
        session.scalars(select(StoryTag.tag_id).where(StoryTag.story_id.in_(story_ids)).distinct())
    )
    session.execute(
        update(Entry)
        .where(Entry.matched_entry_id.in_(entry_ids))
        .values(matched_entry_id=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(EntryBand).where(EntryBand.entry_id.in_(entry_ids)))
    session.execute(
        delete(Entry)
        .where(Entry.story_id.in_(story_ids))
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(StoryTag).where(StoryTag.story_id.in_(story_ids)))
    session.execute(
        delete(RelatedStory).where(
            RelatedStory.story_id.in_(story_ids) | RelatedStory.related_id.in_(story_ids)
        )
    )
    session.execute(delete(Comment).where(Comment.story_id.in_(story_ids)))
    session.execute(
        delete(Story).where(Story.id.in_(story_ids)).execution_options(synchronize_session=False)
    )
    for chunk in _chunks(tag_ids):
        used = exists().where(StoryTag.tag_id == Tag.id)
        session.execute(delete(Tag).where(Tag.id.in_(chunk), ~used))


def set_pinned(session: Session, story_ids: Iterable[int], pinned: bool, now: datetime) -> None:
    """Pin (keep for ever) or unpin these stories, all or none."""
    ids = sorted(set(story_ids))
    stories = list(session.scalars(select(Story).where(Story.id.in_(ids))))
    missing = set(ids) - {story.id for story in stories}
    if missing:
        raise UnknownStories(missing)
    for story in stories:
        if pinned and story.pinned_at is None:
            story.pinned_at = now
        elif not pinned:
            story.pinned_at = None
        log.info("story=%s pinned=%s", story.id, pinned)


def last_prune(session: Session) -> datetime | None:
    return session.scalar(select(func.max(Prune.at)))


def prune_if_due(session: Session, keep: int | None, now: datetime) -> PruneReport | None:
    """The scheduler's daily prune: only when `keep` is set and a day has passed since the last
    (recorded in `prunes`, so every worker sees it)."""
    if keep is None:
        return None
    serialise(session, ["prune"])  # workers on one PostgreSQL: one prunes, the others see it
    last = last_prune(session)
    if last is not None and now - last < PRUNE_EVERY:
        return None
    return prune(session, keep, now)


def _chunks(values: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]
