"""/admin/sources: every source's health for editors (the same query as `caulbart status`).

Registered on the comments module's admin blueprint, so it is behind the same editors' token.
The chart is inline SVG bars with a text alternative: no script, allowed by the page's CSP.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import current_app, render_template
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine

from aggregator.storage.health import SourceHealth, source_health
from web.comments import admin

# The chart's size in SVG user units: one bar per day.
BAR_WIDTH = 8
BAR_GAP = 2
CHART_HEIGHT = 24


@dataclass(frozen=True)
class Bar:
    day: str
    count: int
    x: int
    y: int
    height: int


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    width: int
    height: int
    # What a screen reader says instead of the picture.
    text: str


def chart(row: SourceHealth) -> Chart:
    """Bars scaled to the source's busiest day; a day with items is never drawn empty."""
    peak = max(row.items_per_day, default=0)
    bars: list[Bar] = []
    for index, count in enumerate(row.items_per_day):
        height = 0 if count == 0 else max(1, round(count * CHART_HEIGHT / peak))
        day = (row.first_day + timedelta(days=index)).isoformat()
        bars.append(Bar(day, count, index * (BAR_WIDTH + BAR_GAP), CHART_HEIGHT - height, height))
    days = len(row.items_per_day)
    counts = ", ".join(str(n) for n in row.items_per_day)
    text = f"Items per day over the last {days} days, oldest first: {counts}"
    return Chart(tuple(bars), max(0, days * (BAR_WIDTH + BAR_GAP) - BAR_GAP), CHART_HEIGHT, text)


@admin.get("/sources")
def sources() -> ResponseReturnValue:
    """Every source: state, last success, errors, items per day, next fetch, redirects."""
    engine: Engine = current_app.extensions["caulbart.engine"]
    rows = source_health(engine, datetime.now(UTC))
    return render_template(
        "admin_sources.html",
        rows=rows,
        charts={row.id: chart(row) for row in rows},
        moved=[row for row in rows if row.write_back],
        bar_width=BAR_WIDTH,
    )
