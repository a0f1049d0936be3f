"""The prepare stage: parsing and drafting ahead, in worker processes, gives what storing needs."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy

from aggregator import collector
from aggregator.config.load import parse_config
from aggregator.ingest import prepare
from aggregator.ingest.pipeline import ingest_source, sync_config
from aggregator.types import FetchResult, FetchStatus
from tests.conftest import Caulbart, FeedServer, corpus_path, write_feeds_yaml

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
WIRE = "reuters-worldnews-2018-01-30.rss"


def wire_result(source_id: str = "reuters") -> FetchResult:
    body = corpus_path("feeds", "real", "wire", WIRE).read_bytes()
    return FetchResult(source_id, "https://wire.example/feed", FetchStatus.OK, 200, body)


CONFIG = parse_config(
    "site: {base_url: 'http://caulbart.test'}\n"
    "sources:\n  - {id: reuters, url: 'https://wire.example/feed', section: world, tags: [Wire]}\n"
)


def test_a_worker_process_prepares_what_the_calling_process_would(
    engine: sqlalchemy.Engine,
) -> None:
    here = prepare.prepare(CONFIG, wire_result(), NOW, engine)
    preparer = prepare.Preparer(engine, processes=1)
    try:
        there = preparer.run(CONFIG, wire_result(), NOW)
    finally:
        preparer.close()
    assert len(here.items) == 10
    assert there == here
    assert set(there.drafts) == {item.guid for item in there.items}
    assert all("Wire" in draft.labels for draft in there.drafts.values())


def test_worker_processes_yield_the_cpu_to_the_storing_process(
    engine: sqlalchemy.Engine,
) -> None:
    preparer = prepare.Preparer(engine, processes=1)
    try:
        preparer.warm()
        assert preparer._pool is not None
        worker_niceness = preparer._pool.submit(os.nice, 0).result()
    finally:
        preparer.close()
    assert worker_niceness == min(os.nice(0) + prepare.WORKER_NICENESS, 19)


def test_the_caulbart_command_and_its_workers_collect_garbage_cycles_less_often(
    engine: sqlalchemy.Engine, tmp_path: Path
) -> None:
    write_feeds_yaml(tmp_path / "feeds.yaml", [])
    script = (
        "import gc; from aggregator.cli import main; before = gc.get_threshold(); "
        "main(['status'], standalone_mode=False); print(before, gc.get_threshold())"
    )
    env = {
        **os.environ,
        "CAULBART_CONFIG": str(tmp_path / "feeds.yaml"),
        "CAULBART_DATABASE_URL": f"sqlite:///{tmp_path / 'c.sqlite'}",
    }
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()[-1]
    assert out == f"(700, 10, 10) {collector.COLLECTOR_THRESHOLDS}"  # Python's default, then ours
    preparer = prepare.Preparer(engine, processes=1)
    try:
        preparer.warm()
        assert preparer._pool is not None
        worker_thresholds = preparer._pool.submit(gc.get_threshold).result()
    finally:
        preparer.close()
    assert worker_thresholds == collector.COLLECTOR_THRESHOLDS


# Imported by nothing a parsing worker runs: the CLI, migrations, datasketch's SciPy.
NOT_FOR_WORKERS = ("aggregator.cli", "alembic", "datasketch", "scipy", "flask", "feedgen")


def test_a_worker_imports_the_caulbart_script_without_the_cli() -> None:
    """A started worker first runs its parent's main module as `__mp_main__` (multiprocessing's
    `runpy.run_path`): for the installed `caulbart` script, that must not load the CLI."""
    script = Path(sys.executable).with_name("caulbart")
    probe = (
        "import runpy, sys; "
        f"runpy.run_path({str(script)!r}, run_name='__mp_main__'); "
        f"print([m for m in {NOT_FOR_WORKERS!r} if m in sys.modules])"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_a_started_worker_holds_only_what_preparing_needs(engine: sqlalchemy.Engine) -> None:
    preparer = prepare.Preparer(engine, processes=1)
    try:
        preparer.warm()
        assert preparer._pool is not None
        loaded = preparer._pool.submit(eval, "sorted(__import__('sys').modules)").result()
        prepared = preparer.run(CONFIG, wire_result(), NOW)
    finally:
        preparer.close()
    assert "aggregator.ingest.prepare" in loaded and "feedparser" in loaded
    assert [m for m in NOT_FOR_WORKERS if m in loaded] == []
    assert len(prepared.prints) == 10  # and it fingerprints without them


def test_workers_are_forked_from_one_server_that_imported_the_parsers(
    engine: sqlalchemy.Engine,
) -> None:
    preparer = prepare.Preparer(engine, processes=2)
    try:
        preparer.warm()
        assert preparer._pool is not None
        pool = preparer._pool
        workers = {pid: pool.submit(os.getppid) for pid in pool._processes}
        parents = {future.result() for future in workers.values()}
    finally:
        preparer.close()
    assert len(workers) == 2
    assert len(parents) == 1 and os.getpid() not in parents  # the fork server, for both
    server = parents.pop()
    cmdline = Path(f"/proc/{server}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "multiprocessing.forkserver" in cmdline and "aggregator.ingest.prepare" in cmdline


def test_a_command_stops_and_waits_for_its_fork_server_at_exit(tmp_path: Path) -> None:
    """Else the server and its workers' CPU time and memory never count as the command's."""
    probe = (
        "import atexit, os\n"
        # Registered first, so run last: after the exit hook of aggregator.ingest.prepare.
        "atexit.register(lambda: print(reaped(server)))\n"
        "def reaped(pid):\n"
        "    try:\n"
        "        return os.waitpid(pid, os.WNOHANG) != (0, 0)\n"
        "    except ChildProcessError:\n"
        "        return True\n"
        "import multiprocessing.forkserver\n"
        "from aggregator.ingest import prepare\n"
        "from aggregator.storage.db import make_engine\n"
        f"prepare.preparer_for(make_engine('sqlite:///{tmp_path}/c.sqlite3')).warm()\n"
        "server = multiprocessing.forkserver._forkserver._forkserver_pid\n"
        "print(server is not None)\n"
    )
    env = {**os.environ, prepare.PROCESSES_ENV: "1"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    ).stdout
    assert out.split() == ["True", "True"]


def test_a_pass_with_nothing_new_never_starts_the_pool(engine: sqlalchemy.Engine) -> None:
    preparer = prepare.Preparer(engine, processes=2)
    not_modified = FetchResult(
        "reuters", "https://wire.example/feed", FetchStatus.NOT_MODIFIED, 304
    )
    try:
        assert preparer.run(CONFIG, not_modified, NOW) == prepare.Prepared()
        assert preparer._pool is None
    finally:
        preparer.close()


def test_tags_drafted_in_worker_processes_equal_a_retag(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    """`caulbart fetch` over several sources drafts tags in its pool; `retag` recomputes them
    in process from the stored stories: the two must agree."""
    files = [
        ("wire", WIRE),
        ("wire", "huffpost-worldnews-2019.rss"),
        ("fastfeedparser-2026", "1796df62c4a287cc.rss"),  # BBC News World
        ("fastfeedparser-2026", "3f9eeff5039a008d.rss"),  # Al Jazeera
    ]
    assert len(files) >= prepare.POOL_MIN_SOURCES  # enough sources for the process pool
    sources = [
        {"id": f"s{i}", "section": "world", "tags": ["Wire"] if i == 0 else [],
         "url": feed_server.add(f"/s{i}.rss", corpus_path("feeds", "real", *path).read_bytes())}
        for i, path in enumerate(files)
    ]  # fmt: skip
    write_feeds_yaml(caulbart.config, sources)
    assert caulbart("fetch", "--all").returncode == 0

    def tags() -> dict[int, list[str]]:
        exported = caulbart("export")
        assert exported.returncode == 0, exported.stderr
        return {s["id"]: s["tags"] for s in map(json.loads, exported.stdout.splitlines())}

    drafted = tags()
    assert len(drafted) >= 90
    assert sum(bool(labels) for labels in drafted.values()) >= 0.8 * len(drafted)
    assert caulbart("retag").returncode == 0
    assert tags() == drafted


def test_related_lists_worked_out_in_a_worker_process_equal_the_calling_process(
    engine: sqlalchemy.Engine,
) -> None:
    """A pass's related posts are read and scored on the pool (pipeline.relate_pending): a
    worker, with its own caches, must find what the storing process would."""
    config = parse_config(
        "site: {base_url: 'http://caulbart.test'}\nsources:\n"
        + "".join(f"  - {{id: s{n}, url: 'https://wire.example/{n}'}}\n" for n in range(2))
    )
    sync_config(engine, config)
    files = [("wire", WIRE), ("wire", "huffpost-worldnews-2019.rss")]
    for n, path in enumerate(files):
        body = corpus_path("feeds", "real", *path).read_bytes()
        result = FetchResult(f"s{n}", f"https://wire.example/{n}", FetchStatus.OK, 200, body)
        ingest_source(engine, config, result, now=NOW, relate_later=True)
    with engine.connect() as connection:
        queued = list(connection.scalars(sqlalchemy.text("SELECT story_id FROM stories_to_relate")))
    assert len(queued) >= 30
    here = prepare.Preparer(engine, processes=0).relate(queued).result()
    preparer = prepare.Preparer(engine, processes=1)
    try:
        there = preparer.relate(queued).result()
    finally:
        preparer.close()
    assert there == here
    assert sum(bool(best) for best in here.values()) >= 0.8 * len(queued)


def test_a_worker_relating_stories_loads_the_tag_index_but_no_http_client(
    engine: sqlalchemy.Engine,
) -> None:
    """Relating imports the tag index (and the store) in a worker when the pass's end comes:
    not the HTTP client and the CLI tools it brings (0.4 s a worker when it did)."""
    preparer = prepare.Preparer(engine, processes=1)
    try:
        assert preparer.relate([]).result() == {}
        assert preparer._pool is not None
        loaded = preparer._pool.submit(eval, "sorted(__import__('sys').modules)").result()
    finally:
        preparer.close()
    assert "aggregator.stories.tag_index" in loaded
    assert [m for m in ("httpx", "click", "rich", "aggregator.ingest.fetch") if m in loaded] == []
