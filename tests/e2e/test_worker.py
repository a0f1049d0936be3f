"""`caulbart worker` / `caulbart run` as real processes against the loopback feed server.

Short intervals (`interval: 2s`, `min_interval: 1s`) and a fast tick stand in for a clock; the
assertions count requests at the server and read `caulbart status --json`, never timings of code.
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Caulbart, FeedServer, corpus_path, write_feeds_yaml

CAULBART = str(Path(sys.executable).parent / "caulbart")
FAST = {"interval": "2s", "min_interval": "1s", "timeout": "2s", "host_spacing": "0s",
        "per_host": 50}  # fmt: skip


class Process:
    """A caulbart long-running command, its output captured to a file for assertions."""

    def __init__(
        self, caulbart: Caulbart, *args: str, name: str = "worker", new_session: bool = False
    ) -> None:
        self.log_path = caulbart.cwd / f"{name}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        env = {
            **os.environ,
            "CAULBART_DATABASE_URL": caulbart.database_url,
            "CAULBART_CONFIG": str(caulbart.config),
        }
        self.popen = subprocess.Popen(
            [CAULBART, *args], cwd=caulbart.cwd, env=env, stdout=self._log, stderr=self._log,
            start_new_session=new_session,  # its own process group, as a terminal gives it
        )  # fmt: skip

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
        try:
            return self.popen.wait(timeout=timeout)
        finally:
            self._log.close()


@pytest.fixture
def processes() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for process in started:
        if process.popen.poll() is None:
            process.stop(signal.SIGKILL)


def gaps_between(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def wait_until(condition: Callable[[], bool], timeout: float = 20, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or condition}")


def serving(
    caulbart: Caulbart, processes: list[Process], port: int, *options: str, what: str = "serve"
) -> tuple[Process, str]:
    """`caulbart serve` started on `port` (with `options`), once its /healthz answers 200:
    the process and its base URL."""
    web = Process(caulbart, "serve", *options, "--port", str(port), name="web")
    processes.append(web)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(base + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(up, timeout=60, what=f"{what} answers")
    return web, base


def status(caulbart: Caulbart) -> dict[str, dict[str, object]]:
    result = caulbart("status", "--json")
    assert result.returncode == 0, result.stderr
    return {row["id"]: row for row in map(json.loads, result.stdout.splitlines())}


def reuters(feed_server: FeedServer, path: str = "/reuters.rss", **options: object) -> str:
    file = corpus_path("feeds", "real", "wire", "reuters-worldnews-2018-01-30.rss")
    return feed_server.add_file(path, file, **options)


def test_worker_fetches_each_source_on_its_interval(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    sources = [{"id": "a", "url": reuters(feed_server, "/a.rss")},
               {"id": "b", "url": reuters(feed_server, "/b.rss"), "interval": "4s"}]  # fmt: skip
    write_feeds_yaml(caulbart.config, sources, defaults=FAST)
    worker = Process(caulbart, "worker", "--tick", "0.25")
    processes.append(worker)
    wait_until(lambda: feed_server.requests["/a.rss"] >= 1, what="first fetch")
    time.sleep(8.5)
    assert worker.stop() == 0, worker.log
    # Every 2 s (+ up to 10% jitter) over ~8.5 s, and every 4 s for b.
    assert 4 <= feed_server.requests["/a.rss"] <= 6, feed_server.requests
    assert 2 <= feed_server.requests["/b.rss"] <= 3, feed_server.requests
    times = [t for t, path in feed_server.request_log if path == "/a.rss"]
    gaps = gaps_between(times)
    assert min(gaps) >= 1.9, gaps  # never sooner than the interval
    rows = status(caulbart)
    assert rows["a"]["last_status"] == "not_modified"
    assert rows["a"]["entries"] == 10
    assert "source=a" in worker.log  # structured lines name the source


def test_backoff_grows_on_errors_and_resets_on_success(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    feed_server.add("/flaky.rss", "broken", status=500)
    write_feeds_yaml(
        caulbart.config,
        [{"id": "flaky", "url": feed_server.url("/flaky.rss"), "interval": "1s"}],
        defaults={**FAST, "interval": "1s"},
    )
    worker = Process(caulbart, "worker", "--tick", "0.2")
    processes.append(worker)
    wait_until(lambda: feed_server.requests["/flaky.rss"] >= 4, timeout=20, what="4 failures")
    times = [t for t, path in feed_server.request_log if path == "/flaky.rss"]
    gaps = gaps_between(times)
    # Backoff 1 s, 2 s, 4 s...: each wait at least as long as the one before, roughly doubling.
    assert gaps[1] > gaps[0] * 1.5 and gaps[2] > gaps[1] * 1.5, gaps
    assert int(status(caulbart)["flaky"]["consecutive_errors"]) >= 4  # type: ignore[call-overload]

    reuters(feed_server, "/flaky.rss")  # the publisher recovers
    wait_until(
        lambda: status(caulbart)["flaky"]["consecutive_errors"] == 0, timeout=30, what="reset"
    )
    assert worker.stop() == 0
    assert status(caulbart)["flaky"]["entries"] == 10


def test_retry_after_and_gone_are_respected(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    feed_server.add("/busy.rss", "slow down", status=429, headers={"Retry-After": "120"})
    feed_server.add("/gone.rss", "gone", status=410)
    sources = [
        {"id": "busy", "url": feed_server.url("/busy.rss"), "interval": "1s"},
        {"id": "gone", "url": feed_server.url("/gone.rss"), "interval": "1s"},
        {"id": "fine", "url": reuters(feed_server), "interval": "1s"},
    ]
    write_feeds_yaml(caulbart.config, sources, defaults=FAST)
    worker = Process(caulbart, "worker", "--tick", "0.2")
    processes.append(worker)
    wait_until(lambda: feed_server.requests["/reuters.rss"] >= 4, what="4 fetches of fine")
    assert worker.stop() == 0
    assert feed_server.requests["/busy.rss"] == 1
    assert feed_server.requests["/gone.rss"] == 1
    rows = status(caulbart)
    assert str(rows["gone"]["disabled_reason"]).startswith("410 Gone")
    next_busy = str(rows["busy"]["next_fetch_at"])
    last_busy = str(rows["busy"]["last_fetch_at"])
    from datetime import datetime

    wait = datetime.fromisoformat(next_busy) - datetime.fromisoformat(last_busy)
    assert wait.total_seconds() >= 119


def test_hot_reload_adds_and_removes_sources_and_refuses_a_broken_edit(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    first = {"id": "first", "url": reuters(feed_server, "/first.rss"), "interval": "1s"}
    write_feeds_yaml(caulbart.config, [first], defaults=FAST)
    worker = Process(caulbart, "worker", "--tick", "0.25")
    processes.append(worker)
    wait_until(lambda: feed_server.requests["/first.rss"] >= 1, what="first source fetched")

    second = {"id": "second", "url": reuters(feed_server, "/second.rss"), "interval": "1s"}
    write_feeds_yaml(caulbart.config, [first, second], defaults=FAST)
    wait_until(lambda: feed_server.requests["/second.rss"] >= 1, what="added source fetched")

    good = caulbart.config.read_text()
    caulbart.config.write_text(good + "bogus_key: 1\n")
    # A poll may catch the file half-written and reject that too; the whole edit follows.
    wait_until(lambda: "unknown key 'bogus_key'" in worker.log, what="rejection logged")
    assert f"config rejected, keeping the last good one: {caulbart.config}:" in worker.log
    before = feed_server.requests["/second.rss"]
    wait_until(lambda: feed_server.requests["/second.rss"] >= before + 2, what="old config runs")

    write_feeds_yaml(caulbart.config, [second], defaults=FAST)  # remove "first"
    wait_until(
        lambda: status(caulbart)["first"]["disabled_reason"] == "removed from feeds.yaml",
        what="removed source disabled",
    )
    stopped_at = feed_server.requests["/first.rss"]
    time.sleep(3)
    assert feed_server.requests["/first.rss"] <= stopped_at + 1  # at most one already in flight
    assert worker.stop() == 0
    assert status(caulbart)["first"]["entries"] == 10  # disabled, never deleted


def test_sigterm_stops_the_worker_cleanly_within_seconds(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": reuters(feed_server)}], defaults=FAST)
    worker = Process(caulbart, "worker", "--tick", "0.25")
    processes.append(worker)
    wait_until(lambda: status(caulbart).get("a", {}).get("entries") == 10, what="first ingest")
    started = time.monotonic()
    assert worker.stop(signal.SIGTERM) == 0, worker.log
    assert time.monotonic() - started < 5
    assert "stopped" in worker.log
    assert status(caulbart)["a"]["claimed_by"] is None  # no claim left behind


def test_run_serves_the_web_front_beside_the_clock(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process], unused_port: int
) -> None:
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": reuters(feed_server)}], defaults=FAST)
    run = Process(caulbart, "run", "--port", str(unused_port), "--tick", "0.25", name="run")
    processes.append(run)

    def healthy() -> bool:
        try:
            answer = httpx.get(f"http://127.0.0.1:{unused_port}/healthz", timeout=1)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and answer.json()["last_success_at"] is not None

    wait_until(healthy, what="web front reports an ingest")
    assert "waitress" in run.log.lower() or "web listening" in run.log
    assert run.stop() == 0, run.log


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_second_worker_on_one_sqlite_file_is_refused(
    tmp_path: Path, feed_server: FeedServer, processes: list[Process]
) -> None:
    caulbart = Caulbart(tmp_path / "feeds.yaml", f"sqlite:///{tmp_path / 'one.sqlite3'}", tmp_path)
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": reuters(feed_server)}], defaults=FAST)
    first = Process(caulbart, "worker", name="first")
    processes.append(first)
    wait_until(lambda: feed_server.requests["/reuters.rss"] >= 1, what="first worker running")
    second = Process(caulbart, "worker", name="second")
    processes.append(second)
    assert second.popen.wait(timeout=30) == 3
    assert "another caulbart worker" in second.log and "one worker per database" in second.log
    assert first.stop() == 0


def test_sources_on_one_host_share_its_budget(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    sources = [{"id": f"s{i}", "url": reuters(feed_server, f"/s{i}.rss")} for i in range(4)]
    defaults = {**FAST, "per_host": 1, "host_spacing": "1s", "interval": "1s"}
    write_feeds_yaml(caulbart.config, sources, defaults=defaults)
    worker = Process(caulbart, "worker", "--tick", "0.2")
    processes.append(worker)
    # Generous: the worker first starts its parsing processes; the gaps below are what counts.
    wait_until(lambda: len(feed_server.request_log) >= 6, timeout=60, what="six requests")
    assert worker.stop() == 0
    times = [t for t, _ in feed_server.request_log]
    gaps = gaps_between(times)
    # One request at a time, a second apart, across four sources. Turns are a second apart
    # when sources are claimed; the server sees each request a little after its claim (the
    # claim commits, a fetching thread takes it), and that delay varies: 0.12 s on a loaded CI
    # run. With host_spacing 0s the smallest gap was 0.16 s.
    assert min(gaps) >= 0.75, gaps


def test_two_in_flight_on_one_host_still_start_host_spacing_apart(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    sources = [{"id": f"s{i}", "url": reuters(feed_server, f"/s{i}.rss")} for i in range(6)]
    defaults = {**FAST, "per_host": 2, "host_spacing": "1s", "interval": "1h"}
    write_feeds_yaml(caulbart.config, sources, defaults=defaults)
    worker = Process(caulbart, "worker", "--tick", "0.2")
    processes.append(worker)
    wait_until(lambda: len(feed_server.request_log) >= 6, timeout=60, what="six requests")
    assert worker.stop() == 0
    # Two claims of one tick are two turns, a second apart, each request waiting for its own:
    # per_host bounds how many are in flight, host_spacing how close two start (tolerance: a
    # request on a new connection reaches the server later than one on a kept-alive one).
    assert min(gaps_between([t for t, _ in feed_server.request_log])) >= 0.85


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_postgres_workers_take_turns_on_one_host(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    sources = [{"id": f"s{i}", "url": reuters(feed_server, f"/s{i}.rss")} for i in range(6)]
    defaults = {**FAST, "per_host": 2, "host_spacing": "1s", "interval": "1h"}
    write_feeds_yaml(caulbart.config, sources, defaults=defaults)
    assert caulbart("status").returncode == 0  # migrate once before the workers race
    workers = [Process(caulbart, "worker", "--tick", "0.2", name=f"w{i}") for i in range(2)]
    processes.extend(workers)
    wait_until(lambda: len(feed_server.request_log) >= 6, timeout=60, what="six requests")
    for worker in workers:
        assert worker.stop() == 0, worker.log
    # The turns live in the hosts table, so the second worker's requests wait for the first's
    # turns. A request starts a little after its turn (the worker's loop wakes, connects), by
    # a delay that varies between the two processes: 0.26 s for a worker's first request on a
    # machine loaded eight times over its cores.
    assert min(gaps_between([t for t, _ in feed_server.request_log])) >= 0.7


def distinct_feeds(count: int, per_feed: int = 3) -> list[bytes]:
    """`count` RSS documents, each telling its own real articles (no two share a story)."""
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    feeds = []
    for index in range(count):
        items = "".join(
            f"<item><guid>{r['category']}-{r['doc']}</guid><title>{html.escape(r['title'])}</title>"
            f"<link>https://news.example/{r['category']}/{r['doc']}</link>"
            f"<description>{html.escape(r['body'][:1500])}</description></item>"
            for r in rows[index * per_feed : (index + 1) * per_feed]
        )
        feeds.append(f'<rss version="2.0"><channel><title>f{index}</title>{items}</channel></rss>'
                     .encode())  # fmt: skip
    return feeds


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_four_postgres_workers_share_200_sources_without_double_fetching(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    sources = [
        {"id": f"s{i:03d}", "url": feed_server.add(f"/s{i:03d}.rss", body), "interval": "3s"}
        for i, body in enumerate(distinct_feeds(200))
    ]
    write_feeds_yaml(caulbart.config, sources, defaults={**FAST, "concurrency": 4})
    assert caulbart("status").returncode == 0  # migrate once before the workers race
    workers = [Process(caulbart, "worker", "--tick", "0.25", name=f"w{i}") for i in range(4)]
    processes.extend(workers)
    wait_until(lambda: len(feed_server.requests) >= 200, timeout=90, what="every source once")
    time.sleep(4)
    killed_at = time.monotonic()
    workers[0].stop(signal.SIGKILL)  # its claims must be taken by the others
    dead_at = time.monotonic()  # the process is gone (reaped) by now
    time.sleep(2 * 2 + 5 + 6)  # lease (2 x timeout + 5 s) plus more than one interval
    for worker in workers[1:]:
        assert worker.stop() == 0, worker.log

    by_source: dict[str, list[float]] = defaultdict(list)
    for moment, path in feed_server.request_log:
        by_source[path].append(moment)
    assert len(by_source) == 200
    for path, times in by_source.items():
        # Once per due period, never twice: the interval is 3 s, plus jitter. The one exception
        # is a fetch the killed worker made and never recorded: another worker fetches the
        # source again at once (its claimer is dead), so that pair straddles the kill.
        early = [(a, b) for a, b in itertools.pairwise(times) if b - a < 2.9]
        assert all(a <= dead_at and b >= killed_at for a, b in early), (path, gaps_between(times))
        assert len(early) <= 1, (path, gaps_between(times))
        assert max(times) > killed_at, path  # no source lost with the killed worker
    assert "store failed" not in "".join(worker.log for worker in workers[1:])
    assert len(status(caulbart)) == 200
    assert sum(int(row["entries"]) for row in status(caulbart).values()) == 600  # type: ignore[call-overload]


def stored_by_four_workers(
    caulbart: Caulbart, processes: list[Process], sources: list[dict[str, object]], entries: int
) -> list[dict[str, Any]]:
    """Four workers ingest the sources at once until `entries` are stored; the export after."""
    write_feeds_yaml(caulbart.config, sources, defaults={**FAST, "concurrency": 4})
    assert caulbart("status").returncode == 0
    workers = [Process(caulbart, "worker", "--tick", "0.25", name=f"w{i}") for i in range(4)]
    processes.extend(workers)
    wait_until(
        lambda: sum(int(r["entries"]) for r in status(caulbart).values()) == entries,  # type: ignore[call-overload]
        timeout=90,
        what=f"all {entries} entries stored",
    )
    for worker in workers:
        assert worker.stop() == 0
    logs = "".join(worker.log for worker in workers)
    assert "store failed" not in logs, logs[-3000:]
    exported = caulbart("export")
    return [json.loads(line) for line in exported.stdout.splitlines()]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_storing_the_same_stories_at_once_lose_nothing(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    """20 feeds syndicating the same 10 wire stories: every worker writes to the same stories."""
    body = corpus_path("feeds", "real", "wire", "reuters-worldnews-2018-01-30.rss").read_bytes()
    sources = [
        {"id": f"s{i:02d}", "url": feed_server.add(f"/s{i:02d}.rss", body), "interval": "1h"}
        for i in range(20)
    ]
    stories = stored_by_four_workers(caulbart, processes, sources, entries=200)
    assert len(stories) == 10
    assert all(len(story["entries"]) == 20 for story in stories)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_storing_tellings_of_the_same_news_at_once_make_one_story_each(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    """12 agencies tell the same 6 articles in their own words and links: only near-duplicate
    matching joins them, and 4 workers storing them at once must still make 6 stories."""
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        articles = [row for row in csv.DictReader(handle) if row["category"] == "tech"][:6]
    sources = []
    for agency in range(12):
        # Agencies named by letters: a number only one side's headline holds is news of its own
        # (templated items, issue 33), and these tellings differ by their agency alone.
        name = chr(ord("A") + agency)
        items = []
        for number, row in enumerate(articles):
            paragraphs = [p for p in row["body"].split("\n\n") if p.strip()]
            paragraphs[0] = f"LONDON (Agency {name}) - {paragraphs[0]}"
            if agency % 2:
                paragraphs = [p.replace(" said", " says") for p in paragraphs[:-1]]
            body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
            items.append(
                f"<item><guid>a{agency}-{number}</guid><title>{html.escape(row['title'])} "
                f"({name})</title><link>https://a{agency}.example/{number}</link>"
                f"<description>{html.escape(body)}</description></item>"
            )
        feed = (
            f"<rss version='2.0'><channel><title>a{agency}</title>{''.join(items)}</channel></rss>"
        )
        url = feed_server.add(f"/a{agency}.rss", feed)
        sources.append({"id": f"a{agency:02d}", "url": url, "interval": "1h"})
    stories = stored_by_four_workers(caulbart, processes, sources, entries=72)
    assert sorted(len(story["entries"]) for story in stories) == [12] * 6
