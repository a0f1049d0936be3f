"""Writes: sources from the config, a source's items as entries and stories, fetch health.

Callers own the transaction; every function here works inside the one it is given, so a
source's items and its new fetch state commit together or not at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, or_, select, text
from sqlalchemy.orm import InstrumentedAttribute, Session

from aggregator import dates, limits
from aggregator.ingest.normalise import collapse, plain_text
from aggregator.ingest.scheduler import claimer_is_dead
from aggregator.storage.db import among, insert_missing, insert_rows, serialise, write_rows
from aggregator.storage.models import Entry, EntryBand, FilteredEntry, Host, Setting, Source, Story
from aggregator.stories import assign, dedupe
from aggregator.stories.assign import Candidates, NearCandidate, StoredEntry, Voice
from aggregator.stories.dedupe import Fingerprint, Telling, shingles_from_bytes
from aggregator.types import (
    Config,
    FetchResult,
    FetchStatus,
    FilteredItem,
    Item,
    SourceConfig,
)

REMOVED_FROM_CONFIG = "removed from feeds.yaml"
DISABLED_IN_CONFIG = "enabled: false in feeds.yaml"
GONE_PREFIX = "410 Gone"


def slugify(title: str, limit: int = 80) -> str:
    """ASCII, lower-case, hyphenated words: a readable permalink part."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split()
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            break
        slug = candidate
    return slug or "story"


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


# settings.name of the host in feed item ids (models.Setting).
TAG_AUTHORITY = "tag_authority"


def keep_setting(session: Session, name: str, value: str) -> str:
    """The setting's stored value; `value` is stored first when there is none yet."""
    stored = session.get(Setting, name)
    if stored is None:
        stored = Setting(name=name, value=value)
        session.add(stored)
    return stored.value


def sync_sources(session: Session, config: Config, now: datetime) -> None:
    """Make the sources table match feeds.yaml; removed sources are disabled, never deleted."""
    serialise(session, ["sync_sources"])  # workers starting together must not insert twice
    keep_setting(session, TAG_AUTHORITY, host_of(config.site.base_url) or "localhost")
    stored = {source.id: source for source in session.scalars(select(Source))}
    for declared in config.sources:
        source = stored.pop(declared.id, None)
        if source is None:
            source = Source(
                id=declared.id,
                config_url=declared.url,
                url=declared.url,
                host=host_of(declared.url),
                consecutive_errors=0,
                created_at=now,
            )
            session.add(source)
        elif source.config_url != declared.url:
            # The editor changed the address: start afresh on it, forgetting old validators.
            source.config_url = source.url = declared.url
            source.host = host_of(declared.url)
            source.etag = source.last_modified = source.moved_to = None
            source.consecutive_errors = 0
            source.next_fetch_at = None
            if source.disabled_reason and source.disabled_reason.startswith(GONE_PREFIX):
                source.disabled_reason = None
        source.name = declared.name
        source.agency = declared.agency
        source.section = declared.section
        source.priority = declared.priority
        source.language = declared.language
        source.tags = list(declared.tags)
        source.publish = declared.publish
        _apply_republishing_terms(source, declared, now)
        source.interval_seconds = config.interval_for(declared)
        source.adaptive = config.is_adaptive(declared)
        gone = bool(source.disabled_reason and source.disabled_reason.startswith(GONE_PREFIX))
        if not declared.enabled:
            source.disabled_reason = DISABLED_IN_CONFIG
        elif not gone:
            source.disabled_reason = None
    for leftover in stored.values():
        leftover.disabled_reason = REMOVED_FROM_CONFIG
    ensure_hosts(session, {host_of(declared.url) for declared in config.sources})


def _apply_republishing_terms(source: Source, declared: SourceConfig, now: datetime) -> None:
    """Copy rights/excerpt_only/images; a change dates `terms_changed_at` so feeds re-render."""
    terms = (declared.rights, declared.excerpt_only, declared.images)
    if (source.rights, source.excerpt_only, source.images) != terms:
        source.rights, source.excerpt_only, source.images = terms
        source.terms_changed_at = now


def ensure_hosts(session: Session, names: set[str]) -> None:
    """Insert missing host rows; concurrent workers may race here, so conflicts are ignored."""
    insert_missing(session, Host, [{"name": name} for name in sorted(names)], "name")


