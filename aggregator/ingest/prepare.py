"""The CPU-heavy half of an ingest on every core: a pool of processes for the prepare stage
(entries.prepare: parse, normalise, fingerprint, draft tags) and, at the end of a pass, for
reading and scoring the candidates of its stories' related posts.

A first ingest is mostly pure Python work (feedparser, nh3, MinHash, tagging) that one process
would do on one core while the database waits. Here it runs in a pool of worker processes while
the main process stores what is ready.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import itertools
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from aggregator import limits
from aggregator.collector import tune_garbage_collector
from aggregator.ingest.entries import FeedItems as FeedItems
from aggregator.ingest.entries import Prepared as Prepared
from aggregator.ingest.entries import items_of as items_of
from aggregator.ingest.entries import prepare as prepare
from aggregator.ingest.entries import tag_draft_for as tag_draft_for
from aggregator.storage.db import make_engine
from aggregator.types import (
    Config,
    FetchResult,
    FetchStatus,
    RelatedLists,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# CAULBART_PREPARE_PROCESSES: worker processes for this stage (default: one per core; 0 runs
# it in the calling process, e.g. on a machine with a single core).
PROCESSES_ENV = "CAULBART_PREPARE_PROCESSES"
# CAULBART_PREPARE_SECONDS: the time budget of one document on the pool (limits.PREPARE_SECONDS).
# In the calling process there is none: nothing can stop that process in the middle of a document.
BUDGET_ENV = "CAULBART_PREPARE_SECONDS"
# Seconds between two looks of a pool's watchdog at its running documents.
WATCH_INTERVAL = 0.2
# Fewer sources than this in one pass are prepared in the calling process: starting the pool's
# processes (each imports the parsers, SQLAlchemy, numpy) costs more than a few sources' work.
POOL_MIN_SOURCES = 4
# How much lower the workers' CPU priority is than the storing process's (see _start_worker).
WORKER_NICENESS = 10


_worker_engine: Engine | None = None
# Where a worker says which job it starts (job id, its pid), read by its pool's watchdog.
_worker_starts: Any = None


def _start_worker(database_url: str, starts: Any) -> None:
    global _worker_engine, _worker_starts
    _worker_starts = starts
    # Ctrl-C reaches the terminal's whole process group; the pool's owner answers it and stops
    # its workers, which would otherwise each print a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tune_garbage_collector()
    # The storing process is the pipeline's narrowest stage (one writer); with as many workers
    # as cores, an equal share of the CPU made it wait on them. Workers yield to it instead.
    os.nice(WORKER_NICENESS)
    _worker_engine = make_engine(database_url)
    threading.Thread(target=_exit_with_owner, daemon=True).start()


def _exit_with_owner() -> None:
    """A worker whose parent was killed (SIGKILL, out of memory) must not live on as an orphan.

    Its parent process is the fork server, which outlives the pool's owner while any worker
    lives. So the worker watches the owner itself, through the pipe multiprocessing gives every
    child (`parent_process().sentinel`), which reads as closed once the owner is gone, however
    it ended."""
    owner = multiprocessing.parent_process()
    if owner is not None:
        owner.join()
        os._exit(0)


def _ready() -> bool:
    return _worker_engine is not None


def _run_job(job_id: int, work: Callable[..., T], *args: Any) -> T:
    """A pool job: announced to the watchdog (its clock starts now), then done."""
    _worker_starts.put((job_id, os.getpid()))
    return work(*args)


def _prepare_in_worker(config: Config, result: FetchResult, now: datetime) -> Prepared:
    return prepare(config, result, now, _worker_engine)


def relate_stored(engine: Engine, story_ids: list[int]) -> RelatedLists:
    """The related lists of stored stories (tag_index.relate_stored), read on `engine`."""
    from aggregator.stories import tag_index  # only when a pass relates: workers start without it

    with Session(engine) as session:
        return tag_index.relate_stored(session, story_ids)


def _relate_in_worker(story_ids: list[int]) -> RelatedLists:
    assert _worker_engine is not None
    return relate_stored(_worker_engine, story_ids)


def _fork_server() -> multiprocessing.context.BaseContext:
    """Workers forked from a server process that imported this module once.

    Forking this process is unsafe (it runs threads: scheduler, HTTP client), and spawned workers
    each imported the parsers, SQLAlchemy and numpy anew, a CPU cost paid by every worker. The
    server is started (not forked) once per process and imports them once for all its workers.
    """
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


def _done(value: T) -> Future[T]:
    """A future already holding `value`: work done in the calling process."""
    done: Future[T] = Future()
    done.set_result(value)
    return done


@dataclass
class _Job:
    """Work on the pool and the future its caller holds; sent again if the pool is replaced
    under it (another job went over budget), so the caller sees only its own outcome."""

    work: Callable[..., Any]
    args: tuple[Any, ...]
    outer: Future[Any]
    # What the job's outcome is when it runs past the budget; None: it has no budget.
    over_budget: Callable[[float], Any] | None = None


def _over_budget(budget: float) -> Prepared:
    return Prepared(error=f"preparing took longer than {budget:g} s: stopped, worker replaced")


def _settle(future: Future[T], value: T | None = None, error: BaseException | None = None) -> None:
    """Give `future` its outcome unless it has one (a job over budget is settled early)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)  # type: ignore[arg-type]
    except InvalidStateError:
        pass


