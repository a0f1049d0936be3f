"""Editors' commands on stored stories: `explain` why a story is what it is, `unpublish` one,
`pin`/`unpin` and `prune` (retention), `retag` after a tagging change, `export` them all."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from aggregator.cli.command import config_of, story_ids, wording
from aggregator.errors import NotFound, Refused, UsageError
from aggregator.permalinks import iso_utc

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from aggregator.types import Config


@click.command()
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
    from aggregator.storage.db import open_database
    from aggregator.stories.explain import filtered_items, find_link

    config = config_of(ctx)
    engine = open_database()
    if filtered:
        _print_filtered(filtered_items(engine, source_ids, limit), as_json)
        return
    with wording("caulbart explain: "):
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


@click.command()
@click.argument("story_id", type=int)
@click.option("--reason", required=True, help="Why: shown on the story's 410 page and in feeds.")
@click.pass_context
def unpublish(ctx: click.Context, story_id: int, reason: str) -> None:
    """Withdraw a story: its page answers 410 with the reason, Atom feeds carry a tombstone."""
    from aggregator.publishing import websub
    from aggregator.storage.db import open_database, session_factory
    from aggregator.stories.withdrawals import withdraw_story

    config = config_of(ctx)
    engine = open_database()
    now = datetime.now(UTC)
    with wording("caulbart unpublish: "), session_factory(engine).begin() as session:
        story = withdraw_story(session, story_id, reason, now)
        first_time = story.withdrawn_at == now
    websub.announce(engine, config.site, [story_id])
    note = "" if first_time else f" (already, since {iso_utc(story.withdrawn_at or story.updated)})"
    click.echo(f"story {story_id} withdrawn{note}: {story.withdrawn_reason}")


@click.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines: one per story, then totals.")
@click.pass_context
def prune(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Delete stories (and their entries) older than defaults.keep; pinned and commented stay."""
    from aggregator.storage.db import open_database, session_factory
    from aggregator.stories import retention

    config = config_of(ctx)
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
    from aggregator.storage.db import open_database, session_factory
    from aggregator.stories.retention import set_pinned

    engine = open_database()
    with wording("caulbart: ", "; nothing was changed"), session_factory(engine).begin() as s:
        set_pinned(s, ids, pinned, datetime.now(UTC))
    click.echo(
        ("pinned: " if pinned else "unpinned: ") + " ".join(str(i) for i in sorted(set(ids)))
    )


@click.command()
@story_ids
@click.pass_context
def pin(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Keep these stories for ever: `caulbart prune` never deletes a pinned story."""
    _pin(ctx, ids, True)


@click.command()
@story_ids
@click.pass_context
def unpin(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Let retention (defaults.keep) delete these stories again once they are old."""
    _pin(ctx, ids, False)


@click.command()
@click.pass_context
def export(ctx: click.Context) -> None:
    """Every story as one JSON object per line on stdout (the backup format)."""
    from aggregator.publishing.export import export_stories
    from aggregator.storage.db import open_database

    config = config_of(ctx)
    engine = open_database()
    for line in export_stories(engine, config.site.base_url):
        click.echo(line)


@click.command()
@click.pass_context
def retag(ctx: click.Context) -> None:
    """Recompute every story's tags and related posts, oldest first (after a tagging change)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from sqlalchemy import select

    from aggregator.publishing import websub
    from aggregator.storage.db import open_database, read_sessions, session_factory
    from aggregator.storage.models import Story
    from aggregator.storage.sources import sync_config
    from aggregator.stories import tag_index

    config = config_of(ctx)
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
            websub.announce(engine, config.site, chunk, departed_at=now)
            progress.update(task, advance=len(chunk))
    click.echo(f"retagged {len(story_ids)} stories")


COMMANDS = (explain, unpublish, prune, pin, unpin, retag, export)
