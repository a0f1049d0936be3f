"""A longer fuzz of feed parsing and normalising than the test suite runs.

Mutates every real feed of ../shared/corpus/feeds/real (bytes flipped, cut, repeated) and checks
that parse + normalise raise nothing but ParseError and that nothing executable comes out.

    .venv/bin/python bench/fuzz_parse.py [--rounds N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.errors import ParseError
from aggregator.ingest.normalise import normalise_entry
from aggregator.ingest.parse import parse_feed
from aggregator.types import FetchResult, FetchStatus
from tests.safety import MARKUP, executable, mutate_feed

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "feeds" / "real"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    seeds = [path.read_bytes() for path in sorted(CORPUS.rglob("*")) if path.is_file()]
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    parsed = rejected = entries = 0
    started = time.perf_counter()
    for round_ in range(args.rounds):
        body = mutate_feed(rng.choice(seeds), rng, edits=30)
        result = FetchResult("fuzz", "http://fuzz.test/", FetchStatus.OK, 200, body)
        try:
            feed = parse_feed(result, max_entries=1000)
        except ParseError:
            rejected += 1
            continue
        parsed += 1
        for raw in feed.entries:
            item = normalise_entry(raw, now=now)
            if item is None:
                continue
            entries += 1
            problems = executable(item.body_html)
            if problems or MARKUP.search(item.title):
                sys.exit(f"round {round_} (seed {args.seed}): {problems} {item.title!r}")
    seconds = time.perf_counter() - started
    print(f"{args.rounds} mutated feeds from {len(seeds)} seeds in {seconds:.1f} s: "
          f"{parsed} parsed ({entries} entries checked), {rejected} rejected as not a feed, "
          "0 crashes, nothing executable")  # fmt: skip


if __name__ == "__main__":
    main()