class Preparer:
    """A process pool for `prepare`, started on first use and shared by the process's ingests.

    Each document has a time budget on the pool: a watchdog thread sees when each job starts
    (the worker says so), and a job past the budget becomes its source's error while its worker
    is killed (a process pool cannot stop a running task) and the pool replaced; the other jobs
    of the killed pool are sent to the new one.
    """

    def __init__(
        self, engine: Engine, processes: int | None = None, budget: float | None = None
    ) -> None:
        self.engine = engine
        self.database_url = engine.url.render_as_string(hide_password=False)
        wanted = os.environ.get(PROCESSES_ENV)
        self.processes = processes if processes is not None else int(wanted or os.cpu_count() or 1)
        seconds = os.environ.get(BUDGET_ENV)
        self.budget = budget if budget is not None else float(seconds or limits.PREPARE_SECONDS)
        self._pool: ProcessPoolExecutor | None = None
        self._generation = 0  # of the current pool; a killed pool's jobs are sent again
        self._killed: set[int] = set()
        self._jobs: dict[int, _Job] = {}
        self._job_ids = itertools.count()
        self._closing = False
        self._lock = threading.Lock()

    def submit(self, config: Config, result: FetchResult, now: datetime) -> Future[Prepared]:
        # A 304 or an error has nothing to parse: a pass of them never starts the pool.
        if self.processes < 1 or result.status is not FetchStatus.OK:
            return _done(prepare(config, result, now, self.engine))
        return self._in_worker(_prepare_in_worker, config, result, now, over_budget=_over_budget)

    def relate(self, story_ids: list[int]) -> Future[RelatedLists]:
        """Work out stored stories' related lists in a worker (reads only; the caller writes)."""
        if self.processes < 1:
            return _done(relate_stored(self.engine, story_ids))
        return self._in_worker(_relate_in_worker, story_ids)

    def _in_worker(
        self,
        work: Callable[..., T],
        *args: Any,
        over_budget: Callable[[float], T] | None = None,
    ) -> Future[T]:
        job = _Job(work, args, Future(), over_budget)
        job_id = next(self._job_ids)
        with self._lock:
            self._jobs[job_id] = job
        self._send(job_id, job)
        return job.outer

    def _send(self, job_id: int, job: _Job) -> None:
        try:
            pool, generation = self._executor()
            inner = pool.submit(_run_job, job_id, job.work, *job.args)
        except BrokenProcessPool:  # a worker died (killed, out of memory): start afresh
            log.warning("prepare pool broken; starting a new one")
            self._reset()
            pool, generation = self._executor()
            inner = pool.submit(_run_job, job_id, job.work, *job.args)
        inner.add_done_callback(functools.partial(self._finished, job_id, job, generation))

    def _finished(self, job_id: int, job: _Job, generation: int, inner: Future[Any]) -> None:
        """Pass a job's outcome on, or send it again if its pool was killed under it."""
        replaced = inner.cancelled() or isinstance(inner.exception(), BrokenProcessPool)
        with self._lock:
            again = replaced and generation in self._killed and not self._closing
            if not again:
                self._jobs.pop(job_id, None)
        if again:
            if not job.outer.done():  # else it was the job over budget
                self._send(job_id, job)
        elif inner.cancelled():
            job.outer.cancel()
        elif (error := inner.exception()) is not None:
            _settle(job.outer, error=error)
        else:
            _settle(job.outer, inner.result())

    def _watch(self, generation: int, starts: Any) -> None:
        """Stop the job of this pool that runs past the budget; ends when the pool is replaced."""
        running: dict[int, tuple[int, float]] = {}  # job id -> (worker pid, started)
        while True:
            with self._lock:
                if generation != self._generation or self._pool is None:
                    return
            try:
                job_id, pid = starts.get(timeout=WATCH_INTERVAL)
                running[job_id] = (pid, time.monotonic())
            except queue.Empty:
                pass
            for job_id, (pid, started) in list(running.items()):
                job = self._jobs.get(job_id)
                if job is None or job.outer.done():
                    del running[job_id]
                elif job.over_budget and time.monotonic() - started > self.budget:
                    self._stop(generation, job_id, job, pid)
                    return

    def _stop(self, generation: int, job_id: int, job: _Job, pid: int) -> None:
        """Settle a job over budget, kill its worker and retire its pool: the pool's other jobs
        fail as a broken pool's do and are sent to a new one (`_finished`)."""
        assert job.over_budget is not None
        log.warning("prepare job over budget (%g s): worker pid=%d killed", self.budget, pid)
        with self._lock:
            self._killed.add(generation)
            self._jobs.pop(job_id, None)
            pool = self._pool if generation == self._generation else None
            if pool is not None:
                self._pool = None
        _settle(job.outer, job.over_budget(self.budget))
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        if pool is not None:
            pool.shutdown(wait=False)

    def warm(self) -> None:
        """Start every worker process now (each imports the parsers once)."""
        if self.processes < 1:
            return
        pool, _ = self._executor()
        for future in [pool.submit(_ready) for _ in range(self.processes)]:
            future.result()

    def run(self, config: Config, result: FetchResult, now: datetime) -> Prepared:
        """Prepare one source and wait for it (a worker thread's unit of work)."""
        try:
            return self.submit(config, result, now).result()
        except BrokenProcessPool:
            self._reset()
            return prepare(config, result, now, self.engine)

    def _executor(self) -> tuple[ProcessPoolExecutor, int]:
        with self._lock:
            if self._pool is None:
                context = _fork_server()
                starts = context.Queue()
                self._generation += 1
                self._pool = ProcessPoolExecutor(
                    self.processes,
                    mp_context=context,
                    initializer=_start_worker,
                    initargs=(self.database_url, starts),
                )
                watchdog = threading.Thread(
                    target=self._watch, args=(self._generation, starts), daemon=True
                )
                watchdog.start()
            return self._pool, self._generation

    def _reset(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            self._closing = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


_preparers: dict[str, Preparer] = {}


def preparer_for(engine: Engine, *, in_process: bool = False) -> Preparer:
    """The process's preparer for this database (one pool however many ingests run)."""
    if in_process:
        return Preparer(engine, processes=0)
    url = engine.url.render_as_string(hide_password=False)
    if url not in _preparers:
        _preparers[url] = Preparer(engine)
    return _preparers[url]


@atexit.register
def _close_all() -> None:
    for preparer in _preparers.values():
        preparer.close()
    # The fork server lives on after this process until its last worker is gone. Stopped here,
    # once the workers are, and waited for: a command leaves no process behind, and its CPU time
    # and peak memory (what `time`, a benchmark or a test reads of it) include its workers'.
    # multiprocessing has no public call for this; the method exists since Python 3.8.
    stop_fork_server = getattr(multiprocessing.forkserver._forkserver, "_stop", None)
    if stop_fork_server is not None:
        stop_fork_server()
