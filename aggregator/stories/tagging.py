"""Tags for a story and the score that relates two stories: pure functions, no I/O.

Tags come from the feed's own categories, the source's tags and section from feeds.yaml, and the
text: named entities (runs of capitalised words, the way news names people, places and
organisations) and key phrases of headline and lede. Everything is normalised into one slug per
thing.
"""

from __future__ import annotations

import heapq
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from importlib import resources
from itertools import pairwise
from typing import NamedTuple

from aggregator.types import TagRules

MIN_TAGS = 3
MAX_TAGS = 10
# Words kept per story for text similarity (its most frequent content words).
TERMS_PER_STORY = 40
RELATED_COUNT = 5

WORD = re.compile(r"[^\W\d_][\w'’-]*", re.UNICODE)
SENTENCE_END = re.compile(r"[.!?]['\"”’)]?\s+")
# "LONDON (Reuters) -", "WASHINGTON, Nov 24 (AP) —": the dateline that opens wire copy.
DATELINE = re.compile(
    r"^\s*[A-Z][A-Z .,'’-]{2,40}(?:,\s*\w+\.?\s*\d{1,2})?\s*(?:\([^)]{1,40}\))?\s*[-—–]+\s*"
)
# Words that join the parts of one name: "Bank of England", "Osama bin Laden".
NAME_JOINERS = {"of", "de", "du", "da", "del", "der", "van", "von", "bin", "al", "la", "le"}
# Punctuation ends a name: "Securities and Exchange Commission (SEC)" is not one name with SEC.
PHRASE_BREAK = re.compile(r"[,;:()\[\]\"“”‘/|]|\s[-—–]\s")
TITLES = {"mr", "mrs", "ms", "dr", "sir", "dame", "president", "prime", "minister", "chancellor",
          "secretary", "senator", "sen", "gov", "governor", "pope", "mayor", "professor",
          "prof"}  # fmt: skip
# Never tags: agencies, boilerplate of feeds and pages, calendar words.
BOILERPLATE = {
    "reuters", "associated press", "ap", "afp", "agence france-presse", "agence france presse",
    "dpa", "bbc", "bbc news", "cnn", "upi", "xinhua", "tass", "efe", "ansa", "kyodo", "pa",
    "pa media", "getty", "getty images", "image", "image source", "image caption", "copyright",
    "read more", "click here", "newsletter", "subscribe", "live", "live updates", "update",
    "video", "watch", "photo", "photos", "gallery", "share", "advertisement", "news", "breaking",
    "breaking news", "exclusive", "analysis", "opinion", "comment", "said", "says", "told",
    "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january",
    "february", "march", "april", "may", "june", "july", "august", "september", "october",
    "november", "december", "today", "yesterday", "tomorrow", "week", "year", "years", "time",
    "people", "world", "government", "uk", "us", "gmt", "bst", "utc", "est", "edt", "pst",
    "new",  # not a stop word, so that "New York" is a name, but alone never a topic
}  # fmt: skip


VERB_ENDINGS = ("ed", "ing", "ly")
CALENDAR = {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
            "january", "february", "march", "april", "june", "july", "august", "september",
            "october", "november", "december"}  # fmt: skip

# Key phrases come from the headline and lede: where a news story says what it is about.
LEDE_CHARS = 600
# A key phrase's score is how often the text says it, plus these for the headline and for coming
# early (the first of the lede's runs of content words get most of EARLY_RUNS' bonus of 1).
HEADLINE_BONUS = 2.0
EARLY_RUNS = 4
# Key phrases never span a clause: sentence ends, commas, brackets, quotes, dashes.
CLAUSE_BREAK = re.compile(r"[.,;:!?()\[\]\"“”‘/|]|\s[-—–]\s")


@lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """English function words (aggregator/data/stopwords_en.txt), with straight or curly '."""
    text = resources.files("aggregator").joinpath("data/stopwords_en.txt").read_text("utf-8")
    words = {line.strip() for line in text.splitlines() if line.strip()[:1] not in ("", "#")}
    return frozenset(words | {word.replace("'", "’") for word in words})


@lru_cache(maxsize=16384)
def tag_slug(label: str) -> str:
    """One slug per thing: case, accents, punctuation and spacing do not matter.

    Cached: drafting a story's tags slugs each label offered three times, and names recur."""
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    return "-".join(re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split())


def canonical_tag(label: str, rules: TagRules) -> str | None:
    """The label this one stands for after editors' aliases, or None if it is never a tag."""
    label = rules.aliases.get(tag_slug(label), label)
    slug = tag_slug(label)
    if not slug or slug in rules.ignore or slug.replace("-", " ") in BOILERPLATE:
        return None
    if slug.isdigit() or len(slug) < 2:
        return None
    return label


