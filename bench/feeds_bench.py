"""Requests per second for /feed.atom: cold (rendered each time), cached, and 304, against a
constant response served by the same server (waitress, the production server) in the same run.

    .venv/bin/python bench/feeds_bench.py [--seconds 2] [--rounds 5] [--clients 8]
                                          [--processes 2] [--database-url URL]

The database (a temporary SQLite file unless --database-url) is filled from real corpus feeds
through the real ingest. The constant route answers the cached feed's own bytes, so the ratio
measures what a cached feed costs beyond sending them: the version check and conditional GET.
Goal: cached >= 70% of constant. Prints medians over the rounds.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
from flask import Flask, Response, request
from waitress.server import create_server

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.config.load import parse_config  # noqa: E402
from aggregator.ingest import pipeline  # noqa: E402
from aggregator.storage.db import open_database  # noqa: E402
from aggregator.types import Config, FetchResult, FetchStatus  # noqa: E402
from web import create_app  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "feeds" / "real"
FEEDS = {
    "reuters": "wire/reuters-worldnews-2018-01-30.rss",
    "huffpost": "wire/huffpost-worldnews-2019.rss",
    "guardian": "rss-parser/guardian.rss",
    "media404": "fastfeedparser-2026/a44f75939f245a7e.rss",
}


def fill(database_url: str, config_path: Path) -> tuple[Config, object]:
    sources = "".join(
        f"  - id: {source_id}\n    url: https://feeds.example/{source_id}.rss\n"
        for source_id in FEEDS
    )
    text = f"site:\n  base_url: https://caulbart.example\nsources:\n{sources}"
    config_path.write_text(text, encoding="utf-8")
    config = parse_config(text, str(config_path))
    engine = open_database(database_url)
    pipeline.sync_config(engine, config)
    for source_id, name in FEEDS.items():
        body = (CORPUS / name).read_bytes()
        url = f"https://feeds.example/{source_id}.rss"
        pipeline.ingest_source(
            engine, config, FetchResult(source_id, url, FetchStatus.OK, 200, body)
        )
    return config, engine


def bench_app(engine: object, config_path: Path) -> Flask:
    app = create_app(engine, {"CAULBART_CONFIG": str(config_path)})  # type: ignore[arg-type]
    cache = app.extensions["caulbart.feeds"]
    constant: dict[str, bytes] = {}

    @app.before_request
    def cold_start() -> None:
        if request.headers.get("X-Bench-Cold"):
            cache.clear()

    @app.get("/constant")
    def constant_response() -> Response:
        return Response(constant["body"], content_type="application/atom+xml; charset=utf-8")

    app.extensions["bench.constant"] = constant
    return app


def _hammer(url: str, headers: dict[str, str], stop: float, expect: int, threads: int) -> int:
    """One client process: `threads` keep-alive connections until `stop` (perf_counter)."""
    counts = [0] * threads

    def run(index: int) -> None:
        with httpx.Client(timeout=30) as client:
            while time.perf_counter() < stop:
                response = client.get(url, headers=headers)
                assert response.status_code == expect, response.status_code
                counts[index] += 1

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts)


def rate(
    pool: ProcessPoolExecutor,
    url: str,
    headers: dict[str, str],
    seconds: float,
    clients: int,
    expect: int,
) -> float:
    """Requests per second from `clients` keep-alive connections, in client processes of their
    own so the load generator does not share the server's interpreter lock."""
    processes = pool._max_workers  # type: ignore[attr-defined]
    started = time.perf_counter()
    stop = started + seconds
    futures = [
        pool.submit(_hammer, url, headers, stop, expect, max(1, clients // processes))
        for _ in range(processes)
    ]
    total = sum(future.result() for future in futures)
    return total / (time.perf_counter() - started)


def main() -> None:
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth" lines
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database_url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
        _, engine = fill(database_url, Path(folder) / "feeds.yaml")
        app = bench_app(engine, Path(folder) / "feeds.yaml")
        server = create_server(app, host="127.0.0.1", port=0, threads=8)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
        first = httpx.get(f"{base}/feed.atom")
        etag = first.headers["ETag"]
        app.extensions["bench.constant"]["body"] = first.content
        feed, seconds, clients = f"{base}/feed.atom", args.seconds, args.clients
        pool = ProcessPoolExecutor(args.processes, mp_context=multiprocessing.get_context("spawn"))
        pool.submit(int).result()  # start the client processes before measuring
        scenarios: dict[str, Callable[[], float]] = {
            "constant": lambda: rate(pool, f"{base}/constant", {}, seconds, clients, 200),
            "cold": lambda: rate(pool, feed, {"X-Bench-Cold": "1"}, seconds, clients, 200),
            "cached": lambda: rate(pool, feed, {}, seconds, clients, 200),
            "304": lambda: rate(pool, feed, {"If-None-Match": etag}, seconds, clients, 304),
        }
        results: dict[str, list[float]] = {name: [] for name in scenarios}
        for _ in range(args.rounds):  # interleaved, so drift hits every scenario alike
            for name, measure in scenarios.items():
                results[name].append(measure())
        pool.shutdown()
        logging.getLogger("waitress").setLevel(logging.CRITICAL)  # in-flight channels at close
        server.close()
    medians = {name: statistics.median(values) for name, values in results.items()}
    size = len(first.content)
    print(f"/feed.atom: {size} bytes; {args.clients} clients in {args.processes} processes, "
          f"{args.rounds} rounds of "
          f"{args.seconds:g}s; {database_url.split(':')[0]}")  # fmt: skip
    for name, value in medians.items():
        ratio = value / medians["constant"]
        print(f"{name:>9}: {value:8.0f} req/s median  ({ratio:6.1%} of constant)")
    goal = medians["cached"] / medians["constant"] >= 0.7
    print(f"goal cached >= 70% of constant: {'met' if goal else 'NOT met'}")


if __name__ == "__main__":
    main()
