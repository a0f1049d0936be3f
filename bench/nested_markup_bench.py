"""Preparing time of one deeply nested 1.3 MB item, the way a pass prepares a source.

Each shape is one RSS document with one item whose description is the nested markup; it goes
through `prepare.prepare` (feedparser, normalise: sanitising, plain text, lede; fingerprint and
tag draft) in this process. A plain item of the same size is the baseline of the same run.

    .venv/bin/python bench/nested_markup_bench.py [--repeat N] [--shape NAME ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.config.load import parse_config
from aggregator.ingest.prepare import prepare
from aggregator.types import FetchResult, FetchStatus

SIZE = 1_300_000
PROSE = "Officials said the talks would resume next week after a pause. "
CONFIG = parse_config(
    "site: {title: Bench, base_url: 'http://bench.test'}\n"
    "sources:\n  - {id: nested, name: Nested, url: 'http://bench.test/feed', agency: Bench}\n"
)


def filled(opening: str, closing: str, levels: int) -> str:
    """`levels` nested elements around prose, prose after them up to SIZE characters."""
    nested = opening * levels + PROSE + closing * levels
    return nested + PROSE * max(0, (SIZE - len(nested)) // len(PROSE))


SHAPES: dict[str, Callable[[], str]] = {
    # The two items of the report: one element nested 100,000 deep, and two alternating.
    "div x 100,000": lambda: filled("<div>", "</div>", 100_000),
    "b/i x 50,000": lambda: filled("<b><i>", "</i></b>", 50_000),
    # The same tags side by side, not nested: what the parser's time is when it is linear.
    "div x 100,000 siblings": lambda: filled("<div></div>", "", 100_000),
    "plain prose (baseline)": lambda: "<p>" + PROSE * (SIZE // len(PROSE)) + "</p>",
}


def document(markup: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Bench</title>'
        "<link>http://bench.test/</link><item><title>Nested</title>"
        "<link>http://bench.test/1</link><guid>nested-1</guid>"
        f"<description>{escape(markup)}</description></item></channel></rss>"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES), help="default: all")
    args = parser.parse_args()
    now = datetime.now(UTC)
    medians: dict[str, float] = {}
    for name in args.shape or list(SHAPES):
        markup = SHAPES[name]()
        body = document(markup)
        result = FetchResult("nested", "http://bench.test/feed", FetchStatus.OK, 200, body)
        seconds = []
        for _ in range(args.repeat):
            started = time.perf_counter()
            prepared = prepare(CONFIG, result, now)
            seconds.append(time.perf_counter() - started)
        medians[name] = statistics.median(seconds)
        outcome = prepared.error or f"{len(prepared.items)} item(s)"
        words = len(prepared.items[0].body_text.split()) if prepared.items else 0
        print(
            f"{name:24} markup {len(markup) / 1e6:.2f} MB, document {len(body) / 1e6:.2f} MB: "
            f"median {medians[name]:.2f} s of {args.repeat} ({outcome}, {words} words)",
            flush=True,
        )
    baseline = medians.get("plain prose (baseline)")
    if baseline:
        for name, median in medians.items():
            print(f"{name:24} {median / baseline:.1f} x the plain item")


if __name__ == "__main__":
    main()