def claim_sources(
    session: Session,
    worker: str,
    now: datetime,
    *,
    limit: int,
    lease: int,
    per_host: int | None,
    host_spacing: int = 0,
    ids: list[str] | None = None,
    due_only: bool = True,
) -> list[Source]:
    """Lease up to `limit` sources to `worker`, within each host's budget.

    Sources are locked with FOR UPDATE SKIP LOCKED (PostgreSQL), so concurrent workers never take
    the same one; a lease not released in time expires and the source is free again. Host rows are
    locked the same way, so per-host budgets hold across workers. `per_host=None` skips budgets.
    """
    statement = (
        select(Source)
        .where(
            Source.disabled_reason.is_(None),
            or_(
                Source.claim_expires_at.is_(None),
                Source.claim_expires_at <= now,
                Source.id.in_(_claims_of_dead_processes(session, now)),
            ),
        )
        .order_by(Source.next_fetch_at.asc().nulls_first(), Source.id)
        .with_for_update(skip_locked=True)
    )
    if due_only:
        statement = statement.where(
            or_(Source.next_fetch_at.is_(None), Source.next_fetch_at <= now)
        )
    if ids is not None:
        statement = statement.where(Source.id.in_(ids))
    if per_host is not None:
        statement = statement.limit(limit * 4)
    candidates = list(session.scalars(statement))
    chosen = (
        candidates[:limit]
        if per_host is None
        else _within_host_budget(session, candidates, now, limit, per_host, host_spacing)
    )
    for source in chosen:
        source.claimed_by = worker
        source.claim_expires_at = now + timedelta(seconds=lease)
    return chosen


def _claims_of_dead_processes(session: Session, now: datetime) -> list[str]:
    """Sources whose live lease belongs to a process of this machine that has died."""
    held = session.execute(
        select(Source.id, Source.claimed_by).where(
            Source.claim_expires_at > now, Source.claimed_by.is_not(None)
        )
    ).all()
    return [source_id for source_id, claimer in held if claimer and claimer_is_dead(claimer)]


def _within_host_budget(
    session: Session,
    candidates: list[Source],
    now: datetime,
    limit: int,
    per_host: int,
    host_spacing: int,
) -> list[Source]:
    names = sorted({source.host for source in candidates})
    if not names:
        return []
    ensure_hosts(session, set(names))
    hosts = {
        host.name: host
        for host in session.scalars(
            select(Host).where(Host.name.in_(names)).with_for_update(skip_locked=True)
        )
    }
    in_flight: Counter[str] = Counter(
        dict(
            session.execute(
                select(Source.host, func.count())
                .where(Source.host.in_(list(hosts)), Source.claim_expires_at > now)
                .group_by(Source.host)
            ).all()
        )
    )
    chosen: list[Source] = []
    for source in candidates:
        host = hosts.get(source.host)
        if host is None or (host.next_request_at and host.next_request_at > now):
            continue  # another worker is deciding for this host, or it must rest
        if in_flight[source.host] >= per_host:
            continue
        in_flight[source.host] += 1
        chosen.append(source)
        if len(chosen) == limit:
            break
    for name in {source.host for source in chosen}:
        hosts[name].next_request_at = now + timedelta(seconds=host_spacing)
    return chosen


def release_claim(source: Source, worker: str | None) -> None:
    if worker is None or source.claimed_by == worker:
        source.claimed_by = None
        source.claim_expires_at = None


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
class _NewStory:
    """A story this batch starts. New stories and entries are written by one INSERT each
    (db.insert_rows), with the ids numbered here: the ORM's bookkeeping of many thousands of new
    objects a first ingest cost more than the database's work."""

    section: str
    language: str | None
    published: datetime
    updated: datetime
    created_at: datetime
    review: str | None
    id: int = 0  # numbered once the batch is placed
    # Taken from its best entry once the batch is placed (_refresh_story).
    best_entry_id: int | None = None
    slug: str = ""
    title: str = ""
    lede: str = ""
    body_html: str = ""
    image_url: str | None = None
    image_credit: str | None = None
    # Its first entry's drafted terms (aggregator.ingest.prepare), inserted with it, not updated
    # after.
    terms: Sequence[str] = ()


STORY_COLUMNS = (
    "id", "slug", "title", "lede", "body_html", "section", "language", "image_url",
    "image_credit", "best_entry_id", "terms", "published", "updated", "created_at", "review",
)  # fmt: skip


