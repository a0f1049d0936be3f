"""Evaluate tags and related posts on the BBC News corpus (category = weak truth).

Serves the articles as one RSS feed on loopback (one source, one section, so the category is
never given away), ingests it through the real pipeline into a fresh SQLite file, then prints:
precision@5 of related posts (share whose category matches), the share of stories with >= 3 tags,
the share with related posts, and the median per-story cost of tagging + relating.

    .venv/bin/python bench/related_eval.py [--limit N]
"""

from __future__ import annotations

import argparse
import csv
import html
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from ingest_bench import serve  # the same loopback server (bench/ is on sys.path when run)
from sqlalchemy import select

from aggregator.config.load import parse_config
from aggregator.ingest.pipeline import claim, run_pass, sync_config
from aggregator.storage.db import open_database, session_factory
from aggregator.storage.models import Entry, Story
from aggregator.stories import tag_index

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "news" / "articles.csv"


def build_feed(rows: list[dict[str, str]]) -> bytes:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    items = []
    for index, row in enumerate(rows):
        paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in row["body"].split("\n\n") if p)
        when = format_datetime(start + timedelta(hours=3 * index), usegmt=True)
        items.append(
            f"<item><guid>bbc-{row['category']}-{row['doc']}</guid>"
            f"<title>{html.escape(row['title'])}</title>"
            f"<link>https://news.example/{row['category']}/{row['doc']}</link>"
            f"<pubDate>{when}</pubDate>"
            f"<content:encoded><![CDATA[{paragraphs}]]></content:encoded></item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel><title>BBC</title>'
        f"<link>https://news.example/</link>{''.join(items)}</channel></rss>"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="articles to use (0 = all)")
    args = parser.parse_args()
    if not CORPUS.exists():
        sys.exit(f"{CORPUS} not found: ../shared/corpus must be beside the checkout")
    with CORPUS.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # Interleave categories so the archive grows like a real news day, not one desk at a time.
    rows.sort(key=lambda r: (int(r["doc"]), r["category"]))
    if args.limit:
        rows = rows[: args.limit]
    server = serve({"/feed.rss": build_feed(rows)})
    url = f"http://127.0.0.1:{server.server_address[1]}/feed.rss"
    config = parse_config(
        "site: {base_url: 'http://caulbart.test'}\n"
        "defaults: {max_entries: 5000, max_bytes: 100MB, timeout: 120s}\n"
        f"sources:\n  - {{id: bbc, url: '{url}', section: news}}\n"
    )
    with tempfile.TemporaryDirectory() as folder:
        engine = open_database(f"sqlite:///{folder}/eval.sqlite3")
        sync_config(engine, config)
        started = time.perf_counter()
        requests = claim(engine, config, "eval", 1, due_only=False, host_budget=False)
        run_pass(engine, config, requests)
        ingest_seconds = time.perf_counter() - started
        report(engine, config, rows, ingest_seconds)
    server.shutdown()


def report(engine, config, rows, ingest_seconds: float) -> None:  # type: ignore[no-untyped-def]
    category = {f"bbc-{r['category']}-{r['doc']}": r["category"] for r in rows}
    Session = session_factory(engine)
    with Session() as session:
        story_category = {
            story_id: category[guid]
            for story_id, guid in session.execute(select(Entry.story_id, Entry.guid))
        }
        ids = sorted(story_category)
        tags = tag_index.story_tag_labels(session, ids)
        related = tag_index.related_ids(session, ids)
    hits = total = 0
    for story_id in ids:
        for other in related[story_id]:
            total += 1
            hits += story_category[other] == story_category[story_id]
    with_three = sum(len(tags[i]) >= 3 for i in ids) / len(ids)
    later = ids[50:]  # once the archive holds more than a few dozen stories
    with_related = sum(bool(related[i]) for i in later) / max(len(later), 1)

    costs = []
    sample = ids[-200:]
    for story_id in sample:
        with Session.begin() as session:
            began = time.perf_counter()
            tag_index.update_stories(session, [story_id], config.tags)
            costs.append(time.perf_counter() - began)
    print(f"stories: {len(ids)} (from {len(rows)} articles)")
    print(f"precision@5 of related posts by category: {hits / max(total, 1):.3f} ({hits}/{total})")
    print(f"stories with >= 3 tags: {with_three:.3f}")
    print(f"stories after the first 50 with related posts: {with_related:.3f}")
    print(f"tag + relate per story, median of the last {len(sample)}: "
          f"{statistics.median(costs) * 1000:.1f} ms")  # fmt: skip
    print(f"whole ingest (fetch, parse, normalise, dedupe, tag, store): {ingest_seconds:.1f} s")
    with Session() as session:
        for story_id in ids[100:103]:
            story = session.get_one(Story, story_id)
            print(f"  e.g. {story.title!r}: tags {tags[story_id]}")


if __name__ == "__main__":
    main()
