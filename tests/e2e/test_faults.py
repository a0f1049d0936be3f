"""Faults: a fetch killed at random points, again and again, leaves a consistent database, and a
re-run stores every item exactly once. On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
import csv
import html
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select, text

from aggregator.ingest.pipeline import GROUP_SOURCES
from aggregator.storage.db import open_database, session_factory
from aggregator.storage.models import Entry, Story
from tests.conftest import Caulbart, FeedServer, corpus_path, write_feeds_yaml

CAULBART = str(Path(sys.executable).parent / "caulbart")
# More sources than two SQLite write groups commit (pipeline.GROUP_SOURCES): a pass commits at
# least three times, so a kill soon after its first commit lands mid-ingest.
SOURCES = 72
PER_SOURCE = 15
DEFAULTS = {"timeout": "2s", "concurrency": 4, "per_host": 4}


def serve_articles(server: FeedServer) -> list[dict[str, object]]:
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[: SOURCES * PER_SOURCE]
    sources: list[dict[str, object]] = []
    for index in range(SOURCES):
        chunk = rows[index * PER_SOURCE : (index + 1) * PER_SOURCE]
        items = "".join(
            f"<item><guid>{r['category']}-{r['doc']}</guid><title>{html.escape(r['title'])}</title>"
            f"<link>https://news.example/{r['category']}/{r['doc']}</link>"
            f"<description>{html.escape(r['body'])}</description></item>"
            for r in chunk
        )
        body = f'<rss version="2.0"><channel><title>s{index}</title>{items}</channel></rss>'
        sources.append({"id": f"s{index:02d}", "url": server.add(f"/s{index}.rss", body)})
    return sources


def stored(engine: Engine) -> int:
    # A plain read (not session_factory's write transaction): in WAL mode it never waits for
    # the writer, so it sees each source's commit as it lands.
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Entry)) or 0


def check_consistent(engine: Engine) -> dict[str, int]:
    """Integrity holds; every source is stored whole or not at all. Returns entries per source."""
    with session_factory(engine)() as session:
        if engine.dialect.name == "sqlite":
            assert session.execute(text("PRAGMA integrity_check")).scalar() == "ok"
            assert session.execute(text("PRAGMA foreign_key_check")).all() == []
        orphans = session.scalar(
            select(func.count()).select_from(Story).where(~Story.entries.any())
        )
        assert orphans == 0  # no story without its entry: they are written together
        per_source = dict(
            session.execute(select(Entry.source_id, func.count()).group_by(Entry.source_id)).all()
        )
    for source, count in per_source.items():
        assert count == PER_SOURCE, (source, count)  # one transaction per source
    return per_source


def test_killed_fetches_leave_a_consistent_database_and_a_rerun_completes(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    assert SOURCES > 2 * GROUP_SOURCES
    write_feeds_yaml(caulbart.config, serve_articles(feed_server), defaults=DEFAULTS)
    env = {
        **os.environ,
        "CAULBART_DATABASE_URL": caulbart.database_url,
        "CAULBART_CONFIG": str(caulbart.config),
    }
    assert caulbart("status").returncode == 0  # the schema exists before the first kill
    engine = open_database(caulbart.database_url)
    rng = random.Random(20261125)
    stored_after_kills = []
    orphans: set[int] = set()
    for _ in range(8):
        process = subprocess.Popen(
            [CAULBART, "fetch", "--all"],
            cwd=caulbart.cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # Kill at a random moment after this run has committed something new (so the kill lands
        # mid-ingest whatever the machine's speed), or when it ends on its own.
        before = stored(engine)
        deadline = time.monotonic() + 60
        while stored(engine) == before and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.1))
        helpers = descendants(process.pid)  # its parsing processes, if it started them
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        orphans.update(helpers)
        stored_after_kills.append(sum(check_consistent(engine).values()))

    # No wait for leases to expire: claims of a dead process of this machine are free at once.
    final = caulbart("fetch", "--all")
    assert final.returncode == 0, final.stderr
    per_source = check_consistent(engine)
    assert len(per_source) == SOURCES
    # Kills after the stores, while the pass related its stories, left them queued: all done now.
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM stories_to_relate")) == 0
        related = connection.scalar(text("SELECT count(DISTINCT story_id) FROM related_stories"))
    assert related and related >= 0.9 * SOURCES * PER_SOURCE
    engine.dispose()

    exported = [json.loads(line) for line in caulbart("export").stdout.splitlines()]
    keys = [(e["source"], e["guid"]) for story in exported for e in story["entries"]]
    assert len(keys) == len(set(keys)) == SOURCES * PER_SOURCE  # every item exactly once
    assert any(0 < count < SOURCES * PER_SOURCE for count in stored_after_kills), (
        "no kill landed mid-ingest; the test did not exercise a crash",
        stored_after_kills,
    )
    assert orphans, "no kill caught the parsing processes running; nothing was checked"
    # The killed command's parsing processes follow it within seconds, never live on.
    deadline = time.monotonic() + 10
    while any(map(alive, orphans)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in orphans if alive(pid)]


def alive(pid: int) -> bool:
    """Running, not gone and not a zombie awaiting its reaper."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def descendants(pid: int) -> set[int]:
    """A process's children, theirs and so on (Linux /proc): the parsing workers are children
    of the fork server the command started."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.update(int(child) for child in task.read_text().split())
        except OSError:
            continue
    for child in list(found):
        found |= descendants(child)
    return found


def test_a_read_only_database_is_a_clear_error_not_a_traceback(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    database = tmp_path / "ro.sqlite3"
    writable = Caulbart(tmp_path / "feeds.yaml", f"sqlite:///{database}", tmp_path)
    write_feeds_yaml(writable.config, serve_articles(feed_server)[:1], defaults=DEFAULTS)
    assert writable("fetch", "--all").returncode == 0
    read_only = Caulbart(writable.config, f"sqlite:///file:{database}?mode=ro&uri=true", tmp_path)
    result = read_only("fetch", "--all")
    assert result.returncode == 4
    assert "caulbart: database error" in result.stderr
    assert "readonly database" in result.stderr
    assert "Traceback" not in result.stderr
    assert writable("export").stdout.count('"source": "s00"') == PER_SOURCE  # nothing lost


def test_an_unreachable_database_is_a_clear_error_with_the_password_hidden(
    tmp_path: Path,
) -> None:
    unreachable = Caulbart(
        tmp_path / "feeds.yaml", "postgresql+psycopg://caulbart:s3cret@127.0.0.1:1/x", tmp_path
    )
    write_feeds_yaml(unreachable.config, [{"id": "a", "url": "http://127.0.0.1:1/feed"}])
    result = unreachable("status")
    assert result.returncode == 4
    assert "caulbart: database error on postgresql+psycopg://caulbart:***@127.0.0.1:1/x" in (
        result.stderr
    )
    assert "s3cret" not in result.stderr + result.stdout


def test_a_sqlite_database_locked_for_a_while_is_waited_for(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    database = tmp_path / "busy.sqlite3"
    caulbart = Caulbart(tmp_path / "feeds.yaml", f"sqlite:///{database}", tmp_path)
    write_feeds_yaml(caulbart.config, serve_articles(feed_server)[:2], defaults=DEFAULTS)
    assert caulbart("status").returncode == 0
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")  # another program holds the database...
    release = threading.Timer(3.0, holder.execute, ("COMMIT",))
    release.start()  # ...for three seconds
    try:
        result = caulbart("fetch", "--all")
    finally:
        release.join()
        holder.close()
    assert result.returncode == 0, result.stderr
    assert f"2 sources: {2 * PER_SOURCE} new" in result.stdout


class TcpProxy:
    """A loopback TCP proxy to PostgreSQL that can drop every connection and refuse new ones,
    as a restarting database server would, without disturbing the real server."""

    def __init__(self, target_port: int = 5432) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                client.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every connection and refuse new ones (the server is down)."""
        self.open.clear()
        for end in self.sockets:
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
        self.sockets.clear()

    def restore(self) -> None:
        self.open.set()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_worker_outlives_postgres_going_away_and_stores_after_it_returns(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    proxy = TcpProxy()
    through_proxy = caulbart.database_url.replace(":5432/", f":{proxy.port}/")
    rows = serve_articles(feed_server)[:1]
    rows[0]["interval"] = "1s"
    write_feeds_yaml(caulbart.config, rows, defaults={**DEFAULTS, "min_interval": "1s"})
    assert caulbart("status").returncode == 0
    env = {
        **os.environ,
        "CAULBART_DATABASE_URL": through_proxy,
        "CAULBART_CONFIG": str(caulbart.config),
    }
    log = caulbart.cwd / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            [CAULBART, "worker", "--tick", "0.25"], cwd=caulbart.cwd, env=env, stdout=out,
            stderr=out,
        )  # fmt: skip
    engine = open_database(caulbart.database_url)
    try:
        deadline = time.monotonic() + 60
        while stored(engine) < PER_SOURCE and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stored(engine) == PER_SOURCE
        proxy.cut()
        # While the database is away, the publisher adds a story.
        extra = (
            "<item><guid>late-1</guid><title>Late story</title><link>https://news.example/late</link>"
            "<description>Published while the database was away.</description></item>"
        )
        feed_server.routes["/s0.rss"].body = feed_server.routes["/s0.rss"].body.replace(
            b"</channel>", extra.encode() + b"</channel>"
        )
        feed_server.routes["/s0.rss"].etag = '"changed"'
        time.sleep(4)
        assert worker.poll() is None, log.read_text()[-2000:]  # it kept running
        proxy.restore()
        deadline = time.monotonic() + 60
        while stored(engine) < PER_SOURCE + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert stored(engine) == PER_SOURCE + 1, log.read_text()[-3000:]
    finally:
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=30)
        engine.dispose()
    assert code == 0
    assert "tick failed" in log.read_text() or "store failed" in log.read_text()
