"""The ingest of one source, top to bottom (`ingest_source`): fetch -> prepare -> complete ->
assign -> store -> tag -> record; and a pass of `caulbart fetch` over many sources (`run_pass`).

Sources are claimed (leased) before they are fetched, by `caulbart fetch` and by workers alike,
so no source is fetched twice at once. Each source is stored whole or not at all, together with its
new fetch state: in a transaction of its own, or, in a `caulbart fetch` pass on SQLite, in a
SAVEPOINT of a transaction several ready sources commit together (db.write_group). A broken source
is recorded as its own error, whatever went wrong, and the others go on; only a failure of the
database itself ends a pass.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from aggregator.errors import UnknownSource as UnknownSource
from aggregator.ingest import fulltext, prepare, record, relate, schedule
from aggregator.ingest.fetch import AddressGuard, Fetcher, FetchRequest, fetch_many, user_agent
from aggregator.ingest.relate import relate_pending as relate_pending
from aggregator.publishing import websub
from aggregator.storage.db import (
    after_commit,
    analyze_grown_tables,
    in_transaction,
    is_database_failure,
    read_sessions,
    session_factory,
    write_group,
)
from aggregator.storage.entries import SaveCounts, save_items
from aggregator.storage.filtered import record_filtered
from aggregator.storage.models import Source
from aggregator.storage.sources import active_sources, claim_sources
from aggregator.storage.sources import sync_config as apply_config
from aggregator.stories import dedupe, retention, tag_index, withdrawals
from aggregator.types import (
    Config,
    FetchResult,
    FetchStatus,
    Item,
    RelatedLists,
    SourceOutcome,
    SourceStatus,
    Validators,
)

log = logging.getLogger(__name__)

# Sources whose stores are committed together on SQLite (db.write_group), at most; no source
# joins a group once it has held the write lock this many seconds, so other writers (a comment,
# `caulbart run`'s worker) wait a few seconds at worst.
GROUP_SOURCES = 32
GROUP_SECONDS = 2.0

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def sync_config(engine: Engine, config: Config, clock: Clock = utc_now) -> None:
    """Make the sources table match feeds.yaml (new sources start, removed ones stop)."""
    apply_config(engine, config, clock())


def claim(
    engine: Engine,
    config: Config,
    worker: str,
    limit: int,
    *,
    source_ids: Iterable[str] | None = None,
    due_only: bool = True,
    host_budget: bool = True,
    clock: Clock = utc_now,
) -> list[FetchRequest]:
    """Lease sources to `worker` and return what fetching them needs (URL, validators)."""
    wanted = list(source_ids) if source_ids else None
    defaults = config.defaults
    with session_factory(engine).begin() as session:
        if wanted:
            active = {s.id for s in active_sources(session, wanted)}
            missing = sorted(set(wanted) - active)
            if missing:
                raise UnknownSource(missing)
        claims = claim_sources(
            session,
            worker,
            clock(),
            limit=limit,
            lease=defaults.lease,
            per_host=defaults.per_host if host_budget else None,
            host_spacing=defaults.host_spacing,
            ids=wanted,
            due_only=due_only,
        )
        return [
            FetchRequest(
                s.id,
                s.url,
                Validators(s.etag, s.last_modified),
                guard=AddressGuard.for_feed(s.url, config.source(s.id)),
                spacing=float(defaults.host_spacing),
                not_before=time.monotonic() + (turn - clock()).total_seconds(),
            )
            for s, turn in claims
        ]


def next_due(engine: Engine) -> tuple[str, datetime] | None:
    """The enabled source due first, and when: what a pass that found nothing due tells."""
    with read_sessions(engine)() as session:
        row = session.execute(
            select(Source.id, Source.next_fetch_at)
            .where(Source.disabled_reason.is_(None), Source.next_fetch_at.is_not(None))
            .order_by(Source.next_fetch_at, Source.id)
            .limit(1)
        ).first()
    return (row[0], row[1]) if row and row[1] else None


def run_pass(
    engine: Engine,
    config: Config,
    requests: list[FetchRequest],
    on_outcome: Callable[[SourceOutcome], None] | None = None,
    clock: Clock = utc_now,
) -> list[SourceOutcome]:
    """Fetch the claimed sources concurrently, prepare them on every core, store each when ready."""
    outcomes: list[SourceOutcome] = []
    # A pool's start (importing the parsers in each process) only pays over several sources.
    preparer = prepare.preparer_for(engine, in_process=len(requests) < prepare.POOL_MIN_SOURCES)
    pending: list[tuple[FetchResult, Future[prepare.Prepared], datetime]] = []

    def ready(wait: bool) -> bool:
        return bool(pending) and (wait or pending[0][1].done())

    def store_ready(fetcher: Fetcher, wait: bool) -> None:
        while ready(wait):
            stored: list[SourceOutcome] = []
            # A failure of the database itself (DatabaseFailure) leaves this group uncommitted
            # and ends the pass: its sources keep their claims, and none is reported stored.
            with write_group(engine):
                started = time.monotonic()
                while ready(wait) and len(stored) < GROUP_SOURCES:
                    result, future, now = pending.pop(0)
                    outcome = ingest_source(
                        engine, config, result, prepared=future, now=now, fetcher=fetcher,
                        relate_later=True,
                    )  # fmt: skip
                    stored.append(outcome)
                    if time.monotonic() - started > GROUP_SECONDS:
                        break
            for outcome in stored:
                outcomes.append(outcome)
                if on_outcome:
                    on_outcome(outcome)

    # The pass's pings go together at its end: each feed named to each hub once.
    with websub.PINGS.held(), Fetcher(config.defaults, user_agent(config.site.base_url)) as fetcher:
        for result in fetch_many(fetcher, requests):
            now = clock()
            pending.append((result, preparer.submit(config, result, now), now))
            store_ready(fetcher, wait=False)
        store_ready(fetcher, wait=True)  # article pages of full_text sources use the fetcher
    relate.relate_pending(engine, preparer)
    return outcomes


def fetch_and_ingest(
    engine: Engine,
    config: Config,
    fetcher: Fetcher,
    request: FetchRequest,
    clock: Clock = utc_now,
) -> SourceOutcome:
    """One source, start to end: the unit of work a worker's pool runs (parsing in a process)."""
    result = fetcher.fetch(request)
    now = clock()
    prepared = prepare.preparer_for(engine).submit(config, result, now)
    return ingest_source(engine, config, result, prepared=prepared, now=now, fetcher=fetcher)


