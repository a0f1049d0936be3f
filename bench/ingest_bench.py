"""Ingest speed: `caulbart fetch --all` against the `reader` library and bare feedparser.

Builds N feeds of M entries from the news texts in ../shared/corpus/news (BBC full texts and AG
News wire leads, so some entries are the same story in several feeds, as on a real wire), serves
them on loopback with ETag/304, and times in one run, each on a fresh SQLite file:
  (a) `caulbart fetch --all` (fetch, parse, normalise, dedupe, tag, relate, store),
  (b) reader's `update_feeds(workers=4)` on the same feeds, as one command timed from start to
      exit like (a), after a first command added the feeds (installed in bench/.venv-reader,
      never in the project's environment); its update_feeds alone is printed too,
  (c) feedparser alone parsing the same bytes (the floor),
then a second caulbart pass where every feed answers 304 (printed per 1,000 sources, whole and
beyond a command's start-up, timed as `caulbart check`). Prints medians and the ratios a/b, a/c,
in wall time and in CPU time (user + system of each command and the processes it starts; on
PostgreSQL without the server's own): a second view for comparing runs on a machine whose speed
drifts.

    .venv/bin/python bench/ingest_bench.py [--feeds 200] [--entries 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import feedparser
import sqlalchemy

from aggregator.config.load import load_config
from aggregator.ingest import prepare
from aggregator.ingest.parse import parse_feed
from aggregator.stories import dedupe
from aggregator.types import FetchResult, FetchStatus

ROOT = Path(__file__).resolve().parents[1]
NEWS = ROOT.parent / "shared" / "corpus" / "news"
READER_VENV = ROOT / "bench" / ".venv-reader"
CAULBART = ROOT / ".venv" / "bin" / "caulbart"


def news_texts() -> list[tuple[str, str]]:
    texts: list[tuple[str, str]] = []
    with (NEWS / "articles.csv").open(encoding="utf-8") as handle:
        texts += [(r["title"], r["body"]) for r in csv.DictReader(handle)]
    with (NEWS / "ag-news-test.csv").open(encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) == 3 and row[0].isdigit():
                texts.append((row[1], row[2]))
    return texts


def build_feeds(feeds: int, entries: int) -> dict[str, bytes]:
    texts = news_texts()
    start = datetime(2026, 11, 1, tzinfo=UTC)
    documents: dict[str, bytes] = {}
    for f in range(feeds):
        items = []
        for e in range(entries):
            title, body = texts[(f * entries + e) % len(texts)]
            paragraphs = "".join(f"<p>{html.escape(p)}</p>" for p in body.split("\n\n") if p)
            when = format_datetime(start + timedelta(minutes=7 * (f * entries + e)), usegmt=True)
            items.append(
                f"<item><guid>f{f}-e{e}</guid><title>{html.escape(title)}</title>"
                f"<link>https://news.example/f{f}/{e}</link><pubDate>{when}</pubDate>"
                f"<description>{html.escape(paragraphs)}</description></item>"
            )
        documents[f"/f{f}.rss"] = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Feed {f}</title><link>https://news.example/f{f}</link>"
            f"{''.join(items)}</channel></rss>"
        ).encode()
    return documents


def serve(
    documents: dict[str, bytes], latency: float = 0.0, requests: Counter[str] | None = None
) -> ThreadingHTTPServer:
    """The feeds on loopback with ETag/304; `latency` seconds before each answer stand in for
    a network round trip; `requests` counts the GETs per path."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if requests is not None:
                requests[self.path] += 1
            if latency:
                time.sleep(latency)
            body = documents.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = f'"{hash(body) & 0xFFFFFFFF:x}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@contextmanager
