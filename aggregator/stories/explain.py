"""Why a story holds the entries it holds (`caulbart explain STORY_ID`), and why an arriving
item was turned away by a filter (`caulbart explain --filtered`, `caulbart explain LINK`).

Read-only. Each entry's rule and score were stored when it was matched (dedupe.Rule), and each
filtered item's rule when it was filtered, so the explanation is the decision that was taken,
not a recomputation under today's thresholds or today's feeds.yaml.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import Engine, select

from aggregator.permalinks import iso_utc, story_url
from aggregator.storage.db import read_sessions
from aggregator.storage.models import Entry, FilteredEntry, Source, Story
from aggregator.types import Enclosure

# The words of each dedupe.Rule, by its stored value: explaining does not import dedupe (and numpy
# with it), so `caulbart explain` starts quickly; tests/test_startup.py checks every rule is here.
RULE_TEXT = {
    "new": "started the story",
    "link": "same canonical link as entry {matched}",
    "text": "same headline and text as entry {matched}",
    "near": "near-duplicate text of entry {matched} (shingle Jaccard {score})",
    "contained": "one telling contains the other, entry {matched} (containment {score})",
    "headline": "similar text (Jaccard {score}) and headline to entry {matched}",
    "update": "newer version from the same source of entry {matched} (score {score})",
}


@dataclass(frozen=True)
class EntryReason:
    entry_id: int
    source: str
    agency: str
    title: str
    link: str | None
    published: str
    has_full_text: bool
    # Why the article page's text is not the entry's body (full_text sources); None if it is.
    full_text_error: str | None
    # Why the feed's dates were set aside for the time it was fetched; None if they were not.
    date_note: str | None
    rule: str | None
    score: float | None
    matched_entry_id: int | None
    reason: str
    voice: bool
    # The feed gave no title: `title` was made (`title_source`: "text", "enclosure" or "link").
    title_derived: bool = False
    title_source: str | None = None
    # The headline as the feed gave it, when `title` was cleaned of a wire style.
    raw_title: str | None = None


@dataclass(frozen=True)
class StoryReasons:
    story_id: int
    title: str
    url: str
    voice: str
    entries: tuple[EntryReason, ...]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def explain_story(engine: Engine, base_url: str, story_id: int) -> StoryReasons | None:
    """The story's entries in the order they were seen, each with why it joined; None if absent."""
    with read_sessions(engine)() as session:
        story = session.get(Story, story_id)
        if story is None:
            return None
        rows = session.execute(
            select(Entry, Source)
            .join(Source, Source.id == Entry.source_id)
            .where(Entry.story_id == story_id)
            .order_by(Entry.id)
        ).all()
        reasons = tuple(_entry_reason(entry, source, story.best_entry_id) for entry, source in rows)
        return StoryReasons(
            story_id=story.id,
            title=story.title,
            url=story_url(base_url, story.id, story.slug, story.published),
            voice=_voice_reason([(entry, source) for entry, source in rows], story.best_entry_id),
            entries=reasons,
        )


def _entry_reason(entry: Entry, source: Source, voice_id: int | None) -> EntryReason:
    if entry.match_rule is None:
        reason = "stored before match explanations were kept"
    else:
        score = f"{entry.match_score:.3f}" if entry.match_score is not None else "-"
        template = RULE_TEXT[entry.match_rule]
        reason = template.format(matched=entry.matched_entry_id, score=score)
    return EntryReason(
        entry_id=entry.id,
        source=source.id,
        agency=source.agency,
        title=entry.title,
        link=entry.link,
        published=iso_utc(entry.published),
        has_full_text=entry.has_full_text,
        full_text_error=entry.full_text_error,
        date_note=entry.date_note,
        rule=entry.match_rule,
        score=entry.match_score,
        matched_entry_id=entry.matched_entry_id,
        reason=reason,
        voice=entry.id == voice_id,
        title_derived=entry.title_derived,
        title_source=_title_source(entry) if entry.title_derived else None,
        raw_title=entry.raw_title,
    )


def _title_source(entry: Entry) -> str:
    """What an untitled entry's headline was made from (normalise.normalise_entry's order)."""
    names = {Enclosure(str(f["url"])).file_name for f in entry.enclosures or ()}
    if entry.title in names:
        return "enclosure"
    return "link" if entry.title == entry.link else "text"


def _voice_reason(rows: list[tuple[Entry, Source]], voice_id: int | None) -> str:
    """Which step of dedupe.best_entry made the voice win: priority, full text, or time."""
    voice = next(((e, s) for e, s in rows if e.id == voice_id), None)
    if voice is None:
        return "no entry chosen yet"
    entry, source = voice
    latest: dict[str, int] = {}
    for other, _ in sorted(rows, key=lambda pair: (pair[0].published, pair[0].id)):
        latest[other.source_id] = other.id
    rivals = [(e, s) for e, s in rows if e.id != entry.id and latest[e.source_id] == e.id]
    if not rivals:
        return f"entry {entry.id}: the only current telling"
    if source.priority > max(s.priority for _, s in rivals):
        return f"entry {entry.id}: highest editor priority ({source.priority})"
    peers = [e for e, s in rivals if s.priority == source.priority]
    if entry.has_full_text and not any(e.has_full_text for e in peers):
        return f"entry {entry.id}: full text, where the others are summaries"
    return f"entry {entry.id}: the earliest telling among equals"


@dataclass(frozen=True)
class FilteredReason:
    """An item a filter turned away: which source, which rule, and what it matched."""

    source: str
    guid: str
    link: str | None
    title: str
    published: str
    rule: str
    detail: str
    first_seen: str
    seen: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def filtered_items(
    engine: Engine, source_ids: tuple[str, ...] = (), limit: int = 50
) -> list[FilteredReason]:
    """The latest filtered items (last seen first), of some sources or of all."""
    statement = select(FilteredEntry).order_by(
        FilteredEntry.seen_at.desc(), FilteredEntry.id.desc()
    )
    if source_ids:
        statement = statement.where(FilteredEntry.source_id.in_(source_ids))
    with read_sessions(engine)() as session:
        return [_filtered_reason(row) for row in session.scalars(statement.limit(limit))]


def find_link(engine: Engine, link: str) -> tuple[list[int], list[FilteredReason]]:
    """The stories holding an entry with this link, and the filtered items with it (the link is
    canonicalised as entries' links are, so a copied address with utm_ parameters is found)."""
    # Here, not at the top: explaining a story by its id needs none of the ingest's normalising.
    from aggregator.ingest.links import canonical_url

    wanted = canonical_url(link) or link
    with read_sessions(engine)() as session:
        stories = session.scalars(
            select(Entry.story_id).where(Entry.link == wanted).distinct().order_by(Entry.story_id)
        ).all()
        filtered = session.scalars(
            select(FilteredEntry).where(FilteredEntry.link == wanted).order_by(FilteredEntry.id)
        ).all()
        return list(stories), [_filtered_reason(row) for row in filtered]


def _filtered_reason(row: FilteredEntry) -> FilteredReason:
    return FilteredReason(
        source=row.source_id,
        guid=row.guid,
        link=row.link,
        title=row.title,
        published=iso_utc(row.published),
        rule=row.rule,
        detail=row.detail,
        first_seen=iso_utc(row.first_seen_at),
        seen=iso_utc(row.seen_at),
    )