def ingest_source(
    engine: Engine,
    config: Config,
    result: FetchResult,
    clock: Clock = utc_now,
    *,
    prepared: prepare.Prepared | Future[prepare.Prepared] | None = None,
    now: datetime | None = None,
    fetcher: Fetcher | None = None,
    relate_later: bool = False,
) -> SourceOutcome:
    """Ingest one fetched source and record how it went, in the order the data flows:

        result = fetch(request)            the caller's: fetch_many (a pass), fetch_and_ingest
        if the fetch failed:               record.failure(its error)
        ready = _prepare(result)           parse, normalise, filter; fingerprints, tag drafts
        if ready.error:                    record.failure(the parse error)
        completed = _complete(ready)       the articles' text of a full_text source's new entries
        batch = _keep(ready, completed)    advisories apart, entries older than `keep` left out
        in one transaction, _store(batch):
            save_items                     assign each entry its story, and store both
            tag_index.update_stories       the tags and related posts of the stories touched
            record.fetched                 the fetch, and the next one's time (schedule.next_fetch)
        _report(stored)                    once committed: announce the stories changed; outcome
        any exception on the way:          record.failure("prepare error: ..."/"store error: ...")

    `prepared` is the pool's work when given, else it is done here; `fetcher` fetches article
    pages; with `relate_later`, related posts are left to `relate_pending` (a pass's end).
    Every failure of the source goes through `record.failure`, which releases its claim, and
    the caller goes on with the next source. Only a failure of the database itself
    (db.is_database_failure: full disk, read-only, locked past the timeout, connection lost)
    is raised, to end the pass.
    """
    now = now or clock()
    if result.status in (FetchStatus.ERROR, FetchStatus.GONE):
        return record.failure(engine, config, result, now, result.error or "fetch failed")
    stage = "prepare"
    try:
        ready = _prepare(engine, config, result, now, prepared)
        if ready.error:
            return record.failure(engine, config, result, now, ready.error)
        stage = "store"
        completed = _complete(engine, config, result.source_id, ready, fetcher)
        batch = _keep(config, ready, completed, now)
        store_batch = functools.partial(
            _store, config=config, result=result, batch=batch, now=now, relate_later=relate_later
        )
        stored = in_transaction(engine, store_batch)
        return _report(engine, config, result, batch, stored, now)
    except Exception as exc:
        if is_database_failure(exc):
            raise
        log.debug("source=%s %s failed", result.source_id, stage, exc_info=True)
        return record.failure(engine, config, result, now, f"{stage} error: {reason(exc)}")


