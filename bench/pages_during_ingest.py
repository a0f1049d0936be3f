"""Pages while an ingest writes: how long the home page takes during a first `caulbart fetch`.

The embedded default runs the scheduler and the web front on one SQLite file (`make run`): a
reader must not wait for the ingest's write transactions. Builds the ingest bench's corpus
(200 feeds of 100 entries, ../shared/corpus/news), serves it on loopback, runs `caulbart fetch
--all` on a fresh SQLite file and meanwhile requests the home page through the Flask app on the
same file every 50 ms; prints the median, 90th and 99th percentile and the longest request.

    .venv/bin/python bench/pages_during_ingest.py [--feeds 200] [--entries 100] [--runs 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from ingest_bench import CAULBART, build_feeds, serve, write_config

from aggregator.storage.db import open_database
from web import create_app

PAUSE_SECONDS = 0.05


def pages_during_ingest(documents: dict[str, bytes], port: int) -> tuple[float, list[float]]:
    """Seconds of one first ingest, and the milliseconds of each home page asked meanwhile."""
    with tempfile.TemporaryDirectory() as folder:
        urls = [f"http://127.0.0.1:{port}{path}" for path in documents]
        config = write_config(Path(folder), urls)  # the ingest bench's very pass
        database = f"sqlite:///{folder}/caulbart.sqlite3"
        env = {**os.environ, "CAULBART_DATABASE_URL": database, "CAULBART_CONFIG": str(config)}
        subprocess.run([CAULBART, "status"], env=env, cwd=folder, capture_output=True, check=True)
        engine = open_database(database)
        app = create_app(engine, {"CAULBART_CONFIG": str(config)})
        client = app.test_client()
        timings: list[float] = []
        ingesting = threading.Event()
        ingesting.set()

        def read_pages() -> None:
            while ingesting.is_set():
                began = time.perf_counter()
                status = client.get("/").status_code
                timings.append((time.perf_counter() - began) * 1000)
                assert status == 200, status
                time.sleep(PAUSE_SECONDS)

        reader = threading.Thread(target=read_pages)
        reader.start()
        began = time.perf_counter()
        try:
            subprocess.run(
                [CAULBART, "fetch", "--all"], env=env, cwd=folder, capture_output=True, check=True
            )
        finally:
            seconds = time.perf_counter() - began
            ingesting.clear()
            reader.join()
        app.extensions["caulbart.feeds"].close()
        engine.dispose()
        return seconds, timings


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    documents = build_feeds(args.feeds, args.entries)
    server = serve(documents)
    rows = []
    try:
        for run in range(1, args.runs + 1):
            seconds, timings = pages_during_ingest(documents, server.server_address[1])
            row = (
                statistics.median(timings),
                percentile(timings, 0.9),
                percentile(timings, 0.99),
                max(timings),
            )
            rows.append(row)
            print(
                f"run {run}: ingest {seconds:.1f} s, {len(timings)} home pages meanwhile: "
                "median {:.1f} ms, p90 {:.1f}, p99 {:.1f}, longest {:.1f}".format(*row),
                flush=True,
            )
    finally:
        server.shutdown()
    medians = [statistics.median(column) for column in zip(*rows, strict=True)]
    print(
        "home page during a first ingest (SQLite), medians of {} runs: median {:.1f} ms, "
        "p90 {:.1f}, p99 {:.1f}, longest {:.1f}".format(args.runs, *medians)
    )


if __name__ == "__main__":
    main()
