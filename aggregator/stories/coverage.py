"""Coverage groups: the stories that report one event, in their own words, grouped online.

Stories (near-duplicate clusters, dedupe.py) stay as they are; a coverage group gathers the
stories of one event as they arrive. Pure and in memory: `CoverageIndex.assign` takes a story's
text, agency and time and returns a typed `Assignment` (an existing group or a new one); the
caller stores it. Candidates come from an inverted index of each story's strongest terms and
names within a time window; the score is a title-weighted TF-IDF cosine against the group's
centroid plus the share of the story's names the group has, times a factor that falls with the
distance from the group's mean time. Precision first: a story joins only above the threshold
and sharing two terms or a name, and `merge_pass` joins two groups only when their centroids
score above a higher threshold. Cost stays flat as the archive grows:
posting lists and candidate lists are bounded, and groups quiet for longer than the window are
forgotten.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import pairwise

from aggregator.ingest.text import WORD, fold
from aggregator.stories.tagging import BOILERPLATE, extract_entities, stop_words, strip_dateline

# A headline says what the event is; its words count this many times a lede word.
TITLE_WEIGHT = 3
# Only the lede of a story's text is read: where every report says what happened.
LEDE_CHARS = 600
# A number with what it counts ("$1.8B", "14 bn euro", "37,000 vehicles"): a name of the event.
NUMBER_WITH_UNIT = re.compile(
    r"[$£€¥]\s?\d+(?:[.,]\d+)*(?:\s?(?:bn|bln|mln|[mbk]|billion|million|trillion)\b)?"
    r"|\b\d+(?:[.,]\d+)*\s?(?:%|[^\W\d_]{2,}\b)",
    re.IGNORECASE,
)
# A centroid's cached length is worked out again when the story count has grown by this factor.
NORM_DRIFT = 1.05
ACRONYM = re.compile(r"\b[A-Z][A-Z0-9&]{1,5}\b")


@dataclass(frozen=True)
class CoverageSettings:
    """The algorithm's knobs; the defaults are the ones bench/coverage_eval.py chose."""

    # A story joins the best group scoring at least this; below it, it opens a group.
    threshold: float = 0.04
    # Two groups are merged by `merge_pass` when their centroids score at least this.
    merge_threshold: float = 0.12
    # Groups with no new story for this long are forgotten (seconds).
    window: float = 3 * 24 * 3600
    # A story this far (seconds) from the mean time of a group's stories scores the middle of
    # 1 and time_floor times its text score: an event's reports come within hours of each other.
    time_half_life: float = 6 * 3600
    time_floor: float = 0.1
    # A story shares at least this many terms, or a name, with a group it joins.
    min_shared_terms: int = 2
    # Weights of the TF-IDF cosine and of the name overlap in the score.
    cosine_weight: float = 0.8
    names_weight: float = 0.2
    # Strongest keys of a story looked up in the index and posted to it, groups read per key,
    # groups scored.
    lookup_keys: int = 10
    posted_keys: int = 32
    posting_length: int = 64
    candidates: int = 24
    # Terms kept in a group's centroid (its most frequent): bounds the cost of one score.
    centroid_terms: int = 120


@dataclass(frozen=True)
class CoverageStory:
    """What coverage reads of a story: its headline, lede or text, agency and time."""

    story_id: int
    headline: str
    text: str
    agency: str
    published: datetime


@dataclass(frozen=True)
class Assignment:
    """Which group a story joined (its own id when it opened one), and why."""

    story_id: int
    group_id: int
    opened: bool
    score: float
    shared_terms: tuple[str, ...] = ()
    shared_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupMerge:
    """Group `absorbed` joined group `kept` (the older) in a merge pass."""

    kept: int
    absorbed: int
    score: float


@dataclass(frozen=True)
class StoryKeys:
    """A story's weighted terms and its names (capitalised runs, acronyms, numbers with units,
    and adjacent pairs of headline words, which name things even in Title Case headlines)."""

    terms: Mapping[str, float]
    names: frozenset[str]


