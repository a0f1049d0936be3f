"""The stored entries an arriving item may join, read before deciding (stories.assign), and the
near-duplicate band index they are found by."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence, Set
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any, Protocol

from sqlalchemy import delete, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from aggregator import dates
from aggregator.ingest.markup import plain_text
from aggregator.storage.bulk import write_rows
from aggregator.storage.db import among
from aggregator.storage.models import Entry, EntryBand
from aggregator.stories import dedupe
from aggregator.stories.assign import Candidates, NearCandidate, StoredEntry
from aggregator.stories.dedupe import Fingerprint, Telling, shingles_from_bytes
from aggregator.types import Item


class Indexed(Protocol):
    """An entry whose band keys are written: stored, or new and numbered."""

    @property
    def id(self) -> int: ...

    @property
    def published(self) -> datetime: ...


def read_candidates(
    session: Session,
    items: Sequence[Item],
    prints: Mapping[str, Fingerprint | None],
    window: timedelta,
    *,
    source_id: str | None = None,
    now: datetime | None = None,
    shared: Set[str] = frozenset(),
) -> dict[str, Candidates]:
    """Each item's stored entries it may join: same link (in another source) or text, else
    those sharing most band keys with it. A few queries for the whole batch, not three per item.
    """
    by_link, by_text = _exact_candidates(session, items, source_id, shared)
    found: dict[str, Candidates] = {}
    near: list[tuple[Item, Fingerprint]] = []
    for item in items:
        link = by_link.get(item.link) if item.link else None
        text = by_text.get(item.text_hash) if item.text_hash else None
        found[item.guid] = Candidates(by_link=link, by_text=text)
        if link is None and text is None and (print_ := prints.get(item.guid)) is not None:
            near.append((item, print_))
    candidates = _band_candidates(session, near, window)
    if now is not None:
        for guid, seen in _first_seen_candidates(session, near, window, now).items():
            candidates[guid] = list(dict.fromkeys([*candidates[guid], *seen]))
    tellings = _tellings(session, {e for ids in candidates.values() for e in ids})
    for item, _ in near:
        told = tuple(tellings[e] for e in candidates[item.guid] if e in tellings)
        found[item.guid] = Candidates(near=told)
    return found


def _exact_candidates(
    session: Session, items: Sequence[Item], source_id: str | None, shared: Set[str]
) -> tuple[dict[str, StoredEntry], dict[str, StoredEntry]]:
    """The oldest stored entry holding each item's canonical link, and its text hash.

    A link joins only another source's entry: within a source, a guid of its own is an item of
    its own (a weblog's posts of one day, linking to the day's page), unless its text says not;
    and a link the source's items `shared` names none of them, so is not looked up.
    """
    links = {i.link for i in items if i.link and i.link not in shared}
    by_link = _stored_by(session, Entry.link, links, other_than=source_id)
    by_text = _stored_by(session, Entry.text_hash, {i.text_hash for i in items if i.text_hash})
    return by_link, by_text


def _stored_by(
    session: Session,
    column: InstrumentedAttribute[Any],
    values: set[Any],
    other_than: str | None = None,
) -> dict[Any, StoredEntry]:
    """value -> the oldest entry whose `column` holds it (of a source other than `other_than`),
    as a StoredEntry."""
    found: dict[Any, StoredEntry] = {}
    for is_wanted in among(session, column, sorted(values)):
        statement = select(column, Entry.id, Entry.story_id, Entry.source_id, Entry.published)
        if other_than is not None:
            statement = statement.where(Entry.source_id != other_than)
        rows = session.execute(statement.where(is_wanted).order_by(Entry.id.desc()))
        # The oldest last, so it is the one kept.
        found.update((value, StoredEntry(*stored)) for value, *stored in rows if value)
    return found


def _band_candidates(
    session: Session,
    near: Sequence[tuple[Item, Fingerprint]],
    window: timedelta,
) -> dict[str, list[int]]:
    """Per item, the stored entries sharing most band keys with it within the dedup window."""
    if not near:
        return {}
    wanted = sorted({band for _, print_ in near for band in print_.bands})
    earliest = dates.shifted(min(item.published for item, _ in near), -window)
    latest = dates.shifted(max(item.published for item, _ in near), window)
    holders: dict[int, list[tuple[int, datetime]]] = {}
    for holds_band in among(session, EntryBand.band, wanted):
        rows = session.execute(
            select(EntryBand.band, EntryBand.entry_id, EntryBand.published).where(
                holds_band, EntryBand.published.between(earliest, latest)
            )
        )
        for band, entry_id, published in rows:
            holders.setdefault(band, []).append((entry_id, published))
    candidates: dict[str, list[int]] = {}
    for item, print_ in near:
        low, high = dates.shifted(item.published, -window), dates.shifted(item.published, window)
        shared = Counter(
            entry_id
            for band in print_.bands
            for entry_id, published in holders.get(band, ())
            if low <= published <= high
        )
        ranked = sorted(shared.items(), key=lambda pair: (-pair[1], pair[0]))
        candidates[item.guid] = [entry_id for entry_id, _ in ranked[: dedupe.CANDIDATES]]
    return candidates


def _first_seen_candidates(
    session: Session,
    near: Sequence[tuple[Item, Fingerprint]],
    window: timedelta,
    now: datetime,
) -> dict[str, list[int]]:
    """Per item, the stored entries sharing most band keys with it that were first seen within
    the dedup window, where one of the two is undated.

    An undated item is dated when first seen (published == first seen, and `now` for an
    arriving one), days after its dated copies: by published time alone it falls outside their
    window and splits the story. When either side is undated, first seen is compared instead.
    """
    if not near:
        return {}
    since = now - window
    any_undated = any(item.published == now for item, _ in near)
    wanted = sorted({band for _, print_ in near for band in print_.bands})
    holders: dict[int, list[tuple[int, bool]]] = {}
    for holds_band in among(session, EntryBand.band, wanted):
        # Undated entries' band rows are dated when they were first seen: a range of the index.
        recent = Entry.first_seen_at >= since if any_undated else EntryBand.published >= since
        rows = session.execute(
            select(EntryBand.band, EntryBand.entry_id, Entry.published, Entry.first_seen_at)
            .join(Entry, Entry.id == EntryBand.entry_id)
            .where(holds_band, recent)
        )
        for band, entry_id, published, first_seen in rows:
            holders.setdefault(band, []).append((entry_id, published == first_seen))
    candidates: dict[str, list[int]] = {}
    for item, print_ in near:
        undated = item.published == now
        shared = Counter(
            entry_id
            for band in print_.bands
            for entry_id, holder_undated in holders.get(band, ())
            if undated or holder_undated
        )
        ranked = sorted(shared.items(), key=lambda pair: (-pair[1], pair[0]))
        candidates[item.guid] = [entry_id for entry_id, _ in ranked[: dedupe.CANDIDATES]]
    return candidates


def _tellings(session: Session, entry_ids: set[int]) -> dict[int, NearCandidate]:
    tellings: dict[int, NearCandidate] = {}
    for is_wanted in among(session, Entry.id, sorted(entry_ids)):
        rows = session.execute(
            select(
                Entry.id, Entry.story_id, Entry.source_id, Entry.title, Entry.shingles,
                Entry.lede, Entry.link, Entry.published,
            ).where(is_wanted)
        )  # fmt: skip
        for row in rows:
            telling = Telling(
                row.id,
                row.story_id,
                row.source_id,
                row.title,
                shingles_from_bytes(row.shingles),
                row.lede,
                row.link,
            )
            tellings[row.id] = NearCandidate(telling, row.published)
    return tellings


def texts_left_unindexed(
    session: Session, text_hashes: set[str]
) -> list[tuple[Entry, Fingerprint | None]]:
    """Edited entries' former texts that no entry now holds in the index, each fingerprinted
    on its oldest entry, which then stands for it.

    An entry that joined a story by repeating another's text word for word is left out of the
    index (entries.save_items); once that other entry is edited, the repeat must speak for the text.
    """
    oldest: dict[str, Entry] = {}
    indexed: set[str] = set()
    for is_wanted in among(session, Entry.text_hash, sorted(text_hashes)):
        for entry in session.scalars(select(Entry).where(is_wanted).order_by(Entry.id)):
            assert entry.text_hash is not None
            oldest.setdefault(entry.text_hash, entry)
            if entry.shingles is not None:
                indexed.add(entry.text_hash)
    reindexed: list[tuple[Entry, Fingerprint | None]] = []
    for text_hash, entry in oldest.items():
        if text_hash in indexed:
            continue
        print_ = dedupe.fingerprint_text(entry.title, plain_text(entry.body_html))
        if print_ is not None:
            entry.shingles = print_.packed
            reindexed.append((entry, print_))
    return reindexed


def index_bands(
    session: Session,
    entries: Sequence[tuple[Indexed, Fingerprint | None]],
    edited: list[int],
) -> None:
    """Write the band keys of new and edited entries (numbered or stored, so with their ids);
    `edited` entries' old keys go first.

    Some 40 keys an entry: each row is made once, with the date as the column's own processor
    stores it (models.BandTime: on SQLite the integer its queries compare with), converted once
    per entry, not once per key.
    """
    for is_edited in among(session, EntryBand.entry_id, edited):
        session.execute(delete(EntryBand).where(is_edited))
    connection = session.connection()
    dialect = connection.dialect
    process = EntryBand.__table__.c.published.type.dialect_impl(dialect).bind_processor(dialect)
    rows: list[tuple[int, object, int]] = []
    for entry, print_ in entries:
        if print_ is not None:
            published = process(entry.published) if process else entry.published
            rows += zip(print_.bands, repeat(published), repeat(entry.id))
    rows.sort()  # in the primary key's order: the index grows at a few places, not at random
    write_rows(connection, EntryBand.__tablename__, ("band", "published", "entry_id"), rows)
