"""Scale-out on PostgreSQL: N `caulbart worker` processes share the sources of one database, and
N gunicorn web processes share its readers.

Workers: the ingest_bench corpus (BBC and AG News texts) served on loopback, each answer delayed
by `--latency` seconds to stand in for the network; for each N in `--workers`, a fresh
PostgreSQL schema, N `caulbart worker` processes started together, timed until every source has
been ingested once. Prints seconds, entries per second, the speed-up over one worker, and how many
feeds were requested more than once (must be 0: claims are exclusive).

Web: `caulbart serve --workers W` on the last schema, 16 client threads for `--seconds` over the
home page, a section page, story pages and /feed.atom; prints requests per second in all and per
web process.

    .venv/bin/python bench/scale_bench.py [--workers 1 2 4] [--feeds 200] [--entries 20]
        [--latency 0.2] [--web 1 2] [--seconds 10] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import sqlalchemy
from ingest_bench import CAULBART, build_feeds, fresh_schema, serve

POSTGRES = os.environ.get(
    "CAULBART_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CLIENTS = 16


def write_config(folder: Path, urls: list[str]) -> Path:
    config = folder / "feeds.yaml"
    lines = [
        "site: {base_url: 'http://caulbart.test'}",
        "defaults: {interval: 6h, concurrency: 8, per_host: 64, host_spacing: 0s, timeout: 120s}",
        "sources:",
    ]
    lines += [f"  - {{id: f{i}, url: '{url}', section: s{i % 5}}}" for i, url in enumerate(urls)]
    config.write_text("\n".join(lines) + "\n")
    return config


def environment(database: str, folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "CAULBART_DATABASE_URL": database,
        "CAULBART_CONFIG": str(folder / "feeds.yaml"),
    }


def ingested(database: str) -> int:
    engine = sqlalchemy.create_engine(database)
    try:
        with engine.connect() as connection:
            query = "SELECT count(*) FROM sources WHERE last_success_at IS NOT NULL"
            return int(connection.execute(sqlalchemy.text(query)).scalar_one())
    finally:
        engine.dispose()


def workers_pass(workers: int, database: str, folder: Path, feeds: int) -> float:
    """Seconds from starting `workers` processes until every source is ingested."""
    env = environment(database, folder)
    subprocess.run([CAULBART, "status"], env=env, cwd=folder, capture_output=True, check=True)
    logs = [(folder / f"worker-{workers}-{n}.log").open("w") for n in range(workers)]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [CAULBART, "worker", "--tick", "0.5"], env=env, cwd=folder, stdout=log, stderr=log
        )
        for log in logs
    ]
    try:
        while ingested(database) < feeds:
            if any(p.poll() is not None for p in processes):
                raise SystemExit(f"a worker stopped early; see {folder}/worker-*.log")
            time.sleep(0.2)
        return time.perf_counter() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        for log in logs:
            log.close()


def story_paths(database: str, count: int) -> list[str]:
    engine = sqlalchemy.create_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(
            sqlalchemy.text("SELECT id, slug, published FROM stories ORDER BY id LIMIT :n"),
            {"n": count},
        ).all()
    engine.dispose()
    return [f"/{p:%Y/%m/%d}/{slug}-{story_id}" for story_id, slug, p in rows]


def web_pass(processes: int, database: str, folder: Path, seconds: float) -> float:
    """Requests per second answered by `processes` gunicorn web processes."""
    with socket_port() as port:
        env = environment(database, folder)
        log = (folder / f"web-{processes}.log").open("w")
        server = subprocess.Popen(
            [CAULBART, "serve", "--workers", str(processes), "--port", str(port)],
            env=env, cwd=folder, stdout=log, stderr=log,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/healthz")
        paths = ["/", "/section/s1", "/feed.atom", *story_paths(database, 50)]
        for path in paths:  # every process renders once before the clock starts
            for _ in range(processes):
                assert httpx.get(base + path, timeout=30).status_code == 200, path
        done = Counter[int]()
        stop = time.perf_counter() + seconds

        def client(n: int) -> None:
            with httpx.Client(base_url=base, timeout=30) as http:
                i = n
                while time.perf_counter() < stop:
                    http.get(paths[i % len(paths)]).raise_for_status()
                    done[n] += 1
                    i += CLIENTS

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return sum(done.values()) / seconds
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
        log.close()


@contextmanager
def socket_port() -> Iterator[int]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    yield port


def wait_for(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--web", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    documents = build_feeds(args.feeds, args.entries)
    total = args.feeds * args.entries
    print(f"PostgreSQL {POSTGRES}; {args.feeds} feeds x {args.entries} entries = {total} entries,"
          f" {args.latency:.2f} s per request, {args.runs} runs, medians:")  # fmt: skip
    times: dict[int, list[float]] = {n: [] for n in args.workers}
    twice = 0
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for _ in range(args.runs):
            for workers in args.workers:
                requests: Counter[str] = Counter()
                server = serve(documents, latency=args.latency, requests=requests)
                urls = [f"http://127.0.0.1:{server.server_address[1]}{p}" for p in documents]
                write_config(folder, urls)
                with fresh_schema(POSTGRES) as database:
                    times[workers].append(workers_pass(workers, database, folder, args.feeds))
                server.shutdown()
                twice += sum(1 for count in requests.values() if count > 1)
        base = statistics.median(times[args.workers[0]])
        for workers, seconds in times.items():
            median = statistics.median(seconds)
            print(f"  {workers} worker{'s' if workers > 1 else ' '} {median:8.2f} s "
                  f"{total / median:8.0f} entries/s {args.feeds / median * 60:8.0f} sources/min"
                  f"   speed-up x{base / median:.2f}")  # fmt: skip
        print(f"  feeds requested more than once by the workers: {twice}")
        requests = Counter()
        server = serve(documents, requests=requests)
        write_config(folder, [f"http://127.0.0.1:{server.server_address[1]}{p}" for p in documents])
        with fresh_schema(POSTGRES) as database:
            workers_pass(max(args.workers), database, folder, args.feeds)
            print(
                f"web ({CLIENTS} clients, {args.seconds:.0f} s: home, section, feed, 50 stories):"
            )
            for processes in args.web:
                rate = web_pass(processes, database, folder, args.seconds)
                print(f"  {processes} web process{'es' if processes > 1 else '  '} "
                      f"{rate:8.0f} requests/s   {rate / processes:8.0f} per process")  # fmt: skip
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
