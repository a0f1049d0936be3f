"""The `caulbart` command: check, fetch, export, status (contracts in ARCHITECTURE.md)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import Engine, make_url, select
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from aggregator import __version__
from aggregator.config.feeds_file import Plan
from aggregator.config.load import load_config
from aggregator.errors import CaulbartError, ConfigError, NotFound, Refused, UsageError
from aggregator.ingest.pipeline import claim, next_due, run_pass, sync_config
from aggregator.ingest.prepare import tune_garbage_collector
from aggregator.ingest.scheduler import DEFAULT_TICK, worker_name
from aggregator.permalinks import iso_utc
from aggregator.publishing.export import export_stories
from aggregator.storage.db import database_url, open_database, read_sessions, session_factory
from aggregator.storage.models import Story
from aggregator.stories import tag_index
from aggregator.types import Config, ProbeReport, SourceOutcome, SourceStatus

log = logging.getLogger("aggregator.cli")


def _stdout() -> Console:
    # Wide when piped, so tables are not folded into unreadable columns in logs.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)


def _setup_logging(verbose: int, interactive: bool) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    if interactive and not verbose:
        level = logging.WARNING  # the progress bar says what INFO lines would
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def _load(ctx: click.Context) -> Config:
    """feeds.yaml, parsed; an invalid one ends the command (its problems, exit 1)."""
    return load_config(ctx.obj["config_path"])


# Exit codes (README, "Exit codes"); 0 is success, and each CaulbartError carries its own (1 a
# refusal the command explains, 2 a usage error, 3 a second worker on one SQLite file).
EXIT_DATABASE = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


class _Worded(CaulbartError):
    """An error as the command that it ended words it (see `_wording`)."""

    def __init__(self, lines: list[str], exit_code: int) -> None:
        super().__init__("\n".join(lines))
        self._lines = lines
        self.exit_code = exit_code

    def lines(self) -> list[str]:
        return self._lines


@contextlib.contextmanager
def _wording(prefix: str = "", suffix: str = "", after: tuple[str, ...] = ()) -> Iterator[None]:
    """A CaulbartError raised inside is told as `prefix + line + suffix` for each of its lines,
    then the lines `after`; the innermost wording wins."""
    try:
        yield
    except _Worded:
        raise
    except CaulbartError as exc:
        lines = [f"{prefix}{line}{suffix}" for line in exc.lines()]
        raise _Worded([*lines, *after], exc.exit_code) from exc


class CaulbartGroup(click.Group):
    """The one place a command ends on an error: a CaulbartError prints its lines and exits
    with its code; a database that is unreachable, full, locked or read-only is one clear line
    (exit 4), and Ctrl-C one line (exit 130): never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CaulbartError as exc:
            for line in exc.lines():
                click.echo(line, err=True)
            ctx.exit(exc.exit_code)
        except SQLAlchemyError as exc:
            url = make_url(database_url()).render_as_string(hide_password=True)
            orig = exc.orig if isinstance(exc, DBAPIError) else None
            reason = str(orig or exc).strip().splitlines()[0]
            click.echo(f"caulbart: database error on {url}: {reason}", err=True)
            ctx.exit(EXIT_DATABASE)
        except KeyboardInterrupt:
            click.echo("caulbart: interrupted (what was stored before is kept)", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=CaulbartGroup)
