"""The dedupe stage as plain values: fingerprints, band keys, confirmation, the story's voice."""

from __future__ import annotations

import csv
import pickle
import zlib
from array import array
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.stories import dedupe
from aggregator.stories.dedupe import Candidate, Rule, Telling
from aggregator.types import Item
from tests.conftest import corpus_path

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def article(category: str, doc: str) -> tuple[str, list[str]]:
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if (row["category"], row["doc"]) == (category, doc):
                return row["title"], [p for p in row["body"].split("\n\n") if p.strip()]
    raise LookupError(doc)


def item(title: str, paragraphs: list[str], guid: str = "g") -> Item:
    text = " ".join(paragraphs)
    return Item(
        guid=guid,
        link=None,
        title=title,
        lede=paragraphs[0],
        body_html="",
        published=NOW,
        updated=NOW,
        author=None,
        categories=(),
        image_url=None,
        image_credit=None,
        language="en",
        text_hash=None,
        content_hash=guid,
        has_full_text=True,
        body_text=text,
    )


def telling(of: Item, entry_id: int = 1) -> Telling:
    print_ = dedupe.fingerprint(of)
    assert print_ is not None
    return Telling(entry_id, 1, "alpha", of.title, print_.shingles)


def verdict(a: Item, b: Item) -> dedupe.Verdict | None:
    print_ = dedupe.fingerprint(a)
    assert print_ is not None
    return dedupe.judge(a, print_, telling(b))


@pytest.mark.parametrize(
    ("headline", "expected"),
    [
        ("UPDATE 2-Oil rises on supply fears", "Oil rises on supply fears"),
        ("REFILE-UPDATE 1-Oil rises", "Oil rises"),
        ("CORRECTED-Oil rises", "Oil rises"),
        ("RPT-Oil rises", "Oil rises"),
        ("Update: what we know", "what we know"),
        ("Oil update expected", "Oil update expected"),
        ("UPDATE 2-", "UPDATE 2-"),  # nothing left: the headline stays as it was
    ],
)
def test_wire_headline_drops_resend_markers_only_at_the_start(headline: str, expected: str) -> None:
    assert dedupe.wire_headline(headline) == expected


def test_words_ignore_case_accents_punctuation_and_the_dateline() -> None:
    assert dedupe.words("PARIS, Nov 24 (AFP) - Élysée said: «Non».") == ["elysee", "said", "non"]
    assert dedupe.words("LONDON (Reuters) - Oil rose") == dedupe.words("Oil rose")


def test_a_short_text_has_no_fingerprint_and_matches_on_nothing_fuzzy() -> None:
    assert dedupe.fingerprint(item("Live: latest updates", ["Follow us."])) is None