def reason(exc: BaseException) -> str:
    """An exception as one line: its class and message (for a database error, the driver's
    message without the statement SQLAlchemy appends)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


@dataclass(frozen=True)
class _Batch:
    """What of a prepared source is stored: the entries that are stories (with their full text
    where it was found) and their fingerprints, the advisories, and what was left out."""

    prepared: prepare.Prepared
    stories: tuple[Item, ...]
    advisories: tuple[Item, ...]
    prints: dict[str, dedupe.Fingerprint | None]
    full_text: fulltext.FullTextPass | None
    too_old: int


@dataclass(frozen=True)
class _Stored:
    """What one source's transaction stored and changed."""

    counts: SaveCounts
    related: RelatedLists
    filtered: int
    withdrawn: tuple[int, ...]


def _prepare(
    engine: Engine,
    config: Config,
    result: FetchResult,
    now: datetime,
    prepared: prepare.Prepared | Future[prepare.Prepared] | None,
) -> prepare.Prepared:
    """The prepared source: given, prepared here, or the pool's answer."""
    if isinstance(prepared, prepare.Prepared):
        return prepared
    if prepared is None:
        return prepare.prepare(config, result, now, engine)
    try:
        return prepared.result()
    except BrokenProcessPool:  # a worker process died (killed, out of memory): parse here
        log.warning("source=%s prepare pool broken; preparing in process", result.source_id)
        return prepare.prepare(config, result, now, engine)


def _complete(
    engine: Engine,
    config: Config,
    source_id: str,
    prepared: prepare.Prepared,
    fetcher: Fetcher | None,
) -> fulltext.FullTextPass | None:
    """The items with their articles' text, for a full_text source with new or edited entries."""
    source = config.source(source_id)
    if source is None or source.full_text is None or not prepared.unseen:
        return None
    items, unseen = list(prepared.items), set(prepared.unseen)
    if fetcher is None:
        with Fetcher(config.defaults, user_agent(config.site.base_url)) as own:
            return fulltext.complete_items(engine, own, config.defaults, source, items, unseen)
    return fulltext.complete_items(engine, fetcher, config.defaults, source, items, unseen)


def _keep(
    config: Config,
    prepared: prepare.Prepared,
    full_text: fulltext.FullTextPass | None,
    now: datetime,
) -> _Batch:
    """The entries to store: advisories apart, and none older than `defaults.keep` (pruned or
    about to be: storing it would bring it back)."""
    items = prepared.items
    prints = prepared.prints
    if full_text is not None:
        items = full_text.items
        # Fingerprints of the summaries no longer fit: made again from the full text.
        completed = [item for item in items if item.guid in full_text.completed]
        prints = prints | {item.guid: dedupe.fingerprint(item) for item in completed}
    stories, advisories = withdrawals.split_advisories(items)
    recent = retention.recent_only(stories, config.defaults.keep, now)
    return _Batch(
        prepared,
        tuple(recent),
        tuple(advisories),
        prints,
        full_text,
        too_old=len(stories) - len(recent),
    )


