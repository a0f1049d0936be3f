"""Which story each arriving entry joins: a pure decision over plain values.

Storage reads what the decision needs beforehand (a source's stored entries by guid, the stored
entries each item may join, the review states of the stories they are in), calls `match_stored`
and `assign`, and then writes the `Assignment` it gets back. Nothing here touches the database,
so every rule can be tested with plain values (tests/stories/test_assign.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import NamedTuple

from aggregator.stories import dedupe, review
from aggregator.stories.dedupe import Fingerprint, Rule, Telling, Verdict
from aggregator.types import Item


@dataclass(frozen=True)
class StoredEntry:
    """A stored entry an item may join: what joining it needs."""

    id: int
    story_id: int
    source_id: str
    published: datetime


@dataclass(frozen=True)
class NearCandidate:
    """A stored entry sharing band keys with an item within the dedup window: to be judged."""

    telling: Telling
    published: datetime

    @property
    def entry(self) -> StoredEntry:
        t = self.telling
        return StoredEntry(t.entry_id, t.story_id, t.source_id, self.published)


@dataclass(frozen=True)
class Candidates:
    """What the database holds that one arriving item may join, read before deciding.

    `by_link` is the oldest entry of another source with the item's link (never a link several
    of the source's items share), `by_text` the oldest with its text hash; `near` are read only
    when neither is found and the item has a fingerprint.
    """

    by_link: StoredEntry | None = None
    by_text: StoredEntry | None = None
    near: tuple[NearCandidate, ...] = ()


@dataclass(frozen=True)
class Earlier:
    """An entry this batch adds, by its position in `Assignment.new_entries`."""

    position: int
    story: StoryRef
    source_id: str
    published: datetime


@dataclass(frozen=True)
class Match:
    """The stored or just-placed telling an item was matched with, and why."""

    entry: StoredEntry | Earlier
    verdict: Verdict
    # Whether the story joined holds the item's very text (its words, as the text hash reads
    # them) already: then that text's band keys are in the index.
    repeats_text: bool = False


@dataclass(frozen=True)
class ExistingStory:
    """A story already stored, by its id."""

    id: int


@dataclass(frozen=True)
class NewStory:
    """A story this batch founds (the `number`th); its headline and text come from its best
    entry once the entries have ids (storage)."""

    number: int
    section: str
    language: str | None
    published: datetime
    updated: datetime
    review: str | None


StoryRef = ExistingStory | NewStory


@dataclass(frozen=True)
class KnownEntry:
    """A stored entry of this source with an arriving item's guid: what an edit needs of it."""

    id: int
    story_id: int
    content_hash: str | None
    text_hash: str | None
    has_categories: bool
    published: datetime


@dataclass(frozen=True)
class BatchSource:
    """What the decision reads of the source whose items these are."""

    id: str
    publish: str
    section: str
    language: str | None
    has_tags: bool


@dataclass(frozen=True)
class NewEntry:
    """An item that becomes an entry, the story it joins or founds, and why."""

    item: Item
    # The fingerprint to index: None for a word-for-word repeat, whose bands are indexed already.
    print_: Fingerprint | None
    story: StoryRef
    rule: Rule
    score: float | None = None
    matched: StoredEntry | Earlier | None = None


@dataclass(frozen=True)
class Update:
    """An edit of a stored entry, written in place; `item` keeps a first-seen date when undated."""

    entry_id: int
    story_id: int
    item: Item
    # The entry's former text, when the edit changed it: another entry may now speak for it.
    retold: str | None = None


@dataclass(frozen=True)
class Assignment:
    new_entries: tuple[NewEntry, ...] = ()
    new_stories: tuple[NewStory, ...] = ()
    updates: tuple[Update, ...] = ()
    unchanged: int = 0
    # Stories that gained or changed an entry, in the order first touched: the ones to announce.
    touched: tuple[StoryRef, ...] = ()
    # Of those, the ones a new or edited entry may bring labels to (categories, source tags).
    labelled: frozenset[StoryRef] = frozenset()
    # Stored stories joined, with their review state after the joins.
    reviews: Mapping[int, str | None] = field(default_factory=dict)


def exact_match(candidates: Candidates) -> Match | None:
    """Same link (the older one wins when both are found) or same text, word for word."""
    link, text = candidates.by_link, candidates.by_text
    if link is not None and (text is None or link.id <= text.id):
        same_text = text is not None and text.story_id == link.story_id
        return Match(link, Verdict(Rule.LINK, 1.0), same_text)
    if text is not None:
        return Match(text, Verdict(Rule.TEXT, 1.0), True)
    return None


