"""The ingest of one source, top to bottom: fetch -> parse -> normalise -> dedupe -> store.

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
from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from aggregator.errors import UnknownSource as UnknownSource
from aggregator.ingest import fulltext, prepare, scheduler
from aggregator.ingest.fetch import AddressGuard, Fetcher, FetchRequest, fetch_many, user_agent
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
from aggregator.storage.models import Entry, Source
from aggregator.storage.sources import active_sources, claim_sources, record_fetch, sync_sources
from aggregator.stories import dedupe, retention, tag_index, withdrawals
from aggregator.types import (
    Config,
    FetchResult,
    FetchStatus,
    Item,
    ParsedFeed,
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
# Stories per job when a pass's stories are related on the pool (relate_pending): at least
# two jobs a process while that leaves a job this many, and at most this many. Each job reads
# its candidates' latest versions (nearly the same stories for every job of a pass) and commits
# once: relating the bench's 9,621 stories took 4.2 s in jobs of 100, 2.2-2.5 s of 1,000.
RELATE_CHUNK = (100, 1000)
# A recorded error's length at most: the reason, not a dump of the input that caused it.
ERROR_CHARS = 500

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def sync_config(engine: Engine, config: Config, clock: Clock = utc_now) -> None:
    """Make the sources table match feeds.yaml (new sources start, removed ones stop)."""
    with session_factory(engine).begin() as session:
        sync_sources(session, config, clock())


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
    # A pool's start (a second or so) only pays for itself over several sources.
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
                    outcome = ingest_result(
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
    relate_pending(engine, preparer)
    return outcomes


def relate_pending(engine: Engine, preparer: prepare.Preparer) -> int:
    """Work out the related posts of the stories a pass stored (and of any a stopped pass left
    queued), in jobs of RELATE_CHUNK stories on the pool's processes, and keep them; returns
    how many stories were related (queued stories deleted meanwhile only leave the queue).

    Related posts were a quarter of the storing process's work: reading candidates and scoring
    them per source, while it alone writes. Done once at the pass's end, every story's
    candidates include the whole pass, and the reading and scoring run on every core; this
    process only writes the lists. Best effort, like `_offer_related`: on a database error the
    stories stay queued for the next pass or tick (a failure of the database itself is raised,
    as everywhere in a pass).
    """
    queued: list[int] = []
    done = related = 0
    started = time.monotonic()
    try:
        # A read: its BEGIN must not wait for the write lock a caller's write group may hold.
        with read_sessions(engine)() as session:
            queued = tag_index.stories_to_relate(session)
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
                keep = functools.partial(tag_index.keep_related, story_ids=chunk, lists=lists)
                kept = in_transaction(engine, keep)
                _offer_related(engine, "pass", kept)
            done += len(chunk)
            related += len(kept)
    except SQLAlchemyError as exc:
        if is_database_failure(exc):
            raise
        log.warning("related posts of %d stories left for later", len(queued) - done, exc_info=True)
    if related:
        log.info("related=%d seconds=%.1f", related, time.monotonic() - started)
    return related


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
    return ingest_result(engine, config, result, prepared=prepared, now=now, fetcher=fetcher)


def ingest_result(
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
    """Prepare (here unless `prepared`) and store one fetched source, and record how it went.

    Whatever fails while the source is prepared or stored, whatever the exception, is recorded
    as that source's error (`_record_failure`, which releases its claim), and the caller goes
    on with the next source. Only a failure of the database itself (db.is_database_failure:
    full disk, read-only, locked past the timeout, connection lost) is raised, to end the pass.
    """
    now = now or clock()
    if result.status in (FetchStatus.ERROR, FetchStatus.GONE):
        return _record_failure(engine, config, result, now, result.error or "fetch failed")
    stage = "prepare"
    try:
        ready = _awaited(engine, config, result, now, prepared)
        if ready.error:
            return _record_failure(engine, config, result, now, ready.error)
        stage = "store"
        return _store(engine, config, result, ready, now, fetcher, relate_later)
    except Exception as exc:
        if is_database_failure(exc):
            raise
        log.debug("source=%s %s failed", result.source_id, stage, exc_info=True)
        return _record_failure(engine, config, result, now, f"{stage} error: {reason(exc)}")


def reason(exc: BaseException) -> str:
    """An exception as one line: its class and message (for a database error, the driver's
    message without the statement SQLAlchemy appends)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _awaited(
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


def _store(
    engine: Engine,
    config: Config,
    result: FetchResult,
    prepared: prepare.Prepared,
    now: datetime,
    fetcher: Fetcher | None,
    relate_later: bool,
) -> SourceOutcome:
    """Store one prepared source in one transaction (a SAVEPOINT inside a write group).
    `fetcher` fetches article pages for full_text sources. With `relate_later`, its stories'
    related posts are left to `relate_pending` (a pass's end) instead of being worked out in the
    transaction."""
    source_id = result.source_id
    notes: list[str] = []
    if result.permanent_redirect:
        notes.append(f"moved permanently to {result.final_url}: update feeds.yaml")
    feed = prepared.feed
    if feed and feed.warning:
        notes.append(f"ill-formed feed read leniently: {feed.warning}")
    if feed and feed.truncated_from:
        notes.append(
            f"{feed.truncated_from} entries; only the first {config.defaults.max_entries} read"
        )
    if prepared.repeated:
        repeats = "item repeats" if prepared.repeated == 1 else "items repeat"
        notes.append(f"{prepared.repeated} {repeats} another item of the feed: skipped")
    items = list(prepared.items)
    prints = prepared.prints
    # New and edited entries of a full_text source get their articles' text.
    full_text = _complete(engine, config, source_id, items, set(prepared.unseen), fetcher)
    if full_text is not None:
        items = list(full_text.items)
        # Fingerprints of the summaries no longer fit: made again from the full text.
        completed = [item for item in items if item.guid in full_text.completed]
        prints = prints | {item.guid: dedupe.fingerprint(item) for item in completed}
        if full_text.failures:
            notes.append(f"full text: {full_text.source_error}")

    stories, advisories = withdrawals.split_advisories(items)
    recent = retention.recent_only(stories, config.defaults.keep, now)
    if len(recent) < len(stories):
        # Older than `defaults.keep`: pruned or about to be; storing it would bring it back.
        notes.append(f"{len(stories) - len(recent)} entries older than defaults.keep skipped")
    stories = recent
    withdrawn: list[int] = []

    def store_source(
        session: Session,
    ) -> tuple[SaveCounts, RelatedLists, int]:
        # Locked for the whole transaction: no other worker can claim the source meanwhile.
        source = session.get_one(Source, source_id, with_for_update={"key_share": True})
        counts = save_items(
            session,
            source,
            stories,
            now,
            dedup_window=config.defaults.dedup_window,
            prints=prints,
            terms={guid: draft.terms for guid, draft in prepared.drafts.items()},
        )
        filtered = record_filtered(
            session, source, prepared.filtered, now, stored_guids=prepared.unseen
        )
        withdrawn[:] = withdrawals.apply_advisories(session, source, advisories, now)
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
        source.hint_seconds = _publisher_hint(result, feed)
        record_fetch(
            session,
            source,
            result,
            now,
            _next_time(session, config, source, result, now, failed=False),
            feed_title=feed.title if feed else None,
        )
        if full_text is not None and full_text.tried:
            source.full_text_error = full_text.source_error
        if feed is not None:  # a document was read (not a 304)
            source.repeated_items = prepared.repeated
        return counts, related, filtered

    counts, related, filtered = in_transaction(engine, store_source)
    _offer_related(engine, f"source={source_id}", related)
    changed = [*counts.story_ids, *withdrawn]
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
            filtered,
        )
    )
    return SourceOutcome(
        source_id=source_id,
        status=status,
        http_status=result.http_status,
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged,
        filtered=filtered,
        notes=tuple(notes),
    )


