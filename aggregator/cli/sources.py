"""The sources in feeds.yaml: `check` (and `--probe`), `add`, `import-opml`, and their health
(`status`)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from aggregator.cli.command import stdout_console, wording
from aggregator.errors import ConfigError, NotFound, Refused, UsageError
from aggregator.permalinks import iso_utc

if TYPE_CHECKING:
    from aggregator.config.feeds_file import Plan
    from aggregator.types import Config, ProbeReport


@click.command()
@click.option("--probe", is_flag=True, help="Also fetch each source once and report what it holds.")
@click.option("--json", "as_json", is_flag=True, help="With --probe: JSON Lines, not a table.")
@click.pass_context
def check(ctx: click.Context, probe: bool, as_json: bool) -> None:
    """Validate feeds.yaml: exit 0 if valid, else print file:line: message per problem, exit 1."""
    from aggregator.config.load import load_config

    try:
        config = load_config(ctx.obj["config_path"])
    except ConfigError as exc:  # the problems are check's report: on stdout, not as an error
        for line in exc.lines():
            click.echo(line)
        ctx.exit(1)
    enabled = sum(1 for s in config.sources if s.enabled)
    summary = f"{config.path}: OK, {len(config.sources)} sources ({enabled} enabled)"
    if not probe:
        click.echo(summary)
        return
    from aggregator.ingest.fetch import AddressGuard, Fetcher, FetchRequest, user_agent
    from aggregator.ingest.probe import probe_all

    requests = [
        FetchRequest(
            s.id,
            s.url,
            guard=AddressGuard.for_feed(s.url, s),
            spacing=float(config.defaults.host_spacing),
        )
        for s in config.sources
    ]
    with Fetcher(config.defaults, user_agent(config.site.base_url)) as fetcher:
        reports = probe_all(fetcher, requests, datetime.now(UTC))
    if as_json:
        for report in reports:
            click.echo(json.dumps(_probe_dict(report), ensure_ascii=False))
        return
    click.echo(summary)
    _print_probes(reports, "caulbart check --probe")


def _probe_dict(report: ProbeReport) -> dict[str, Any]:
    values = dataclasses.asdict(report)
    values["newest"] = iso_utc(report.newest) if report.newest else None
    values["ok"] = report.ok
    return values


def _print_probes(reports: list[ProbeReport], title: str) -> None:
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    columns = ("source", "reachable", "http", "format", "items", "newest", "full text", "images")
    for column in (*columns, "credited", "error / note"):
        table.add_column(column)
    for report in reports:
        note = report.error or ""
        if report.ok and report.final_url and report.final_url != report.url:
            note = f"redirected to {report.final_url}"
        table.add_row(
            report.source_id,
            "yes" if report.reachable else "no",
            str(report.http_status or ""),
            report.format or "-",
            str(report.items),
            iso_utc(report.newest) if report.newest else "-",
            f"{report.full_text_items}/{report.items}",
            str(report.image_items),
            f"{report.credited_images}/{report.image_items}",
            note,
        )
    console = stdout_console()
    console.print(table)
    readable = sum(1 for r in reports if r.ok)
    console.print(
        f"{len(reports)} sources: {readable} readable, {len(reports) - readable} with errors",
        highlight=False,
    )


def _config_to_edit(path: Path) -> Config:
    """feeds.yaml as it is now (empty if missing); an invalid one is not added to."""
    from aggregator.config.feeds_file import read_config

    with wording(after=("caulbart: feeds.yaml must be valid before sources are added to it",)):
        return read_config(path)


def _write_sources(path: Path, plan: Plan) -> None:
    from aggregator.config.feeds_file import append_sources

    if plan.added:
        # A generated source the file refuses: nothing is written.
        with wording(after=(f"caulbart: {path} left unchanged",)):
            append_sources(path, plan.added)
    for source in plan.added:
        click.echo(
            f"added {source.id}: {source.url}"
            + (f" (section {source.section})" if source.section else "")
        )
    for url, reason in plan.skipped:
        click.echo(f"skipped {url}: {reason}")


@click.command("import-opml")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--section", default=None, help="Section for feeds outside any OPML folder.")
@click.pass_context
def import_opml(ctx: click.Context, opml_file: Path, section: str | None) -> None:
    """Add an OPML list's feeds to feeds.yaml (comments and order kept), skipping known ones."""
    from aggregator.config.feeds_file import plan_additions
    from aggregator.config.opml import read_opml

    path = Path(ctx.obj["config_path"])
    config = _config_to_edit(path)
    with wording(suffix=f"; {path} left unchanged"):
        drafts, notes = read_opml(opml_file.read_bytes(), str(opml_file))
    if section:
        drafts = [d if d.section else dataclasses.replace(d, section=section) for d in drafts]
    plan = plan_additions(config, drafts)
    _write_sources(path, plan)
    for note in notes:
        click.echo(f"not taken: {note}")
    click.echo(
        f"{opml_file}: {len(plan.added)} added, {len(plan.skipped)} already present, "
        f"{len(notes)} not taken"
    )


