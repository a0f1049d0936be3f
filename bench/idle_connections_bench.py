"""How many idle connections can `caulbart serve`'s waitress hold and still answer /healthz fast?

    .venv/bin/python bench/idle_connections_bench.py [--counts 0 50 100 150 ...] [--requests 5]

For each of two settings (waitress's defaults with Caulbart's former 8 threads, and today's
`runner.WAITRESS_SETTINGS`), the web app runs under waitress in a child process over an empty
SQLite database on 127.0.0.1. For each count N: open N TCP connections that send nothing, then
time /healthz on a fresh connection `--requests` times (each given `--timeout` seconds; the
first that times out ends the count), close the idle connections and let the server drop them.
Prints the median per N and settings, and the largest N answered under 100 ms by each.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import resource
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.cli.runner import WAITRESS_SETTINGS  # noqa: E402

FORMER_SETTINGS: dict[str, int | bool] = {"threads": 8}
FAST_ENOUGH = 0.100  # seconds: an answer a load balancer's health check counts as healthy
COUNTS = [0, 50, 100, 150, 300, 600, 900, 990, 1100]


def serve(settings: dict[str, int | bool], database: str, port: int) -> None:
    """The child: the web app under waitress with these settings until terminated."""
    import logging
    import os

    os.environ["CAULBART_DATABASE_URL"] = database
    logging.basicConfig(level=logging.ERROR)  # not waitress's "connection limit" per accept
    from waitress.server import create_server

    from aggregator.storage.db import open_database
    from web import create_app

    app = create_app(open_database(database), {"SECRET_KEY": "bench"})
    create_server(app, host="127.0.0.1", port=port, **settings).run()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthz_times(port: int, requests: int, timeout: float) -> list[float | None]:
    """Seconds per /healthz, each on a new connection (http.client: no client set-up in the
    figure); None for the first that went unanswered, which ends the series."""
    times: list[float | None] = []
    for _ in range(requests):
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", "/healthz")
            ok = connection.getresponse().status == 200
        except OSError:
            ok = False
        finally:
            connection.close()
        times.append(time.perf_counter() - started if ok else None)
        if not ok:
            break
    return times


def idle_then_healthz(port: int, count: int, requests: int, timeout: float) -> float | None:
    """Open `count` idle connections, time /healthz, close them; None when one went unanswered
    (or the server's backlog was so full that an idle connection could not even be made)."""
    idle: list[socket.socket] = []
    try:
        for _ in range(count):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=timeout))
        time.sleep(0.5)  # let the server accept what it will
        times = healthz_times(port, requests, timeout)
    except OSError:
        return None
    finally:
        for connection in idle:
            connection.close()
    answered = [t for t in times if t is not None]
    return statistics.median(answered) if len(answered) == requests else None


def measure(
    name: str, settings: dict[str, int | bool], counts: list[int], requests: int, timeout: float
) -> dict[int, float | None]:
    """Median /healthz seconds per idle-connection count (None when one went unanswered; the
    counts after it are not tried)."""
    folder = tempfile.mkdtemp(prefix="caulbart-idle-")
    database = f"sqlite:///{folder}/bench.sqlite3"
    port = free_port()
    child = multiprocessing.get_context("spawn").Process(
        target=serve, args=(settings, database, port), daemon=True
    )
    child.start()
    deadline = time.monotonic() + 60
    while None in healthz_times(port, 1, 1.0):
        if time.monotonic() > deadline:
            raise SystemExit(f"{name}: the server did not start")
        time.sleep(0.2)
    medians: dict[int, float | None] = {}
    try:
        for count in counts:
            median = idle_then_healthz(port, count, requests, timeout)
            medians[count] = median
            shown = f"{median * 1000:8.1f} ms" if median is not None else "  no answer"
            print(f"{name:>8}  idle={count:5d}  healthz median {shown}", flush=True)
            if median is None:
                break  # more idle connections only make it worse: the run stays bounded
            time.sleep(1.0 + count / 500)  # the server notices the closed connections
    finally:
        child.terminate()
        child.join(10)
    return medians


def _cell(medians: dict[int, float | None], count: int) -> str:
    if count not in medians:
        return "not tried"
    median = medians[count]
    return f"{median * 1000:.1f}" if median is not None else "no answer"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=COUNTS)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = max(args.counts) + 256
    if soft < needed <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    results = {
        name: measure(name, settings, args.counts, args.requests, args.timeout)
        for name, settings in (("former", FORMER_SETTINGS), ("today", WAITRESS_SETTINGS))
    }
    print(f"\nidle connections | former (median ms) | today (median ms)   [{args.requests} each]")
    for count in args.counts:
        text = [_cell(results[name], count) for name in ("former", "today")]
        print(f"{count:16d} | {text[0]:>18} | {text[1]:>17}")
    for name, medians in results.items():
        fast = [n for n, m in medians.items() if m is not None and m < FAST_ENOUGH]
        failed = [n for n, m in medians.items() if m is None or m >= FAST_ENOUGH]
        survived = max((n for n in fast if all(n < f for f in failed)), default=None)
        print(f"{name}: /healthz under 100 ms with up to {survived} idle connections")


if __name__ == "__main__":
    main()