def _store(
    session: Session,
    *,
    config: Config,
    result: FetchResult,
    batch: _Batch,
    now: datetime,
    relate_later: bool,
) -> _Stored:
    """Store one source's batch in one transaction (a SAVEPOINT inside a write group): its
    entries and their stories, the entries filtered and the stories withdrawn, the tags and
    related posts of the stories touched, and the fetch with its next time."""
    prepared = batch.prepared
    # Locked for the whole transaction: no other worker can claim the source meanwhile.
    source = session.get_one(Source, result.source_id, with_for_update={"key_share": True})
    counts = save_items(
        session,
        source,
        list(batch.stories),
        now,
        dedup_window=config.defaults.dedup_window,
        prints=batch.prints,
        terms={guid: draft.terms for guid, draft in prepared.drafts.items()},
    )
    filtered = record_filtered(
        session, source, prepared.filtered, now, stored_guids=prepared.unseen
    )
    withdrawn = withdrawals.apply_advisories(session, source, batch.advisories, now)
    drafts = {
        story_id: prepared.drafts[guid]
        for story_id, guid in counts.started
        if guid in prepared.drafts
    }
    related = tag_index.update_stories(
        session,
        counts.retag_ids,
        config.tags,
        drafts,
        relate_only=counts.relate_ids,
        relate_later=relate_later,
        now=now,
    )
    feed = prepared.feed
    source.hint_seconds = schedule.publisher_hint(
        result.header("Cache-Control"), feed.refresh_hint if feed else None
    )
    if batch.full_text is not None and batch.full_text.tried:
        source.full_text_error = batch.full_text.source_error
    if feed is not None:  # a document was read (not a 304)
        source.repeated_items = prepared.repeated
    record.fetched(session, config, source, result, now, feed_title=feed.title if feed else None)
    return _Stored(counts, related, filtered, tuple(withdrawn))


def _report(
    engine: Engine,
    config: Config,
    result: FetchResult,
    batch: _Batch,
    stored: _Stored,
    now: datetime,
) -> SourceOutcome:
    """Once the source is committed: its older stories' related lists, the announcement of the
    stories it changed, the log line, and its outcome."""
    source_id = result.source_id
    counts = stored.counts
    relate.offer_related(engine, f"source={source_id}", stored.related)
    changed = [*counts.story_ids, *stored.withdrawn]
    after_commit(lambda: websub.announce(engine, config.site, changed, departed_at=now))
    if counts.new:
        _refresh_statistics(engine, source_id)
    status = SourceStatus(result.status.value)
    # Logged once committed: inside a write group a source is not stored until the group is.
    after_commit(
        functools.partial(
            log.info,
            "source=%s status=%s http=%s new=%d updated=%d unchanged=%d filtered=%d",
            source_id,
            status,
            result.http_status,
            counts.new,
            counts.updated,
            counts.unchanged,
            stored.filtered,
        )
    )
    return SourceOutcome(
        source_id=source_id,
        status=status,
        http_status=result.http_status,
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged,
        filtered=stored.filtered,
        notes=_notes(config, result, batch),
    )


def _notes(config: Config, result: FetchResult, batch: _Batch) -> tuple[str, ...]:
    """What the editor should know of a fetch that went well."""
    notes: list[str] = []
    if result.permanent_redirect:
        notes.append(f"moved permanently to {result.final_url}: update feeds.yaml")
    feed = batch.prepared.feed
    if feed and feed.warning:
        notes.append(f"ill-formed feed read leniently: {feed.warning}")
    if feed and feed.truncated_from:
        notes.append(
            f"{feed.truncated_from} entries; only the first {config.defaults.max_entries} read"
        )
    if repeated := batch.prepared.repeated:
        repeats = "item repeats" if repeated == 1 else "items repeat"
        notes.append(f"{repeated} {repeats} another item of the feed: skipped")
    if batch.full_text is not None and batch.full_text.failures:
        notes.append(f"full text: {batch.full_text.source_error}")
    if batch.too_old:
        notes.append(f"{batch.too_old} entries older than defaults.keep skipped")
    return tuple(notes)


def _refresh_statistics(engine: Engine, source_id: str) -> None:
    """Best effort, like autovacuum's own: without it queries are slower, never wrong (a failure
    of the database itself is raised: it ends the pass)."""
    try:
        grown = analyze_grown_tables(engine)
    except SQLAlchemyError as exc:
        if is_database_failure(exc):
            raise
        log.warning("source=%s planner statistics not refreshed", source_id, exc_info=True)
        return
    if grown:
        log.info("source=%s analysed %s: they doubled in size", source_id, ", ".join(grown))
