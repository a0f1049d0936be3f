"""Story pages, listings and feeds at 1k and 100k stories: do their times stay flat?

    .venv/bin/python bench/web_bench.py [--sizes 1000 100000] [--requests 200]

Each size gets a temporary SQLite database (migrated as in production, search triggers on),
filled directly through the ORM with stories (their bodies the corpus's BBC articles), their
entries from several sources, tags and related posts. Pages are requested through the Flask
test client (no network): random story pages, home, section (first and 8th page), tag, source
and date listings, the site's Atom feed, a section's JSON Feed, and a source's and a tag's Atom
feeds (cached, as most requests find them), the sitemap index and its first stories sitemap,
then the site's, a section's and a source's Atom feed rendered anew (the cache emptied before
each of 60 requests: 20 left a few milliseconds of noise); prints the median per page and the
ratio largest / smallest.
"""

from __future__ import annotations

import argparse
import csv
import html
import logging
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask.testing import FlaskClient
from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.permalinks import story_path  # noqa: E402
from aggregator.storage.db import open_database  # noqa: E402
from aggregator.storage.models import Entry, RelatedStory, Source, Story, StoryTag, Tag  # noqa: E402
from web import create_app  # noqa: E402

SECTIONS = ("world", "business", "tech", "science", "sport")
AGENCIES = ("Northwire", "Southwire", "Eastpost", "Westwire", "Bytepost", "Midland")
TAGS = 2000
WITHDRAWN_EVERY = 500
BATCH = 5000
_TEXT = (
    "harbour council tunnel orchard festival museum bridge ferry library stadium airport "
    "vineyard quarry bakery factory hospital railway canal observatory market theatre "
    "minister engineer farmer teacher announced delayed approved opened closed"
)
WORDS = _TEXT.split()
START = datetime(2020, 1, 1, tzinfo=UTC)
# Story bodies are the corpus's BBC articles (median 1.9 kB of text), as HTML paragraphs: a
# story row as long as a real one, so reading a row's later columns (published, review,
# withdrawn_at) costs what it costs in production, overflow pages included.
ARTICLES = ROOT.parent / "shared" / "corpus" / "news" / "articles.csv"


def article_bodies() -> list[str]:
    with ARTICLES.open(encoding="utf-8") as handle:
        texts = [row["body"] for row in csv.DictReader(handle)]
    return [
        "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n") if p.strip())
        for text in texts
    ]


def fill(engine: Engine, size: int, rng: random.Random) -> None:
    """`size` stories, one to three entries each, three tags and four related posts each; one
    in WITHDRAWN_EVERY withdrawn."""
    now = datetime.now(UTC)
    bodies = article_bodies()
    sources = [
        {"id": f"src-{i}", "name": f"{agency} {section}", "config_url": f"https://{i}.example/rss",
         "url": f"https://{i}.example/rss", "host": f"{i}.example", "agency": agency,
         "section": section, "priority": 0, "interval_seconds": 900, "adaptive": False,
         "consecutive_errors": 0, "tags": [], "excerpt_only": False, "images": True,
         "created_at": now}
        for i, (agency, section) in enumerate((a, s) for a in AGENCIES for s in SECTIONS)
    ]  # fmt: skip
    with engine.begin() as connection:
        connection.execute(insert(Source), sources)
        connection.execute(
            insert(Tag),
            [{"id": t + 1, "slug": f"tag-{t}", "label": f"Tag {t}"} for t in range(TAGS)],
        )
    step = timedelta(days=5 * 365) / size
    entry_id = 0
    for first in range(0, size, BATCH):
        stories, entries, tags, related = [], [], [], []
        for story_id in range(first + 1, min(first + BATCH, size) + 1):
            words = rng.sample(WORDS, 12)
            published = START + step * story_id
            title = " ".join(words[:7]).capitalize()
            lede = " ".join(words) + "."
            stories.append(
                {"id": story_id, "slug": "-".join(words[:7]), "title": title, "lede": lede,
                 "body_html": bodies[story_id % len(bodies)],
                 "section": SECTIONS[story_id % len(SECTIONS)], "language": "en",
                 "image_url": f"https://img.example/{story_id}.jpg", "image_credit": "Photo desk",
                 "terms": words[:5], "published": published, "updated": published,
                 "created_at": published, "withdrawn_at": None, "withdrawn_reason": None}
            )  # fmt: skip
            if story_id % WITHDRAWN_EVERY == 0:  # a few taken back: tombstones in the feeds
                withdrawn = published + timedelta(hours=2)
                stories[-1] |= {"updated": withdrawn, "withdrawn_at": withdrawn,
                                "withdrawn_reason": "Wrong figures"}  # fmt: skip
            for n in range(rng.randint(1, 3)):
                entry_id += 1
                source = sources[rng.randrange(len(sources))]
                entries.append(
                    {"id": entry_id, "source_id": source["id"], "story_id": story_id,
                     "guid": f"g{entry_id}", "link": f"https://{n}.example/{entry_id}",
                     "title": title, "lede": lede, "body_html": f"<p>{lede}</p>", "author": None,
                     "categories": [], "has_full_text": True, "content_hash": f"{entry_id:x}",
                     "published": published, "updated": published, "first_seen_at": published,
                     "changed_at": published}
                )  # fmt: skip
            for rank, tag in enumerate(rng.sample(range(1, TAGS + 1), 3)):
                tags.append({"story_id": story_id, "tag_id": tag, "rank": rank})
            if story_id > 10:
                for rank, other in enumerate(rng.sample(range(1, story_id), 4)):
                    related.append(
                        {"story_id": story_id, "related_id": other, "rank": rank, "score": 0.5}
                    )
        for story in stories:
            story["best_entry_id"] = None
        with engine.begin() as connection:
            connection.execute(insert(Story), stories)
            connection.execute(insert(Entry), entries)
            connection.execute(insert(StoryTag), tags)
            if related:
                connection.execute(insert(RelatedStory), related)


