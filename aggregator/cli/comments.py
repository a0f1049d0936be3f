"""Readers' comments: the moderation queue (`comments pending`) and the editors' decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from aggregator.cli.command import config_of, wording
from aggregator.permalinks import iso_utc


@click.group()
def comments() -> None:
    """Readers' comments: the moderation queue and the editors' decisions."""


@comments.command("pending")
@click.option("--limit", type=int, default=None, help="At most this many, oldest first.")
@click.pass_context
def comments_pending(ctx: click.Context, limit: int | None) -> None:
    """The comments awaiting moderation as JSON Lines: id, story, name, excerpt, created."""
    from aggregator.storage.db import open_database
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
    from aggregator.types import CommentsConfig

    if not Path(ctx.obj["config_path"]).exists():
        return CommentsConfig()
    return config_of(ctx).comments


def _moderate(ctx: click.Context, ids: tuple[int, ...], status_name: str) -> None:
    from aggregator.storage.db import open_database
    from aggregator.stories.comments import Status, forget_ips, moderate

    engine = open_database()
    now = datetime.now(UTC)
    with wording("caulbart comments: ", "; nothing was changed"):
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


COMMANDS = (comments,)