@dataclass(frozen=True)
class StoryText:
    """What tagging reads of a story."""

    title: str
    text: str
    categories: Sequence[str] = ()
    source_tags: Sequence[str] = ()
    section: str | None = None


def strip_dateline(text: str) -> str:
    return DATELINE.sub("", text, count=1)


def extract_entities(title: str, text: str) -> list[tuple[str, int]]:
    """Names in the text, scored by mentions; a headline mention adds one if the body names it.

    A run of capitalised words is a name unless its first word is a common word that only has a
    capital because it opens a sentence ("Officials", "Thousands of UK"); a single word that is the
    last word of a longer name in the same story ("Putin" beside "Vladimir Putin") counts for it.
    """
    body = strip_dateline(text)
    common = {word for word in WORD.findall(body) if word.islower()}
    counts: Counter[str] = Counter()
    openers: Counter[str] = Counter()  # one-word names seen only where a sentence starts
    for sentence in SENTENCE_END.split(body):
        for name, opens in _names_in(sentence, common):
            (openers if opens and " " not in name else counts)[name] += 1
    for name, count in openers.items():
        if name in counts or name in title:  # "Sudan" yes; "Tens of thousands" no
            counts[name] += count
    for name, _ in _names_in(title, common):
        if name in counts:  # headlines are often Title Case: trust only names the body uses
            counts[name] += 1
    merged: Counter[str] = Counter()
    longer = sorted(counts, key=lambda n: -len(n.split()))
    for name, count in counts.items():
        target = name
        if " " not in name:
            for candidate in longer:
                if " " in candidate and candidate.split()[-1] == name:
                    target = candidate
                    break
        merged[target] += count
    return sorted(merged.items(), key=lambda pair: (-pair[1], pair[0]))


def _names_in(sentence: str, common: set[str]) -> Iterable[tuple[str, bool]]:
    """(name, whether it opens the sentence) for each run of capitalised words."""
    opens = True
    for phrase in PHRASE_BREAK.split(sentence):
        yield from _capitalised_runs(phrase, opens, common)
        opens = False


def _capitalised_runs(
    phrase: str, opens_sentence: bool, common: set[str]
) -> Iterable[tuple[str, bool]]:
    if phrase.islower() or not phrase.strip():
        return  # no capital letter, no name: most of a story's clauses
    stops = stop_words()
    words = WORD.findall(phrase)
    run: list[str] = []
    first_index = 0
    for index, word in enumerate([*words, ""]):
        if not run and word[:1].islower():
            continue  # a lower-case word outside a name changes nothing
        clean = _bare(word)
        lowered = clean.lower()
        acronym = 2 <= len(clean) <= 5 and clean.isupper()
        capital = bool(clean) and (acronym or (clean[0].isupper() and not clean.isupper()))
        if capital and (acronym or lowered not in stops) and lowered not in CALENDAR:
            if not run:
                first_index = index
            run.append(clean)
            if not word.endswith(("'s", "’s")):  # a possessive ends the name
                continue
        elif (
            run
            and clean in NAME_JOINERS
            and words[index + 1 : index + 2] != [""]
            and (index + 1 < len(words) and words[index + 1][:1].isupper())
        ):
            run.append(clean)
            continue
        if run:
            at_start = opens_sentence and first_index == 0
            if at_start and run[0].lower() in common:
                run = run[1:]
            for name in _name_from_run(run):
                yield name, at_start
        run = []


def _name_from_run(run: list[str]) -> Iterable[str]:
    # "Russian President Vladimir Putin" -> "Vladimir Putin": the name starts after the title.
    titles = [i for i, word in enumerate(run[:-1]) if word.lower() in TITLES]
    if titles:
        run = run[titles[-1] + 1 :]
    while run and (run[0].lower() in TITLES or run[0] in NAME_JOINERS):
        run = run[1:]
    while run and run[-1] in NAME_JOINERS:
        run = run[:-1]
    if not run or len(run) > 5:
        return
    name = " ".join(run)
    if name.lower() not in BOILERPLATE:
        yield name


