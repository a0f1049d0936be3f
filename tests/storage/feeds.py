"""Feed documents and passes the storage tests share: a wire's items served over real HTTP."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from aggregator.config.load import parse_config
from aggregator.ingest.pipeline import claim, run_pass, sync_config
from aggregator.storage.db import session_factory
from aggregator.storage.models import Entry, EntryBand
from aggregator.types import Config, SourceOutcome
from tests import feeds

BODY = (
    "The central bank raised its main interest rate by half a percentage point on Thursday, "
    "its third increase this year, saying inflation remained far above its target."
)


def rss(*items: str, title: str = "Wire") -> str:
    """A wire's channel, linked to example.org."""
    return feeds.rss(*items, title=title, link="http://example.org/")


def item(guid: str, title: str, link: str, body: str = BODY, date: str = "") -> str:
    published = date or "Tue, 24 Nov 2026 10:00:00 GMT"
    return (
        f"<item><guid>{guid}</guid><title>{title}</title><link>{link}</link>"
        f"<description><![CDATA[<p>{body}</p>]]></description><pubDate>{published}</pubDate></item>"
    )


def config_for(sources: dict[str, str], priorities: dict[str, int] | None = None) -> Config:
    # Every test feed is on 127.0.0.1, one host: fetched without spacing, as many hosts would be.
    lines = ["site: {base_url: 'http://caulbart.test'}", "defaults: {host_spacing: 0s}", "sources:"]
    for source_id, url in sources.items():
        lines.append(f"  - id: {source_id}")
        lines.append(f"    url: {url}")
        lines.append(f"    priority: {(priorities or {}).get(source_id, 0)}")
    return parse_config("\n".join(lines) + "\n")


def fetch_all(engine: Engine, config: Config, now: datetime | None = None) -> list[SourceOutcome]:
    def clock() -> datetime:
        return now or datetime.now(UTC)

    sync_config(engine, config, clock)
    requests = claim(engine, config, "test", 100, due_only=False, host_budget=False, clock=clock)
    return run_pass(engine, config, requests, clock=clock)


def by_source(outcomes: list[SourceOutcome]) -> dict[str, SourceOutcome]:
    return {outcome.source_id: outcome for outcome in outcomes}


def distinct_texts(seed: int, count: int) -> list[str]:
    """`count` texts of 80 made-up words: none is a near-duplicate of another."""
    rng = random.Random(seed)
    words = [f"{rng.choice('bcdfgklmnprst')}{rng.choice('aeiou')}{n}" for n in range(400)]
    return [" ".join(rng.choice(words) for _ in range(80)) for _ in range(count)]


def bands_of(engine: Engine) -> dict[str, int]:
    """Band keys stored per entry guid (0 for an entry out of the near-duplicate index)."""
    with session_factory(engine)() as session:
        counts = dict(
            session.execute(
                select(Entry.guid, func.count(EntryBand.band))
                .outerjoin(EntryBand, EntryBand.entry_id == Entry.id)
                .group_by(Entry.guid)
            ).all()
        )
        unindexed = set(session.scalars(select(Entry.guid).where(Entry.shingles.is_(None))))
    assert unindexed == {guid for guid, count in counts.items() if count == 0}
    return counts