def _complete(
    engine: Engine,
    config: Config,
    source_id: str,
    items: list[Item],
    new_guids: set[str],
    fetcher: Fetcher | None,
) -> fulltext.FullTextPass | None:
    """The items with their articles' text, for a full_text source with new entries."""
    source = config.source(source_id)
    if source is None or source.full_text is None or not new_guids:
        return None
    if fetcher is None:
        with Fetcher(config.defaults, user_agent(config.site.base_url)) as own:
            return fulltext.complete_items(engine, own, config.defaults, source, items, new_guids)
    return fulltext.complete_items(engine, fetcher, config.defaults, source, items, new_guids)


def _offer_related(engine: Engine, what: str, related: RelatedLists) -> None:
    """Best effort: a failure leaves older stories' related lists as they were, nothing else
    (a failure of the database itself is raised: it ends the pass)."""
    if not any(related.values()):
        return
    try:
        in_transaction(engine, lambda session: tag_index.offer_related(session, related))
    except SQLAlchemyError as exc:
        if is_database_failure(exc):
            raise
        log.warning("%s: related lists of older stories not updated", what, exc_info=True)


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


def _publisher_hint(result: FetchResult, feed: ParsedFeed | None) -> int | None:
    hints = [
        hint
        for hint in (
            scheduler.cache_control_max_age(result.header("Cache-Control")),
            feed.refresh_hint if feed else None,
        )
        if hint
    ]
    return max(hints) if hints else None


def _next_time(
    session: Session,
    config: Config,
    source: Source,
    result: FetchResult,
    now: datetime,
    failed: bool,
) -> datetime:
    """Interval (adaptive if asked, stretched by publisher hints), or backoff after errors."""
    defaults = config.defaults
    if failed:
        return scheduler.next_fetch_at(
            now, source.interval_seconds, source.consecutive_errors + 1, result.retry_after
        )
    base = source.interval_seconds
    if source.adaptive:
        published = session.scalars(
            select(Entry.published)
            .where(Entry.source_id == source.id)
            .order_by(Entry.published.desc())
            .limit(scheduler.ADAPTIVE_SAMPLE)
        ).all()
        base = scheduler.adaptive_interval(
            published, base, defaults.min_interval, defaults.max_interval
        )
    interval = scheduler.effective_interval(
        base, source.hint_seconds, defaults.min_interval, defaults.max_interval
    )
    return scheduler.next_fetch_at(now, interval)


def _record_failure(
    engine: Engine, config: Config, result: FetchResult, now: datetime, error: str
) -> SourceOutcome:
    """The one recorder of a source's failure, whatever it was (the fetch, the feed, a stage's
    exception): in its own transaction, its stored entries untouched, its claim released and its
    next fetch backed off. A failure of the database while recording it is raised."""
    error = error[:ERROR_CHARS]
    status = SourceStatus.GONE if result.status is FetchStatus.GONE else SourceStatus.ERROR

    def record(session: Session) -> None:
        source = session.get_one(Source, result.source_id, with_for_update={"key_share": True})
        next_time = _next_time(session, config, source, result, now, failed=True)
        record_fetch(session, source, result, now, next_time, error=error)

    in_transaction(engine, record)
    after_commit(
        functools.partial(
            log.warning,
            "source=%s status=%s http=%s error=%s",
            result.source_id,
            status,
            result.http_status,
            error,
        )
    )
    return SourceOutcome(
        source_id=result.source_id,
        status=status,
        http_status=result.http_status,
        error=error,
    )