def median_ms(
    client: FlaskClient, paths: list[str], before: Callable[[], None] = lambda: None
) -> float:
    timings = []
    for path in paths:
        before()
        began = time.perf_counter()
        response = client.get(path)
        timings.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return statistics.median(timings)


# What a reader and a feed reader request most, beside random story pages.
LISTINGS = {
    "home": "/",
    "section": "/section/world",
    "section p8": "/section/world?page=8",
    "tag": "/tag/tag-7",
    "source": "/source/src-3",
    "month archive": "/archive/2022/06",
    "feed.atom": "/feed.atom",
    "section feed": "/section/world/feed.json",
    "source feed": "/source/src-3/feed.atom",
    "tag feed": "/tag/tag-7/feed.atom",
}
# Feeds rendered anew (the cache emptied first): what the first request after a change costs.
RENDERS = {
    "feed.atom new": "/feed.atom",
    "section new": "/section/world/feed.atom",
    "source new": "/source/src-3/feed.atom",
}


def measure(size: int, requests: int) -> dict[str, float]:
    """Median milliseconds per page kind at `size` stories."""
    rng = random.Random(size)
    with tempfile.TemporaryDirectory() as folder:
        engine = open_database(f"sqlite:///{folder}/bench.sqlite3")
        began = time.perf_counter()
        fill(engine, size, rng)
        print(f"{size:>7} stories stored in {time.perf_counter() - began:.1f} s", flush=True)
        app = create_app(engine, {"CAULBART_CONFIG": str(Path(folder) / "none.yaml")})
        client = app.test_client()
        ids = [rng.randint(1, size) for _ in range(requests)]
        ids = [i - 1 if i % WITHDRAWN_EVERY == 0 else i for i in ids]  # pages, not 410s
        with Session(engine) as session:  # the current permalinks: no 301 is timed
            stories = [session.get_one(Story, story_id) for story_id in ids]
            paths = [story_path(s.id, s.slug, s.published) for s in stories]
        median_ms(client, paths[:20])  # warm up templates and caches
        results = {"story page": median_ms(client, paths)}
        for name, path in LISTINGS.items():
            results[name] = median_ms(client, [path] * max(20, requests // 4))
        # The sitemap index probes once per block of 5,000 ids; a block lists up to 5,000
        # stories (1,000 at 1,000 stories: its ratio is the block filling up).
        results["sitemap index"] = median_ms(client, ["/sitemap.xml"] * 20)
        results["sitemap block"] = median_ms(client, ["/sitemap-stories-1.xml"] * 5)
        feeds = app.extensions["caulbart.feeds"]
        for name, path in RENDERS.items():
            results[name] = median_ms(client, [path] * 60, before=feeds.clear)
        app.extensions["caulbart.feeds"].close()
        engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 100_000])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    results = {size: measure(size, args.requests) for size in args.sizes}
    small, large = min(results), max(results)
    print(f"{'median ms':<14}" + "".join(f"{size:>10}" for size in results) + "     ratio")
    for page in results[small]:
        row = "".join(f"{results[size][page]:>10.2f}" for size in results)
        print(f"{page:<14}{row}{results[large][page] / results[small][page]:>9.2f}x")
    print(f"(ratio: {large} stories / {small}; flat is close to 1)")


if __name__ == "__main__":
    main()
