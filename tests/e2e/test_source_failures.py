"""One source's failure is that source's error, whatever the exception; only the database itself
failing ends a pass. Through the `caulbart` command, against feeds on 127.0.0.1 and real
databases (a full disk is a real, small filesystem)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aggregator.storage.db import head_revision
from tests.conftest import IN_CI, Caulbart, FeedServer, corpus_path, write_feeds_yaml
from tests.e2e.test_faults import CAULBART, DEFAULTS, PER_SOURCE, descendants, serve_articles
from tests.e2e.test_worker import FAST, Process, reuters, status, wait_until

# A channel asking to be left alone for 10^20 minutes: its hint overflows the database's
# integer when the source is stored (the store stage).
HUGE_TTL = (
    "<rss version='2.0'><channel><title>Rested</title><ttl>99999999999999999999</ttl>"
    "<item><guid>t1</guid><title>A story told at rest</title><link>https://t.example/1</link>"
    "<description>An item of a feed that asks for a very long rest.</description></item>"
    "</channel></rss>"
)
# A JSON Feed whose headline holds half a UTF-16 pair: the text cannot be encoded, so
# normalising it fails (the prepare stage, in a pool process).
HALF_CHARACTER = (
    '{"version": "https://jsonfeed.org/version/1.1", "title": "Halves", "items": [{"id": "h1",'
    ' "url": "https://h.example/1", "title": "A broken \\ud800 headline",'
    ' "content_text": "Words of an item whose headline holds half a character."}]}'
)
# A line of Caulbart's log (cli._setup_logging's format), as opposed to anything else on stderr.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) ")


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        if process.popen.poll() is None:
            process.stop(signal.SIGKILL)


def hostile_sources(feed_server: FeedServer) -> list[dict[str, object]]:
    """Two good sources and three that fail in different stages; five, so the pool prepares."""
    year_one = corpus_path("feeds", "real", "fastfeedparser-2026", "3c1152be6c9e4752.rss")
    return [
        {"id": "good", "url": reuters(feed_server, "/good.rss")},
        {"id": "also-good", "url": reuters(feed_server, "/also-good.rss")},
        {"id": "huge-ttl", "url": feed_server.add("/ttl.rss", HUGE_TTL)},
        {
            "id": "half-char",
            "url": feed_server.add("/half.json", HALF_CHARACTER, content_type="application/json"),
        },
        {"id": "down", "url": feed_server.add("/down.rss", "oops", status=500)},
        # An item dated in the year 1: it ended whole passes (OverflowError in the store).
        {"id": "year-one", "url": feed_server.add_file("/year-one.rss", year_one)},
    ]


def assert_hostile_sources_recorded(rows: dict[str, dict[str, object]]) -> None:
    for source in ("good", "also-good"):
        assert rows[source]["last_status"] == "ok", rows[source]
        assert rows[source]["entries"] == 10
    for source in ("huge-ttl", "half-char", "down"):
        row = rows[source]
        assert row["last_status"] == "error", row
        assert row["consecutive_errors"] == 1, row
        assert row["claimed_by"] is None, row  # released: due again after its backoff
        assert row["next_fetch_at"] is not None
    assert str(rows["huge-ttl"]["last_error"]).startswith("store error: "), rows["huge-ttl"]
    assert str(rows["half-char"]["last_error"]).startswith("prepare error: UnicodeEncodeError: "), (
        rows["half-char"]
    )
    assert rows["down"]["last_error"] == "HTTP 500 Internal Server Error"
    # Stored, or failed with its reason recorded: never left claimed without a word.
    year_one = rows["year-one"]
    assert year_one["claimed_by"] is None
    assert year_one["entries"] or year_one["last_error"], year_one


def test_a_source_failing_in_any_stage_is_its_error_and_the_pass_stores_the_others(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    write_feeds_yaml(caulbart.config, hostile_sources(feed_server))
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    rows = status(caulbart)
    assert_hostile_sources_recorded(rows)
    # The log says which source failed and why, at WARNING.
    for source in ("huge-ttl", "half-char", "down"):
        line = next(
            (line for line in result.stderr.splitlines() if f"source={source} " in line), ""
        )
        assert " WARNING " in line and f"error={rows[source]['last_error']}" in line, line
    # The summary says it too.
    assert "UnicodeEncodeError" in result.stdout
    stored = sum(int(str(rows[source]["entries"] or 0)) for source in rows)
    assert stored >= 20 and f"{stored} new" in result.stdout


def test_a_worker_records_a_failing_source_and_releases_it(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    sources = [{**source, "interval": "1h"} for source in hostile_sources(feed_server)]
    write_feeds_yaml(caulbart.config, sources, defaults=FAST)
    worker = Process(caulbart, "worker", "--tick", "0.25")
    processes.append(worker)

    def settled() -> bool:
        rows = status(caulbart)
        return len(rows) == len(sources) and all(
            row["last_status"] is not None and row["claimed_by"] is None for row in rows.values()
        )

    wait_until(settled, timeout=60, what="every source stored or recorded")
    assert worker.stop() == 0, worker.log
    assert_hostile_sources_recorded(status(caulbart))
    assert "ingest failed" not in worker.log


def test_migrating_logs_one_line_and_nothing_due_says_when_next(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    write_feeds_yaml(caulbart.config, [{"id": "good", "url": reuters(feed_server)}])
    first = caulbart("fetch")  # a new source is due at once
    assert first.returncode == 0, first.stderr
    assert "alembic" not in first.stderr
    assert first.stderr.count(f"database at revision {head_revision()}") == 1
    assert "1 sources: 10 new" in first.stdout

    second = caulbart("fetch")
    assert second.returncode == 0, second.stderr
    assert "database at revision" not in second.stderr  # migrated already: nothing to say
    rows = status(caulbart)
    assert f"nothing due; next is good at {rows['good']['next_fetch_at']}" in second.stdout
    assert re.search(r"\(in \d+ min\)", second.stdout), second.stdout
    assert feed_server.requests["/reuters.rss"] == 1


def other_lines(stderr: str) -> list[str]:
    """What stderr holds besides log lines: a traceback, a message."""
    return [line for line in stderr.splitlines() if line.strip() and not LOG_LINE.match(line)]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ctrl_c_on_fetch_prints_one_line_and_no_traceback(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    sources = [{"id": f"fast{n}", "url": reuters(feed_server, f"/fast{n}.rss")} for n in range(4)]
    slow = reuters(feed_server, "/slow.rss", drip_delay=0.05)  # a minute and more to send
    write_feeds_yaml(
        caulbart.config, [*sources, {"id": "slow", "url": slow}], defaults={"timeout": "5m"}
    )
    env = {
        **os.environ,
        "CAULBART_DATABASE_URL": caulbart.database_url,
        "CAULBART_CONFIG": str(caulbart.config),
        "CAULBART_PREPARE_PROCESSES": "2",
    }
    err = caulbart.cwd / "fetch.err"
    with err.open("w") as stderr:
        fetch = subprocess.Popen(
            [CAULBART, "fetch", "--all"], cwd=caulbart.cwd, env=env, stdout=subprocess.DEVNULL,
            stderr=stderr, start_new_session=True,  # its own process group, as in a terminal
        )  # fmt: skip
    try:
        # The fast sources went to the pool (the fork server and its two processes), the slow
        # one is still coming; its processes have started, and prepared what they were given.
        wait_until(lambda: len(descendants(fetch.pid)) >= 3, timeout=60, what="the pool")
        time.sleep(2)
        assert feed_server.requests["/slow.rss"] == 1 and fetch.poll() is None
        os.killpg(fetch.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        code = fetch.wait(timeout=30)
    finally:
        if fetch.poll() is None:
            os.killpg(fetch.pid, signal.SIGKILL)
    assert code == 130
    assert other_lines(err.read_text()) == [
        "caulbart: interrupted (what was stored before is kept)"
    ], err.read_text()[-3000:]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_ctrl_c_on_run_stops_it_with_no_traceback(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    sources = [{"id": f"s{n}", "url": reuters(feed_server, f"/s{n}.rss")} for n in range(2)]
    write_feeds_yaml(caulbart.config, sources, defaults=FAST)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    run = Process(caulbart, "run", "--port", port, "--tick", "0.25", name="run", new_session=True)
    processes.append(run)
    wait_until(lambda: "status=ok" in run.log, timeout=60, what="a source stored")
    assert len(descendants(run.popen.pid)) >= 2  # the pool is up (started before the 1st tick)
    os.killpg(run.popen.pid, signal.SIGINT)
    assert run.popen.wait(timeout=30) == 0
    run.stop()
    assert "Traceback" not in run.log and "KeyboardInterrupt" not in run.log, run.log[-3000:]
    assert "stopped" in run.log


def can_mount_a_small_disk() -> str | None:
    """None if this user may mount a tmpfs in a user namespace of its own, else why not."""
    if shutil.which("unshare") is None:
        return "unshare(1) is not installed"
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
         "mount -t tmpfs -o size=64k probe /mnt"],
        capture_output=True, text=True,
    )  # fmt: skip
    return None if probe.returncode == 0 else f"no tmpfs in a user namespace: {probe.stderr}"


def test_a_full_disk_ends_the_pass_with_the_reason_and_no_unstored_source_is_ok(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    """SQLite on a filesystem that fills up mid-pass: writes fail with ENOSPC, which SQLite
    reports as SQLITE_FULL, "database or disk is full". The filesystem is a tmpfs of a few
    hundred kilobytes beyond the migrated database, mounted in a user and mount namespace of the
    command's own (nothing is mounted for anyone else, and no privilege is needed)."""
    problem = can_mount_a_small_disk()
    if problem:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)
    seed = tmp_path / "seed.sqlite3"
    caulbart = Caulbart(tmp_path / "feeds.yaml", f"sqlite:///{seed}", tmp_path)
    write_feeds_yaml(caulbart.config, serve_articles(feed_server), defaults=DEFAULTS)
    assert caulbart("status").returncode == 0  # migrated: the pass itself fills the disk
    disk = tmp_path / "disk"
    disk.mkdir()
    size_kib = seed.stat().st_size // 1024 + 512
    database = disk / "caulbart.sqlite3"
    script = f"""
        mount -t tmpfs -o size={size_kib}k caulbart-full {disk} || exit 99
        cp {seed} {database}
        export CAULBART_DATABASE_URL=sqlite:///{database} CAULBART_CONFIG={caulbart.config}
        {CAULBART} fetch --all > fetch.out 2> fetch.err
        echo $? > fetch.code
        {CAULBART} status --json > status.out
    """
    subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
        cwd=tmp_path, check=True, timeout=300,
    )  # fmt: skip
    stderr = (tmp_path / "fetch.err").read_text()
    assert (tmp_path / "fetch.code").read_text().strip() == "4", stderr[-3000:]
    assert other_lines(stderr) == [
        f"caulbart: database error on sqlite:///{database}: database or disk is full"
    ], stderr[-3000:]
    # No source is `ok` unless its entries are stored; the log says `ok` only of those.
    rows = [json.loads(line) for line in (tmp_path / "status.out").read_text().splitlines()]
    assert len(rows) == 72
    for row in rows:
        assert row["last_status"] in (None, "ok"), row  # the disk is not a source's error
        assert row["entries"] == (PER_SOURCE if row["last_status"] == "ok" else 0), row
    logged_ok = set(re.findall(r"source=(\S+) status=ok", stderr))
    assert logged_ok == {row["id"] for row in rows if row["last_status"] == "ok"}
