"""Ingest: one pass (`fetch`), and the long-running processes (`run`, `worker`, `serve`) that
runner.py starts."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from aggregator.cli.command import config_of, setup_logging, stdout_console, wording
from aggregator.limits import DEFAULT_TICK
from aggregator.permalinks import iso_utc

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from aggregator.types import SourceOutcome


@click.command()
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Only this source.")
@click.option("--all", "all_sources", is_flag=True, help="Every enabled source, due or not.")
@click.pass_context
def fetch(ctx: click.Context, source_ids: tuple[str, ...], all_sources: bool) -> None:
    """One pass over the due (or named, or all) sources; failures are recorded, not fatal."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from aggregator.ingest.pipeline import claim, run_pass, sync_config
    from aggregator.ingest.scheduler import worker_name
    from aggregator.storage.db import open_database

    interactive = sys.stderr.isatty()
    setup_logging(ctx.obj["verbose"], interactive)
    config = config_of(ctx)
    engine = open_database()
    sync_config(engine, config)
    with wording("caulbart fetch: "):
        # Claimed like a worker would, so a running worker never fetches the same source at once.
        requests = claim(
            engine,
            config,
            f"fetch:{worker_name()}",
            limit=len(config.sources) or 1,
            source_ids=source_ids or None,
            due_only=not (all_sources or source_ids),
            host_budget=False,
        )
    if not requests and not (source_ids or all_sources):
        click.echo(_nothing_due(engine))
        return
    outcomes: list[SourceOutcome]
    if interactive:
        with Progress(
            TextColumn("fetching"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=Console(file=sys.stderr),
            transient=True,
        ) as progress:
            task = progress.add_task("", total=len(requests))

            def advance(outcome: SourceOutcome) -> None:
                progress.update(task, advance=1, description=outcome.source_id)

            outcomes = run_pass(engine, config, requests, on_outcome=advance)
    else:
        outcomes = run_pass(engine, config, requests)
    _print_summary(outcomes)


def _nothing_due(engine: Engine) -> str:
    from aggregator.ingest.pipeline import next_due

    due = next_due(engine)
    if due is None:
        return "caulbart fetch: nothing due: no enabled source has a next fetch"
    source_id, when = due
    wait = (when - datetime.now(UTC)).total_seconds()
    if wait <= 0:  # due, but claimed: a worker (or another pass) is fetching it
        return f"caulbart fetch: nothing due: {source_id} is being fetched by another process"
    minutes = f"{wait / 60:.0f} min" if wait >= 60 else f"{wait:.0f} s"
    return f"caulbart fetch: nothing due; next is {source_id} at {iso_utc(when)} (in {minutes})"


def _print_summary(outcomes: list[SourceOutcome]) -> None:
    from rich.table import Table

    from aggregator.types import SourceStatus

    table = Table(title="caulbart fetch", title_justify="left")
    columns = ("source", "status", "http", "new", "updated", "unchanged", "filtered", "note")
    for column in columns:
        table.add_column(column, justify="right" if column in ("new", "updated") else "left")
    for outcome in sorted(outcomes, key=lambda o: o.source_id):
        note = outcome.error or "; ".join(outcome.notes)
        status = "304" if outcome.status is SourceStatus.NOT_MODIFIED else outcome.status.value
        table.add_row(
            outcome.source_id,
            status,
            str(outcome.http_status or ""),
            str(outcome.new),
            str(outcome.updated),
            str(outcome.unchanged),
            str(outcome.filtered),
            note,
        )
    totals = {
        "new": sum(o.new for o in outcomes),
        "updated": sum(o.updated for o in outcomes),
        "unchanged": sum(o.unchanged for o in outcomes),
        "304": sum(1 for o in outcomes if o.status is SourceStatus.NOT_MODIFIED),
        "error": sum(1 for o in outcomes if o.status.failed),
        "filtered": sum(o.filtered for o in outcomes),
    }
    console = stdout_console()
    console.print(table)
    console.print(
        f"{len(outcomes)} sources: "
        + ", ".join(f"{count} {name}" for name, count in totals.items()),
        highlight=False,
    )


def _long_running(
    ctx: click.Context, *, clock: bool, web: bool, host: str, port: int, tick: float
) -> None:
    from aggregator.cli import runner
    from aggregator.storage.db import open_database

    setup_logging(max(ctx.obj["verbose"], 1), interactive=False)
    config_of(ctx)  # refuse to start on an invalid feeds.yaml, with every problem listed
    engine = open_database()
    with wording("caulbart: "):
        runner.run(
            ctx.obj["config_path"], engine, clock=clock, web=web, host=host, port=port,
            tick_seconds=tick,
        )  # fmt: skip


_host = click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
_port = click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
_tick = click.option(
    "--tick", default=DEFAULT_TICK, show_default=True, type=float, help="Seconds between ticks."
)


@click.command()
@_host
@_port
@_tick
@click.pass_context
def run(ctx: click.Context, host: str, port: int, tick: float) -> None:
    """The main job: the scheduler keeping every source fresh, and the web front."""
    _long_running(ctx, clock=True, web=True, host=host, port=port, tick=tick)


@click.command()
@_tick
@click.pass_context
def worker(ctx: click.Context, tick: float) -> None:
    """The scheduler only; several workers may share one PostgreSQL."""
    _long_running(ctx, clock=True, web=False, host="", port=0, tick=tick)


@click.command()
@_host
@_port
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    help="Web processes: 1 serves with waitress in this process, more run under gunicorn.",
)
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """The web front only (no clock): waitress, or gunicorn with --workers N."""
    if workers == 1:
        _long_running(ctx, clock=False, web=True, host=host, port=port, tick=DEFAULT_TICK)
        return
    from aggregator.cli import runner
    from aggregator.storage.db import open_database

    setup_logging(max(ctx.obj["verbose"], 1), interactive=False)
    config_of(ctx)  # refuse to start on an invalid feeds.yaml, with every problem listed
    open_database().dispose()  # migrate once here, before the processes start
    runner.serve_with_gunicorn(ctx.obj["config_path"], host, port, workers)


COMMANDS = (fetch, run, worker, serve)