@dataclass
class CoverageGroup:
    """One event's running state: members, term and name counts, first and latest time."""

    group_id: int
    first: float
    last: float
    time_sum: float = 0.0
    members: list[int] = field(default_factory=list)
    terms: Counter[str] = field(default_factory=Counter)
    names: Counter[str] = field(default_factory=Counter)
    agencies: set[str] = field(default_factory=set)
    # The centroid's squared TF-IDF length, its names' IDF sum, and the story count they were
    # worked out at (0: to work out again).
    norm_squared: float = 0.0
    names_weight: float = 0.0
    lengths_at: int = 0


@lru_cache(maxsize=65536)
def _term(word: str) -> str | None:
    """A folded word as a similarity term, or None for stop words and boilerplate; a plural's
    last s is dropped ("stocks" and "stock" are one term)."""
    if len(word) < 2 or word in stop_words() or word in BOILERPLATE:
        return None
    if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _terms_of(text: str) -> list[str]:
    return [term for word in WORD.findall(fold(text)) if (term := _term(word)) is not None]


def story_keys(story: CoverageStory) -> StoryKeys:
    """The terms (headline words TITLE_WEIGHT times) and names coverage compares stories on."""
    lede = strip_dateline(story.text)[:LEDE_CHARS]
    headline_terms = _terms_of(story.headline)
    terms: Counter[str] = Counter(_terms_of(lede))
    for term in headline_terms:
        terms[term] += TITLE_WEIGHT
    names = {" ".join(pair) for pair in pairwise(headline_terms) if pair[0] != pair[1]}
    for text in (story.headline, lede):
        names.update(
            " ".join(fold(found).replace(",", "").split())
            for found in NUMBER_WITH_UNIT.findall(text)
        )
        names.update(
            folded for found in ACRONYM.findall(text) if _term(folded := found.lower()) is not None
        )
    if lede:
        names.update(fold(name) for name, _ in extract_entities(story.headline, lede))
    return StoryKeys(dict(terms), frozenset(name for name in names if name))


