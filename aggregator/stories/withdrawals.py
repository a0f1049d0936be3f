"""Withdrawn stories: an editor's `caulbart unpublish`, or a wire KILL / WITHDRAWN advisory.

A withdrawn story keeps its rows (they are the evidence); its page answers 410 with the reason and
the Atom feeds carry an RFC 6721 tombstone for it. Runs inside the caller's transaction.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aggregator.errors import UnknownStory as UnknownStory
from aggregator.storage.models import Entry, Source, Story
from aggregator.types import Item

log = logging.getLogger(__name__)

# "KILL - Headline", "KILL: Headline", "WITHDRAWN — Headline": upper case and a separator, so
# "Kill switch..." or "KILLER whale..." are ordinary headlines.
ADVISORY = re.compile(r"^\s*(?:KILL|WITHDRAWN|WITHDRAWAL)\s*(?:[-—–:|]+|$)\s*(?P<headline>.*)$")
QUOTES = "\"'“”‘’«» "


def advisory_headline(title: str) -> str | None:
    """The headline a KILL/WITHDRAWN advisory refers to ("" if it names none), else None."""
    match = ADVISORY.match(title)
    if match is None:
        return None
    return match.group("headline").strip(QUOTES)


def split_advisories(items: Sequence[Item]) -> tuple[list[Item], list[Item]]:
    """(items to store, advisories): an advisory is an instruction, never a story of its own."""
    stories: list[Item] = []
    advisories: list[Item] = []
    for item in items:
        (advisories if advisory_headline(item.title) is not None else stories).append(item)
    return stories, advisories


def withdraw_story(session: Session, story_id: int, reason: str, now: datetime) -> Story:
    """Mark the story withdrawn (once: a repeated withdrawal keeps the first date and reason)."""
    story = session.get(Story, story_id, with_for_update={"key_share": True})
    if story is None:
        raise UnknownStory(story_id)
    if story.withdrawn_at is None:
        story.withdrawn_at = now
        story.withdrawn_reason = reason.strip() or "withdrawn"
        story.updated = max(story.updated, now)  # the feeds' version check sees the change
        log.info("story=%s withdrawn reason=%r", story_id, story.withdrawn_reason)
    return story


def apply_advisories(
    session: Session, source: Source, advisories: Sequence[Item], now: datetime
) -> list[int]:
    """Withdraw the stored stories these advisories name; returns the ids newly withdrawn."""
    withdrawn: list[int] = []
    for item in advisories:
        story_id = advisory_target(session, source.id, item)
        if story_id is None:
            log.info("source=%s advisory without a stored story title=%r", source.id, item.title)
            continue
        story = withdraw_story(session, story_id, f"{source.agency}: {item.title}", now)
        if story.withdrawn_at == now:
            withdrawn.append(story_id)
    return withdrawn


def advisory_target(session: Session, source_id: str, item: Item) -> int | None:
    """The story an advisory refers to: same link, else same headline; this source's first."""
    headline = advisory_headline(item.title) or ""
    conditions = []
    if item.link:
        conditions.append(Entry.link == item.link)
    if headline:
        conditions.append(func.lower(Entry.title) == headline.lower())
    for condition in conditions:
        rows = session.execute(
            select(Entry.story_id, Entry.source_id)
            .where(condition)
            .order_by(Entry.published.desc(), Entry.id.desc())
        ).all()
        if rows:
            own = [story_id for story_id, source in rows if source == source_id]
            return own[0] if own else rows[0][0]
    return None
