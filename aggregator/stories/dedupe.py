"""Which Story an Item belongs to, why, and which of a story's entries speaks for it.

Pure functions of their inputs; the store runs the lookups. An item joins a story on the same
canonical link, the same text, or near-duplicate text. Near-duplicates are found with MinHash
band keys (LSH) kept in the database, so every worker shares one index, and are then confirmed
on the real word shingles: Jaccard for two tellings of the same length, containment for a
summary beside its full text. When in doubt, the item starts a story of its own.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
import zlib
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property

import numpy as np

from aggregator.ingest.text import WORD, fold
from aggregator.types import Item

# Word 3-grams: long enough that two different articles share almost none by chance, short enough
# that cut or reordered paragraphs keep most of them.
SHINGLE_WORDS = 3
# The openings of a telling (headline + its first words) are indexed besides the whole, so a
# summary-only item, or a copy cut short, finds the full text whose opening it repeats: MinHash
# estimates Jaccard, and a short text is only similar to a long one's opening of like length.
OPENING_WORDS = (25, 50, 100)
# MinHash permutations, split into bands of rows: two texts become candidates when one band is
# equal. 20 bands of 3 rows: P(candidate) is 0.93 at Jaccard 0.5 and 0.27 at 0.2.
BANDS = 20
ROWS = 3
# Below this many shingles a text says too little to be matched on anything but link or hash.
MIN_SHINGLES = 12
# Confirmation thresholds on the exact shingle sets (precision first: bench/dedup_eval.py).
NEAR_JACCARD = 0.5
CONTAINED = 0.75
SUPPORTED_JACCARD = 0.3
SUPPORTING_HEADLINE = 0.5
# Candidates (by shared band keys) confirmed per item: the best few are enough.
CANDIDATES = 8
# Two texts from one template (a fire brigade's call-outs, a weather office's warnings) differ
# in a few numbers, dates or identifiers, and are as alike as a copy and its rewrite: when each
# has such a token the other lacks, they are one story only if this alike (a corrected typo).
TEMPLATE_JACCARD = 0.8
# Within one source, items are distinct unless their text says otherwise: a near-duplicate
# needs this Jaccard there (a re-send repeats its text) and this like a headline (a shop's or
# a video channel's items share their boilerplate, not their names), with no number, date or
# link identifier of its own, however alike; a headline's support alone is not enough.
SAME_SOURCE_JACCARD = 0.7
SAME_SOURCE_HEADLINE = 0.7

# Wire re-send markers at the start of a headline: "UPDATE 2-", "REFILE-", "CORRECTED-", "RPT-".
RESEND_MARKER = re.compile(
    r"^\s*(?:(?:UPDATE|WRAPUP|REFILE|CORRECTED|CORRECTION|RPT|REPEAT|RECASTS?|ADVISORY)"
    r"(?:\s*\d+)?\s*[-:–—]\s*)+",
    re.IGNORECASE,
)
# "LONDON (Reuters) - ", "PARIS, Nov 24 (AFP) -- ": an agency's dateline, not the story's words.
DATELINE = re.compile(r"^[A-Z][A-Za-z0-9 .,'/-]{1,60}?\([^)]{1,40}\)\s*[-–—:]+\s*")


class Rule(enum.StrEnum):
    """Why an entry is in its story (stored with the entry, shown by `caulbart explain`)."""

    NEW = "new"  # it started the story
    LINK = "link"  # same canonical link as an entry of the story
    TEXT = "text"  # same headline and text, word for word
    NEAR = "near"  # near-duplicate text (shingle Jaccard)
    CONTAINED = "contained"  # one telling contains the other (summary beside full text)
    HEADLINE = "headline"  # similar text backed by a similar headline
    UPDATE = "update"  # a newer version from the same source (an "UPDATE 2-" re-send)


@dataclass(frozen=True)
class Fingerprint:
    """What near-duplicate matching knows of a text: its shingles and their LSH band keys.

    The shingles are kept packed, as they are stored (sorted 32-bit hashes), and become a set
    only where a near-duplicate is judged: fingerprints are made in worker processes, and
    unpickling 20,000 sets of some 300 ints cost a first ingest's storing process more than a
    second, for sets most entries never need.
    """

    packed: bytes
    bands: tuple[int, ...]

    @classmethod
    def of(cls, shingles: Iterable[int], bands: Iterable[int]) -> Fingerprint:
        return cls(array("I", sorted(shingles)).tobytes(), tuple(bands))

    @cached_property
    def shingles(self) -> frozenset[int]:
        return shingles_from_bytes(self.packed)

    def __getstate__(self) -> dict[str, object]:
        return {"packed": self.packed, "bands": self.bands}  # never the set, once built


@dataclass(frozen=True)
class Telling:
    """A stored entry as a candidate: enough to confirm a match and to name the rule."""

    entry_id: int
    story_id: int
    source_id: str
    title: str
    shingles: frozenset[int]
    lede: str = ""
    link: str | None = None


@dataclass(frozen=True)
class Verdict:
    rule: Rule
    score: float


def words(text: str) -> list[str]:
    """Case-, accent- and punctuation-free words, without a leading agency dateline."""
    text = DATELINE.sub("", text.strip(), count=1)
    return WORD.findall(fold(text))


def _shingle_hashes(tokens: list[str]) -> list[int]:
    """32-bit hashes of the word 3-grams in text order (crc32: stable across processes, unlike
    hash()); a prefix of the list is the shingles of an opening."""
    # The shorter slices end the grams: a text's last words start no gram of their own.
    grams = zip(*(tokens[start:] for start in range(SHINGLE_WORDS)), strict=False)
    return [zlib.crc32(" ".join(gram).encode()) for gram in grams]


def shingles_from_bytes(data: bytes | None) -> frozenset[int]:
    if not data:
        return frozenset()
    stored = array("I")
    stored.frombytes(data)
    return frozenset(stored)


def fingerprint(item: Item) -> Fingerprint | None:
    """Shingles of headline + text, and band keys of the whole and its openings; None if short."""
    return fingerprint_text(item.title, item.body_text)


def fingerprint_text(title_text: str, body_text: str) -> Fingerprint | None:
    """`fingerprint` of a headline and a plain text (a stored entry's, say)."""
    title = words(wire_headline(title_text))
    body = words(body_text)
    hashes = _shingle_hashes(title + body)
    whole = frozenset(hashes)
    if len(whole) < MIN_SHINGLES:
        return None
    openings = [len(title) + n - SHINGLE_WORDS + 1 for n in OPENING_WORDS if n < len(body)]
    keys = {key for signature in _signatures(hashes, openings) for key in band_keys(signature)}
    return Fingerprint.of(whole, sorted(keys))


# The MinHash permutations (h -> a * h + b, 32-bit) that datasketch's `MinHash(seed=1,
# scheme="affine32")` draws for 60 permutations, written out: stored band keys are only valid
# while these stay the same, whatever a later datasketch draws (its default scheme changed in
# 2.0), and drawing them meant importing datasketch and SciPy in every process that
# fingerprints (~1 s of CPU each at start).
# tests/stories/test_dedupe.py checks them against datasketch's own.
# fmt: off
PERMUTATION_A = (
    3582191691, 4270784983, 1892572953, 3715639441, 982527, 1100580627, 2597016983, 4286725387,
    1260623519, 2027988865, 793182497, 3406602499, 1599963033, 3332127887, 2968344027,
    1458107385, 3408206605, 3741252147, 333433189, 2974788137, 3600853501, 2690998987,
    1591023397, 210867113, 1756231447, 3809231353, 3248004053, 1972053305, 235257659, 295613213,
    1464304741, 3555906697, 3584620975, 3927359407, 504141779, 3699672547, 1205914607,
    3772079037, 1701678785, 2391345325, 2583376155, 1855172563, 4022336275, 2600667151,
    2692293247, 797152891, 1652038701, 155929203, 3233158147, 3135500033, 3389645433,
    2827350435, 730524177, 2831271345, 335478043, 2345481447, 1458832223, 508895189, 3248219379,
    1464824721,
)
PERMUTATION_B = (
    422396446, 2547196999, 1808643459, 2884732358, 4114104213, 1768615473, 2289927481,
    848474627, 2971589572, 1243949848, 1355129329, 610401323, 2948499020, 3364310042,
    3584689972, 1771840848, 78547565, 146764659, 3221845289, 2680188370, 4247126031, 2837408832,
    3213347012, 1282027545, 1204497775, 1916133090, 3389928919, 954017671, 443352346, 315096729,
    1923688040, 2015364118, 3902387977, 413056707, 1261063143, 3879945342, 1235985687,
    513207677, 558468452, 2253996187, 83180453, 359158073, 2915576403, 3937889446, 908935816,
    3910346016, 1140514210, 1283895050, 2111290647, 2509932175, 229190383, 2430573655,
    2465816345, 2636844999, 630194419, 4108289372, 2531048010, 1120896190, 3005439278,
    992203680,
)
# fmt: on


# As arrays for the signatures' arithmetic, made once: per text they cost more than hashing it.
_PERMUTATIONS = np.array([PERMUTATION_A, PERMUTATION_B], dtype=np.uint32)


def _signatures(hashes: list[int], openings: Iterable[int]) -> list[np.ndarray]:
    """MinHash signatures of the whole text and of each opening (its first `n` hashes).

    What datasketch's `MinHash(scheme="affine32").update_batch` computes (the MurmurHash3 mix,
    then a * h + b in wrapping 32-bit arithmetic, the least per permutation), done for all of a
    text's hashes at once: an opening's signature is the least over a prefix of the same rows.
    A datasketch MinHash object per part (up to four a text) was most of fingerprinting it.
    """
    a, b = _PERMUTATIONS
    mixed = _murmur_mix(np.array(hashes, dtype=np.uint32))
    permuted = mixed[:, np.newaxis] * a + b  # one row per shingle, one column per permutation
    return [permuted.min(axis=0)] + [permuted[:n].min(axis=0) for n in openings]


def _murmur_mix(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer (fmix32), which datasketch applies before permuting."""
    values = values ^ (values >> np.uint32(16))
    values = values * np.uint32(0x85EBCA6B)
    values = values ^ (values >> np.uint32(13))
    values = values * np.uint32(0xC2B2AE35)
    mixed: np.ndarray = values ^ (values >> np.uint32(16))
    return mixed


# Each band key's hash starts with the band's number.
_BAND_PREFIXES = tuple(band.to_bytes(2, "big") for band in range(BANDS))


def band_keys(signature: np.ndarray) -> list[int]:
    """LSH band keys of a MinHash signature, signed 64-bit: equal keys mean an equal band.

    The same permutations serve every text and opening, so a summary's whole text meets the
    opening of the full text it summarises. Each key hashes the band's number and its rows as
    64-bit values (how the stored keys were made), sliced from the signature's bytes at once.
    """
    data = signature.astype(np.uint64).tobytes()
    width = ROWS * 8
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    return [
        from_bytes(
            blake2b(prefix + data[band * width : (band + 1) * width], digest_size=8).digest(),
            "big",
            signed=True,
        )
        for band, prefix in enumerate(_BAND_PREFIXES)
    ]


def wire_headline(title: str) -> str:
    """The headline without wire re-send markers: "UPDATE 2-Oil rises" is "Oil rises"."""
    stripped = RESEND_MARKER.sub("", title)
    return stripped.strip() or title


def headline_similarity(a: str, b: str) -> float:
    """Jaccard of the two headlines' words, markers left out."""
    left, right = set(words(wire_headline(a))), set(words(wire_headline(b)))
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


@functools.lru_cache(maxsize=4096)
def marks(title: str, lede: str) -> frozenset[str]:
    """The tokens that tell one event of a template from another: words holding a digit
    (numbers, dates, times, incident numbers) in the headline and the lede."""
    return frozenset(w for w in words(f"{wire_headline(title)} {lede}") if _has_digit(w))


def link_marks(link: str | None) -> frozenset[str]:
    """Words holding a digit in a link's path, query and fragment: its identifiers."""
    if not link:
        return frozenset()
    path = link.split("://", 1)[-1].partition("/")[2]
    return frozenset(w for w in WORD.findall(path) if _has_digit(w))


def _has_digit(word: str) -> bool:
    return any(c.isdigit() for c in word)


def _conflict(left: frozenset[str], right: frozenset[str]) -> bool:
    """Each side holds a mark the other lacks (one adding detail to the other is no conflict)."""
    return bool(left - right) and bool(right - left)


def told_apart(item: Item, telling: Telling, same_source: bool) -> bool:
    """Whether the two name different events: different numbers or dates, or (within one
    source, where links are comparable) different identifiers in their links."""
    if _conflict(marks(item.title, item.lede), marks(telling.title, telling.lede)):
        return True
    return same_source and _conflict(link_marks(item.link), link_marks(telling.link))


def judge(
    item: Item, print_: Fingerprint, telling: Telling, source_id: str | None = None
) -> Verdict | None:
    """Confirm a candidate on the real shingles; None unless it is clearly the same news.

    `source_id` is the item's source: a candidate of the same source is judged more strictly.
    """
    other = telling.shingles
    shared = len(print_.shingles & other)
    if shared < MIN_SHINGLES:
        return None
    jaccard = shared / len(print_.shingles | other)
    same_source = telling.source_id == source_id
    if (same_source or jaccard < TEMPLATE_JACCARD) and told_apart(item, telling, same_source):
        return None
    if same_source and headline_similarity(item.title, telling.title) < SAME_SOURCE_HEADLINE:
        return None
    if jaccard >= (SAME_SOURCE_JACCARD if same_source else NEAR_JACCARD):
        return Verdict(Rule.NEAR, round(jaccard, 3))
    containment = shared / min(len(print_.shingles), len(other))
    if containment >= CONTAINED:
        return Verdict(Rule.CONTAINED, round(containment, 3))
    if same_source:
        return None
    headline = headline_similarity(item.title, telling.title)
    if jaccard >= SUPPORTED_JACCARD and headline >= SUPPORTING_HEADLINE:
        return Verdict(Rule.HEADLINE, round(jaccard, 3))
    return None


def best_verdict(
    item: Item, print_: Fingerprint, tellings: Iterable[Telling], source_id: str | None = None
) -> tuple[Telling, Verdict] | None:
    """The candidate most surely telling the same news, if any is confirmed.

    Like texts (Jaccard) before a text inside another (containment), before a headline's support.
    """
    confirmed = [(t, v) for t in tellings if (v := judge(item, print_, t, source_id)) is not None]
    if not confirmed:
        return None
    strength = {Rule.NEAR: 2, Rule.CONTAINED: 1, Rule.HEADLINE: 0}
    return max(
        confirmed, key=lambda pair: (strength[pair[1].rule], pair[1].score, -pair[0].entry_id)
    )


def match_keys(item: Item, print_: Fingerprint | None) -> list[str]:
    """The keys two concurrent transactions would both match this item on.

    The store locks them before looking for the item's story, so two workers storing the same news
    at once cannot both decide it is new and make two stories.
    """
    keys = []
    if item.link:
        keys.append(f"link:{item.link}")
    if item.text_hash:
        keys.append(f"text:{item.text_hash}")
    if print_ is not None:
        keys += [f"band:{band}" for band in print_.bands]
    return keys


@dataclass(frozen=True)
class Candidate:
    """What ranks an entry as its story's voice."""

    entry_id: int
    priority: int
    has_full_text: bool
    published: datetime
    # A newer version from the same source replaced this one ("UPDATE 2-").
    superseded: bool = False


def best_entry(candidates: list[Candidate]) -> Candidate:
    """Editors' priority first, then full text over summary, then the earliest telling.

    A version its own source has since re-sent does not speak for the story: the re-send does.
    """
    current = [c for c in candidates if not c.superseded] or candidates
    return min(current, key=lambda c: (-c.priority, not c.has_full_text, c.published, c.entry_id))
