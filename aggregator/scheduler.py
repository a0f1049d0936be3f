"""When each source is fetched next: its interval, jitter, backoff after errors, Retry-After."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from aggregator import limits

# Up to this share of the interval is added at random so sources do not fetch in lockstep.
JITTER_SHARE = 0.1


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
