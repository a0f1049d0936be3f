"""Entries: a source's items stored as new entries (joining or founding stories) or as edits in
place, as stories.assign decided.

Callers own the transaction; everything here works inside the one it is given."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from aggregator import limits
from aggregator.storage.bulk import insert_rows
from aggregator.storage.candidates import index_bands, read_candidates, texts_left_unindexed
from aggregator.storage.db import among, serialise
from aggregator.storage.models import Entry, Source, Story
from aggregator.storage.stories import (
    STORY_COLUMNS,
    NewStoryRow,
    lock_stories,
    refresh_stories,
    refresh_story,
    stories_by_id,
    story_row,
    tag_inputs,
)
from aggregator.stories import assign, dedupe
from aggregator.stories.assign import StoredEntry, Voice
from aggregator.stories.dedupe import Fingerprint
from aggregator.types import Item


@dataclass(frozen=True)
class SaveCounts:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    # Stories that gained or changed an entry: the ones to announce.
    story_ids: tuple[int, ...] = ()
    # Of those, the ones whose tags may have changed: to re-tag and relate. A copy that brings no
    # labels and leaves the story's headline and text as they were changes no tags.
    retag_ids: tuple[int, ...] = ()
    # The ones whose date alone moved (an earlier copy arrived later): their tags stand, but the
    # date weighs in related posts, so they are related again.
    relate_ids: tuple[int, ...] = ()
    # Stories this batch started, with the guid of the entry that started each.
    started: tuple[tuple[int, str], ...] = ()


@dataclass(slots=True, eq=False)
class _NewEntry:
    """An entry this batch adds (see NewStoryRow), with why it is in its story."""

    item: Item
    print_: Fingerprint | None
    source_id: str
    story: Story | NewStoryRow
    match_rule: str
    match_score: float | None = None
    matched_id: int | None = None  # known once the batch is numbered
    id: int = 0  # numbered once the batch is placed

    @property
    def published(self) -> datetime:
        return self.item.published


def save_items(
    session: Session,
    source: Source,
    items: Sequence[Item],
    now: datetime,
    *,
    dedup_window: int = limits.DEDUP_WINDOW,
    prints: Mapping[str, Fingerprint | None] | None = None,
    terms: Mapping[str, Sequence[str]] | None = None,
) -> SaveCounts:
    """Store a source's items: new ones as entries (joining or making stories), edits in place.

    Reads what the decision needs, locks the stories it may join, decides (stories.assign),
    then writes the assignment. `prints` are fingerprints made ahead (aggregator.ingest.prepare).
    A new item without one repeats a stored text word for word (prepare looked): it joins that
    text's story without one, and is fingerprinted here only if the text is gone by now. Without
    `prints`, all are made here. `terms` are drafted terms by guid: a story an item starts is
    inserted with the item's.
    """
    window = timedelta(seconds=dedup_window)
    ready = prints if prints is not None else {}

    def fingerprint(item: Item) -> Fingerprint | None:
        return ready[item.guid] if item.guid in ready else dedupe.fingerprint(item)

    existing = entries_by_guid(session, source.id, [item.guid for item in items])
    fresh: dict[str, Item] = {}
    for item in items:
        if item.guid not in existing:
            fresh.setdefault(item.guid, item)  # a guid twice in a batch: its first telling
    copies = set() if prints is None else fresh.keys() - ready.keys()
    prints = {guid: None if guid in copies else fingerprint(i) for guid, i in fresh.items()}
    # Lock what this batch matches on before looking, so two workers storing the same news at
    # once queue instead of both deciding it is new (PostgreSQL; SQLite has a single writer).
    serialise(session, (k for i in fresh.values() for k in dedupe.match_keys(i, prints[i.guid])))
    # A link several items of the document share (a podcast's home page) names none of them.
    links = Counter(item.link for item in items if item.link)
    shared = {link for link, count in links.items() if count > 1}

    def stored_matches(batch: list[Item]) -> dict[str, assign.Match | None]:
        found = read_candidates(
            session, batch, prints, window, source_id=source.id, now=now, shared=shared
        )
        return assign.match_stored(batch, prints, found, source.id)

    stored = stored_matches(list(fresh.values()))
    if lost := [fresh[g] for g in copies if not (m := stored[g]) or not m.repeats_text]:
        # Their stored text was edited or pruned since prepare looked: matched as any new item.
        prints.update((item.guid, dedupe.fingerprint(item)) for item in lost)
        serialise(session, (k for i in lost for k in dedupe.match_keys(i, prints[i.guid])))
        stored.update(stored_matches(lost))
    edited = [e for i in items if (e := existing.get(i.guid)) and e.content_hash != i.content_hash]
    matched = {m.entry.story_id for m in stored.values() if m and isinstance(m.entry, StoredEntry)}
    stored_story_ids = matched | {entry.story_id for entry in edited}
    lock_stories(session, stored_story_ids)
    # Loaded in one query and held while the batch joins them: loaded one by one, each load
    # also flushed the batch.
    held = {story.id: story for story in stories_by_id(session, stored_story_ids)}
    plan = assign.assign(
        items,
        assign.BatchSource(
            source.id, source.publish, source.section, source.language, bool(source.tags)
        ),
        now,
        known={guid: _known(entry) for guid, entry in existing.items()},
        prints=prints,
        matches=stored,
        reviews={story_id: story.review for story_id, story in held.items()},
        window=window,
    )
    return _write(session, source, plan, held, existing, now, fingerprint, terms or {})


def _known(entry: Entry) -> assign.KnownEntry:
    return assign.KnownEntry(
        entry.id,
        entry.story_id,
        entry.content_hash,
        entry.text_hash,
        bool(entry.categories),
        entry.published,
    )


def _write(
    session: Session,
    source: Source,
    plan: assign.Assignment,
    held: Mapping[int, Story],
    existing: Mapping[str, Entry],
    now: datetime,
    fingerprint: Callable[[Item], Fingerprint | None],
    terms: Mapping[str, Sequence[str]],
) -> SaveCounts:
    """Write an assignment: insert new stories and entries whole, edit entries in place, index
    their band keys, and take stored stories' text from their best entries again."""
    founded = {
        story: NewStoryRow(
            story.section, story.language, story.published, story.updated, now, story.review
        )
        for story in plan.new_stories
    }
    stories: dict[assign.StoryRef, Story | NewStoryRow] = {
        assign.ExistingStory(story_id): story for story_id, story in held.items()
    }
    for planned_story, row in founded.items():
        stories[planned_story] = row
    for story_id, state in plan.reviews.items():
        held[story_id].review = state
    for ref in plan.touched:
        stories[ref].updated = max(stories[ref].updated, now)
    born: dict[assign.NewStory, list[_NewEntry]] = {story: [] for story in plan.new_stories}
    new_entries: list[_NewEntry] = []
    for planned in plan.new_entries:
        new = _NewEntry(
            planned.item,
            planned.print_,
            source.id,
            stories[planned.story],
            planned.rule.value,
            planned.score,
        )
        new_entries.append(new)
        if isinstance(planned.story, assign.NewStory):
            born[planned.story].append(new)
    reindexed: list[tuple[Entry | _NewEntry, Fingerprint | None]] = [
        (entry, entry.print_) for entry in new_entries
    ]
    with session.no_autoflush:
        for update in plan.updates:
            entry = existing[update.item.guid]
            print_ = fingerprint(update.item)
            _copy_item(entry, update.item, print_, now)
            reindexed.append((entry, print_))
    new_stories = list(founded.values())
    _number_new_rows(session, Story, new_stories)
    _number_new_rows(session, Entry, new_entries)
    for new, planned in zip(new_entries, plan.new_entries, strict=True):
        matched = planned.matched
        if isinstance(matched, assign.Earlier):
            new.matched_id = new_entries[matched.position].id
        elif matched is not None:
            new.matched_id = matched.id
    # New stories take their best entry now that entries have ids: inserted whole, not updated.
    for planned_story, entries in born.items():
        started = founded[planned_story]
        refresh_story(started, [(_voice(entry), source.priority) for entry in entries])
        started.terms = terms.get(entries[0].item.guid, ())
    insert_rows(session, Story, STORY_COLUMNS, [story_row(story) for story in new_stories])
    insert_rows(session, Entry, ENTRY_COLUMNS, [_entry_row(entry, now) for entry in new_entries])
    session.flush()  # stored stories' new dates and review states, edited entries
    retold = {update.retold for update in plan.updates if update.retold}
    reindexed += texts_left_unindexed(session, retold)
    index_bands(session, reindexed, [update.entry_id for update in plan.updates])
    joined = [held[ref.id] for ref in plan.touched if isinstance(ref, assign.ExistingStory)]
    before = {story.id: (tag_inputs(story), story.published) for story in joined}
    revised = refresh_stories(session, joined)
    for story in joined:
        if story.id in revised:
            story.revised = now
    retag = [story.id for story in new_stories]
    redated: list[int] = []
    for story in joined:
        labelled = assign.ExistingStory(story.id) in plan.labelled
        if labelled or before[story.id][0] != tag_inputs(story):
            retag.append(story.id)
        elif before[story.id][1] != story.published:
            redated.append(story.id)
    return SaveCounts(
        new=len(new_entries),
        updated=len(plan.updates),
        unchanged=plan.unchanged,
        story_ids=tuple(stories[ref].id for ref in plan.touched),
        retag_ids=tuple(retag),
        relate_ids=tuple(redated),
        started=tuple((founded[s].id, entries[0].item.guid) for s, entries in born.items()),
    )


