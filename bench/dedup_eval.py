"""Story clustering quality and cost: B-cubed and pair precision on a labelled wire corpus.

Builds several agencies' tellings of BBC News articles (../shared/corpus/news/articles.csv):
  alpha      the original, full text (content:encoded) with its first paragraph as summary
  alpha-top  alpha's second feed: the same guid and link with tracking parameters, summary only
  bravo      another headline (the lede's first sentence), a dateline, its own house style
             (says/said, per cent), the last third of the paragraphs cut, two paragraphs swapped
  charlie    summary-only: the first paragraph as description, its own link and headline case
  alpha      (second fetch) "UPDATE 2-" re-sends: a new guid, one more paragraph
  echo       an undated copy (no pubDate: it is dated when fetched, days after the others):
             the headline and first two paragraphs, its own link, a closing line of its own
plus a fire brigade's call-outs (brigade: one template, each its own incident, number, street
and time, all in one feed), AG News wire leads (summary-only, other agencies) and untold BBC
articles of the same categories as hard negatives. Each agency has a feed per category. The
feeds are served on loopback and ingested by the real pipeline into a fresh database; each
entry's guid carries its true story, so the stored clustering is scored with B-cubed
precision/recall/F1 and pair precision/recall. Then the per-item cost of the dedup step at
1k, 10k and 100k stored stories.

    .venv/bin/python bench/dedup_eval.py [--articles 400] [--sizes 1000,10000,100000]
        [--call-outs 60] [--undated 0.15]   (0 and 0: the corpus without them)
        [--database-url URL]   (default: a fresh SQLite file)
"""

from __future__ import annotations

import argparse
import csv
import html
import random
import re
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from itertools import combinations
from pathlib import Path

from ingest_bench import serve  # the same loopback server (bench/ is on sys.path when run)
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

from aggregator.config.load import parse_config
from aggregator.ingest.normalise import normalise_entry
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.pipeline import claim, run_pass, sync_config
from aggregator.storage.candidates import read_candidates
from aggregator.storage.db import open_database, session_factory
from aggregator.storage.models import Entry, EntryBand, Source, Story
from aggregator.stories import assign, dedupe
from aggregator.types import Config, FetchResult, FetchStatus

NEWS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "news"
START = datetime(2026, 11, 20, tzinfo=UTC)
AGENCIES = ("alpha", "alpha-top", "bravo", "charlie", "delta", "echo", "brigade")
AGENCY_SUFFIX = re.compile(r"\s*\((?:AP|AFP|Reuters|[A-Za-z. ]+\.com)\)\s*$")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


class Telling:
    """One item of one feed, with the story it truly belongs to."""

    def __init__(
        self,
        truth: str,
        kind: str,
        guid: str,
        title: str,
        link: str,
        when: datetime | None,
        summary: str,
        content: str | None = None,
    ) -> None:
        self.truth, self.kind, self.guid, self.title, self.link = truth, kind, guid, title, link
        self.when, self.summary, self.content = when, summary, content

    def rss(self) -> str:
        content = f"<content:encoded><![CDATA[{self.content}]]></content:encoded>"
        date = f"<pubDate>{format_datetime(self.when, usegmt=True)}</pubDate>" if self.when else ""
        return (
            f"<item><guid isPermaLink='false'>{html.escape(self.guid)}</guid>"
            f"<title>{html.escape(self.title)}</title><link>{html.escape(self.link)}</link>"
            f"{date}"
            f"<description>{html.escape(self.summary)}</description>"
            f"{content if self.content else ''}</item>"
        )


def paragraphs_html(paragraphs: list[str]) -> str:
    return "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)