def extract_key_phrases(title: str, text: str, min_repeats: int = 2) -> list[tuple[str, float]]:
    """Lower-case topic phrases ("interest rates", "election") of headline and lede, best first,
    kept only if the body uses them again (single words once more than phrases).

    Candidates are runs of lower-case content words, scored by how often the text says them, with
    a bonus for the headline and for coming early. This replaced YAKE (5.5 ms a story, median): the
    check that the body repeats a phrase was already what made a phrase a topic.
    """
    runs = list(_content_runs(f"{title}. {text[:LEDE_CHARS]}"))
    words = _lower_words(text)
    said: Counter[tuple[str, ...]] = Counter(zip(words))  # each word as a 1-gram
    # Pairs are counted only where they may be a candidate's: counting every pair of the text
    # was a tenth of tagging a story.
    firsts = {word for run in runs for word in run[:-1]}
    said.update(pair for pair in pairwise(words) if pair[0] in firsts)
    in_title = set(_lower_words(title))
    scores: dict[str, float] = {}
    for position, run in enumerate(runs):
        early = EARLY_RUNS / (EARLY_RUNS + position)
        for gram in [(word,) for word in run] + list(pairwise(run)):
            phrase = " ".join(gram)
            repeats = min_repeats + (len(gram) == 1)
            if phrase in scores or phrase in BOILERPLATE or said[gram] < repeats:
                continue
            headline = HEADLINE_BONUS if in_title.issuperset(gram) else 0.0
            scores[phrase] = said[gram] + headline + early
    for first, second in [phrase.split() for phrase in scores if " " in phrase]:
        for word in (first, second):  # "prime" is said only in "prime minister": a fragment
            if said[(word,)] == said[(first, second)]:
                scores.pop(word, None)
    best = max(scores.values(), default=1.0)
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    return [(phrase, score / best) for phrase, score in ranked]


def _bare(word: str) -> str:
    """A word without surrounding quotes and hyphens or a possessive 's: "Blair's" -> "Blair"."""
    if word.isalnum():  # most words: nothing to take off (a WORD starts with a letter)
        return word
    return word.strip("'’-").removesuffix("'s").removesuffix("’s")


@lru_cache(maxsize=8)
def _lower_words(text: str) -> tuple[str, ...]:
    """The text's words, bare and in lower case. Cached for the few texts of the story being
    tagged: its key phrases (once or twice) and its terms read the same words."""
    return tuple(_bare_words(text.lower()))


def _bare_words(text: str) -> list[str]:
    """The text's words, bare; one of only letters and digits is bare already, and checking
    that in C spares most words a Python call."""
    return [word if word.isalnum() else _bare(word) for word in WORD.findall(text)]


def _content_runs(head: str) -> Iterable[list[str]]:
    """Runs of lower-case content words, split at stop words, verbs, names and punctuation."""
    stops = stop_words()
    for clause in CLAUSE_BREAK.split(head):
        run: list[str] = []
        for word in WORD.findall(clause):
            bare = _bare(word)
            if (
                bare == bare.lower()
                and len(bare) >= 3
                and bare not in stops
                and not bare.endswith(VERB_ENDINGS)
            ):
                run.append(bare)
                if bare == word:
                    continue  # "the bank's chief": a possessive ends the run after it
            if run:
                yield run
            run = []
        if run:
            yield run


def choose_tags(story: StoryText, rules: TagRules) -> list[str]:
    """Up to 10 labels, best first: editors' and feeds' own labels, then names, then topics; at
    least 3 when the text gives them, fewer for a headline-only story (README, "Tags")."""
    scored: dict[str, tuple[float, str]] = {}

    def offer(label: str, score: float) -> None:
        canonical = canonical_tag(label.strip(), rules)
        if canonical is None:
            return
        key = tag_slug(canonical).replace("-", "")  # "TimeWarner" and "Time Warner" are one
        best = scored.get(key)
        if best is None or score > best[0]:
            scored[key] = (score + (best[0] if best else 0) * 0.1, canonical)

    for label in story.source_tags:
        offer(label, 100.0)
    for label in story.categories:
        offer(label, 50.0)
    entities = extract_entities(story.title, story.text)
    for name, mentions in entities:
        if mentions >= 2 or len(name.split()) > 1:
            offer(name, 10.0 + mentions)
    if len(scored) < MAX_TAGS:  # phrases rank below names: only offered when there is room
        for phrase, weight in extract_key_phrases(story.title, story.text):
            offer(phrase, 5.0 + weight)
    if len(scored) < MIN_TAGS:  # short, summary-only copy: accept weaker evidence
        for name, mentions in entities:
            offer(name, 1.0 + mentions)
        for name in headline_names(story.title):
            offer(name, 1.0)
        if story.section:  # before phrases said once: where the story is filed is sure
            offer(story.section, 0.5)
        for phrase, weight in extract_key_phrases(story.title, story.text, min_repeats=0):
            if len(scored) >= MIN_TAGS:
                break
            if " " in phrase:  # lone words said once are too often verbs ("met", "spoke")
                offer(phrase, weight)
    elif story.section and story.section in story.source_tags:
        offer(story.section, 0.5)
    ranked = sorted(scored.values(), key=lambda pair: (-pair[0], pair[1]))
    return [label for _, label in ranked[:MAX_TAGS]]


