"""When a source is fetched next: one pure decision from its cadence and what its fetch said.

Every fetch is recorded with a time from `next_fetch`, whatever it brought (a document, a 304,
an error, a 410), on every path (`caulbart fetch`, the worker, `caulbart run`). Nothing here reads
the database or the clock: the caller passes the source's latest entries' dates and `now`.
"""

from __future__ import annotations

import itertools
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aggregator import limits

# Up to this share of the interval is added at random so sources do not fetch in lockstep.
JITTER_SHARE = 0.1
# Adaptive intervals look at this many of the source's latest entries.
ADAPTIVE_SAMPLE = 20


@dataclass(frozen=True)
class Cadence:
    """How often feeds.yaml asks for a source: its interval, the bounds of every interval, and
    whether the interval follows the source's posting rate (`interval: auto`)."""

    interval: int
    min_interval: int
    max_interval: int
    adaptive: bool = False


@dataclass(frozen=True)
class FetchSignals:
    """What one fetch taught about the source's timing."""

    failed: bool = False
    # Errors in a row before this fetch (the source's count, not yet counting this one).
    consecutive_errors: int = 0
    # Seconds a failed fetch's server asked to wait (Retry-After).
    retry_after: int | None = None
    # Seconds the publisher asks to be left alone (`publisher_hint`): lengthens, never shortens.
    hint: int | None = None
    # The source's latest entries' dates: its posting rate, for an adaptive cadence.
    published: Sequence[datetime] = ()


def next_fetch(
    now: datetime, cadence: Cadence, signals: FetchSignals, rng: random.Random | None = None
) -> datetime:
    """After a failure, the interval backed off (and Retry-After); after a success, the interval
    (adaptive if asked, lengthened by the publisher's hint, within the bounds); plus jitter."""
    if signals.failed:
        return next_fetch_at(
            now, cadence.interval, signals.consecutive_errors + 1, signals.retry_after, rng
        )
    base = cadence.interval
    if cadence.adaptive:
        base = adaptive_interval(
            signals.published, base, cadence.min_interval, cadence.max_interval
        )
    interval = effective_interval(base, signals.hint, cadence.min_interval, cadence.max_interval)
    return next_fetch_at(now, interval, rng=rng)


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


def publisher_hint(cache_control: str | None, feed_hint: int | None) -> int | None:
    """The longer of the server's Cache-Control max-age and the document's own hint (RSS <ttl>,
    sy:updatePeriod: parse.feed_refresh_hint); None when neither asks anything."""
    hints = [hint for hint in (cache_control_max_age(cache_control), feed_hint) if hint]
    return max(hints) if hints else None


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
