"""Related posts worked out after the stories are stored: a pass's queue on the pool's
processes (`relate_pending`), and older stories offered a place in new ones' lists."""

from __future__ import annotations

import functools
import logging
import time
from concurrent.futures.process import BrokenProcessPool

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from aggregator.ingest import prepare
from aggregator.storage.db import in_transaction, is_database_failure, read_sessions, write_group
from aggregator.stories import related_index
from aggregator.types import RelatedLists

log = logging.getLogger(__name__)

# Stories per job when a pass's stories are related on the pool (relate_pending): at least
# two jobs a process while that leaves a job this many, and at most this many. Each job reads
# its candidates' latest versions (nearly the same stories for every job of a pass) and commits
# once, so fewer, larger jobs read them fewer times; beyond the upper bound that stops paying.
RELATE_CHUNK = (100, 1000)


def relate_pending(engine: Engine, preparer: prepare.Preparer) -> int:
    """Work out the related posts of the stories a pass stored (and of any a stopped pass left
    queued), in jobs of RELATE_CHUNK stories on the pool's processes, and keep them; returns
    how many stories were related (queued stories deleted meanwhile only leave the queue).

    Related posts were a large share of the storing process's work: reading and scoring
    candidates per source, while it alone writes. Done once at the pass's end, every story's
    candidates include the whole pass, and the reading and scoring run on every core; this
    process only writes the lists. Best effort, like `offer_related`: on a database error the
    stories stay queued for the next pass or tick (a failure of the database itself is raised,
    as everywhere in a pass).
    """
    queued: list[int] = []
    done = related = 0
    started = time.monotonic()
    try:
        # A read: its BEGIN must not wait for the write lock a caller's write group may hold.
        with read_sessions(engine)() as session:
            queued = related_index.stories_to_relate(session)
        fewest, most = RELATE_CHUNK
        size = min(max(-(-len(queued) // (2 * max(preparer.processes, 1))), fewest), most)
        chunks = [queued[i : i + size] for i in range(0, len(queued), size)]
        jobs = [(chunk, preparer.relate(chunk)) for chunk in chunks]
        for chunk, job in jobs:
            try:
                lists = job.result()
            except BrokenProcessPool:  # a worker died (killed, out of memory): read here
                lists = prepare.relate_stored(engine, chunk)
            with write_group(engine):
                keep = functools.partial(related_index.keep_related, story_ids=chunk, lists=lists)
                kept = in_transaction(engine, keep)
                offer_related(engine, "pass", kept)
            done += len(chunk)
            related += len(kept)
    except SQLAlchemyError as exc:
        if is_database_failure(exc):
            raise
        log.warning("related posts of %d stories left for later", len(queued) - done, exc_info=True)
    if related:
        log.info("related=%d seconds=%.1f", related, time.monotonic() - started)
    return related


def offer_related(engine: Engine, what: str, related: RelatedLists) -> None:
    """Best effort: a failure leaves older stories' related lists as they were, nothing else
    (a failure of the database itself is raised: it ends the pass)."""
    if not any(related.values()):
        return
    try:
        in_transaction(engine, functools.partial(related_index.offer_related, lists=related))
    except SQLAlchemyError as exc:
        if is_database_failure(exc):
            raise
        log.warning("%s: related lists of older stories not updated", what, exc_info=True)