def match_stored(
    items: Iterable[Item],
    prints: Mapping[str, Fingerprint | None],
    candidates: Mapping[str, Candidates],
    source_id: str | None = None,
) -> dict[str, Match | None]:
    """Each item's stored telling of the same news: its exact match, else the best confirmed
    near-duplicate among its candidates."""
    matches: dict[str, Match | None] = {}
    for item in items:
        found = candidates.get(item.guid, Candidates())
        match = exact_match(found)
        print_ = prints.get(item.guid)
        if match is None and print_ is not None and found.near:
            near = {c.telling.entry_id: c for c in found.near}
            best = dedupe.best_verdict(item, print_, [c.telling for c in found.near], source_id)
            if best is not None:
                match = Match(near[best[0].entry_id].entry, best[1])
        matches[item.guid] = match
    return matches


class _Placed(NamedTuple):
    entry: NewEntry
    earlier: Earlier


class _BatchIndex:
    """This batch's new entries, matched in memory: a feed may carry a story and its re-send."""

    def __init__(self, window: timedelta, source_id: str, now: datetime) -> None:
        self.window = window
        self.source_id = source_id  # a batch is one source's items
        self.now = now  # an item published `now` is undated: all of the batch is seen now
        self.placed: list[_Placed] = []
        # Link, text hash and band keys -> positions in `placed`.
        self.by_key: defaultdict[object, list[int]] = defaultdict(list)

    def add(self, entry: NewEntry) -> None:
        position = len(self.placed)
        earlier = Earlier(position, entry.story, self.source_id, entry.item.published)
        self.placed.append(_Placed(entry, earlier))
        self.by_key[("text", entry.item.text_hash)].append(position)
        for band in entry.print_.bands if entry.print_ else ():
            self.by_key[band].append(position)

    def match(self, item: Item, print_: Fingerprint | None) -> Match | None:
        # One batch is one source's: a shared link does not make its items one.
        positions = self.by_key.get(("text", item.text_hash)) if item.text_hash else None
        if positions:
            return Match(self.placed[positions[0]].earlier, Verdict(Rule.TEXT, 1.0), True)
        if print_ is None:
            return None
        near = {p for band in print_.bands for p in self.by_key.get(band, ())}
        tellings = []
        for position in sorted(near):
            other = self.placed[position].entry
            if other.print_ is None:
                continue
            undated = self.now in (item.published, other.item.published)
            if not undated and abs(other.item.published - item.published) > self.window:
                continue
            tellings.append(
                Telling(
                    position, 0, self.source_id, other.item.title, other.print_.shingles,
                    other.item.lede, other.item.link,
                )
            )  # fmt: skip
        best = dedupe.best_verdict(item, print_, tellings, self.source_id)
        if best is None:
            return None
        return Match(self.placed[best[0].entry_id].earlier, best[1])


def _explain(
    source_id: str, item: Item, match: Match | None
) -> tuple[Rule, float | None, StoredEntry | Earlier | None]:
    """Why a new entry is in its story (rule, score, the entry it matched); a newer telling
    from the same source is an update."""
    if match is None:
        return Rule.NEW, None, None
    rule = match.verdict.rule
    if match.entry.source_id == source_id and item.published >= match.entry.published:
        rule = Rule.UPDATE
    return rule, match.verdict.score, match.entry


def _story_of(entry: StoredEntry | Earlier) -> StoryRef:
    return ExistingStory(entry.story_id) if isinstance(entry, StoredEntry) else entry.story


