"""Which Story an Item belongs to, and which of a story's entries speaks for it.

This issue's matching is exact (same canonical link, or same normalised text); fuzzy matching
plugs in behind `find_story_id` without changing its callers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from aggregator.models import Entry
from aggregator.types import Item


def find_story_id(session: Session, item: Item) -> int | None:
    """The stored story telling the same news as `item`, if an exact match exists."""
    conditions = []
    if item.link:
        conditions.append(Entry.link == item.link)
    if item.text_hash:
        conditions.append(Entry.text_hash == item.text_hash)
    if not conditions:
        return None
    statement = select(Entry.story_id).where(or_(*conditions)).order_by(Entry.id).limit(1)
    return session.scalars(statement).first()


def match_keys(item: Item) -> list[str]:
    """The keys two concurrent transactions would both match this item on.

    The store locks them before looking for the item's story, so two workers storing the same news
    at once cannot both decide it is new and make two stories.
    """
    keys = []
    if item.link:
        keys.append(f"link:{item.link}")
    if item.text_hash:
        keys.append(f"text:{item.text_hash}")
    return keys


@dataclass(frozen=True)
class Candidate:
    """What ranks an entry as its story's voice."""

    entry_id: int
    priority: int
    has_full_text: bool
    published: datetime


def best_entry(candidates: list[Candidate]) -> Candidate:
    """Editors' priority first, then full text over summary, then the earliest telling."""
    return min(
        candidates, key=lambda c: (-c.priority, not c.has_full_text, c.published, c.entry_id)
    )