@click.option(
    "--config",
    "config_path",
    envvar="CAULBART_CONFIG",
    default="feeds.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="feeds.yaml to read (env CAULBART_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log lines (-vv for debug).")
@click.version_option(__version__, prog_name="caulbart")
@click.pass_context
def main(ctx: click.Context, config_path: str, verbose: int) -> None:
    """Caulbart: news that matter to you."""
    tune_garbage_collector()
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["verbose"] = verbose


@main.command()
@click.option("--probe", is_flag=True, help="Also fetch each source once and report what it holds.")
@click.option("--json", "as_json", is_flag=True, help="With --probe: JSON Lines, not a table.")
@click.pass_context
def check(ctx: click.Context, probe: bool, as_json: bool) -> None:
    """Validate feeds.yaml: exit 0 if valid, else print file:line: message per problem, exit 1."""
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
    from datetime import UTC, datetime

    from aggregator.ingest.fetch import AddressGuard, Fetcher, FetchRequest, user_agent
    from aggregator.ingest.probe import probe_all

    requests = [
        FetchRequest(s.id, s.url, guard=AddressGuard.for_feed(s.url, s)) for s in config.sources
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
    console = _stdout()
    console.print(table)
    readable = sum(1 for r in reports if r.ok)
    console.print(
        f"{len(reports)} sources: {readable} readable, {len(reports) - readable} with errors",
        highlight=False,
    )


def _config_to_edit(path: Path) -> Config:
    """feeds.yaml as it is now (empty if missing); an invalid one is not added to."""
    from aggregator.config.feeds_file import read_config

    with _wording(after=("caulbart: feeds.yaml must be valid before sources are added to it",)):
        return read_config(path)


def _write_sources(path: Path, plan: Plan) -> None:
    from aggregator.config.feeds_file import append_sources

    if plan.added:
        # A generated source the file refuses: nothing is written.
        with _wording(after=(f"caulbart: {path} left unchanged",)):
            append_sources(path, plan.added)
    for source in plan.added:
        click.echo(
            f"added {source.id}: {source.url}"
            + (f" (section {source.section})" if source.section else "")
        )
    for url, reason in plan.skipped:
        click.echo(f"skipped {url}: {reason}")


@main.command("import-opml")
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--section", default=None, help="Section for feeds outside any OPML folder.")
@click.pass_context
def import_opml(ctx: click.Context, opml_file: Path, section: str | None) -> None:
    """Add an OPML list's feeds to feeds.yaml (comments and order kept), skipping known ones."""
    from aggregator.config.feeds_file import plan_additions
    from aggregator.config.opml import read_opml

    path = Path(ctx.obj["config_path"])
    config = _config_to_edit(path)
    with _wording(suffix=f"; {path} left unchanged"):
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


@main.command()
@click.argument("url")
@click.option("--section", default=None, help="The section its stories go to.")
@click.pass_context
def add(ctx: click.Context, url: str, section: str | None) -> None:
    """Find the feed of URL (a feed, or a page announcing one), probe it, add it to feeds.yaml."""
    from datetime import UTC, datetime

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

    with _wording("caulbart add: ", f"; {path} left unchanged"):
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


@main.command()
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="Only this source.")
@click.option("--all", "all_sources", is_flag=True, help="Every enabled source, due or not.")
@click.pass_context
def fetch(ctx: click.Context, source_ids: tuple[str, ...], all_sources: bool) -> None:
    """One pass over the due (or named, or all) sources; failures are recorded, not fatal."""
    interactive = sys.stderr.isatty()
    _setup_logging(ctx.obj["verbose"], interactive)
    config = _load(ctx)
    engine = open_database()
    sync_config(engine, config)
    with _wording("caulbart fetch: "):
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
    console = _stdout()
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

    _setup_logging(max(ctx.obj["verbose"], 1), interactive=False)
    _load(ctx)  # refuse to start on an invalid feeds.yaml, with every problem listed
    engine = open_database()
    with _wording("caulbart: "):
        runner.run(
            ctx.obj["config_path"], engine, clock=clock, web=web, host=host, port=port,
            tick_seconds=tick,
        )  # fmt: skip


_host = click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
_port = click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
_tick = click.option(
    "--tick", default=DEFAULT_TICK, show_default=True, type=float, help="Seconds between ticks."
)


@main.command()
@_host
@_port
@_tick
@click.pass_context
def run(ctx: click.Context, host: str, port: int, tick: float) -> None:
    """The main job: the scheduler keeping every source fresh, and the web front."""
    _long_running(ctx, clock=True, web=True, host=host, port=port, tick=tick)


@main.command()
@_tick
@click.pass_context
def worker(ctx: click.Context, tick: float) -> None:
    """The scheduler only; several workers may share one PostgreSQL."""
    _long_running(ctx, clock=True, web=False, host="", port=0, tick=tick)


@main.command()
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

    _setup_logging(max(ctx.obj["verbose"], 1), interactive=False)
    _load(ctx)  # refuse to start on an invalid feeds.yaml, with every problem listed
    open_database().dispose()  # migrate once here, before the processes start
    runner.serve_with_gunicorn(ctx.obj["config_path"], host, port, workers)


@main.command()
@click.pass_context
def export(ctx: click.Context) -> None:
    """Every story as one JSON object per line on stdout (the backup format)."""
    config = _load(ctx)
    engine = open_database()
    for line in export_stories(engine, config.site.base_url):
        click.echo(line)


@main.command()
@click.pass_context
def retag(ctx: click.Context) -> None:
    """Recompute every story's tags and related posts, oldest first (after a tagging change)."""
    from aggregator.publishing import publish

    config = _load(ctx)
    engine = open_database()
    sync_config(engine, config)  # the sources' tags as feeds.yaml says now, not as last fetched
    with read_sessions(engine)() as session:
        story_ids = list(session.scalars(select(Story.id).order_by(Story.published, Story.id)))
    batch = 200
    with Progress(
        TextColumn("retagging"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(file=sys.stderr),
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task("", total=len(story_ids))
        for start in range(0, len(story_ids), batch):
            chunk = story_ids[start : start + batch]
            with session_factory(engine).begin() as session:
                now = datetime.now(UTC)
                lists = tag_index.update_stories(session, chunk, config.tags, now=now)
                tag_index.offer_related(session, lists)
                # Stories' tags changed without a new date: every feed is rendered again.
                tag_index.note_departures(session, "all", [""], now)
            # As an ingest's commit: the feeds these stories are in and the tags' they left.
            publish.announce(engine, config.site, chunk, departed_at=now)
            progress.update(task, advance=len(chunk))
    click.echo(f"retagged {len(story_ids)} stories")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="JSON Lines instead of a table.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Per-source health: state, last success, errors, items per day, next fetch, redirects."""
    from datetime import UTC, datetime

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
    console = _stdout()
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


@main.command()
@click.argument("target", required=False, metavar="[STORY_ID | LINK]")
@click.option("--filtered", is_flag=True, help="List the latest items the filters turned away.")
@click.option("--source", "source_ids", multiple=True, metavar="ID", help="With --filtered.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="JSON instead of text.")
@click.pass_context
def explain(
    ctx: click.Context,
    target: str | None,
    filtered: bool,
    source_ids: tuple[str, ...],
    limit: int,
    as_json: bool,
) -> None:
    """Why a story holds its entries (STORY_ID), why an item was filtered (--filtered), or what
    became of an entry's link (LINK): its story, or the filter that turned it away."""
    from aggregator.stories.explain import filtered_items, find_link

    config = _load(ctx)
    engine = open_database()
    if filtered:
        _print_filtered(filtered_items(engine, source_ids, limit), as_json)
        return
    with _wording("caulbart explain: "):
        if target is None:
            raise UsageError("give a STORY_ID, a LINK, or --filtered")
        if target.isdigit():
            _explain_story(engine, config, int(target), as_json)
            return
        story_ids, turned_away = find_link(engine, target)
        if not story_ids and not turned_away:
            raise NotFound(f"no entry or filtered item has the link {target}")
        _print_filtered(turned_away, as_json)
        for story_id in story_ids:
            _explain_story(engine, config, story_id, as_json)


def _print_filtered(reasons: list[Any], as_json: bool) -> None:
    for reason in reasons:
        if as_json:
            click.echo(json.dumps(reason.as_dict(), ensure_ascii=False))
            continue
        click.echo(f"filtered [{reason.source}] {reason.title}")
        click.echo(f"    {reason.published}  {reason.link or '(no link)'}")
        click.echo(f"    {reason.rule}: {reason.detail}  (last seen {reason.seen})")


def _explain_story(engine: Engine, config: Config, story_id: int, as_json: bool) -> None:
    from aggregator.stories.explain import explain_story

    reasons = explain_story(engine, config.site.base_url, story_id)
    if reasons is None:
        raise NotFound(f"no story {story_id}")
    if as_json:
        click.echo(json.dumps(reasons.as_dict(), ensure_ascii=False))
        return
    click.echo(f"story {reasons.story_id}: {reasons.title}")
    click.echo(f"  {reasons.url}")
    click.echo(f"  voice: {reasons.voice}")
    for entry in reasons.entries:
        marker = "*" if entry.voice else "-"
        click.echo(
            f"{marker} entry {entry.entry_id} [{entry.source}, {entry.agency}] {entry.title}"
        )
        click.echo(f"    {entry.published}  {entry.link or '(no link)'}")
        click.echo(f"    {entry.reason}")
        if entry.raw_title:
            click.echo(f"    headline as the feed gave it: {entry.raw_title}")
        if entry.title_derived:
            click.echo(
                f"    headline derived from the {entry.title_source}: the feed gave no title"
            )
        if entry.full_text_error:
            click.echo(f"    full text: {entry.full_text_error} (the feed's summary is shown)")
        if entry.date_note:
            click.echo(f"    date: {entry.date_note}")


# --- unpublish (issue 6: withdrawals) -------------------------------------------------------


@main.command()
@click.argument("story_id", type=int)
@click.option("--reason", required=True, help="Why: shown on the story's 410 page and in feeds.")
@click.pass_context
def unpublish(ctx: click.Context, story_id: int, reason: str) -> None:
    """Withdraw a story: its page answers 410 with the reason, Atom feeds carry a tombstone."""
    from datetime import UTC, datetime

    from aggregator.publishing import publish
    from aggregator.stories.withdrawals import withdraw_story

    config = _load(ctx)
    engine = open_database()
    now = datetime.now(UTC)
    with _wording("caulbart unpublish: "), session_factory(engine).begin() as session:
        story = withdraw_story(session, story_id, reason, now)
        first_time = story.withdrawn_at == now
    publish.announce(engine, config.site, [story_id])
    note = "" if first_time else f" (already, since {iso_utc(story.withdrawn_at or story.updated)})"
    click.echo(f"story {story_id} withdrawn{note}: {story.withdrawn_reason}")


# --- comments (issue 8: readers' replies) ---------------------------------------------------


@main.group()
def comments() -> None:
    """Readers' comments: the moderation queue and the editors' decisions."""


@comments.command("pending")
@click.option("--limit", type=int, default=None, help="At most this many, oldest first.")
@click.pass_context
def comments_pending(ctx: click.Context, limit: int | None) -> None:
    """The comments awaiting moderation as JSON Lines: id, story, name, excerpt, created."""
    from datetime import UTC, datetime

    from aggregator.stories.comments import forget_ips, pending_comments

    engine = open_database()
    forget_ips(engine, datetime.now(UTC), _comment_settings(ctx))
    for comment in pending_comments(engine, limit):
        line = {
            "id": comment.id,
            "story": comment.story,
            "name": comment.name,
            "excerpt": comment.excerpt,
            "created": iso_utc(comment.created),
        }
        click.echo(json.dumps(line, ensure_ascii=False))


def _comment_settings(ctx: click.Context) -> Any:
    """feeds.yaml's `comments` settings, or their defaults when there is no feeds.yaml."""
    from pathlib import Path

    from aggregator.types import CommentsConfig

    if not Path(ctx.obj["config_path"]).exists():
        return CommentsConfig()
    return _load(ctx).comments


def _moderate(ctx: click.Context, ids: tuple[int, ...], status_name: str) -> None:
    from datetime import UTC, datetime

    from aggregator.stories.comments import Status, forget_ips, moderate

    engine = open_database()
    now = datetime.now(UTC)
    with _wording("caulbart comments: ", "; nothing was changed"):
        done = moderate(engine, ids, Status(status_name), now)
    forget_ips(engine, now, _comment_settings(ctx))
    click.echo(f"{status_name}: " + " ".join(str(i) for i in done))


_comment_ids = click.argument("ids", nargs=-1, required=True, type=int, metavar="ID...")


@comments.command("approve")
@_comment_ids
@click.pass_context
def comments_approve(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Publish these comments under their stories."""
    _moderate(ctx, ids, "approved")


@comments.command("reject")
@_comment_ids
@click.pass_context
def comments_reject(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Refuse these comments: they are never shown."""
    _moderate(ctx, ids, "rejected")


@comments.command("spam")
@_comment_ids
@click.pass_context
def comments_spam(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Mark these comments as spam: never shown, and their author is never auto-approved."""
    _moderate(ctx, ids, "spam")


# --- review (issue 11: editors' desk) -------------------------------------------------------


@main.group()
def review() -> None:
    """Stories of `publish: review` sources, held until an editor approves them."""


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines instead of a table.")
@click.pass_context
def review_list(ctx: click.Context, as_json: bool) -> None:
    """The held stories, oldest first: id, title, section, sources, published, stored."""
    from rich.markup import escape

    from aggregator.stories.review import held_stories

    config = _load(ctx)
    held = held_stories(open_database())
    if as_json:
        for story in held:
            line = {
                "id": story.id,
                "title": story.title,
                "section": story.section,
                "sources": list(story.sources),
                "links": list(story.links),
                "published": iso_utc(story.published),
                "stored": iso_utc(story.created),
                "preview": f"{config.site.base_url.rstrip('/')}/admin/review#story-{story.id}",
            }
            click.echo(json.dumps(line, ensure_ascii=False))
        return
    table = Table(title="caulbart review", title_justify="left")
    for column in ("id", "title", "section", "sources", "published"):
        table.add_column(column)
    for story in held:
        table.add_row(
            str(story.id),
            escape(story.title),  # a headline is text, never Rich markup
            story.section,
            ", ".join(story.sources),
            iso_utc(story.published),
        )
    _stdout().print(table)
    click.echo(f"{len(held)} held")


def _decide(ctx: click.Context, ids: tuple[int, ...], decision_name: str) -> None:
    from datetime import UTC, datetime

    from aggregator.publishing import publish
    from aggregator.stories.review import Review, decide

    config = _load(ctx)
    engine = open_database()
    nothing_changed = ("caulbart review: nothing was changed",)
    with (
        _wording("caulbart review: ", after=nothing_changed),
        session_factory(engine).begin() as session,
    ):
        changed = decide(session, ids, Review(decision_name), datetime.now(UTC))
    publish.announce(engine, config.site, changed)
    click.echo(f"{decision_name}: " + " ".join(str(i) for i in sorted(set(ids))))


_story_ids = click.argument("ids", nargs=-1, required=True, type=int, metavar="ID...")


@review.command("approve")
@_story_ids
@click.pass_context
def review_approve(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Publish these held (or rejected) stories: pages, listings, feeds, search, sitemap."""
    _decide(ctx, ids, "approved")


@review.command("reject")
@_story_ids
@click.pass_context
def review_reject(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Refuse these held stories: they stay invisible (a published one is unpublished instead)."""
    _decide(ctx, ids, "rejected")


# --- retention (issue 11: editors' desk) ----------------------------------------------------


@main.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one per story, then totals.")
@click.pass_context
def prune(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Delete stories (and their entries) older than defaults.keep; pinned and commented stay."""
    from datetime import UTC, datetime

    from aggregator.stories import retention

    config = _load(ctx)
    keep = config.defaults.keep
    if keep is None:
        raise Refused("caulbart prune: defaults.keep is not set in feeds.yaml: nothing to prune")
    engine = open_database()
    with session_factory(engine).begin() as session:
        report = retention.prune(session, keep, datetime.now(UTC), dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for story in report.stories:
        if as_json:
            line = {
                "id": story.id,
                "title": story.title,
                "published": iso_utc(story.published),
                "entries": story.entries,
                "deleted": not dry_run,
            }
            click.echo(json.dumps(line, ensure_ascii=False))
        else:
            click.echo(
                f"{verb} story {story.id} ({iso_utc(story.published)}, "
                f"{story.entries} entries): {story.title}"
            )
    totals = {
        "cutoff": iso_utc(report.cutoff),
        "stories": len(report.stories),
        "entries": report.entries,
        "kept_pinned": report.kept_pinned,
        "kept_commented": report.kept_commented,
        "dry_run": dry_run,
    }
    if as_json:
        click.echo(json.dumps({"totals": totals}))
        return
    click.echo(
        f"{verb} {len(report.stories)} stories and {report.entries} entries published before "
        f"{totals['cutoff']}; kept {report.kept_pinned} pinned and {report.kept_commented} "
        "with approved comments"
    )


def _pin(ctx: click.Context, ids: tuple[int, ...], pinned: bool) -> None:
    from datetime import UTC, datetime

    from aggregator.stories.retention import set_pinned

    engine = open_database()
    with _wording("caulbart: ", "; nothing was changed"), session_factory(engine).begin() as s:
        set_pinned(s, ids, pinned, datetime.now(UTC))
    click.echo(
        ("pinned: " if pinned else "unpinned: ") + " ".join(str(i) for i in sorted(set(ids)))
    )


@main.command()
@_story_ids
@click.pass_context
def pin(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Keep these stories for ever: `caulbart prune` never deletes a pinned story."""
    _pin(ctx, ids, True)


@main.command()
@_story_ids
@click.pass_context
def unpin(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Let retention (defaults.keep) delete these stories again once they are old."""
    _pin(ctx, ids, False)


if __name__ == "__main__":
    main()
