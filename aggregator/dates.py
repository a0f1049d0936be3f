"""Date arithmetic that cannot overflow, for dates a feed gave (any year from 1 to 9999).

`datetime` raises OverflowError past its years 1 and 9999: a dedup window around a date of
year 1 ended a whole pass once. Windows here stop at the ends of the calendar instead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aggregator import limits

FIRST = datetime.min.replace(tzinfo=UTC)
LAST = datetime.max.replace(tzinfo=UTC)


def shifted(when: datetime, delta: timedelta) -> datetime:
    """`when` moved by `delta`, held at the first or last moment of the calendar past its ends."""
    try:
        return when + delta
    except OverflowError:
        return LAST if delta > timedelta(0) else FIRST


def implausible(when: datetime, now: datetime) -> str | None:
    """Why `when` cannot be when an entry fetched `now` was published; None if it can be."""
    if when < limits.EARLIEST_DATE:
        return f"before {limits.EARLIEST_DATE:%Y-%m-%d}"
    if when > shifted(now, timedelta(seconds=limits.FUTURE_TOLERANCE_SECONDS)):
        return "after the time it was fetched"
    return None
