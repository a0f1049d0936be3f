"""The ingest of one source, top to bottom: fetch -> parse -> normalise -> dedupe -> store.

`run_pass` fetches several sources at once and stores each as its fetch completes, in one
transaction per source, so a broken source is recorded as its own error and the others go on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from aggregator import scheduler, store
from aggregator.db import session_factory
from aggregator.errors import ParseError
from aggregator.fetch import Fetcher, FetchRequest, fetch_many, user_agent
from aggregator.models import Source
from aggregator.normalise import normalise_entry
from aggregator.parse import parse_feed
from aggregator.types import Config, FetchResult, FetchStatus, Item, SourceOutcome, Validators

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class UnknownSource(Exception):
    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"unknown or disabled source id(s): {', '.join(ids)}")
        self.ids = ids


@dataclass(frozen=True)
class PassPlan:
    """The sources one pass will fetch, as requests carrying their stored validators."""

    requests: tuple[FetchRequest, ...]


def plan_pass(
    engine: Engine,
    config: Config,
    source_ids: Iterable[str] | None = None,
    all_sources: bool = False,
    clock: Clock = utc_now,
) -> PassPlan:
    """Sync feeds.yaml into the sources table, then pick the due (or named, or all) sources."""
    now = clock()
    Session = session_factory(engine)
    with Session.begin() as session:
        store.sync_sources(session, config, now)
        session.flush()
        wanted = list(source_ids) if source_ids else None
        sources = store.active_sources(session, wanted)
        if wanted:
            missing = sorted(set(wanted) - {source.id for source in sources})
            if missing:
                raise UnknownSource(missing)
        elif not all_sources:
            sources = [s for s in sources if s.next_fetch_at is None or s.next_fetch_at <= now]
        requests = tuple(
            FetchRequest(s.id, s.url, Validators(s.etag, s.last_modified)) for s in sources
        )
    return PassPlan(requests)


def run_pass(
    engine: Engine,
    config: Config,
    plan: PassPlan,
    on_outcome: Callable[[SourceOutcome], None] | None = None,
    clock: Clock = utc_now,
) -> list[SourceOutcome]:
    """Fetch the planned sources concurrently and ingest each as soon as it arrives."""
    outcomes: list[SourceOutcome] = []
    with Fetcher(config.defaults, user_agent(config.site.base_url)) as fetcher:
        for result in fetch_many(fetcher, plan.requests):
            outcome = ingest_result(engine, config, result, clock)
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)
    return outcomes


def ingest_result(
    engine: Engine, config: Config, result: FetchResult, clock: Clock = utc_now
) -> SourceOutcome:
    """Parse, normalise and store one fetched source in one transaction; record any failure."""
    now = clock()
    source_id = result.source_id
    notes: list[str] = []
    if result.permanent_redirect:
        notes.append(f"moved permanently to {result.final_url}: update feeds.yaml")
    try:
        items, feed_title = _read_items(result, config, now, notes)
    except ParseError as exc:
        return _record_failure(engine, config, result, now, f"parse error: {exc}")

    Session = session_factory(engine)
    try:
        with Session.begin() as session:
            source = session.get_one(Source, source_id)
            counts = store.save_items(session, source, items, now)
            error = result.error if result.status is not FetchStatus.OK else None
            store.record_fetch(
                session,
                source,
                result,
                now,
                _next_time(source, result, now, failed=bool(error)),
                error=error,
                feed_title=feed_title,
            )
    except SQLAlchemyError as exc:
        log.exception("store failed source=%s", source_id)
        return _record_failure(engine, config, result, now, f"store error: {exc}"[:500])

    status = result.status.value if result.status is not FetchStatus.ERROR else "error"
    log.info(
        "source=%s status=%s http=%s new=%d updated=%d unchanged=%d",
        source_id,
        status,
        result.http_status,
        counts.new,
        counts.updated,
        counts.unchanged,
    )
    return SourceOutcome(
        source_id=source_id,
        status=status,
        http_status=result.http_status,
        new=counts.new,
        updated=counts.updated,
        unchanged=counts.unchanged,
        error=result.error,
        notes=tuple(notes),
    )


def _read_items(
    result: FetchResult, config: Config, now: datetime, notes: list[str]
) -> tuple[list[Item], str | None]:
    """Parse and normalise a fetched body; a 304 or a failed fetch yields no items."""
    if result.status is not FetchStatus.OK:
        return [], None
    feed = parse_feed(result, config.defaults.max_entries)
    if feed.warning:
        notes.append(f"ill-formed feed read leniently: {feed.warning}")
    if feed.truncated_from:
        notes.append(
            f"{feed.truncated_from} entries; only the first {config.defaults.max_entries} read"
        )
    items: list[Item] = []
    seen: set[str] = set()
    for raw in feed.entries:
        item = normalise_entry(raw, now=now)
        if item is None or item.guid in seen:
            continue  # empty entries and repeated guids within one document
        seen.add(item.guid)
        items.append(item)
    return items, feed.title


def _next_time(source: Source, result: FetchResult, now: datetime, failed: bool) -> datetime:
    errors = source.consecutive_errors + 1 if failed else 0
    return scheduler.next_fetch_at(now, source.interval_seconds, errors, result.retry_after)


def _record_failure(
    engine: Engine, config: Config, result: FetchResult, now: datetime, error: str
) -> SourceOutcome:
    """Record a source's failure in its own transaction, leaving its stored entries untouched."""
    log.warning("source=%s error=%r", result.source_id, error)
    Session = session_factory(engine)
    with Session.begin() as session:
        source = session.get_one(Source, result.source_id)
        store.record_fetch(
            session, source, result, now, _next_time(source, result, now, True), error=error
        )
    return SourceOutcome(
        source_id=result.source_id,
        status="error",
        http_status=result.http_status,
        error=error,
    )
