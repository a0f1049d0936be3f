"""Recording a fetch on its source: its validators, its health and the next fetch's time, on
every path (a document, a 304, an error, a 410); and the one recorder of a source's failure."""

from __future__ import annotations

import functools
import logging
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from aggregator import limits
from aggregator.ingest import schedule
from aggregator.storage.db import after_commit, in_transaction
from aggregator.storage.models import Entry, Source
from aggregator.storage.sources import record_fetch
from aggregator.types import Config, FetchResult, FetchStatus, SourceOutcome, SourceStatus

log = logging.getLogger(__name__)


def fetched(
    session: Session,
    config: Config,
    source: Source,
    result: FetchResult,
    now: datetime,
    *,
    error: str | None = None,
    feed_title: str | None = None,
) -> None:
    """Record a fetch on its (locked) source, with the next one's time from schedule.next_fetch:
    backed off after an error, else the interval, adaptive and hinted as the source asks."""
    defaults = config.defaults
    cadence = schedule.Cadence(
        source.interval_seconds, defaults.min_interval, defaults.max_interval, source.adaptive
    )
    failed = error is not None
    signals = schedule.FetchSignals(
        failed=failed,
        consecutive_errors=source.consecutive_errors,
        retry_after=result.retry_after,
        hint=source.hint_seconds,
        published=latest_published(session, source.id) if source.adaptive and not failed else (),
    )
    next_time = schedule.next_fetch(now, cadence, signals)
    record_fetch(session, source, result, now, next_time, error=error, feed_title=feed_title)


def latest_published(session: Session, source_id: str) -> list[datetime]:
    """The dates of the source's latest entries (this fetch's among them): its posting rate."""
    return list(
        session.scalars(
            select(Entry.published)
            .where(Entry.source_id == source_id)
            .order_by(Entry.published.desc())
            .limit(schedule.ADAPTIVE_SAMPLE)
        )
    )


def failure(
    engine: Engine, config: Config, result: FetchResult, now: datetime, error: str
) -> SourceOutcome:
    """The one recorder of a source's failure, whatever it was (the fetch, the feed, a stage's
    exception): in its own transaction, its stored entries untouched, its claim released and its
    next fetch backed off. A failure of the database while recording it is raised."""
    error = error[: limits.MAX_ERROR_CHARS]
    status = SourceStatus.GONE if result.status is FetchStatus.GONE else SourceStatus.ERROR
    record = functools.partial(_failed, config=config, result=result, now=now, error=error)
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


def _failed(
    session: Session, *, config: Config, result: FetchResult, now: datetime, error: str
) -> None:
    source = session.get_one(Source, result.source_id, with_for_update={"key_share": True})
    fetched(session, config, source, result, now, error=error)