class CoverageIndex:
    """The groups of the current window, the inverted index over them, and document frequencies.

    Deterministic: the same stories in the same order give the same groups."""

    def __init__(self, settings: CoverageSettings | None = None) -> None:
        self.settings = settings or CoverageSettings()
        self.groups: dict[int, CoverageGroup] = {}
        self._postings: dict[str, list[int]] = {}
        self._document_frequency: Counter[str] = Counter()
        self._documents = 0
        self._idf: dict[str, float] = {}
        self._changed: set[int] = set()
        self._now = -math.inf

    def idf(self, key: str) -> float:
        """Smoothed inverse document frequency over every story seen so far (remembered until
        the next story: one assignment or merge pass asks for the same keys many times)."""
        value = self._idf.get(key)
        if value is None:
            frequency = self._document_frequency[key]
            value = self._idf[key] = math.log((1 + self._documents) / (1 + frequency)) + 1.0
        return value

    def assign(self, story: CoverageStory) -> Assignment:
        """Put one story in the best group above the threshold, or open a group for it."""
        at = story.published.timestamp()
        keys = story_keys(story)
        self._count_document(keys)
        self._now = max(self._now, at)
        best: tuple[float, int] | None = None
        for group_id in self._candidates(keys, at):
            score = self._score(keys, self.groups[group_id], at)
            if score >= self.settings.threshold and (best is None or score > best[0]):
                best = (score, group_id)
        if best is None:
            group = CoverageGroup(story.story_id, first=at, last=at)
            self.groups[group.group_id] = group
            self._add(group, story, keys, at)
            return Assignment(story.story_id, group.group_id, opened=True, score=0.0)
        score, group_id = best
        group = self.groups[group_id]
        shared_terms, shared_names = self._shared(keys, group)
        self._add(group, story, keys, at)
        return Assignment(story.story_id, group_id, False, score, shared_terms, shared_names)

    def merge_pass(self) -> list[GroupMerge]:
        """Merge the groups changed since the last pass into an alike older group, and forget
        groups that fell out of the window. Returns the merges, oldest group kept."""
        self._forget_before(self._now - self.settings.window)
        merges: list[GroupMerge] = []
        for group_id in sorted(self._changed):
            group = self.groups.get(group_id)
            if group is None:
                continue
            keys = self._group_keys(group)
            best: tuple[float, int] | None = None
            for other_id in self._candidates(keys, group.last):
                if other_id == group_id:
                    continue
                score = self._group_score(group, self.groups[other_id])
                if score >= self.settings.merge_threshold and (best is None or score > best[0]):
                    best = (score, other_id)
            if best is not None:
                kept, absorbed = sorted((group, self.groups[best[1]]), key=_age)
                self._absorb(kept, absorbed)
                merges.append(GroupMerge(kept.group_id, absorbed.group_id, best[0]))
        self._changed.clear()
        return merges

    def _count_document(self, keys: StoryKeys) -> None:
        self._documents += 1
        self._idf.clear()
        self._document_frequency.update(keys.terms.keys())
        self._document_frequency.update(keys.names)

    def _strongest(self, keys: StoryKeys, count: int, seen_before: bool = False) -> list[str]:
        """The story's `count` keys of most weight times IDF; with `seen_before`, only keys
        another story has (a key only this story has finds nothing in the index)."""
        frequency = self._document_frequency
        weighted = [
            (weight * self.idf(key), key)
            for key, weight in [*keys.terms.items(), *((n, TITLE_WEIGHT) for n in keys.names)]
            if not seen_before or frequency[key] > 1
        ]
        return [key for _, key in heapq.nlargest(count, weighted)]

    def _candidates(self, keys: StoryKeys, at: float) -> list[int]:
        """The groups sharing most of the story's strongest keys, most recent posting first."""
        oldest = at - self.settings.window
        hits: Counter[int] = Counter()
        for key in self._strongest(keys, self.settings.lookup_keys, seen_before=True):
            for group_id in self._postings.get(key, ())[-self.settings.posting_length :]:
                group = self.groups.get(group_id)
                if group is not None and group.last >= oldest:
                    hits[group_id] += 1
        ranked = sorted(hits.items(), key=lambda pair: (-pair[1], -pair[0]))
        return [group_id for group_id, _ in ranked[: self.settings.candidates]]

    def _norm(self, weights: Mapping[str, float]) -> float:
        idf = self.idf
        return math.sqrt(sum((weight * idf(term)) ** 2 for term, weight in weights.items()))

    def _lengths(self, group: CoverageGroup) -> tuple[float, float]:
        """The centroid's TF-IDF length and its names' IDF sum, kept up to date as stories join
        and worked out again when the story count has grown by NORM_DRIFT (the IDF drifts):
        otherwise most of the cost of a score."""
        if not group.lengths_at or self._documents > group.lengths_at * NORM_DRIFT:
            idf = self.idf
            group.norm_squared = sum((w * idf(t)) ** 2 for t, w in group.terms.items())
            group.names_weight = sum(map(idf, group.names))
            group.lengths_at = self._documents
        return math.sqrt(group.norm_squared), group.names_weight

    def _cosine(self, terms: Mapping[str, float], norm: float, group: CoverageGroup) -> float:
        idf, centroid = self.idf, group.terms
        dot = sum(
            weight * centroid[t] * idf(t) ** 2 for t, weight in terms.items() if t in centroid
        )
        return dot / (norm * self._lengths(group)[0]) if dot else 0.0

    def _shared_names(self, names: Collection[str], other: Collection[str]) -> float:
        smaller, larger = (names, other) if len(names) <= len(other) else (other, names)
        return sum(self.idf(name) for name in smaller if name in larger)

    def _time_factor(self, at: float, group: CoverageGroup) -> float:
        distance = abs(at - group.time_sum / len(group.members))
        floor = self.settings.time_floor
        return floor + (1.0 - floor) * math.pow(0.5, distance / self.settings.time_half_life)

    def _score(self, keys: StoryKeys, group: CoverageGroup, at: float) -> float:
        settings = self.settings
        shared = sum(1 for term in keys.terms if term in group.terms)
        if shared < settings.min_shared_terms and not any(n in group.names for n in keys.names):
            return 0.0
        text = settings.cosine_weight * self._cosine(keys.terms, self._norm(keys.terms), group)
        total = sum(map(self.idf, keys.names))
        share = self._shared_names(keys.names, group.names) / total if total else 0.0
        names = settings.names_weight * share
        return (text + names) * self._time_factor(at, group)

    def _group_keys(self, group: CoverageGroup) -> StoryKeys:
        return StoryKeys(group.terms, frozenset(group.names))

    def _group_score(self, group: CoverageGroup, other: CoverageGroup) -> float:
        """Centroid against centroid; names counted both ways and the lower share taken."""
        settings = self.settings
        norm, names_weight = self._lengths(group)
        text = settings.cosine_weight * self._cosine(group.terms, norm, other)
        # The share of the larger side's names weight: the lower of the two shares.
        larger = max(names_weight, self._lengths(other)[1])
        names = self._shared_names(group.names, other.names) / larger if larger else 0.0
        at = group.time_sum / len(group.members)
        return (text + settings.names_weight * names) * self._time_factor(at, other)

    def _shared(
        self, keys: StoryKeys, group: CoverageGroup
    ) -> tuple[tuple[str, ...], tuple[str, ...]]:
        terms = sorted((t for t in keys.terms if t in group.terms), key=lambda t: (-self.idf(t), t))
        names = sorted(n for n in keys.names if n in group.names)
        return tuple(terms[:8]), tuple(names[:8])

    def _add(self, group: CoverageGroup, story: CoverageStory, keys: StoryKeys, at: float) -> None:
        group.members.append(story.story_id)
        group.time_sum += at
        group.first, group.last = min(group.first, at), max(group.last, at)
        group.agencies.add(story.agency)
        if group.lengths_at:  # keep the lengths exact for the current IDF
            idf = self.idf
            for term, weight in keys.terms.items():
                before = group.terms[term]
                group.norm_squared += ((before + weight) ** 2 - before**2) * idf(term) ** 2
            group.names_weight += sum(idf(name) for name in keys.names if name not in group.names)
        group.terms.update(keys.terms)
        group.names.update(keys.names)
        self._trim(group)
        for key in self._strongest(keys, self.settings.posted_keys):
            self._post(key, group.group_id)
        self._changed.add(group.group_id)

    def _trim(self, group: CoverageGroup) -> None:
        limit = self.settings.centroid_terms
        if len(group.terms) > 2 * limit:
            group.terms = Counter(dict(group.terms.most_common(limit)))
            group.lengths_at = 0
        if len(group.names) > 2 * limit:
            group.names = Counter(dict(group.names.most_common(limit)))
            group.lengths_at = 0

    def _post(self, key: str, group_id: int) -> None:
        """The key's groups, each once, the latest to take the key last."""
        posting = self._postings.setdefault(key, [])
        if posting and posting[-1] == group_id:
            return
        if group_id in posting:
            posting.remove(group_id)
        posting.append(group_id)
        if len(posting) > 2 * self.settings.posting_length:  # keep only the most recent
            del posting[: -self.settings.posting_length]

    def _absorb(self, kept: CoverageGroup, absorbed: CoverageGroup) -> None:
        kept.members.extend(absorbed.members)
        kept.time_sum += absorbed.time_sum
        kept.first, kept.last = min(kept.first, absorbed.first), max(kept.last, absorbed.last)
        kept.agencies |= absorbed.agencies
        kept.terms.update(absorbed.terms)
        kept.names.update(absorbed.names)
        kept.lengths_at = 0
        self._trim(kept)
        for key in self._strongest(self._group_keys(kept), self.settings.posted_keys):
            self._post(key, kept.group_id)
        del self.groups[absorbed.group_id]
        self._changed.discard(absorbed.group_id)

    def _forget_before(self, oldest: float) -> None:
        for group_id in [g.group_id for g in self.groups.values() if g.last < oldest]:
            del self.groups[group_id]
        for key in [key for key, ids in self._postings.items() if ids[-1] not in self.groups]:
            live = [group_id for group_id in self._postings[key] if group_id in self.groups]
            if live:
                self._postings[key] = live
            else:
                del self._postings[key]


def _age(group: CoverageGroup) -> tuple[float, int]:
    return (group.first, group.group_id)