# A headline's credit and label, never part of its names: "(AFP)", "(FT.com)"; "News: ".
HEADLINE_CREDIT = re.compile(r"\s*\([^)]{1,40}\)\s*$")
HEADLINE_LABEL = re.compile(r"^\s*\w+:\s+")


def headline_names(title: str) -> list[str]:
    """The names a headline in sentence case holds ("Super ant colony hits Australia": Australia;
    "IBM to hire more workers": IBM), for a story whose text is too short to confirm them. In a
    Title Case headline every word has a capital, so none is taken; nor is a short name that
    opens it, whose first capital is the sentence's, unless an acronym."""
    title = HEADLINE_LABEL.sub("", HEADLINE_CREDIT.sub("", title))
    words = [_bare(word) for word in WORD.findall(title)]
    content = [word for word in words[1:] if word.lower() not in stop_words()]
    capitalised = [word for word in content if word[:1].isupper()]
    if not content or len(capitalised) * 2 > len(content):
        return []
    names: list[str] = []
    for name, opens in _names_in(title, set()):
        first = name.split()[0]
        acronym = 2 <= len(first) <= 5 and first.isupper()
        parts = [word for word in name.split() if word not in NAME_JOINERS]
        if opens and first == words[0] and not acronym and len(parts) < 3:
            continue  # "Restive Maldives", "Cox Communications": which word is the name?
        names.append(name)
    return names


@dataclass(frozen=True)
class TagDraft:
    """A story's tags (best first) and terms, worked out from its text alone."""

    labels: tuple[str, ...]
    terms: tuple[str, ...]


def draft_tags(story: StoryText, rules: TagRules) -> TagDraft:
    """Tags and terms together: what storing a story needs from tagging, as one pure call."""
    return TagDraft(tuple(choose_tags(story, rules)), tuple(story_terms(story.title, story.text)))


@lru_cache(maxsize=1)
def _not_terms() -> frozenset[str]:
    return stop_words() | BOILERPLATE


def story_terms(title: str, text: str, limit: int = TERMS_PER_STORY) -> list[str]:
    """The story's most frequent content words (headline words count thrice), for similarity."""
    unwanted = _not_terms()
    counts = Counter(_lower_words(strip_dateline(text)))
    for word in _lower_words(title):
        counts[word] += 3
    for word in [word for word in counts if len(word) < 3 or word in unwanted]:
        del counts[word]
    return [word for word, _ in sorted(counts.items(), key=lambda p: (-p[1], p[0]))[:limit]]


class RelatedCandidate(NamedTuple):
    """A story that may be related (a tuple: a story weighs a hundred of them each time)."""

    story_id: int
    tag_ids: frozenset[int]
    terms: frozenset[str]
    published_at: float  # seconds since the epoch: no datetime arithmetic per candidate


# Related posts' preference for nearby dates halves at this distance.
RECENCY_SECONDS = 30 * 24 * 60 * 60


def most_related(
    terms: frozenset[str],
    published: datetime,
    tag_idf: Mapping[int, float],
    candidates: Iterable[RelatedCandidate],
    count: int = RELATED_COUNT,
) -> list[tuple[float, int]]:
    """The `count` candidates most related to a story (its terms, date, and its tags' IDF), as
    (score, story id), best first; between equal scores the newer story (larger id). Candidates
    that share neither a tag nor a word score 0 and are left out.

    Score: IDF-weighted shared tags and shared words, with a mild preference for nearby dates.
    One loop over plain tuples: a story is scored against a hundred candidates each time.
    """
    own = frozenset(tag_idf)
    idf_of = tag_idf.__getitem__
    max_tag_weight = max(sum(tag_idf.values()), 1e-9)
    term_count = max(len(terms), 1)
    at = published.timestamp()
    sqrt, half_life = math.sqrt, RECENCY_SECONDS  # locals: this loop runs a million times
    scored: list[tuple[float, int]] = []
    for story_id, tag_ids, candidate_terms, candidate_at in candidates:
        shared = tag_ids & own
        overlap = len(terms & candidate_terms)
        if not shared and not overlap:
            continue
        tag_part = sum(map(idf_of, shared)) / max_tag_weight if shared else 0.0
        text_part = overlap / sqrt(term_count * (len(candidate_terms) or 1))
        recency = 1.0 / (1.0 + abs(at - candidate_at) / half_life)
        score = (0.4 * (tag_part if tag_part < 1.0 else 1.0) + 0.6 * text_part) * (
            0.85 + 0.15 * recency
        )
        scored.append((score, story_id))
    return heapq.nlargest(count, scored)


def inverse_document_frequency(document_count: int, stories_with_tag: int) -> float:
    return math.log(1 + max(document_count, 1) / max(stories_with_tag, 1))
