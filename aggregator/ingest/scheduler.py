"""The worker: a clock that claims due sources and ingests them (when each is due: schedule.py).

The schedule lives in the database (sources.next_fetch_at and claims), not in APScheduler's
memory: APScheduler only drives a short tick, so a restart loses nothing and repeats nothing, and
several workers on one PostgreSQL share the sources without fetching one twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from aggregator.errors import WorkerAlreadyRunning as WorkerAlreadyRunning
from aggregator.limits import DEFAULT_TICK as DEFAULT_TICK  # how soon a due source is noticed
from aggregator.storage.sources import machine_id

if TYPE_CHECKING:  # storage's importers reach this module, and the parsing workers them: no httpx
    from aggregator.ingest.fetch import FetchRequest

log = logging.getLogger(__name__)


@contextlib.contextmanager
def sqlite_worker_lock(engine: Engine) -> Iterator[None]:
    """Hold an exclusive file lock beside the SQLite database for the worker's lifetime."""
    if engine.dialect.name != "sqlite" or not engine.url.database:
        yield
        return
    path = Path(engine.url.database + ".worker.lock")
    handle: IO[str] = path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise WorkerAlreadyRunning(
            f"another caulbart worker (pid {holder}) is already running on "
            f"{engine.url.database}; SQLite allows one worker per database file "
            "(use PostgreSQL for several)"
        ) from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def worker_name() -> str:
    """`host:pid:machine:random`: a claim names the process that holds it."""
    return f"{socket.gethostname()}:{os.getpid()}:{machine_id()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Ticks with APScheduler; each tick reloads feeds.yaml if edited, claims due sources up to
    the free slots of a bounded pool, and ingests each claimed source on that pool.

    `claim` and `ingest` are injected by the pipeline so this class holds only the clock logic.
    """

    def __init__(
        self,
        *,
        concurrency: int,
        claim: Callable[[str, int], list[FetchRequest]],
        ingest: Callable[[FetchRequest], object],
        reload: Callable[[], None],
        tick_seconds: float = DEFAULT_TICK,
    ) -> None:
        self.name = worker_name()
        self.concurrency = concurrency
        self._claim = claim
        self._ingest = ingest
        self._reload = reload
        self.tick_seconds = tick_seconds
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ingest")
        self._in_flight: set[Future[object]] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._scheduler = BackgroundScheduler(timezone="UTC")

    def start(self) -> None:
        log.info("worker=%s starting tick=%ss concurrency=%d", self.name, self.tick_seconds,
                 self.concurrency)  # fmt: skip
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=self.tick_seconds,
            next_run_time=datetime.now().astimezone(),
            max_instances=1,
            coalesce=True,
            id="tick",
        )
        self._scheduler.start()

    def tick(self) -> None:
        """One beat of the clock; never raises (a failed tick is logged and the next one runs)."""
        if self._stopping.is_set():
            return
        try:
            self._reload()
            with self._lock:
                self._in_flight = {f for f in self._in_flight if not f.done()}
                free = self.concurrency - len(self._in_flight)
            if free <= 0 or self._stopping.is_set():
                return
            for request in self._claim(self.name, free):
                future = self._pool.submit(self._ingest, request)
                with self._lock:
                    self._in_flight.add(future)
        except Exception:  # a tick must never kill the clock; the error is logged in full
            log.exception("worker=%s tick failed", self.name)

    def stop(self) -> None:
        """Stop claiming, let in-flight sources finish, then return."""
        self._stopping.set()
        self._scheduler.shutdown(wait=True)
        self._pool.shutdown(wait=True, cancel_futures=True)
        log.info("worker=%s stopped", self.name)
