"""Sources: synced from feeds.yaml, leased to workers within each host's budget, and what each
fetch taught about them.

Callers own the transaction; every function here works inside the one it is given, so a
source's items and its new fetch state commit together or not at all.
"""

from __future__ import annotations

import os
import socket
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import Session

from aggregator.ingest.text import collapse
from aggregator.storage.bulk import insert_missing
from aggregator.storage.db import serialise, session_factory
from aggregator.storage.models import Host, Setting, Source
from aggregator.types import Config, FetchResult, FetchStatus, SourceConfig, SourceStatus

REMOVED_FROM_CONFIG = "removed from feeds.yaml"
DISABLED_IN_CONFIG = "enabled: false in feeds.yaml"
GONE_PREFIX = "410 Gone"


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


# settings.name of the host in feed item ids (models.Setting).
TAG_AUTHORITY = "tag_authority"


def keep_setting(session: Session, name: str, value: str) -> str:
    """The setting's stored value; `value` is stored first when there is none yet."""
    stored = session.get(Setting, name)
    if stored is None:
        stored = Setting(name=name, value=value)
        session.add(stored)
    return stored.value


def sync_config(engine: Engine, config: Config, now: datetime | None = None) -> None:
    """Apply feeds.yaml to the sources table in a transaction of its own: what every process
    that reads feeds.yaml (fetch, worker, serve, retag) does before it acts on it."""
    with session_factory(engine).begin() as session:
        sync_sources(session, config, now or datetime.now(UTC))


def sync_sources(session: Session, config: Config, now: datetime) -> None:
    """Make the sources table match feeds.yaml; removed sources are disabled, never deleted."""
    serialise(session, ["sync_sources"])  # workers starting together must not insert twice
    keep_setting(session, TAG_AUTHORITY, host_of(config.site.base_url) or "localhost")
    stored = {source.id: source for source in session.scalars(select(Source))}
    for declared in config.sources:
        source = stored.pop(declared.id, None)
        if source is None:
            source = Source(
                id=declared.id,
                config_url=declared.url,
                url=declared.url,
                host=host_of(declared.url),
                consecutive_errors=0,
                created_at=now,
            )
            session.add(source)
        elif source.config_url != declared.url:
            # The editor changed the address: start afresh on it, forgetting old validators.
            source.config_url = source.url = declared.url
            source.host = host_of(declared.url)
            source.etag = source.last_modified = source.moved_to = None
            source.consecutive_errors = 0
            source.next_fetch_at = None
            if source.disabled_reason and source.disabled_reason.startswith(GONE_PREFIX):
                source.disabled_reason = None
        source.name = declared.name
        source.agency = declared.agency
        source.section = declared.section
        source.priority = declared.priority
        source.language = declared.language
        source.tags = list(declared.tags)
        source.publish = declared.publish
        _apply_republishing_terms(source, declared, now)
        source.interval_seconds = config.interval_for(declared)
        source.adaptive = config.is_adaptive(declared)
        gone = bool(source.disabled_reason and source.disabled_reason.startswith(GONE_PREFIX))
        if not declared.enabled:
            source.disabled_reason = DISABLED_IN_CONFIG
        elif not gone:
            source.disabled_reason = None
    for leftover in stored.values():
        leftover.disabled_reason = REMOVED_FROM_CONFIG
    ensure_hosts(session, {host_of(declared.url) for declared in config.sources})


def _apply_republishing_terms(source: Source, declared: SourceConfig, now: datetime) -> None:
    """Copy rights/excerpt_only/images; a change dates `terms_changed_at` so feeds re-render."""
    terms = (declared.rights, declared.excerpt_only, declared.images)
    if (source.rights, source.excerpt_only, source.images) != terms:
        source.rights, source.excerpt_only, source.images = terms
        source.terms_changed_at = now


def ensure_hosts(session: Session, names: set[str]) -> None:
    """Insert missing host rows; concurrent workers may race here, so conflicts are ignored."""
    insert_missing(session, Host, [{"name": name} for name in sorted(names)], "name")


class Claim(NamedTuple):
    """A source leased to a worker, and when its request may start: its turn on its host,
    `host_spacing` after the turn before it, whoever claimed that one."""

    source: Source
    turn: datetime


def claim_sources(
    session: Session,
    worker: str,
    now: datetime,
    *,
    limit: int,
    lease: int,
    per_host: int | None,
    host_spacing: int = 0,
    ids: list[str] | None = None,
    due_only: bool = True,
) -> list[Claim]:
    """Lease up to `limit` sources to `worker`, within each host's budget, each with its turn.

    Sources are locked with FOR UPDATE SKIP LOCKED (PostgreSQL), so concurrent workers never take
    the same one; a lease not released in time expires and the source is free again. Host rows are
    locked too, so per-host budgets and turns hold across workers: a worker skips a host another
    is deciding for, a pass (`per_host=None`, no budget) waits for it. A lease runs from the
    source's turn, so a source waiting for its turn keeps its claim.
    """
    statement = (
        select(Source)
        .where(
            Source.disabled_reason.is_(None),
            or_(
                Source.claim_expires_at.is_(None),
                Source.claim_expires_at <= now,
                Source.id.in_(_claims_of_dead_processes(session, now)),
            ),
        )
        .order_by(Source.next_fetch_at.asc().nulls_first(), Source.id)
        .with_for_update(skip_locked=True)
    )
    if due_only:
        statement = statement.where(
            or_(Source.next_fetch_at.is_(None), Source.next_fetch_at <= now)
        )
    if ids is not None:
        statement = statement.where(Source.id.in_(ids))
    if per_host is not None:
        statement = statement.limit(limit * 4)
    candidates = list(session.scalars(statement))
    if per_host is None and not host_spacing:
        chosen, turns = candidates[:limit], {}
    else:
        hosts = _locked_hosts(session, candidates, skip_locked=per_host is not None)
        in_flight = _claims_in_flight(session, list(hosts), now)
        candidates = [source for source in candidates if source.host in hosts]
        chosen = (
            candidates[:limit]
            if per_host is None
            else _within_host_budget(candidates, Counter(in_flight), limit, per_host)
        )
        turns = _take_turns(hosts, chosen, in_flight, now, host_spacing)
    claims = [Claim(source, turns.get(source.id, now)) for source in chosen]
    for source, turn in claims:
        source.claimed_by = worker
        source.claim_expires_at = turn + timedelta(seconds=lease)
    return claims


