"""Coverage grouping quality and cost: B-cubed against Google News story ids, and stories/s.

Reads ../shared/corpus/news/uci-stories-dev.csv (2,844 headlines of 40 Google News stories,
March 2014, many publishers; UCI News Aggregator data). The stories are split by a hash of their
id into a tuning part and a held-out part (never tuned on); each part is grouped on its own, in
time order, by aggregator/stories/coverage.py and by a plain online TF-IDF centroid baseline on
headlines, and scored with B-cubed precision, recall and F1.

Times: the file's timestamps are crawl times, each story's reports within a minute and no two
stories overlapping, so a time signal would be an oracle. By default (--times exponential) each
report is dated at its story's first crawl plus a seeded random delay, exponential with a mean
of --spread hours (6), so the stories run side by side as a news day's do; --times uniform
spreads each story's reports evenly over --spread hours (a harder test: try 36); --times
original keeps the file's.

Cost: the per-story time of `assign` (median, microseconds) and stories/s including merge
passes, at 1k, 10k and 100k stories, synthesised by replaying the file with distinct ids and
times shifted past the window, so the groups alive at once stay those of one replay.

The reports come from the CSV here; an --ingest mode (one feed per publisher on loopback,
ingested by the pipeline, stored groups scored) plugs in as another `Report` source.

    .venv/bin/python bench/coverage_eval.py [--times exponential|uniform|original] [--spread H]
        [--threshold T] [--merge-threshold M] [--sweep] [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import random
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aggregator.ingest.text import WORD, fold
from aggregator.stories.coverage import CoverageIndex, CoverageSettings, CoverageStory
from aggregator.stories.tagging import stop_words

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "news" / "uci-stories-dev.csv"
SEED = 39
MERGE_EVERY = 100
SPREAD_HOURS = 6.0
BASELINE_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3)


@dataclass(frozen=True)
class Report:
    """One publisher's report of a story: what a coverage grouper is given, and its truth."""

    report_id: int
    headline: str
    publisher: str
    published: datetime
    story: str  # the Google News story id: the truth, never shown to a grouper


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    f1: float
    groups: int


def read_reports(path: Path) -> list[Report]:
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Report(
                int(row["ID"]),
                row["TITLE"],
                row["PUBLISHER"],
                datetime.fromtimestamp(int(row["TIMESTAMP"]) / 1000, UTC),
                row["STORY"],
            )
            for row in csv.DictReader(handle)
        ]


def interleave(
    reports: Sequence[Report], arrival: str, spread_hours: float, seed: int = SEED
) -> list[Report]:
    """Each report dated at its story's first report plus a seeded delay: exponential with a
    mean of `spread_hours` (most reports of an event come in its first hours, a few a day or
    two later; capped at four means), or uniform up to `spread_hours`."""
    first: dict[str, datetime] = {}
    for report in reports:
        first[report.story] = min(first.get(report.story, report.published), report.published)
    rng = random.Random(seed)

    def delay() -> float:
        if arrival == "uniform":
            return rng.uniform(0, spread_hours)
        return min(rng.expovariate(1 / spread_hours), 4 * spread_hours)

    return [replace(r, published=first[r.story] + timedelta(hours=delay())) for r in reports]


def is_held_out(story: str) -> bool:
    """A fixed half of the stories, by a hash of their id: never used to choose a setting."""
    return hashlib.sha256(f"coverage-eval:{story}".encode()).digest()[0] % 2 == 1


def b_cubed(groups: dict[int, int], truth: dict[int, str]) -> Scores:
    """B-cubed precision and recall (Bagga and Baldwin 1998), averaged over reports."""
    by_group: dict[int, Counter[str]] = defaultdict(Counter)
    story_size: Counter[str] = Counter(truth.values())
    for report_id, group in groups.items():
        by_group[group][truth[report_id]] += 1
    precision = recall = 0.0
    for report_id, group in groups.items():
        together = by_group[group][truth[report_id]]
        precision += together / sum(by_group[group].values())
        recall += together / story_size[truth[report_id]]
    precision, recall = precision / len(groups), recall / len(groups)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(precision, recall, f1, len(by_group))