def entries_by_guid(session: Session, source_id: str, guids: list[str]) -> dict[str, Entry]:
    """What this source already has, in one query per chunk rather than one per entry."""
    found: dict[str, Entry] = {}
    for is_wanted in among(session, Entry.guid, guids):
        statement = select(Entry).where(Entry.source_id == source_id, is_wanted)
        found.update((entry.guid, entry) for entry in session.scalars(statement))
    return found


# An entry's columns that come from its item: the same for a new entry and an edit.
ITEM_COLUMNS = (
    "link", "title", "lede", "body_html", "author", "categories", "image_url", "image_credit",
    "language", "has_full_text", "full_text_error", "text_hash", "content_hash", "shingles",
    "published", "updated", "date_note", "changed_at", "enclosures", "title_derived",
    "raw_title",
)  # fmt: skip


ENTRY_COLUMNS = (
    "id", "source_id", "story_id", "guid", "first_seen_at", "match_rule", "match_score",
    "matched_entry_id", *ITEM_COLUMNS,
)  # fmt: skip


def _item_values(item: Item, print_: Fingerprint | None, now: datetime) -> tuple[object, ...]:
    """The values of ITEM_COLUMNS, in its order."""
    return (
        item.link, item.title, item.lede, item.body_html, item.author, list(item.categories),
        item.image_url, item.image_credit, item.language, item.has_full_text,
        item.full_text_error, item.text_hash, item.content_hash,
        print_.packed if print_ else None, item.published, item.updated, item.date_note, now,
        [asdict(e) for e in item.enclosures] or None, item.title_derived, item.raw_title,
    )  # fmt: skip


