"""Source health for editors: one query, shown by `caulbart status` and by /admin/sources.

Items per day come from the stored entries' publication dates (no counter to keep in step):
the last `HEALTH_DAYS` UTC days, today last.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, select

from aggregator.permalinks import iso_utc
from aggregator.storage.db import read_sessions
from aggregator.storage.models import Entry, Source

# Two weeks show a weekly rhythm twice and a source that went quiet days ago.
HEALTH_DAYS = 14
SPARK_BARS = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class SourceHealth:
    id: str
    url: str
    config_url: str
    disabled_reason: str | None
    last_status: str | None
    last_http_status: int | None
    last_error: str | None
    consecutive_errors: int
    last_fetch_at: datetime | None
    last_success_at: datetime | None
    next_fetch_at: datetime | None
    interval_seconds: int
    adaptive: bool
    claimed_by: str | None
    moved_to: str | None
    # `full_text` sources: why articles of the last pass that tried some kept their summary.
    full_text_error: str | None
    entries: int
    # Entries of the last document read skipped as repeats of another (store: repeated_items).
    repeated_items: int
    # Entries published on each of the last HEALTH_DAYS days (UTC), oldest first.
    items_per_day: tuple[int, ...]
    first_day: date

    @property
    def state(self) -> str:
        return self.disabled_reason or self.last_status or "new"

    @property
    def write_back(self) -> str | None:
        """The address feeds.yaml should now say: a permanent redirect not yet copied there
        (sources.sync_sources forgets it once the file names a new address)."""
        return self.moved_to

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: times as ISO 8601 UTC, as `caulbart status --json` prints them."""
        values = asdict(self)
        for key in ("last_fetch_at", "last_success_at", "next_fetch_at"):
            values[key] = iso_utc(values[key]) if values[key] else None
        values["items_per_day"] = list(self.items_per_day)
        values["first_day"] = self.first_day.isoformat()
        values["write_back"] = self.write_back
        return values


def sparkline(counts: tuple[int, ...]) -> str:
    """One block character per day, scaled to the busiest day; a blank day is a space."""
    peak = max(counts, default=0)
    if peak == 0:
        return "·" * len(counts)
    steps = len(SPARK_BARS)
    # ceil(n * steps / peak) - 1: the busiest day is the full block, any day with items shows.
    return "".join(" " if n == 0 else SPARK_BARS[-(-n * steps // peak) - 1] for n in counts)


def source_health(engine: Engine, now: datetime, days: int = HEALTH_DAYS) -> list[SourceHealth]:
    """Every source, by id, with its fetch state, entry count and items per day."""
    first_day = now.date() - timedelta(days=days - 1)
    since = datetime.combine(first_day, datetime.min.time(), tzinfo=now.tzinfo)
    day = _utc_day(engine, Entry.published)
    with read_sessions(engine)() as session:
        counts = dict(
            session.execute(select(Entry.source_id, func.count()).group_by(Entry.source_id)).all()
        )
        per_day: dict[str, dict[str, int]] = {}
        rows = session.execute(
            select(Entry.source_id, day, func.count())
            .where(Entry.published >= since)
            .group_by(Entry.source_id, day)
        )
        for source_id, day_text, count in rows:
            per_day.setdefault(source_id, {})[str(day_text)] = count
        labels = [(first_day + timedelta(days=n)).isoformat() for n in range(days)]
        return [
            SourceHealth(
                id=s.id,
                url=s.url,
                config_url=s.config_url,
                disabled_reason=s.disabled_reason,
                last_status=s.last_status,
                last_http_status=s.last_http_status,
                last_error=s.last_error,
                consecutive_errors=s.consecutive_errors,
                last_fetch_at=s.last_fetch_at,
                last_success_at=s.last_success_at,
                next_fetch_at=s.next_fetch_at,
                interval_seconds=s.interval_seconds,
                adaptive=s.adaptive,
                claimed_by=s.claimed_by,
                moved_to=s.moved_to,
                full_text_error=s.full_text_error,
                entries=counts.get(s.id, 0),
                repeated_items=s.repeated_items,
                items_per_day=tuple(per_day.get(s.id, {}).get(label, 0) for label in labels),
                first_day=first_day,
            )
            for s in session.scalars(select(Source).order_by(Source.id))
        ]


def _utc_day(engine: Engine, column: Any) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp as YYYY-MM-DD, in SQL (SQLite stores UTC naive)."""
    if engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.strftime("%Y-%m-%d", column)