def in_time_order(reports: Iterable[Report]) -> list[Report]:
    return sorted(reports, key=lambda r: (r.published, r.report_id))


def group_with_coverage(
    reports: Sequence[Report],
    settings: CoverageSettings,
    timings: list[int] | None = None,
    alive: list[int] | None = None,
) -> dict[int, int]:
    """Report id -> group id from CoverageIndex, merge passes every MERGE_EVERY reports;
    `timings` gets each assign's nanoseconds, `alive` the groups in the window at each pass."""
    index = CoverageIndex(settings)
    parent: dict[int, int] = {}

    def root(group: int) -> int:
        while parent.get(group, group) != group:
            group = parent[group]
        return group

    joined: dict[int, int] = {}
    for count, report in enumerate(in_time_order(reports), start=1):
        story = CoverageStory(report.report_id, report.headline, "", report.publisher,
                              report.published)  # fmt: skip
        started = time.perf_counter_ns()
        assignment = index.assign(story)
        if timings is not None:
            timings.append(time.perf_counter_ns() - started)
        joined[report.report_id] = assignment.group_id
        if count % MERGE_EVERY == 0:
            for merge in index.merge_pass():
                parent[merge.absorbed] = merge.kept
            if alive is not None:
                alive.append(len(index.groups))
    for merge in index.merge_pass():
        parent[merge.absorbed] = merge.kept
    return {report_id: root(group) for report_id, group in joined.items()}


def _plain_terms(headline: str) -> Counter[str]:
    stops = stop_words()
    return Counter(word for word in WORD.findall(fold(headline)) if word not in stops)


def group_with_baseline(reports: Sequence[Report], threshold: float) -> dict[int, int]:
    """The plain baseline: online TF-IDF of headlines, each joining the most alike centroid."""
    document_frequency: Counter[str] = Counter()
    documents = 0
    centroids: dict[int, Counter[str]] = {}
    postings: dict[str, set[int]] = defaultdict(set)
    joined: dict[int, int] = {}

    def idf(term: str) -> float:
        return math.log((1 + documents) / (1 + document_frequency[term])) + 1.0

    def cosine(terms: Counter[str], centroid: Counter[str]) -> float:
        dot = sum(terms[t] * centroid[t] * idf(t) ** 2 for t in terms if t in centroid)
        own = math.sqrt(sum((w * idf(t)) ** 2 for t, w in terms.items()))
        other = math.sqrt(sum((w * idf(t)) ** 2 for t, w in centroid.items()))
        return dot / (own * other) if dot else 0.0

    for report in in_time_order(reports):
        terms = _plain_terms(report.headline)
        documents += 1
        document_frequency.update(terms.keys())
        candidates = sorted({g for t in terms for g in postings[t]})
        scored = [(cosine(terms, centroids[g]), g) for g in candidates]
        score, group = max(scored, default=(0.0, report.report_id), key=lambda p: (p[0], -p[1]))
        if score < threshold:
            group = report.report_id
            centroids[group] = Counter()
        centroids[group].update(terms)
        for term in terms:
            postings[term].add(group)
        joined[report.report_id] = group
    return joined


def score_parts(
    reports: Sequence[Report], grouper: Callable[[Sequence[Report]], dict[int, int]]
) -> tuple[Scores, Scores]:
    truth = {r.report_id: r.story for r in reports}
    parts = []
    for held_out in (False, True):
        part = [r for r in reports if is_held_out(r.story) == held_out]
        parts.append(b_cubed(grouper(part), truth))
    return parts[0], parts[1]


def line(name: str, tuning: Scores, held_out: Scores) -> str:
    def cells(s: Scores) -> str:
        return f"{s.precision:6.3f} {s.recall:6.3f} {s.f1:6.3f} {s.groups:6d}"

    return f"{name:<34} {cells(tuning)}   {cells(held_out)}"