@click.command()
@click.argument("url")
@click.option("--section", default=None, help="The section its stories go to.")
@click.pass_context
def add(ctx: click.Context, url: str, section: str | None) -> None:
    """Find the feed of URL (a feed, or a page announcing one), probe it, add it to feeds.yaml."""
    from aggregator.config.feeds_file import plan_additions
    from aggregator.config.load import check_url
    from aggregator.ingest.fetch import Fetcher, user_agent
    from aggregator.ingest.probe import discover, on_site
    from aggregator.types import SourceDraft

    path = Path(ctx.obj["config_path"])
    config = _config_to_edit(path)
    try:
        url = check_url(url)
    except ValueError as exc:
        raise UsageError(f"caulbart add: {exc}") from None

    def refuse_own_site(found: str) -> None:
        """The site's own feeds would feed the site into itself: its stories, again and again."""
        base = config.site.base_url
        if on_site(base, found):
            raise Refused(
                f"{found} is on this site (site.base_url {base}): adding its feed would feed "
                "the site into itself"
            )

    with wording("caulbart add: ", f"; {path} left unchanged"):
        refuse_own_site(url)
        with Fetcher(config.defaults, user_agent(config.site.base_url)) as fetcher:
            report = discover(fetcher, url, datetime.now(UTC))
        _print_probes([report], "caulbart add")
        if not report.ok:
            raise NotFound(f"{report.url}: {report.error}")
        # A permanent redirect is followed once here, so the file names where the feed lives now.
        feed_url = report.final_url or report.url
        refuse_own_site(report.url)
        refuse_own_site(feed_url)
    plan = plan_additions(config, [SourceDraft(feed_url, report.title, section)])
    _write_sources(path, plan)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="JSON Lines instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Per-source health: state, last success, errors, items per day, next fetch, redirects."""
    from rich.table import Table

    from aggregator.storage.db import open_database
    from aggregator.storage.health import HEALTH_DAYS, source_health, sparkline

    engine = open_database()
    rows = source_health(engine, datetime.now(UTC))
    if as_json:
        for row in rows:
            click.echo(json.dumps(row.as_dict(), ensure_ascii=False))
        return
    table = Table(title="caulbart status", title_justify="left")
    columns = ("source", "state", "last success", "http", "errors", "next fetch", "entries")
    for column in (*columns, f"per day, {HEALTH_DAYS}d", "error / note"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row.id,
            row.state,
            iso_utc(row.last_success_at) if row.last_success_at else "-",
            str(row.last_http_status or ""),
            str(row.consecutive_errors),
            iso_utc(row.next_fetch_at) if row.next_fetch_at else "-",
            str(row.entries),
            sparkline(row.items_per_day),
            row.last_error or _health_note(row),
        )
    console = stdout_console()
    console.print(table)
    moved = [row for row in rows if row.write_back]
    if moved:
        console.print("Moved permanently: write the new address into feeds.yaml", highlight=False)
        for row in moved:
            console.print(
                f"  {row.id}: url: {row.write_back}  (was {row.config_url})", highlight=False
            )


def _health_note(row: Any) -> str:
    """What `status` says of a healthy source: articles left as summaries, items skipped."""
    notes = [f"full text: {row.full_text_error}"] if row.full_text_error else []
    if row.repeated_items:
        notes.append(f"{row.repeated_items} repeated item(s) of the feed skipped")
    return "; ".join(notes)


COMMANDS = (check, add, import_opml, status)