def assign(
    items: Sequence[Item],
    source: BatchSource,
    now: datetime,
    *,
    known: Mapping[str, KnownEntry],
    prints: Mapping[str, Fingerprint | None],
    matches: Mapping[str, Match | None],
    reviews: Mapping[int, str | None],
    window: timedelta,
) -> Assignment:
    """Decide, item by item in the batch's order, which entry each edits, or which story it
    joins or founds.

    `known` are the source's stored entries by guid, `prints` the new items' fingerprints,
    `matches` their stored matches (match_stored), `reviews` the review states of the stored
    stories those are in. A guid twice in a batch is stored once, as its first telling; an
    undated item (published `now`) keeps an entry's first-seen date.
    """
    placed = _BatchIndex(window, source.id, now)
    current = dict(known)  # an edit changes what the next telling of its guid is compared with
    added: dict[str, NewEntry] = {}
    stories: list[NewStory] = []
    states = dict(reviews)
    joined: dict[int, str | None] = {}
    updates: list[Update] = []
    touched: dict[StoryRef, None] = {}
    labelled: set[StoryRef] = set()
    unchanged = 0
    for item in items:
        entry = current.get(item.guid)
        story: StoryRef
        if entry is None and item.guid not in added:
            print_ = prints.get(item.guid)
            match = matches.get(item.guid) or placed.match(item, print_)
            if match is None:
                story = NewStory(
                    number=len(stories),
                    section=item.section or source.section,
                    language=item.language or source.language,
                    published=item.published,
                    updated=item.updated,
                    review=review.state_for_new_story(source.publish),
                )
                stories.append(story)
            else:
                story = _story_of(match.entry)
                if isinstance(story, ExistingStory):
                    states[story.id] = joined[story.id] = review.state_after_join(
                        states[story.id], source.publish
                    )
                if match.repeats_text:
                    # Its text, word for word, is in the index already: the same band keys
                    # again would only find the same story.
                    print_ = None
            new = NewEntry(item, print_, story, *_explain(source.id, item, match))
            added[item.guid] = new
            placed.add(new)
        elif entry is not None and entry.content_hash != item.content_hash:
            retold = entry.text_hash if entry.text_hash != item.text_hash else None
            story = ExistingStory(entry.story_id)
            if entry.has_categories:
                labelled.add(story)
            if item.published == now:
                # Undated: its published time is when it was first seen, and stays so.
                item = replace(item, published=entry.published)
            updates.append(Update(entry.id, entry.story_id, item, retold or None))
            current[item.guid] = replace(
                entry,
                content_hash=item.content_hash,
                text_hash=item.text_hash,
                has_categories=bool(item.categories),
                published=item.published,
            )
        else:
            unchanged += 1
            continue
        touched[story] = None
        if item.categories or source.has_tags:
            labelled.add(story)
    return Assignment(
        new_entries=tuple(p.entry for p in placed.placed),
        new_stories=tuple(stories),
        updates=tuple(updates),
        unchanged=unchanged,
        touched=tuple(touched),
        labelled=frozenset(labelled),
        reviews=joined,
    )


class Voice(NamedTuple):
    """What choosing a story's best entry, and taking its text from it, reads of an entry."""

    id: int
    source_id: str
    published: datetime
    has_full_text: bool
    title: str
    lede: str
    body_html: str
    image_url: str | None
    image_credit: str | None
    language: str | None


@dataclass(frozen=True)
class StoryText:
    """What a story takes from its best entry: its headline, text, image and first date."""

    best_entry_id: int
    title: str
    lede: str
    body_html: str
    image_url: str | None
    image_credit: str | None
    language: str | None
    published: datetime
    # A new headline or text from the source that told it before (an edit, a re-send), not
    # another source's copy taking over or joining: the story's own telling changed.
    told_again: bool


def story_text(voices: Sequence[tuple[Voice, int]], previous_best: int | None) -> StoryText:
    """The story's text from its best entry among `voices` (each with its source's priority);
    `previous_best` is the entry that spoke for it before, if any."""
    entries = {voice.id: voice for voice, _ in voices}
    previous = entries.get(previous_best) if previous_best is not None else None
    # Each source's latest telling is its current one; earlier ones were re-sent since.
    latest: dict[str, int] = {}
    for entry in sorted(entries.values(), key=lambda e: (e.published, e.id)):
        latest[entry.source_id] = entry.id
    best = dedupe.best_entry(
        [
            dedupe.Candidate(
                entry.id,
                priority,
                entry.has_full_text,
                entry.published,
                superseded=latest[entry.source_id] != entry.id,
            )
            for entry, priority in voices
        ]
    )
    chosen = entries[best.entry_id]
    return StoryText(
        best_entry_id=chosen.id,
        title=dedupe.wire_headline(chosen.title),
        lede=chosen.lede,
        body_html=chosen.body_html,
        image_url=chosen.image_url,
        image_credit=chosen.image_credit,
        language=chosen.language,
        published=min(entry.published for entry in entries.values()),
        told_again=previous is not None and previous.source_id == chosen.source_id,
    )