def _entry_row(entry: _NewEntry, now: datetime) -> tuple[object, ...]:
    """`entry` as values in ENTRY_COLUMNS' order."""
    return (
        entry.id, entry.source_id, entry.story.id, entry.item.guid, now, entry.match_rule,
        entry.match_score, entry.matched_id, *_item_values(entry.item, entry.print_, now),
    )  # fmt: skip


def _copy_item(entry: Entry, item: Item, print_: Fingerprint | None, now: datetime) -> None:
    for name, value in zip(ITEM_COLUMNS, _item_values(item, print_, now), strict=True):
        setattr(entry, name, value)


def _voice(entry: _NewEntry) -> Voice:
    item = entry.item
    return Voice(
        entry.id, entry.source_id, item.published, item.has_full_text, item.title, item.lede,
        item.body_html, item.image_url, item.image_credit, item.language,
    )  # fmt: skip


NEXT_IDS = text(
    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"
)


def _number_new_rows(
    session: Session, model: type[Story] | type[Entry], rows: Sequence[NewStoryRow | _NewEntry]
) -> None:
    """Give new rows their ids before they are written, so they go in as plain rows.

    Left to the database, ids come back by INSERT ... RETURNING: SQLite cannot say which id went
    to which row of a batch, and the rows refer to each other (an entry to its story and to the
    entry it matched). PostgreSQL hands out the ids from the table's own sequence (safe with any
    number of workers); SQLite takes the next ones, as it would itself: the store runs in an
    IMMEDIATE transaction, its single writer.
    """
    if not rows:
        return
    table = model.__tablename__
    with session.no_autoflush:  # ORM changes wait for the batch's flush
        if session.get_bind().dialect.name == "postgresql":
            ids = list(session.scalars(NEXT_IDS, {"table": table, "count": len(rows)}))
        else:
            last = session.scalar(select(func.max(model.id))) or 0
            ids = list(range(last + 1, last + 1 + len(rows)))
    for row, number in zip(rows, ids, strict=True):
        row.id = number
