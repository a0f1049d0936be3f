"""Start-up: how long the commands that do not ingest take, each in a fresh process.

Ingests a few feeds of the ingest bench's corpus (served on loopback) into a fresh SQLite file,
then runs `caulbart --help`, `check`, `status` and `explain <story id>` RUNS times each (after
one untimed run, so compiled bytecode is on disk) and prints the median and 90th percentile of
the wall time beside the goal, with the median CPU seconds (user + system: steadier than wall
time on a busy machine). The baseline in the same run is the `reader` library opening a
database (`make_reader(':memory:')`, in bench/.venv-reader, which bench/ingest_bench.py
installs), else a bare `python -c pass` (the interpreter's own floor).

    .venv/bin/python bench/startup_bench.py [--runs 10] [--feeds 5] [--entries 20]
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ingest_bench import CAULBART, READER_VENV, build_feeds, serve, write_config

GOAL_SECONDS = 0.5
READER_OPEN = "import reader; reader.make_reader(':memory:')"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], env: dict[str, str], cwd: str, runs: int) -> tuple[list[float], float]:
    """Wall seconds of each of `runs` fresh processes of `argv`, and their median CPU seconds."""
    subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=True)  # warm-up
    walls, cpus = [], []
    for _ in range(runs):
        started, cpu_before = time.perf_counter(), children_cpu()
        subprocess.run(argv, env=env, cwd=cwd, capture_output=True, check=True)
        walls.append(time.perf_counter() - started)
        cpus.append(children_cpu() - cpu_before)
    return walls, statistics.median(cpus)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def baseline() -> tuple[str, list[str]]:
    """reader opening a database if bench/.venv-reader has it, else the bare interpreter."""
    python = READER_VENV / "bin" / "python"
    if python.exists():
        found = subprocess.run([python, "-c", "import reader"], capture_output=True)
        if found.returncode == 0:
            return "reader make_reader", [str(python), "-c", READER_OPEN]
    return "python -c pass", [sys.executable, "-c", "pass"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--feeds", type=int, default=5)
    parser.add_argument("--entries", type=int, default=20)
    args = parser.parse_args()

    documents = build_feeds(args.feeds, args.entries)
    server = serve(documents)
    port = server.server_address[1]
    with tempfile.TemporaryDirectory() as folder:
        config = write_config(Path(folder), [f"http://127.0.0.1:{port}{p}" for p in documents])
        database = Path(folder) / "caulbart.sqlite3"
        env = {
            **os.environ,
            "CAULBART_DATABASE_URL": f"sqlite:///{database}",
            "CAULBART_CONFIG": str(config),
        }
        subprocess.run(
            [CAULBART, "fetch", "--all"], env=env, cwd=folder, capture_output=True, check=True
        )
        with sqlite3.connect(database) as connection:
            (story_id,) = connection.execute("SELECT min(id) FROM stories").fetchone()
        server.shutdown()
        commands = {
            "caulbart --help": [str(CAULBART), "--help"],
            "caulbart check": [str(CAULBART), "check"],
            "caulbart status": [str(CAULBART), "status"],
            f"caulbart explain {story_id}": [str(CAULBART), "explain", str(story_id)],
        }
        floor_name, floor_argv = baseline()
        floor, floor_cpu = timed(floor_argv, env, folder, args.runs)
        floor_median = statistics.median(floor)
        print(
            f"Start-up, {args.runs} fresh processes each ({len(documents)} sources, "
            f"{args.feeds * args.entries} entries on SQLite); goal: every command <= "
            f"{GOAL_SECONDS:.1f} s"
        )
        header = f"{'command':<28}{'median s':>10}{'p90 s':>8}{'cpu s':>8}"
        print(f"{header}{'goal':>8}  {'met':<4}{'x ' + floor_name:>22}")
        for name, argv in commands.items():
            walls, cpu = timed(argv, env, folder, args.runs)
            median = statistics.median(walls)
            met = "yes" if median <= GOAL_SECONDS else "no"
            print(
                f"{name:<28}{median:>10.3f}{percentile(walls, 0.9):>8.3f}{cpu:>8.3f}"
                f"{GOAL_SECONDS:>8.1f}  {met:<4}{median / floor_median:>22.2f}"
            )
        print(
            f"{floor_name + ' (baseline)':<28}{floor_median:>10.3f}"
            f"{percentile(floor, 0.9):>8.3f}{floor_cpu:>8.3f}"
        )


if __name__ == "__main__":
    main()