def _claims_of_dead_processes(session: Session, now: datetime) -> list[str]:
    """Sources whose live lease belongs to a process of this machine that has died."""
    held = session.execute(
        select(Source.id, Source.claimed_by).where(
            Source.claim_expires_at > now, Source.claimed_by.is_not(None)
        )
    ).all()
    return [source_id for source_id, claimer in held if claimer and claimer_is_dead(claimer)]


def _locked_hosts(
    session: Session, candidates: list[Source], *, skip_locked: bool
) -> dict[str, Host]:
    """The candidates' host rows, locked for this transaction (in name order, so two passes
    waiting for each other's rows cannot deadlock); with `skip_locked`, rows another claim
    holds are left out, and so are their sources."""
    names = sorted({source.host for source in candidates})
    if not names:
        return {}
    ensure_hosts(session, set(names))
    statement = select(Host).where(Host.name.in_(names)).order_by(Host.name)
    locked = statement.with_for_update(skip_locked=skip_locked)
    return {host.name: host for host in session.scalars(locked)}


def _claims_in_flight(session: Session, hosts: list[str], now: datetime) -> Counter[str]:
    """Live claims per host: the sources being fetched, or waiting for their turn."""
    rows = session.execute(
        select(Source.host, func.count())
        .where(Source.host.in_(hosts), Source.claim_expires_at > now)
        .group_by(Source.host)
    ).all()
    return Counter({host: count for host, count in rows})


def _within_host_budget(
    candidates: list[Source], in_flight: Counter[str], limit: int, per_host: int
) -> list[Source]:
    chosen: list[Source] = []
    for source in candidates:
        if in_flight[source.host] >= per_host:
            continue
        in_flight[source.host] += 1
        chosen.append(source)
        if len(chosen) == limit:
            break
    return chosen


def _take_turns(
    hosts: dict[str, Host],
    chosen: list[Source],
    in_flight: Counter[str],
    now: datetime,
    host_spacing: int,
) -> dict[str, datetime]:
    """Give each chosen source its host's next turn, `host_spacing` after the one before, and
    move the host's next turn on; returns each source's turn.

    Every turn still ahead belongs to a live claim, so a host's next turn is at most that many
    turns (and one more, just taken) ahead: one further ahead is a clock that stepped back, or
    turns handed out under another clock, and is not waited for.
    """
    step = timedelta(seconds=host_spacing)
    turns: dict[str, datetime] = {}
    for name in dict.fromkeys(source.host for source in chosen):
        host = hosts[name]
        latest = now + step * (in_flight[name] + 1)
        turn = max(now, min(host.next_request_at or now, latest))
        for source in chosen:
            if source.host == name:
                turns[source.id] = turn
                turn += step
        host.next_request_at = turn
    return turns


def release_claim(source: Source, worker: str | None) -> None:
    if worker is None or source.claimed_by == worker:
        source.claimed_by = None
        source.claim_expires_at = None


def record_fetch(
    session: Session,
    source: Source,
    result: FetchResult,
    now: datetime,
    next_fetch_at: datetime,
    error: str | None = None,
    feed_title: str | None = None,
) -> None:
    """Store what this fetch taught about the source: validators, status, errors, next time."""
    source.claimed_by = None
    source.claim_expires_at = None
    source.last_fetch_at = now
    source.last_http_status = result.http_status
    source.next_fetch_at = next_fetch_at
    error = error or result.error
    if result.permanent_redirect and result.final_url:
        source.url = result.final_url
        source.moved_to = result.final_url
    if result.status is FetchStatus.GONE:
        source.disabled_reason = f"{GONE_PREFIX}: the publisher removed this feed"
    if error:
        gone = result.status is FetchStatus.GONE
        source.last_status = (SourceStatus.GONE if gone else SourceStatus.ERROR).value
        source.last_error = error[:2000]
        source.consecutive_errors += 1
        return
    source.last_status = result.status.value
    source.last_error = None
    source.consecutive_errors = 0
    source.last_success_at = now
    if result.status is FetchStatus.OK:
        source.etag = result.validators.etag
        source.last_modified = result.validators.last_modified
        if feed_title and (title := collapse(feed_title)):
            source.feed_title = title[:500]


def active_sources(session: Session, ids: Iterable[str] | None = None) -> list[Source]:
    statement = select(Source).where(Source.disabled_reason.is_(None)).order_by(Source.id)
    if ids is not None:
        statement = statement.where(Source.id.in_(list(ids)))
    return list(session.scalars(statement))


def machine_id() -> str:
    """This boot of this machine: pids are only comparable within it."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8]
    except OSError:
        return socket.gethostname()


def claimer_is_dead(claimer: str) -> bool:
    """True only for a claimer of this machine whose process has ended (killed, crashed).

    Its claims are free at once instead of after the lease; claimers on other machines are
    never judged here and wait for their lease to expire.
    """
    parts = claimer.removeprefix("fetch:").split(":")
    if len(parts) < 4 or parts[2] != machine_id() or not parts[1].isdigit():
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