def print_quality(reports: Sequence[Report], settings: CoverageSettings, sweep: bool) -> None:
    tuning = [r for r in reports if not is_held_out(r.story)]
    held = [r for r in reports if is_held_out(r.story)]
    print(
        f"reports: {len(tuning)} tuning ({len({r.story for r in tuning})} stories), "
        f"{len(held)} held out ({len({r.story for r in held})} stories)"
    )
    print(f"{'B-cubed':<34} {'tuning part':^28}   {'held-out part':^28}")
    print(f"{'':<34} {'P':>6} {'R':>6} {'F1':>6} {'groups':>6}   "
          f"{'P':>6} {'R':>6} {'F1':>6} {'groups':>6}")  # fmt: skip
    for threshold in BASELINE_THRESHOLDS:
        parts = score_parts(reports, lambda part, t=threshold: group_with_baseline(part, t))
        print(line(f"baseline centroid, threshold {threshold}", *parts))
    if sweep:  # settings are chosen on the tuning part only; the held-out column is for the record
        for threshold in (0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1):
            swept = replace(settings, threshold=threshold)
            parts = score_parts(reports, lambda part, s=swept: group_with_coverage(part, s))
            print(line(f"coverage, threshold {threshold}", *parts))
    parts = score_parts(reports, lambda part: group_with_coverage(part, settings))
    print(line(f"coverage (threshold {settings.threshold})", *parts))


def replay(reports: Sequence[Report], size: int, window: float) -> list[Report]:
    """`size` reports: the file replayed with distinct ids, each replay after the window."""
    ordered = in_time_order(reports)
    span = ordered[-1].published - ordered[0].published
    shift = span + timedelta(seconds=window) + timedelta(days=1)
    out: list[Report] = []
    copy = 0
    while len(out) < size:
        for report in ordered[: size - len(out)]:
            out.append(replace(report, report_id=copy * 10_000_000 + report.report_id,
                               published=report.published + copy * shift))  # fmt: skip
        copy += 1
    return out


def print_cost(reports: Sequence[Report], settings: CoverageSettings, sizes: list[int]) -> None:
    print(
        f"\n{'stories':>8} {'stories/s':>10} {'median µs':>10} {'p95 µs':>8} {'groups alive':>13}"
    )
    for size in sizes:
        synthetic = replay(reports, size, settings.window)
        timings: list[int] = []
        alive: list[int] = []
        started = time.perf_counter()
        group_with_coverage(synthetic, settings, timings, alive)
        elapsed = time.perf_counter() - started
        timings.sort()
        median = statistics.median(timings) / 1000
        p95 = timings[int(len(timings) * 0.95)] / 1000
        print(f"{size:>8} {size / elapsed:>10.0f} {median:>10.0f} {p95:>8.0f} {max(alive):>13}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--times", choices=("exponential", "uniform", "original"), default="exponential"
    )
    parser.add_argument("--spread", type=float, default=SPREAD_HOURS, help="hours: mean delay "
                        "(exponential) or longest (uniform)")  # fmt: skip
    parser.add_argument("--threshold", type=float, default=CoverageSettings.threshold)
    parser.add_argument("--merge-threshold", type=float, default=CoverageSettings.merge_threshold)
    parser.add_argument("--sweep", action="store_true", help="print coverage at other thresholds")
    parser.add_argument("--sizes", default="1000,10000,100000", help="'' to skip the cost")
    args = parser.parse_args()
    if not CORPUS.exists():
        sys.exit(f"{CORPUS} not found: ../shared/corpus must be beside the checkout")
    reports = read_reports(CORPUS)
    if args.times != "original":
        reports = interleave(reports, args.times, args.spread)
    settings = replace(
        CoverageSettings(), threshold=args.threshold, merge_threshold=args.merge_threshold
    )
    print(
        f"times: {args.times}" + (f" (spread {args.spread} h)" if args.times != "original" else "")
    )
    print_quality(reports, settings, args.sweep)
    if args.sizes:
        print_cost(reports, settings, [int(size) for size in args.sizes.split(",")])


if __name__ == "__main__":
    main()
