"""The clock: when each source is fetched next, and the worker that claims and ingests due sources.

The schedule lives in the database (sources.next_fetch_at and claims), not in APScheduler's
memory: APScheduler only drives a short tick, so a restart loses nothing and repeats nothing, and
several workers on one PostgreSQL share the sources without fetching one twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import logging
import os
import random
import socket
import statistics
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import Engine

from aggregator import limits
from aggregator.errors import WorkerAlreadyRunning as WorkerAlreadyRunning
from aggregator.storage.sources import machine_id

if TYPE_CHECKING:  # the store imports this module, and the parsing workers the store: no httpx
    from aggregator.ingest.fetch import FetchRequest

log = logging.getLogger(__name__)

# Up to this share of the interval is added at random so sources do not fetch in lockstep.
JITTER_SHARE = 0.1
# Seconds between ticks: how soon a due source is noticed.
DEFAULT_TICK = 2.0
# Adaptive intervals look at this many of the source's latest entries.
ADAPTIVE_SAMPLE = 20


def next_fetch_at(
    now: datetime,
    interval: int,
    consecutive_errors: int = 0,
    retry_after: int | None = None,
    rng: random.Random | None = None,
) -> datetime:
    """Interval plus jitter; after errors the interval doubles per error up to the cap."""
    delay = float(interval)
    if consecutive_errors > 0:
        delay = min(interval * 2 ** (consecutive_errors - 1), limits.BACKOFF_CAP)
        delay = max(delay, float(interval))
    if retry_after is not None:
        delay = max(delay, float(min(retry_after, limits.BACKOFF_CAP)))
    delay += (rng or random).uniform(0, JITTER_SHARE * interval)
    return now + timedelta(seconds=delay)


def cache_control_max_age(value: str | None) -> int | None:
    """max-age from a Cache-Control header (RFC 9111 5.2.2.1); None when absent or malformed."""
    if not value:
        return None
    for directive in value.split(","):
        name, _, argument = directive.strip().partition("=")
        if name.strip().lower() == "max-age" and argument.strip().strip('"').isdigit():
            return int(argument.strip().strip('"'))
    return None


def adaptive_interval(
    published: Sequence[datetime], fallback: int, min_interval: int, max_interval: int
) -> int:
    """Half the median gap between the latest entries, within the bounds.

    A wire posting every few minutes is polled at the minimum; a blog posting weekly at the
    maximum. Without two dated entries there is no rate yet, so the fallback applies.
    """
    latest = sorted(published, reverse=True)[:ADAPTIVE_SAMPLE]
    gaps = [(a - b).total_seconds() for a, b in itertools.pairwise(latest)]
    gaps = [gap for gap in gaps if gap > 0]
    if not gaps:
        return min(max(fallback, min_interval), max_interval)
    return int(min(max(statistics.median(gaps) / 2, min_interval), max_interval))


def effective_interval(base: int, hint: int | None, min_interval: int, max_interval: int) -> int:
    """The base interval, lengthened (never shortened) by a publisher's hint, within bounds."""
    interval = max(base, min_interval)
    if hint:
        interval = max(interval, min(hint, max_interval))
    return min(interval, max(max_interval, min_interval))


# --- the worker -----------------------------------------------------------------------------


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