def fresh_schema(server: str) -> Iterator[str]:
    """A database URL on a new, empty PostgreSQL schema, dropped afterwards."""
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{name}"'))
    try:
        yield f"{server}?options=-csearch_path%3D{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def children_cpu() -> float:
    """CPU seconds of this process's finished children and their own (the parsing workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def write_config(folder: Path, urls: list[str]) -> Path:
    """The feeds.yaml every caulbart pass of the bench reads: one source per feed."""
    config = folder / "feeds.yaml"
    lines = [
        "site: {base_url: 'http://caulbart.test'}",
        # Every feed is on 127.0.0.1, one host: unspaced, as feeds on as many hosts would be.
        "defaults: {concurrency: 8, per_host: 8, host_spacing: 0s, timeout: 120s}",
        "sources:",
    ]
    lines += [f"  - {{id: f{i}, url: '{url}'}}" for i, url in enumerate(urls)]
    config.write_text("\n".join(lines) + "\n")
    return config


def caulbart_pass(
    folder: Path, urls: list[str], database: str
) -> tuple[float, float, float, float]:
    """Seconds for a first full pass, then for a pass where every feed answers 304, the first
    pass's CPU seconds, and the seconds of `caulbart check` on the same feeds.yaml: a command's
    start-up (interpreter, imports, reading the configuration), which a 304 pass is mostly."""
    config = write_config(folder, urls)
    env = {**os.environ, "CAULBART_DATABASE_URL": database, "CAULBART_CONFIG": str(config)}
    subprocess.run([CAULBART, "status"], env=env, cwd=folder, capture_output=True, check=True)
    times, cpu = [], []
    for _ in range(2):
        started, cpu_before = time.perf_counter(), children_cpu()
        subprocess.run(
            [CAULBART, "fetch", "--all"], env=env, cwd=folder, capture_output=True, check=True
        )
        times.append(time.perf_counter() - started)
        cpu.append(children_cpu() - cpu_before)
    started = time.perf_counter()
    subprocess.run([CAULBART, "check"], env=env, cwd=folder, capture_output=True, check=True)
    return times[0], times[1], cpu[0], time.perf_counter() - started


# Like `caulbart status` then `caulbart fetch --all`: the feeds are added by one command
# (untimed), then one command updates them, timed from start to exit like caulbart's.
READER_ADD = textwrap.dedent(
    """
    import sys
    from reader import make_reader
    reader = make_reader(sys.argv[1])
    for url in sys.argv[2:]:
        reader.add_feed(url)
    """
)
READER_UPDATE = textwrap.dedent(
    """
    import sys, time
    from reader import make_reader
    started = time.perf_counter()
    make_reader(sys.argv[1]).update_feeds(workers=4)
    print(time.perf_counter() - started)
    """
)


def ensure_reader() -> Path:
    python = READER_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(READER_VENV)], check=True)
        # reader vendors a feedparser that imports sgmllib, which it does not declare.
        subprocess.run(
            [python, "-m", "pip", "install", "-q", "reader>=3.12", "sgmllib3k"], check=True
        )
    return python


def reader_pass(python: Path, folder: Path, urls: list[str]) -> tuple[float, float, float]:
    """Seconds of the whole updating command, of `update_feeds` alone (no start-up), and the
    command's CPU seconds."""
    database = str(folder / "reader.sqlite")
    subprocess.run([python, "-c", READER_ADD, database, *urls], capture_output=True, check=True)
    started, cpu_before = time.perf_counter(), children_cpu()
    out = subprocess.run(
        [python, "-c", READER_UPDATE, database], capture_output=True, text=True, check=True
    )
    whole = time.perf_counter() - started
    return whole, float(out.stdout.strip().splitlines()[-1]), children_cpu() - cpu_before


def feedparser_floor(documents: dict[str, bytes]) -> tuple[float, float]:
    """Seconds and CPU seconds of feedparser parsing every document, in this process."""
    started, cpu_before = time.perf_counter(), time.process_time()
    for body in documents.values():
        feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False)
    return time.perf_counter() - started, time.process_time() - cpu_before


