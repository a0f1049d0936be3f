"""Long-running processes: `caulbart worker` (the clock), `serve` (the web front), `run` (both).

Glue only: the schedule policy is in scheduler.py, the ingest in pipeline.py. This module watches
feeds.yaml, turns signals into a clean stop, and runs the web front: under waitress in this
process, or under gunicorn with several worker processes (`caulbart serve --workers N`).
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime, timedelta
from types import FrameType

from sqlalchemy import Engine

from aggregator.config.load import load_config
from aggregator.config.watch import ConfigWatcher
from aggregator.ingest import pipeline, prepare
from aggregator.ingest.fetch import Fetcher, FetchRequest, user_agent
from aggregator.ingest.scheduler import DEFAULT_TICK, Worker, sqlite_worker_lock
from aggregator.storage.db import is_database_failure, session_factory
from aggregator.stories import retention
from aggregator.types import Config

log = logging.getLogger(__name__)

# How often a worker asks the database whether the daily prune is due.
PRUNE_CHECK = timedelta(hours=1)


class IngestService:
    """What a worker's tick calls: claim due sources, ingest one; follows config reloads."""

    def __init__(self, engine: Engine, watcher: ConfigWatcher) -> None:
        self.engine = engine
        self.watcher = watcher
        self._fetchers = [self._fetcher(watcher.config)]
        self._next_prune_check = datetime.now(UTC)

    @staticmethod
    def _fetcher(config: Config) -> Fetcher:
        return Fetcher(config.defaults, user_agent(config.site.base_url))

    @property
    def config(self) -> Config:
        return self.watcher.config

    def reload(self) -> None:
        old = self.config
        new = self.watcher.poll()
        if new is None:
            return
        pipeline.sync_config(self.engine, new)
        if new.defaults != old.defaults or new.site != old.site:
            # In-flight sources keep the old client; it is closed when the process stops.
            self._fetchers.append(self._fetcher(new))

    def between_ticks(self) -> None:
        """What each tick does before claiming: follow feeds.yaml, prune when a day has passed,
        relate the stories a stopped `caulbart fetch` pass left queued (this worker's own
        ingests relate theirs at once)."""
        self.reload()
        self.prune_when_due()
        pipeline.relate_pending(self.engine, prepare.preparer_for(self.engine))

    def prune_when_due(self) -> None:
        """Retention once a day (feeds.yaml `defaults.keep`), by whichever worker comes first;
        the database is asked at most hourly."""
        now = datetime.now(UTC)
        if self.config.defaults.keep is None or now < self._next_prune_check:
            return
        self._next_prune_check = now + PRUNE_CHECK
        with session_factory(self.engine).begin() as session:
            retention.prune_if_due(session, self.config.defaults.keep, now)

    def claim(self, worker: str, limit: int) -> list[FetchRequest]:
        return pipeline.claim(self.engine, self.config, worker, limit)

    def ingest(self, request: FetchRequest) -> None:
        """A source's own failures are recorded on it by the pipeline; what reaches here is the
        database failing (or a bug): the source keeps its claim until the lease expires, then
        it is fetched again, and the worker goes on."""
        try:
            pipeline.fetch_and_ingest(self.engine, self.config, self._fetchers[-1], request)
        except Exception as exc:
            if not is_database_failure(exc):
                log.exception("source=%s ingest failed", request.source_id)
                return
            log.error("source=%s database unavailable, retried after its lease: %s",
                      request.source_id, pipeline.reason(exc))  # fmt: skip

    def close(self) -> None:
        for fetcher in self._fetchers:
            fetcher.close()


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("signal=%s stopping: no new claims, finishing in-flight sources", signum)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run(
    config_path: str,
    engine: Engine,
    *,
    clock: bool = True,
    web: bool = False,
    host: str = "127.0.0.1",
    port: int = 8000,
    tick_seconds: float = DEFAULT_TICK,
) -> None:
    """Run the clock and/or the web front until SIGTERM or SIGINT; raises ConfigError at start."""
    config = load_config(config_path)
    if not clock:  # the clock applies it in _run_clock, once it holds the worker lock
        pipeline.sync_config(engine, config)  # the terms pages and feeds are published under
    stop = threading.Event()
    _stop_on_signals(stop)
    server = _start_web(engine, host, port, config_path) if web else None
    try:
        if clock:
            _run_clock(config_path, config, engine, stop, tick_seconds)
        else:
            stop.wait()
    finally:
        if server is not None:
            server.close()