def test_reordered_and_cut_telling_is_confirmed_as_near_duplicate() -> None:
    title, paragraphs = article("politics", "095")
    other = paragraphs[: max(3, 2 * len(paragraphs) // 3)]
    other[1], other[2] = other[2], other[1]
    found = verdict(item("Chancellor hits back", other), item(title, paragraphs))
    assert found is not None
    assert found.rule in (Rule.NEAR, Rule.CONTAINED)


def test_summary_is_contained_in_its_full_text_and_shares_a_band_key() -> None:
    title, paragraphs = article("tech", "010")
    summary, full = item(title.upper(), paragraphs[:1]), item(title, paragraphs)
    found = verdict(summary, full)
    assert found == dedupe.Verdict(Rule.CONTAINED, 1.0)
    summary_print, full_print = dedupe.fingerprint(summary), dedupe.fingerprint(full)
    assert summary_print and full_print
    # The summary's whole text meets the full text's opening in the shared index.
    assert set(summary_print.bands) & set(full_print.bands)


def test_different_reports_on_the_same_subject_are_not_confirmed() -> None:
    first, second = article("politics", "095"), article("politics", "251")
    assert verdict(item(*first), item(*second)) is None
    assert dedupe.headline_similarity(first[0], second[0]) > 0.2  # alike by headline alone


def test_unrelated_articles_share_no_band_key() -> None:
    a = dedupe.fingerprint(item(*article("business", "001")))
    b = dedupe.fingerprint(item(*article("sport", "020")))
    assert a and b
    assert not set(a.bands) & set(b.bands)


def test_band_keys_are_stable_across_processes() -> None:
    """crc32 shingles and a seeded MinHash: every worker computes the same keys."""
    print_ = dedupe.fingerprint(item(*article("business", "001")))
    assert print_ is not None
    # Packed as stored: the distinct 32-bit hashes in ascending order.
    assert array("I", print_.packed).tolist() == sorted(print_.shingles)
    assert len(print_.bands) == len(set(print_.bands)) <= dedupe.BANDS * 4
    again = dedupe.fingerprint(item(*article("business", "001")))
    assert again == print_


def test_a_fingerprint_crosses_processes_packed() -> None:
    """Worker processes make fingerprints for the storing process: the set of shingles is not
    pickled with them (it is rebuilt from the packed hashes where a match is judged)."""
    print_ = dedupe.fingerprint(item(*article("business", "001")))
    assert print_ is not None
    shingles = print_.shingles  # built, and cached on the object
    data = pickle.dumps(print_)
    # The packed hashes, 10 bytes a band key, names; the set would add 5 bytes a shingle.
    assert len(data) < len(print_.packed) + 10 * len(print_.bands) + 200
    again = pickle.loads(data)
    assert "shingles" not in vars(again)
    assert again == print_ and again.shingles == shingles


@pytest.mark.parametrize("doc", [("business", "001"), ("sport", "020"), ("politics", "251")])
def test_band_keys_band_datasketchs_own_minhash(doc: tuple[str, str]) -> None:
    """Keys already stored stay valid only while a fingerprint bands what datasketch's MinHash
    gives for the whole text and for each opening (headline + its first 25, 50, 100 words)."""
    from datasketch import MinHash

    probe = item(*article(*doc))
    print_ = dedupe.fingerprint(probe)
    assert print_ is not None
    title = dedupe.words(dedupe.wire_headline(probe.title))
    body = dedupe.words(probe.body_text)
    tokens = title + body
    hashes = [zlib.crc32(" ".join(tokens[i : i + 3]).encode()) for i in range(len(tokens) - 2)]
    parts = [hashes] + [hashes[: len(title) + n - 2] for n in (25, 50, 100) if n < len(body)]
    assert len(parts) == 4  # the whole and three openings: each one is checked
    expected: set[int] = set()
    for part in parts:
        signature = MinHash(num_perm=60, seed=1, hashfunc=int, scheme="affine32")
        signature.update_batch(set(part))
        expected.update(dedupe.band_keys(signature.hashvalues))
    assert print_.shingles == frozenset(hashes)
    assert print_.bands == tuple(sorted(expected))


def test_the_written_out_permutations_are_datasketchs_own() -> None:
    """The permutations are constants so that no process imports datasketch (and SciPy) to draw
    them; they must still be the ones `MinHash(seed=1, scheme="affine32")` draws."""
    from datasketch import MinHash

    a, b = MinHash(num_perm=60, seed=1, hashfunc=int, scheme="affine32").permutations
    assert tuple(int(v) for v in a) == dedupe.PERMUTATION_A
    assert tuple(int(v) for v in b) == dedupe.PERMUTATION_B
    assert len(dedupe.PERMUTATION_A) == dedupe.BANDS * dedupe.ROWS


def test_best_verdict_prefers_the_surest_candidate() -> None:
    title, paragraphs = article("business", "001")
    probe = item(title, paragraphs)
    print_ = dedupe.fingerprint(probe)
    assert print_ is not None
    partial = telling(item(title, paragraphs[:3]), entry_id=1)
    whole = telling(item(title, paragraphs), entry_id=2)
    unrelated = telling(item(*article("sport", "020")), entry_id=3)
    best = dedupe.best_verdict(probe, print_, [partial, unrelated, whole])
    assert best is not None
    assert best[0].entry_id == 2
    assert best[1] == dedupe.Verdict(Rule.NEAR, 1.0)


def candidate(entry_id: int, **values: object) -> Candidate:
    base = Candidate(entry_id, priority=0, has_full_text=True, published=NOW)
    return replace(base, **values)  # type: ignore[arg-type]


def test_best_entry_ranks_priority_then_full_text_then_earliest() -> None:
    early_summary = candidate(1, has_full_text=False)
    later_full = candidate(2, published=NOW + timedelta(hours=1))
    favoured = candidate(3, priority=5, has_full_text=False, published=NOW + timedelta(hours=2))
    assert dedupe.best_entry([early_summary, later_full]).entry_id == 2
    assert dedupe.best_entry([early_summary, later_full, favoured]).entry_id == 3
    assert (
        dedupe.best_entry([candidate(4), candidate(5, published=NOW - timedelta(1))]).entry_id == 5
    )


def test_a_superseded_version_never_speaks_for_the_story() -> None:
    old = candidate(1, superseded=True)
    resend = candidate(2, published=NOW + timedelta(hours=1))
    assert dedupe.best_entry([old, resend]).entry_id == 2


def call_out(number: int, day: int, street: str) -> Item:
    """A fire brigade's notice from one template: its number, date, time and street its own."""
    text = (
        f"Firefighters were called to a kitchen fire at {street} at {day + 8}:15 on {day} "
        "November. Crews from the central station attended with two appliances and the "
        "incident was closed within the hour. No one was hurt, the fire service said, and "
        "residents were thanked for their patience."
    )
    found = item(f"Incident {number}: kitchen fire", [text], guid=f"fw-{number}")
    return replace(found, link=f"https://brigade.example/incidents/{number}")


def judged(a: Item, b: Item, *, b_source: str, a_source: str = "brigade") -> dedupe.Verdict | None:
    print_, other = dedupe.fingerprint(a), dedupe.fingerprint(b)
    assert print_ is not None and other is not None
    told = Telling(1, 1, b_source, b.title, other.shingles, b.lede, b.link)
    return dedupe.judge(a, print_, told, a_source)


def test_templated_items_with_other_numbers_and_dates_are_different_news() -> None:
    first, second = call_out(417, 1, "12 High Street"), call_out(418, 2, "12 High Street")
    print_, other = dedupe.fingerprint(first), dedupe.fingerprint(second)
    assert print_ is not None and other is not None
    shared = print_.shingles & other.shingles
    assert len(shared) / len(print_.shingles | other.shingles) >= dedupe.NEAR_JACCARD
    assert judged(first, second, b_source="brigade") is None
    assert judged(first, second, b_source="gazette") is None


def test_a_copy_with_the_same_numbers_is_the_same_news() -> None:
    first = call_out(418, 2, "12 High Street")
    copy = replace(first, link="https://gazette.example/news/77", lede=first.lede + " More soon.")
    copy = replace(copy, body_text=copy.body_text + " More soon.")
    verdict = judged(copy, first, b_source="brigade", a_source="gazette")
    assert verdict is not None and verdict.rule is Rule.NEAR


def test_one_sources_items_are_held_to_a_higher_jaccard() -> None:
    title, paragraphs = article("business", "001")
    probe = item(title, paragraphs[:4])
    other = replace(item(title, paragraphs[2:6]), lede=probe.lede)  # about half shared
    across = judged(probe, other, b_source="gazette", a_source="wire")
    assert across is not None and across.score < dedupe.SAME_SOURCE_JACCARD
    assert judged(probe, other, b_source="wire", a_source="wire") is None