def prepare_stages(urls: list[str], documents: dict[str, bytes]) -> Counter[str]:
    """CPU seconds of caulbart's preparing stages over every document, one after another in
    this process, without the database or the pool: what `aggregator.ingest.prepare` does in the
    pool's
    processes. Each distinct text is fingerprinted and tagged once (a repeat joins the story
    its first telling started), as the least a correct first pass must do."""
    with tempfile.TemporaryDirectory() as name:
        config = load_config(write_config(Path(name), urls))
    now = datetime.now(UTC)
    spent: Counter[str] = Counter()
    told: set[str | None] = set()

    @contextmanager
    def charged(stage: str) -> Iterator[None]:
        cpu_before = time.process_time()
        yield
        spent[stage] += time.process_time() - cpu_before

    for source, body in zip(config.sources, documents.values(), strict=True):
        fetched = FetchResult(source.id, source.url, FetchStatus.OK, 200, body)
        with charged("parse"):
            feed = parse_feed(fetched, config.defaults.max_entries)
        with charged("normalise"):
            items = list(prepare.items_of(feed, now).items)
        unseen = [item for item in items if item.text_hash not in told]
        told.update(item.text_hash for item in items)
        with charged("fingerprints"):
            for item in unseen:
                dedupe.fingerprint(item)
        with charged("tag drafts"):
            for item in unseen:
                prepare.tag_draft_for(config, source, item)
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", help="also time caulbart on this PostgreSQL URL")
    args = parser.parse_args()
    documents = build_feeds(args.feeds, args.entries)
    server = serve(documents)
    urls = [f"http://127.0.0.1:{server.server_address[1]}{path}" for path in documents]
    reader_python = ensure_reader()
    results: dict[str, list[float]] = {"caulbart": [], "caulbart 304": [], "reader": [],
                                       "reader in-proc": [], "feedparser": [],
                                       "caulbart pg": [], "start-up": []}  # fmt: skip
    cpu: dict[str, list[float]] = {"caulbart": [], "reader": [], "feedparser": [],
                                   "caulbart pg": []}  # fmt: skip
    stages: dict[str, list[float]] = {}
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as name:
            folder = Path(name)
            first, again, first_cpu, start_up = caulbart_pass(
                folder, urls, f"sqlite:///{folder}/c.sqlite3"
            )
            results["caulbart"].append(first)
            results["caulbart 304"].append(again)
            results["start-up"].append(start_up)
            cpu["caulbart"].append(first_cpu)
            whole, in_process, reader_cpu = reader_pass(reader_python, folder, urls)
            results["reader"].append(whole)
            results["reader in-proc"].append(in_process)
            cpu["reader"].append(reader_cpu)
            floor, floor_cpu = feedparser_floor(documents)
            results["feedparser"].append(floor)
            cpu["feedparser"].append(floor_cpu)
            for stage, seconds in prepare_stages(urls, documents).items():
                stages.setdefault(stage, []).append(seconds)
            if args.postgres:
                with fresh_schema(args.postgres) as database:
                    pg_first, _, pg_cpu, _ = caulbart_pass(folder, urls, database)
                    results["caulbart pg"].append(pg_first)
                    cpu["caulbart pg"].append(pg_cpu)
    server.shutdown()
    total = args.feeds * args.entries
    median = {name: statistics.median(times) for name, times in results.items() if times}
    print(f"{args.feeds} feeds x {args.entries} entries = {total} entries, {args.runs} runs, "
          "medians:")  # fmt: skip
    for name, seconds in median.items():
        if name == "start-up":
            print(f"  {name:14s} {seconds:8.2f} s   (caulbart check: a command's fixed cost)")
        else:
            print(f"  {name:14s} {seconds:8.2f} s   {total / seconds:8.0f} entries/s")
    print(f"  a/b caulbart / reader     = {median['caulbart'] / median['reader']:.2f}"
          "   (both whole commands, start-up included)")  # fmt: skip
    print(f"  a/b' caulbart / reader's update_feeds alone = "
          f"{median['caulbart'] / median['reader in-proc']:.2f}")  # fmt: skip
    print(f"  a/c caulbart / feedparser = {median['caulbart'] / median['feedparser']:.2f}")
    if "caulbart pg" in median:
        print(f"  PostgreSQL / SQLite       = {median['caulbart pg'] / median['caulbart']:.2f}")
    per_thousand = median["caulbart 304"] / args.feeds * 1000
    beyond = (median["caulbart 304"] - median["start-up"]) / args.feeds * 1000
    print(f"  all-304 pass: {per_thousand:.2f} s per 1,000 sources (the whole command scaled), "
          f"{beyond:.2f} s per 1,000 beyond its start-up")  # fmt: skip
    cpu_median = {name: statistics.median(times) for name, times in cpu.items() if times}
    print("CPU seconds (user + system of the command and the processes it starts), medians:")
    for name, seconds in cpu_median.items():
        note = "   (the PostgreSQL server's own CPU not counted)" if name == "caulbart pg" else ""
        print(f"  {name:14s} {seconds:8.2f} s{note}")
    print(f"  a/b by CPU = {cpu_median['caulbart'] / cpu_median['reader']:.2f}"
          f"   a/c by CPU = {cpu_median['caulbart'] / cpu_median['feedparser']:.2f}")  # fmt: skip

    stage_median = {stage: statistics.median(seconds) for stage, seconds in stages.items()}
    prepared = sum(stage_median.values())
    cores = os.cpu_count() or 1
    print("caulbart's preparing stages alone, in one process (CPU seconds, medians; each distinct "
          "text fingerprinted and tagged once):")  # fmt: skip
    print("  " + "   ".join(f"{stage} {sec:.2f}" for stage, sec in stage_median.items())
          + f"   sum {prepared:.2f}")  # fmt: skip
    print(f"  spread over {cores} cores, at best {prepared / cores:.2f} s = "
          f"{prepared / cores / median['reader']:.2f} x reader: the least a/b can be "
          "before anything is stored")  # fmt: skip


if __name__ == "__main__":
    main()
