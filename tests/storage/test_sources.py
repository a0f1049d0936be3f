"""Sources synced from feeds.yaml and what each fetch teaches about them (storage.sources). Real
databases (SQLite and PostgreSQL), real feed documents over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from aggregator.storage.db import session_factory
from aggregator.storage.models import Entry, Host, Source
from aggregator.storage.sources import Claim, claim_sources, sync_sources
from tests.conftest import FeedServer
from tests.storage.feeds import (
    by_source,
    config_for,
    fetch_all,
    item,
    rss,
)


def test_removed_source_is_disabled_and_keeps_its_entries(
    engine: Engine, feed_server: FeedServer
) -> None:
    a = feed_server.add("/a", rss(item("g1", "Rates rise", "http://example.org/1")))
    b = feed_server.add("/b", rss(item("g2", "Storm nears coast", "http://example.org/2",
                                       body="A storm is nearing the coast tonight.")))  # fmt: skip
    fetch_all(engine, config_for({"a": a, "b": b}))
    outcomes = fetch_all(engine, config_for({"b": b}))
    assert [o.source_id for o in outcomes] == ["b"]
    with session_factory(engine)() as session:
        removed = session.get_one(Source, "a")
        assert removed.disabled_reason == "removed from feeds.yaml"
        assert session.scalar(select(func.count()).where(Entry.source_id == "a")) == 1


def test_changing_a_source_url_forgets_its_validators(
    engine: Engine, feed_server: FeedServer
) -> None:
    old = feed_server.add("/old", rss(item("g1", "Rates rise", "http://example.org/1")))
    fetch_all(engine, config_for({"a": old}))
    new = feed_server.add("/new", rss(item("g1", "Rates rise", "http://example.org/1")))
    fetch_all(engine, config_for({"a": new}))
    assert "If-None-Match" not in feed_server.request_headers["/new"][0]
    with session_factory(engine)() as session:
        assert session.get_one(Source, "a").url == new


def test_permanent_redirect_updates_the_fetched_url_and_tells_editors(
    engine: Engine, feed_server: FeedServer
) -> None:
    target = feed_server.add("/moved", rss(item("g1", "Rates rise", "http://example.org/1")))
    start = feed_server.add("/start", "", status=301, location=target)
    outcome = by_source(fetch_all(engine, config_for({"a": start})))["a"]
    assert outcome.new == 1
    assert any(target in note and "feeds.yaml" in note for note in outcome.notes)
    with session_factory(engine)() as session:
        source = session.get_one(Source, "a")
        assert (source.url, source.moved_to, source.config_url) == (target, target, start)
    fetch_all(engine, config_for({"a": start}))
    assert feed_server.requests["/start"] == 1  # the next fetch goes straight to the new address


def test_backoff_state_is_recorded_and_cleared(engine: Engine, feed_server: FeedServer) -> None:
    url = feed_server.add("/a", "down", status=503, headers={"Retry-After": "600"})
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    fetch_all(engine, config_for({"a": url}), now)
    with session_factory(engine)() as session:
        source = session.get_one(Source, "a")
        assert source.consecutive_errors == 1
        assert source.last_error == "HTTP 503 Service Unavailable"
        assert source.next_fetch_at is not None
        assert source.next_fetch_at >= now + timedelta(seconds=600)
    feed_server.add("/a", rss(item("g1", "Rates rise", "http://example.org/1")))
    fetch_all(engine, config_for({"a": url}), now)
    with session_factory(engine)() as session:
        source = session.get_one(Source, "a")
        assert (source.consecutive_errors, source.last_error) == (0, None)


def seconds(count: float) -> timedelta:
    return timedelta(seconds=count)


def _claim(engine: Engine, worker: str, now: datetime, per_host: int | None) -> list[Claim]:
    with session_factory(engine).begin() as session:
        return claim_sources(
            session, worker, now, limit=10, lease=60, per_host=per_host, host_spacing=3
        )


def test_claims_of_one_host_take_turns_host_spacing_apart_whoever_claims(
    engine: Engine, feed_server: FeedServer
) -> None:
    config = config_for({f"s{n}": feed_server.url(f"/s{n}") for n in range(5)})
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with session_factory(engine).begin() as session:
        sync_sources(session, config, now)
    # A worker's claim: two in flight (per_host), their requests three seconds apart.
    first = _claim(engine, "w1", now, per_host=2)
    assert [(c.source.id, c.turn - now) for c in first] == [("s0", seconds(0)), ("s1", seconds(3))]
    # Another worker at the same instant: the host's budget is spent.
    assert _claim(engine, "w2", now, per_host=2) == []
    # A pass (no budget) a second later: its turns follow the worker's, and its claims last a
    # lease from their turn, so none expires while it waits.
    rest = _claim(engine, "fetch", now + seconds(1), per_host=None)
    turns = [(c.source.id, c.turn - now) for c in rest]
    assert turns == [("s2", seconds(6)), ("s3", seconds(9)), ("s4", seconds(12))]
    with session_factory(engine)() as session:
        assert session.get_one(Source, "s4").claim_expires_at == now + seconds(12 + 60)
        assert session.get_one(Host, "127.0.0.1").next_request_at == now + seconds(15)


def test_a_turn_further_ahead_than_the_claims_in_flight_explain_is_not_waited_for(
    engine: Engine, feed_server: FeedServer
) -> None:
    """A clock stepped back (or an earlier run's turns under another clock) leaves a host's
    next turn far ahead: it is trusted only as far as the claims in flight can have taken."""
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with session_factory(engine).begin() as session:
        sync_sources(session, config_for({"s0": feed_server.url("/s0")}), now)
        session.flush()
        session.get_one(Host, "127.0.0.1").next_request_at = now + timedelta(days=1)
    (claim,) = _claim(engine, "w1", now, per_host=2)
    assert claim.turn <= now + seconds(3)
