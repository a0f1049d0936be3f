"""Items a filter turned away: recorded for editors, forgotten once they become entries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from aggregator.storage.db import among
from aggregator.storage.entries import entries_by_guid
from aggregator.storage.models import FilteredEntry, Source
from aggregator.types import FilteredItem


def record_filtered(
    session: Session,
    source: Source,
    filtered: Sequence[FilteredItem],
    now: datetime,
    *,
    stored_guids: Iterable[str] = (),
) -> int:
    """Record the items a filter turned away (a second sighting refreshes the rule), and forget
    the records of `stored_guids`, items that have since become entries (a rule was removed).

    Returns how many were recorded. An item already stored as an entry is never recorded: rules
    judge arriving items, they do not take back published stories.
    """
    _forget_filtered(session, source.id, list(stored_guids))
    if not filtered:
        return 0
    guids = [f.item.guid for f in filtered]
    entries = entries_by_guid(session, source.id, guids)
    known = {
        row.guid: row
        for is_wanted in among(session, FilteredEntry.guid, guids)
        for row in session.scalars(
            select(FilteredEntry).where(FilteredEntry.source_id == source.id, is_wanted)
        )
    }
    recorded = 0
    for turned_away in filtered:
        item = turned_away.item
        if item.guid in entries:
            continue
        row = known.get(item.guid)
        if row is None:
            row = FilteredEntry(source_id=source.id, guid=item.guid, first_seen_at=now)
            session.add(row)
        row.link, row.title, row.published = item.link, item.title, item.published
        row.rule, row.detail, row.seen_at = turned_away.rule, turned_away.detail, now
        recorded += 1
    return recorded


def _forget_filtered(session: Session, source_id: str, guids: list[str]) -> None:
    """Most sources have no filtered records: one indexed probe spares a delete by every guid."""
    if not guids or not session.scalar(
        select(FilteredEntry.id).where(FilteredEntry.source_id == source_id).limit(1)
    ):
        return
    for is_wanted in among(session, FilteredEntry.guid, guids):
        session.execute(
            delete(FilteredEntry).where(FilteredEntry.source_id == source_id, is_wanted)
        )