@dataclass(slots=True, eq=False)
class _NewEntry:
    """An entry this batch adds (see _NewStory), with why it is in its story."""

    item: Item
    print_: Fingerprint | None
    source_id: str
    story: Story | _NewStory
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

    existing = _entries_by_guid(session, source.id, [item.guid for item in items])
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
    held = {story.id: story for story in _stories_by_id(session, stored_story_ids)}
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
        story: _NewStory(
            story.section, story.language, story.published, story.updated, now, story.review
        )
        for story in plan.new_stories
    }
    stories: dict[assign.StoryRef, Story | _NewStory] = {
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
        _refresh_story(started, [(_voice(entry), source.priority) for entry in entries])
        started.terms = terms.get(entries[0].item.guid, ())
    insert_rows(session, Story, STORY_COLUMNS, [_story_row(story) for story in new_stories])
    insert_rows(session, Entry, ENTRY_COLUMNS, [_entry_row(entry, now) for entry in new_entries])
    session.flush()  # stored stories' new dates and review states, edited entries
    retold = {update.retold for update in plan.updates if update.retold}
    reindexed += _texts_left_unindexed(session, retold)
    _index_bands(session, reindexed, [update.entry_id for update in plan.updates])
    joined = [held[ref.id] for ref in plan.touched if isinstance(ref, assign.ExistingStory)]
    before = {story.id: (_tag_inputs(story), story.published) for story in joined}
    revised = refresh_stories(session, joined)
    for story in joined:
        if story.id in revised:
            story.revised = now
    retag = [story.id for story in new_stories]
    redated: list[int] = []
    for story in joined:
        labelled = assign.ExistingStory(story.id) in plan.labelled
        if labelled or before[story.id][0] != _tag_inputs(story):
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
    entries = _entries_by_guid(session, source.id, guids)
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


NEXT_IDS = text(
    "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"
)


def _number_new_rows(
    session: Session, model: type[Story] | type[Entry], rows: Sequence[_NewStory | _NewEntry]
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


def _stories_by_id(session: Session, story_ids: set[int]) -> list[Story]:
    return [
        story
        for is_wanted in among(session, Story.id, sorted(story_ids))
        for story in session.scalars(select(Story).where(is_wanted))
    ]


def _texts_left_unindexed(
    session: Session, text_hashes: set[str]
) -> list[tuple[Entry | _NewEntry, Fingerprint | None]]:
    """Edited entries' former texts that no entry now holds in the index, each fingerprinted
    on its oldest entry, which then stands for it.

    An entry that joined a story by repeating another's text word for word is left out of the
    index (save_items); once that other entry is edited, the repeat must speak for the text.
    """
    oldest: dict[str, Entry] = {}
    indexed: set[str] = set()
    for is_wanted in among(session, Entry.text_hash, sorted(text_hashes)):
        for entry in session.scalars(select(Entry).where(is_wanted).order_by(Entry.id)):
            assert entry.text_hash is not None
            oldest.setdefault(entry.text_hash, entry)
            if entry.shingles is not None:
                indexed.add(entry.text_hash)
    reindexed: list[tuple[Entry | _NewEntry, Fingerprint | None]] = []
    for text_hash, entry in oldest.items():
        if text_hash in indexed:
            continue
        print_ = dedupe.fingerprint_text(entry.title, plain_text(entry.body_html))
        if print_ is not None:
            entry.shingles = print_.packed
            reindexed.append((entry, print_))
    return reindexed


def _index_bands(
    session: Session,
    entries: list[tuple[Entry | _NewEntry, Fingerprint | None]],
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


def lock_stories(session: Session, story_ids: Iterable[int]) -> None:
    """Lock these stories' rows, in ascending ids (one lock order for every worker), on
    PostgreSQL; SQLite's transaction already holds the database's single write lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for is_wanted in among(session, Story.id, sorted(set(story_ids))):
        session.execute(
            select(Story.id)
            .where(is_wanted)
            .order_by(Story.id)
            # NO KEY UPDATE: does not block other transactions' foreign keys to these stories.
            .with_for_update(key_share=True)
        )


def _entries_by_guid(session: Session, source_id: str, guids: list[str]) -> dict[str, Entry]:
    """What this source already has, in one query per chunk rather than one per entry."""
    found: dict[str, Entry] = {}
    for is_wanted in among(session, Entry.guid, guids):
        statement = select(Entry).where(Entry.source_id == source_id, is_wanted)
        found.update((entry.guid, entry) for entry in session.scalars(statement))
    return found


def _story_row(story: _NewStory) -> tuple[object, ...]:
    """`story` as values in STORY_COLUMNS' order."""
    return (
        story.id, story.slug, story.title, story.lede, story.body_html, story.section,
        story.language, story.image_url, story.image_credit, story.best_entry_id, list(story.terms),
        story.published, story.updated, story.created_at, story.review,
    )  # fmt: skip


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


def _tag_inputs(story: Story) -> tuple[object, ...]:
    """What a story's tags and terms are worked out from, besides its entries' labels:
    unchanged, re-tagging it would give the same tags."""
    return (story.title, story.lede, story.body_html, story.section)


def _voice(entry: _NewEntry) -> Voice:
    item = entry.item
    return Voice(
        entry.id, entry.source_id, item.published, item.has_full_text, item.title, item.lede,
        item.body_html, item.image_url, item.image_credit, item.language,
    )  # fmt: skip


def refresh_stories(session: Session, stories: Iterable[Story]) -> set[int]:
    """Take each story's headline, text and image from its best entry (one query a chunk);
    returns the stories whose own telling changed (see _refresh_story)."""
    by_id = {story.id: story for story in stories}
    voices: dict[int, list[tuple[Voice, int]]] = {}
    for in_story in among(session, Entry.story_id, sorted(by_id)):
        rows = session.execute(
            select(Entry.story_id, Source.priority, *(getattr(Entry, f) for f in Voice._fields))
            .join(Source, Source.id == Entry.source_id)
            .where(in_story)
        )
        for story_id, priority, *fields in rows:
            voices.setdefault(story_id, []).append((Voice(*fields), priority))
    return {story_id for story_id, told in voices.items() if _refresh_story(by_id[story_id], told)}


def _refresh_story(story: Story | _NewStory, voices: list[tuple[Voice, int]]) -> bool:
    """Take the story's headline, text and image from its best entry (stories.assign); returns
    whether its own telling changed: a new headline or text from the source that told it before
    (an edit, a re-send), not another source's copy taking over or joining."""
    before = (story.title, story.lede, story.body_html)
    told = assign.story_text(voices, story.best_entry_id)
    story.best_entry_id = told.best_entry_id
    story.title = told.title
    story.slug = slugify(story.title)
    story.lede = told.lede
    story.body_html = told.body_html
    story.image_url = told.image_url
    story.image_credit = told.image_credit
    story.language = told.language or story.language
    story.published = told.published
    return told.told_again and before != (story.title, story.lede, story.body_html)


def record_fetch(
    session: Session,
    source: Source,
    result: FetchResult,
    now: datetime,
    next_fetch_at: datetime,
    error: str | None = None,
    feed_title: str | None = None,
) -> None:
    """Store what this fetch taught about the source: validators, status, errors, next time."""
    source.claimed_by = None
    source.claim_expires_at = None
    source.last_fetch_at = now
    source.last_http_status = result.http_status
    source.next_fetch_at = next_fetch_at
    error = error or result.error
    if result.permanent_redirect and result.final_url:
        source.url = result.final_url
        source.moved_to = result.final_url
    if result.status is FetchStatus.GONE:
        source.disabled_reason = f"{GONE_PREFIX}: the publisher removed this feed"
    if error:
        source.last_status = "gone" if result.status is FetchStatus.GONE else "error"
        source.last_error = error[:2000]
        source.consecutive_errors += 1
        return
    source.last_status = result.status.value
    source.last_error = None
    source.consecutive_errors = 0
    source.last_success_at = now
    if result.status is FetchStatus.OK:
        source.etag = result.validators.etag
        source.last_modified = result.validators.last_modified
        if feed_title and (title := collapse(feed_title)):
            source.feed_title = title[:500]


def active_sources(session: Session, ids: Iterable[str] | None = None) -> list[Source]:
    statement = select(Source).where(Source.disabled_reason.is_(None)).order_by(Source.id)
    if ids is not None:
        statement = statement.where(Source.id.in_(list(ids)))
    return list(session.scalars(statement))
