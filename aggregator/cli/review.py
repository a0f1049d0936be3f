"""The editors' desk: stories of `publish: review` sources, held until an editor decides."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from aggregator.cli.command import config_of, stdout_console, story_ids, wording
from aggregator.permalinks import iso_utc


@click.group()
def review() -> None:
    """Stories of `publish: review` sources, held until an editor approves them."""


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines instead of a table.")
@click.pass_context
def review_list(ctx: click.Context, as_json: bool) -> None:
    """The held stories, oldest first: id, title, section, sources, published, stored."""
    from rich.markup import escape
    from rich.table import Table

    from aggregator.storage.db import open_database
    from aggregator.stories.review import held_stories

    config = config_of(ctx)
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
    stdout_console().print(table)
    click.echo(f"{len(held)} held")


def _decide(ctx: click.Context, ids: tuple[int, ...], decision_name: str) -> None:
    from aggregator.publishing import websub
    from aggregator.storage.db import open_database, session_factory
    from aggregator.stories.review import Review, decide

    config = config_of(ctx)
    engine = open_database()
    nothing_changed = ("caulbart review: nothing was changed",)
    with (
        wording("caulbart review: ", after=nothing_changed),
        session_factory(engine).begin() as session,
    ):
        changed = decide(session, ids, Review(decision_name), datetime.now(UTC))
    websub.announce(engine, config.site, changed)
    click.echo(f"{decision_name}: " + " ".join(str(i) for i in sorted(set(ids))))


@review.command("approve")
@story_ids
@click.pass_context
def review_approve(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Publish these held (or rejected) stories: pages, listings, feeds, search, sitemap."""
    _decide(ctx, ids, "approved")


@review.command("reject")
@story_ids
@click.pass_context
def review_reject(ctx: click.Context, ids: tuple[int, ...]) -> None:
    """Refuse these held stories: they stay invisible (a published one is unpublished instead)."""
    _decide(ctx, ids, "rejected")


COMMANDS = (review,)
