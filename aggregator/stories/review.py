"""Editors' curation: stories from `publish: review` sources are held until an editor decides.

A story is held only while every entry it has comes from review sources: an entry from an `auto`
source releases it, since the news is public through that source anyway. Held and rejected stories
are invisible everywhere (pages, listings, feeds, search, sitemap); `visible()` is the one
condition every reader of stories applies. A published story is taken back with
`caulbart unpublish` (410 and a tombstone), not by rejecting it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Engine, literal, or_, select
from sqlalchemy.orm import Session

from aggregator.errors import ReviewRefused as ReviewRefused
from aggregator.storage.db import read_sessions
from aggregator.storage.models import Entry, Source, Story

log = logging.getLogger(__name__)

REVIEW = "review"  # feeds.yaml `publish: review`


class Review(enum.StrEnum):
    HELD = "held"
    APPROVED = "approved"
    REJECTED = "rejected"


# Decisions an editor may take from each state; a decision already taken is a harmless repeat.
ALLOWED = {
    Review.APPROVED: {Review.HELD, Review.REJECTED, Review.APPROVED},
    Review.REJECTED: {Review.HELD, Review.REJECTED},
}


def visible() -> ColumnElement[bool]:
    """Stories readers may see: never held for review, or approved."""
    return or_(Story.review.is_(None), Story.review == Review.APPROVED.value)


def is_visible(review: str | None) -> bool:
    return review is None or review == Review.APPROVED


def state_for_new_story(publish: str) -> str | None:
    """A story started by an entry of a review source is held; otherwise it is published."""
    return Review.HELD.value if publish == REVIEW else None


def state_after_join(state: str | None, publish: str) -> str | None:
    """An entry from an auto source releases a held story; an editor's decision stands."""
    if state == Review.HELD and publish != REVIEW:
        return None
    return state


@dataclass(frozen=True)
class HeldStory:
    """A story awaiting an editor, as `caulbart review list` and /admin/review show it."""

    id: int
    title: str
    lede: str
    section: str
    published: datetime
    created: datetime
    sources: tuple[str, ...]
    links: tuple[str, ...]


def held_stories(engine: Engine, limit: int | None = None) -> list[HeldStory]:
    """Stories held for review, oldest stored first (the order they arrived in)."""
    with read_sessions(engine)() as session:
        stories = list(
            session.scalars(
                select(Story)
                # Inline, so the planner can prove the partial index ix_stories_held applies.
                .where(Story.review == literal(Review.HELD.value, literal_execute=True))
                .order_by(Story.created_at, Story.id)
                .limit(limit)
            )
        )
        tellings: dict[int, list[tuple[str, str | None]]] = {s.id: [] for s in stories}
        rows = session.execute(
            select(Entry.story_id, Source.id, Entry.link)
            .join(Source, Source.id == Entry.source_id)
            .where(Entry.story_id.in_(list(tellings)))
            .order_by(Entry.id)
        )
        for story_id, source_id, link in rows:
            tellings[story_id].append((source_id, link))
        return [
            HeldStory(
                id=story.id,
                title=story.title,
                lede=story.lede,
                section=story.section,
                published=story.published,
                created=story.created_at,
                sources=tuple(dict.fromkeys(source for source, _ in tellings[story.id])),
                links=tuple(dict.fromkeys(link for _, link in tellings[story.id] if link)),
            )
            for story in stories
        ]


def decide(
    session: Session, story_ids: Iterable[int], decision: Review, now: datetime
) -> list[int]:
    """Approve or reject these stories, all or none; returns the ids whose state changed.

    Moving `updated` on approval is what makes the feeds' version (and pages' ETags) move.
    """
    if decision is Review.HELD:
        raise ValueError("an editor approves or rejects; holding is the ingest's")
    ids = sorted(set(story_ids))
    stories = {
        story.id: story
        for story in session.scalars(
            select(Story).where(Story.id.in_(ids)).with_for_update(key_share=True)
        )
    }
    problems: list[str] = []
    for story_id in ids:
        story = stories.get(story_id)
        if story is None:
            problems.append(f"no story {story_id}")
        elif story.review is None:
            problems.append(f"story {story_id} was never held for review")
        elif Review(story.review) not in ALLOWED[decision]:
            problems.append(
                f"story {story_id} is {story.review}: withdraw it with `caulbart unpublish`"
            )
    if problems:
        raise ReviewRefused(problems)
    changed: list[int] = []
    for story_id in ids:
        story = stories[story_id]
        if story.review == decision:
            continue
        story.review = decision.value
        story.updated = max(story.updated, now)
        changed.append(story_id)
        log.info("story=%s review=%s", story_id, decision.value)
    return changed