def load_articles(limit: int, rng: random.Random) -> tuple[list[dict[str, str]], int]:
    """BBC articles that are versions of no other article in the dataset, shuffled.

    The dataset repeats some reports word for word and carries others in two versions of one
    day ("Shares rise on new Man Utd offer", "Mixed reaction to Man Utd offer"): their true label
    is ambiguous, so any article sharing a fifth of its word 5-grams with another is left out.
    This is measured here independently of Caulbart's own matching.
    """
    with (NEWS / "articles.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    grams = [_five_grams(row["body"]) for row in rows]
    holders: dict[str, list[int]] = defaultdict(list)
    for index, row_grams in enumerate(grams):
        for gram in row_grams:
            holders[gram].append(index)
    overlap: Counter[tuple[int, int]] = Counter()
    for indexes in holders.values():
        if 1 < len(indexes) < 50:
            overlap.update(combinations(indexes, 2))
    versions = {
        i
        for (a, b), shared in overlap.items()
        if shared >= 0.2 * min(len(grams[a]), len(grams[b]))
        for i in (a, b)
    }
    kept = [row for index, row in enumerate(rows) if index not in versions]
    rng.shuffle(kept)
    return kept[:limit], len(versions)


def _five_grams(body: str) -> set[str]:
    tokens = re.findall(r"\w+", body.casefold())
    return {" ".join(tokens[i : i + 5]) for i in range(len(tokens) - 4)}


def load_wire_leads(
    limit: int, rng: random.Random, articles: list[dict[str, str]]
) -> list[tuple[str, str]]:
    """AG News leads whose headline occurs once, among the leads and the BBC articles told.

    AG News carries some news twice (AP and Reuters leads of one event, "... (AP)") and some BBC
    reports: such pairs are the same news, so keeping them would label a right merge wrong.
    """
    with (NEWS / "ag-news-test.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.reader(handle) if len(r) == 3 and r[0].isdigit()]

    def headline(text: str) -> str:
        return " ".join(dedupe.words(AGENCY_SUFFIX.sub("", text)))

    counts = Counter(headline(r[1]) for r in rows)
    counts.update(headline(row["title"]) for row in articles)
    texts = Counter(r[2].casefold() for r in rows)
    kept = [(r[1], r[2]) for r in rows if counts[headline(r[1])] == texts[r[2].casefold()] == 1]
    rng.shuffle(kept)
    return kept[:limit]


def tellings_of(
    row: dict[str, str], index: int, rng: random.Random, undated: float = 0.0
) -> list[Telling]:
    """The agencies' tellings of one article; which agencies carry it varies by article."""
    truth = f"{row['category']}-{row['doc']}"
    paragraphs = [p.strip() for p in row["body"].split("\n\n") if p.strip()]
    when = START + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
    base = f"{row['category']}/{row['doc']}"
    alpha = Telling(
        truth,
        "alpha",
        f"alpha-{base}",
        row["title"],
        f"https://alpha.example/{base}",
        when,
        paragraphs[0],
        paragraphs_html(paragraphs),
    )
    result = [alpha]
    if rng.random() < 0.2:  # an article only one agency carries: a hard negative for the others
        return result
    if rng.random() < 0.35:
        result.append(
            Telling(
                truth,
                "alpha-top",
                f"alpha-{base}",
                row["title"],
                f"https://alpha.example/{base}?utm_source=rss&utm_medium=top",
                when,
                paragraphs[0],
            )
        )
    if rng.random() < 0.8 and len(paragraphs) >= 3:
        lede_sentence = SENTENCE_END.split(paragraphs[0])[0]
        headline = " ".join(lede_sentence.split()[:12]).rstrip(".,;:")
        kept = paragraphs[: max(3, (2 * len(paragraphs)) // 3)]
        kept[1], kept[2] = kept[2], kept[1]
        kept = [house_style(p) for p in kept]
        kept[0] = f"LONDON (Bravo) - {kept[0]}"
        result.append(
            Telling(
                truth,
                "bravo",
                f"bravo-{index}",
                headline,
                f"https://bravo.example/news/{index}",
                when + timedelta(minutes=rng.randrange(5, 240)),
                kept[0],
                paragraphs_html(kept),
            )
        )
    # Drawn only when asked for, so that without them the corpus is today's to the item.
    if undated and rng.random() < undated and len(paragraphs) >= 2:
        result.append(
            Telling(
                truth,
                "echo",
                f"echo-{index}",
                row["title"],
                f"https://echo.example/copy/{index}",
                None,
                paragraphs[0],
                paragraphs_html([*paragraphs[:2], "More on this story as it develops."]),
            )
        )
    if rng.random() < 0.6:
        result.append(
            Telling(
                truth,
                "charlie",
                f"charlie-{index}",
                row["title"].upper(),
                f"https://charlie.example/story?id={index}",
                when + timedelta(minutes=rng.randrange(5, 600)),
                paragraphs[0],
            )
        )
    return result


STREETS = ("High Street", "Station Road", "Mill Lane", "Church Street", "Park Avenue")
CALL_OUTS = ("kitchen fire", "automatic fire alarm", "car fire", "chimney fire")


def call_outs(count: int, rng: random.Random) -> list[Telling]:
    """A fire brigade's notices: one template, each a call-out of its own (its own truth)."""
    result = []
    for number in range(count):
        reference = 2026_0400 + number
        when = START + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        kind, street = rng.choice(CALL_OUTS), rng.choice(STREETS)
        text = (
            f"Firefighters were called to a {kind} at {rng.randrange(1, 120)} {street} at "
            f"{when:%H:%M} on {when:%d} November. Crews from the central station attended with "
            f"{rng.randrange(1, 4)} appliances and the incident was closed at "
            f"{when + timedelta(minutes=rng.randrange(20, 90)):%H:%M}. No one was hurt, the fire "
            "service said, and residents were thanked for their patience."
        )
        result.append(
            Telling(
                f"world-brigade{number}",
                "brigade",
                f"brigade-{reference}",
                f"Incident {reference}: {kind} in {street}",
                f"https://brigade.example/incidents/{reference}",
                when,
                text,
            )
        )
    return result


def house_style(paragraph: str) -> str:
    """Another agency's house style: "says" for "said", "per cent" for "%", "US" spelled out."""
    for old, new in ((" said", " says"), ("%", " per cent"), ("US ", "United States ")):
        paragraph = paragraph.replace(old, new)
    return paragraph


def resend_of(original: Telling, rng: random.Random) -> Telling:
    """alpha's "UPDATE 2-" re-send: new guid, one more paragraph, an hour or two later."""
    extra = "Officials said further details would be given later in the week."
    return Telling(
        original.truth,
        "update",
        original.guid + "-u2",
        f"UPDATE 2-{original.title}",
        original.link + "-update",
        (original.when or START) + timedelta(minutes=rng.randrange(30, 180)),
        original.summary,
        (original.content or "") + paragraphs_html([extra]),
    )


def feed_documents(tellings: list[Telling], categories: list[str]) -> dict[str, bytes]:
    by_feed: dict[str, list[Telling]] = defaultdict(list)
    for telling in tellings:
        agency = "alpha" if telling.kind == "update" else telling.kind
        category = telling.truth.split("-")[0] if "-" in telling.truth else "world"
        by_feed[f"/{agency}/{category}.rss"].append(telling)
    documents = {}
    for agency in AGENCIES:
        for category in categories:
            items = "".join(t.rss() for t in by_feed.get(f"/{agency}/{category}.rss", []))
            documents[f"/{agency}/{category}.rss"] = (
                '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
                'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
                f"<title>{agency} {category}</title><link>https://{agency}.example/</link>"
                f"{items}</channel></rss>"
            ).encode()
    return documents


def b_cubed(truth: dict[str, str], predicted: dict[str, int]) -> tuple[float, float, float]:
    by_truth: dict[str, set[str]] = defaultdict(set)
    by_pred: dict[int, set[str]] = defaultdict(set)
    for item, label in truth.items():
        by_truth[label].add(item)
        by_pred[predicted[item]].add(item)
    precision = recall = 0.0
    for item in truth:
        same_pred = by_pred[predicted[item]]
        same_truth = by_truth[truth[item]]
        both = len(same_pred & same_truth)
        precision += both / len(same_pred)
        recall += both / len(same_truth)
    precision /= len(truth)
    recall /= len(truth)
    return precision, recall, 2 * precision * recall / (precision + recall)


def pairs(truth: dict[str, str], predicted: dict[str, int]) -> tuple[int, int, int]:
    """(pairs put together correctly, pairs put together wrongly, true pairs missed)."""
    groups: dict[int, list[str]] = defaultdict(list)
    for item, story in predicted.items():
        groups[story].append(item)
    right = wrong = 0
    for members in groups.values():
        for a, b in combinations(members, 2):
            if truth[a] == truth[b]:
                right += 1
            else:
                wrong += 1
    sizes = Counter(truth.values())
    true_pairs = sum(n * (n - 1) // 2 for n in sizes.values())
    return right, wrong, true_pairs - right


def pipeline_config(url_base: str, categories: list[str]) -> Config:
    sources = "\n".join(
        f"  - {{id: {agency}-{category}, url: '{url_base}/{agency}/{category}.rss', "
        f"agency: {agency}, section: {category}}}"
        for agency in AGENCIES
        for category in categories
    )
    return parse_config(
        "site: {base_url: 'http://caulbart.test'}\n"
        # Every feed is on 127.0.0.1, one host: unspaced, as feeds on as many hosts would be.
        "defaults: {max_entries: 5000, max_bytes: 100MB, timeout: 120s, host_spacing: 0s}\n"
        f"sources:\n{sources}\n"
    )


def fetch_all(engine: Engine, config: Config) -> None:
    """One pass over every source, as `caulbart fetch --all` makes it."""
    requests = claim(engine, config, "eval", 1000, due_only=False, host_budget=False)
    run_pass(engine, config, requests)


def quality(args: argparse.Namespace, database_url: str) -> list[Telling]:
    rng = random.Random(args.seed)
    articles, repeats = load_articles(args.articles, rng)
    categories = [*sorted({row["category"] for row in articles}), "world"]
    first: list[Telling] = []
    for index, row in enumerate(articles):
        first += tellings_of(row, index, rng, args.undated)
    for index, (title, lede) in enumerate(load_wire_leads(args.leads, rng, articles)):
        when = START + timedelta(minutes=rng.randrange(0, 3 * 24 * 60))
        agency = "charlie" if index % 2 else "delta"
        first.append(
            Telling(
                f"world-lead{index}",
                agency,
                f"{agency}-lead-{index}",
                title,
                f"https://{agency}.example/lead/{index}",
                when,
                lede,
            )
        )
    if args.call_outs:
        first += call_outs(args.call_outs, rng)
    resends = [resend_of(t, rng) for t in first if t.kind == "alpha" and rng.random() < 0.25]
    documents = feed_documents(first, categories)
    server = serve(documents)
    url_base = f"http://127.0.0.1:{server.server_address[1]}"
    began = time.perf_counter()
    config = pipeline_config(url_base, categories)
    engine = open_database(database_url)
    sync_config(engine, config)
    fetch_all(engine, config)
    documents.update(feed_documents(first + resends, categories))  # the wire re-sends arrive
    fetch_all(engine, config)
    seconds = time.perf_counter() - began
    server.shutdown()

    everything = first + resends
    truth = {f"{t.kind.replace('update', 'alpha')}|{t.guid}": t.truth for t in everything}
    kinds = {f"{t.kind.replace('update', 'alpha')}|{t.guid}": t.kind for t in everything}
    with session_factory(engine)() as session:
        rows = session.execute(select(Source.agency, Entry.guid, Entry.story_id).join(Source))
        predicted = {f"{agency}|{guid}": story for agency, guid, story in rows}
    missing = set(truth) - set(predicted)
    truth = {k: v for k, v in truth.items() if k in predicted}
    precision, recall, f1 = b_cubed(truth, predicted)
    right, wrong, missed = pairs(truth, predicted)
    print(
        f"corpus: {len(articles)} BBC articles ({repeats} of the dataset's articles left out "
        f"as versions of another), {args.leads} AG News leads, {len(everything)} tellings, "
        f"{len(set(truth.values()))} true stories; {len(missing)} tellings not stored"
    )
    print(f"ingest through the pipeline (2 fetches of {len(documents)} feeds): {seconds:.1f} s")
    print(f"B-cubed precision {precision:.4f}  recall {recall:.4f}  F1 {f1:.4f}")
    print(
        f"pair precision {right / max(right + wrong, 1):.4f} ({wrong} wrong of "
        f"{right + wrong} merged pairs)  pair recall {right / max(right + missed, 1):.4f}"
    )
    _misses_by_kind(truth, predicted, kinds)
    _wrong_merges(engine, truth, predicted)
    engine.dispose()
    return everything


def _misses_by_kind(
    truth: dict[str, str], predicted: dict[str, int], kinds: dict[str, str]
) -> None:
    """Per kind of telling: the share stored in the story of its article's alpha telling."""
    anchor = {truth[k]: predicted[k] for k in truth if kinds[k] == "alpha"}
    joined: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for key, label in truth.items():
        if kinds[key] in ("alpha",) or label not in anchor:
            continue
        total[kinds[key]] += 1
        joined[kinds[key]] += predicted[key] == anchor[label]
    print(
        "joined the original's story, by kind: "
        + ", ".join(f"{kind} {joined[kind]}/{total[kind]}" for kind in sorted(total))
    )


def _wrong_merges(
    engine: Engine, truth: dict[str, str], predicted: dict[int, int] | dict[str, int]
) -> None:  # type: ignore[no-untyped-def]
    """Print the stories that hold more than one true story, with each entry's rule."""
    members: dict[int, set[str]] = defaultdict(set)
    for key, story in predicted.items():
        if key in truth:
            members[story].add(truth[key])
    wrong = sorted(story for story, labels in members.items() if len(labels) > 1)
    with session_factory(engine)() as session:
        for story in wrong[:10]:
            print(f"  wrong merge, story {story}:")
            for entry in session.scalars(select(Entry).where(Entry.story_id == story)):
                print(
                    f"    entry {entry.id} {entry.guid}: {entry.match_rule} "
                    f"{entry.match_score} <- {entry.matched_entry_id}: {entry.title[:70]}"
                )


def cost(args: argparse.Namespace, database_url: str, tellings: list[Telling]) -> None:
    """Median per-item time of the dedup step (fingerprint + stored lookup) as the archive grows."""
    probes = []
    now = START + timedelta(days=3)
    for telling in tellings[: args.probes]:
        document = (
            '<?xml version="1.0"?><rss version="2.0" xmlns:content='
            '"http://purl.org/rss/1.0/modules/content/"><channel><title>p</title>'
            f"{telling.rss()}</channel></rss>"
        ).encode()
        feed = parse_feed(FetchResult("probe", "http://x/", FetchStatus.OK, 200, document), 10)
        item = normalise_entry(feed.entries[0], now=now)
        if item is not None:
            probes.append(item)
    engine = open_database(database_url)
    rng = random.Random(7)
    with session_factory(engine).begin() as session:
        session.add(
            Source(
                id="filler",
                name="filler",
                config_url="http://f/",
                url="http://f/",
                host="f",
                agency="filler",
                section="news",
                interval_seconds=900,
                created_at=now,
            )
        )
    stored = 0
    window = timedelta(seconds=72 * 3600)
    print(
        f"dedup step per item (fingerprint + stored-match lookup), median of {len(probes)} items:"
    )
    baseline = None
    for size in args.sizes:
        stored = _fill(engine, stored, size, rng, now)
        timings = []
        with session_factory(engine)() as session:
            for item in probes:
                began = time.perf_counter()
                print_ = dedupe.fingerprint(item)
                found = read_candidates(
                    session, [item], {item.guid: print_}, window, source_id="probe", now=now
                )
                assign.match_stored([item], {item.guid: print_}, found, "probe")
                timings.append(time.perf_counter() - began)
        median = statistics.median(timings) * 1000
        baseline = baseline or median
        print(
            f"  {size:>7} stories stored: {median:.2f} ms  (x{median / baseline:.2f} of the first)"
        )
    engine.dispose()


def _next_id(session: Session, table: str) -> int:
    return (session.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar() or 0) + 1


def _fill(engine: Engine, stored: int, size: int, rng: random.Random, now: datetime) -> int:
    """Add stories (one entry each, 40 band keys) up to `size`, published over the last year."""
    batch = 5000
    while stored < size:
        count = min(batch, size - stored)
        with session_factory(engine).begin() as session:
            # Ids of their own for entries: after the corpus (--database-url) there are more
            # entries than stories, and one number for both collided with a stored entry.
            first_id, first_entry = _next_id(session, "stories"), _next_id(session, "entries")
            stories, entries, bands = [], [], []
            for n in range(count):
                sid, eid = first_id + n, first_entry + n
                when = now - timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
                stories.append(
                    {
                        "id": sid,
                        "slug": f"s{sid}",
                        "title": f"Filler {sid}",
                        "lede": "",
                        "body_html": "",
                        "section": "news",
                        "published": when,
                        "updated": when,
                        "created_at": now,
                        "terms": [],
                    }
                )
                entries.append(
                    {
                        "id": eid,
                        "source_id": "filler",
                        "story_id": sid,
                        "guid": f"filler-{sid}",
                        "title": f"Filler {sid}",
                        "lede": "",
                        "body_html": "",
                        "categories": [],
                        "has_full_text": True,
                        "content_hash": str(sid),
                        "published": when,
                        "updated": when,
                        "first_seen_at": now,
                        "changed_at": now,
                        "match_rule": "new",
                    }
                )
                bands += [
                    {"band": rng.getrandbits(63), "published": when, "entry_id": eid}
                    for _ in range(3 * dedupe.BANDS)
                ]
            session.execute(insert(Story), stories)
            session.execute(insert(Entry), entries)
            session.execute(insert(EntryBand), bands)
        stored += count
    return stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=400)
    parser.add_argument("--leads", type=int, default=300)
    parser.add_argument("--call-outs", type=int, default=60, help="templated same-source items")
    parser.add_argument(
        "--undated", type=float, default=0.15, help="share of articles with an undated copy"
    )
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--database-url", help="default: fresh SQLite files in a temp folder")
    parser.add_argument("--skip-cost", action="store_true")
    args = parser.parse_args()
    args.sizes = [int(s) for s in args.sizes.split(",")]
    if not (NEWS / "articles.csv").exists():
        sys.exit(f"{NEWS} not found: ../shared/corpus must be beside the checkout")
    with tempfile.TemporaryDirectory() as folder:
        tellings = quality(args, args.database_url or f"sqlite:///{folder}/quality.sqlite3")
        if not args.skip_cost:
            cost_url = args.database_url or f"sqlite:///{folder}/cost.sqlite3"
            if args.database_url:
                print("(cost measured on the same database, after the corpus)")
            cost(args, cost_url, tellings)


if __name__ == "__main__":
    main()
