"""The schedule policy: intervals, jitter, backoff, Retry-After, publisher hints, adaptive rates."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from aggregator import limits
from aggregator.ingest.parse import feed_refresh_hint
from aggregator.ingest.schedule import (
    JITTER_SHARE,
    Cadence,
    FetchSignals,
    adaptive_interval,
    cache_control_max_age,
    effective_interval,
    next_fetch,
    next_fetch_at,
    publisher_hint,
)

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _delay(moment: datetime) -> float:
    return (moment - NOW).total_seconds()


def test_next_fetch_is_interval_plus_bounded_jitter() -> None:
    delays = [_delay(next_fetch_at(NOW, 600, rng=random.Random(seed))) for seed in range(50)]
    assert all(600 <= d <= 600 * (1 + JITTER_SHARE) for d in delays)
    assert len({round(d) for d in delays}) > 10  # sources do not fetch in lockstep


class NoJitter(random.Random):
    """The clock's randomness pinned to zero, so delays can be compared exactly."""

    def uniform(self, a: float, b: float) -> float:
        return a


def test_backoff_doubles_per_consecutive_error_up_to_the_cap() -> None:
    delays = [_delay(next_fetch_at(NOW, 300, errors, rng=NoJitter())) for errors in range(1, 12)]
    assert delays[:4] == [300, 600, 1200, 2400]
    assert delays == sorted(delays)
    assert delays[-1] == limits.BACKOFF_CAP


def test_success_resets_backoff_to_the_plain_interval() -> None:
    after_errors = _delay(next_fetch_at(NOW, 300, consecutive_errors=5, rng=NoJitter()))
    after_success = _delay(next_fetch_at(NOW, 300, consecutive_errors=0, rng=NoJitter()))
    assert after_errors == 300 * 16
    assert after_success == 300


def test_retry_after_wins_when_longer_than_the_backoff() -> None:
    delay = _delay(next_fetch_at(NOW, 60, consecutive_errors=1, retry_after=3600, rng=NoJitter()))
    assert delay == 3600


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("max-age=900", 900),
        ("public, max-age=120, must-revalidate", 120),
        ('max-age="60"', 60),
        ("no-cache", None),
        ("max-age=soon", None),
        (None, None),
    ],
)
def test_cache_control_max_age_is_read_leniently(header: str | None, expected: int | None) -> None:
    assert cache_control_max_age(header) == expected


def test_feed_hints_from_rss_ttl_and_syndication_module() -> None:
    assert feed_refresh_hint("60", None, None) == 3600
    assert feed_refresh_hint(None, "hourly", "2") == 1800
    assert feed_refresh_hint(None, "daily", None) == 86400
    assert feed_refresh_hint("30", "hourly", "1") == 3600  # the longer of the two
    assert feed_refresh_hint("soon", "fortnightly", None) is None


def test_publisher_hint_lengthens_but_never_beyond_max_or_below_base() -> None:
    assert effective_interval(600, 3600, 300, 7200) == 3600
    assert effective_interval(600, 86400, 300, 7200) == 7200
    assert effective_interval(600, 60, 300, 7200) == 600  # a hint never shortens
    assert effective_interval(10, None, 300, 7200) == 300  # never below the minimum


def test_adaptive_interval_polls_a_busy_wire_often_and_a_quiet_blog_rarely() -> None:
    wire = [NOW - timedelta(minutes=4 * i) for i in range(20)]
    blog = [NOW - timedelta(days=7 * i) for i in range(5)]
    assert adaptive_interval(wire, 900, 60, 86400) == 120  # half the 4-minute gap
    assert adaptive_interval(wire, 900, 300, 86400) == 300  # not below min_interval
    assert adaptive_interval(blog, 900, 300, 86400) == 86400  # capped at max_interval


def test_adaptive_interval_without_history_uses_the_fallback() -> None:
    assert adaptive_interval([], 900, 300, 86400) == 900
    assert adaptive_interval([NOW], 900, 300, 86400) == 900


CADENCE = Cadence(interval=600, min_interval=300, max_interval=7200)


def test_next_fetch_after_a_success_is_the_interval_lengthened_by_the_publishers_hint() -> None:
    assert _delay(next_fetch(NOW, CADENCE, FetchSignals(), NoJitter())) == 600
    assert _delay(next_fetch(NOW, CADENCE, FetchSignals(hint=3600), NoJitter())) == 3600
    assert _delay(next_fetch(NOW, CADENCE, FetchSignals(hint=86400), NoJitter())) == 7200


def test_next_fetch_after_a_failure_backs_off_from_the_errors_before_it() -> None:
    third = FetchSignals(failed=True, consecutive_errors=2)
    assert _delay(next_fetch(NOW, CADENCE, third, NoJitter())) == 600 * 4
    # A failure's hint is not heeded; its Retry-After is.
    told = FetchSignals(failed=True, hint=86400, retry_after=5000)
    assert _delay(next_fetch(NOW, CADENCE, told, NoJitter())) == 5000


def test_next_fetch_of_an_adaptive_source_follows_its_posting_rate_within_bounds() -> None:
    wire = [NOW - timedelta(minutes=4 * i) for i in range(20)]
    adaptive = Cadence(interval=900, min_interval=60, max_interval=86400, adaptive=True)
    assert _delay(next_fetch(NOW, adaptive, FetchSignals(published=wire), NoJitter())) == 120
    assert _delay(next_fetch(NOW, adaptive, FetchSignals(), NoJitter())) == 900  # no rate yet
    # The rate is ignored unless the source asked for it.
    assert _delay(next_fetch(NOW, CADENCE, FetchSignals(published=wire), NoJitter())) == 600


def test_publisher_hint_is_the_longer_of_cache_control_and_the_documents_own() -> None:
    assert publisher_hint("max-age=900", 3600) == 3600
    assert publisher_hint("public, max-age=7200", 3600) == 7200
    assert publisher_hint("no-cache", None) is None
    assert publisher_hint(None, 60) == 60