def _run_clock(
    config_path: str, config: Config, engine: Engine, stop: threading.Event, tick: float
) -> None:
    with sqlite_worker_lock(engine):
        pipeline.sync_config(engine, config)
        # Start the parsing processes before the first tick, so no fetch waits for them.
        prepare.preparer_for(engine).warm()
        service = IngestService(engine, ConfigWatcher(config_path, config))
        worker = Worker(
            concurrency=config.defaults.concurrency,
            claim=service.claim,
            ingest=service.ingest,
            reload=service.between_ticks,
            tick_seconds=tick,
        )
        worker.start()
        try:
            stop.wait()
        finally:
            worker.stop()
            service.close()


# waitress for a public site. With its defaults (100 connections, idle ones kept 120 s) a few
# more idle connections than that stop every answer; docs/deploy.md says what the reverse proxy
# adds.
WAITRESS_SETTINGS: dict[str, int | bool] = {
    "threads": 8,
    # Each open connection, idle or not, holds one until it closes or times out.
    "connection_limit": 1000,
    # A connection that sends nothing for this long is closed (waitress: 120 s)...
    "channel_timeout": 30,
    # ...looked for this often (waitress: every 30 s).
    "cleanup_interval": 5,
    # Connections the kernel holds for accept() while the limit is reached.
    "backlog": 2048,
    # select() cannot watch a descriptor above 1024; poll() can.
    "asyncore_use_poll": True,
}


def _allow_open_files(needed: int) -> None:
    """Raise this process's soft limit on open files (often 1024) towards `needed`, within the
    hard limit, so the connection limit is reached before the descriptor limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


class WebServer:
    """waitress in a background thread (a production WSGI server, not Flask's dev server)."""

    def __init__(self, engine: Engine, host: str, port: int, config_path: str) -> None:
        from waitress.server import create_server

        from web import create_app

        app = create_app(engine, {"CAULBART_CONFIG": config_path})
        _allow_open_files(int(WAITRESS_SETTINGS["connection_limit"]) + 256)
        self.server = create_server(app, host=host, port=port, **WAITRESS_SETTINGS)
        self.thread = threading.Thread(target=self.server.run, name="web", daemon=True)

    def close(self) -> None:
        self.server.close()


def _start_web(engine: Engine, host: str, port: int, config_path: str) -> WebServer:
    server = WebServer(engine, host, port, config_path)
    server.thread.start()
    log.info("web listening on http://%s:%d/", host, port)
    return server


def serve_with_gunicorn(config_path: str, host: str, port: int, workers: int) -> None:
    """The web front in `workers` processes under gunicorn (threads in each), until SIGTERM.

    Every process builds its own app and engine after the fork (no connection crosses a fork);
    what they cache is checked against the database on each request, so an ingest by any worker
    process is seen by all of them at once.
    """
    from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

    from aggregator.storage.db import open_database
    from web import create_app

    engine = open_database()
    pipeline.sync_config(engine, load_config(config_path))  # once, before the processes start
    engine.dispose()

    class CaulbartWeb(BaseApplication):  # type: ignore[misc]  # gunicorn ships no types
        def load_config(self) -> None:
            settings = {
                "bind": f"{host}:{port}",
                "workers": workers,
                "worker_class": "gthread",
                "threads": 8,
                "preload_app": False,
                "accesslog": None,
                "graceful_timeout": 10,
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> object:
            return create_app(open_database(), {"CAULBART_CONFIG": config_path})

    log.info("web listening on http://%s:%d/ with %d gunicorn workers", host, port, workers)
    CaulbartWeb().run()
