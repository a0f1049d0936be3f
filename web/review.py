"""/admin/review: the held stories with Approve / Reject, on the editors' `admin` blueprint.

The routes join web.comments' `admin` blueprint, so they share its token check (401 without the
token, 404 when none is set) and the app-wide CSRF check on every POST.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import urlencode

from flask import Flask, abort, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from sqlalchemy import Engine

from aggregator.publishing import publish
from aggregator.storage.db import session_factory
from aggregator.stories.review import Review, ReviewRefused, decide, held_stories
from aggregator.types import Config
from web.comments import ADMIN_RATE_LIMIT, _limit, admin
from web.routing import form_ids

QUEUE_LENGTH = 200  # one screen of decisions; the CLI lists them all


def init_review(app: Flask, limiter: Limiter) -> None:
    """Rate-limit the review pages like the comments' (a wall for token guessing)."""
    _limit(app, limiter, "admin.review_queue", ADMIN_RATE_LIMIT)
    _limit(app, limiter, "admin.review_decide", ADMIN_RATE_LIMIT)


def _engine() -> Engine:
    engine: Engine = current_app.extensions["caulbart.engine"]
    return engine


@admin.get("/review")
def review_queue() -> ResponseReturnValue:
    """Held stories, oldest first, each with its lede, sources and links, and the decisions."""
    held = held_stories(_engine(), limit=QUEUE_LENGTH)
    return render_template("admin_review.html", held=held, done=request.args.get("done", ""))


@admin.post("/review")
def review_decide() -> ResponseReturnValue:
    """approved or rejected for the story ids sent (one form per story)."""
    try:
        decision = Review(request.form.get("action", ""))
    except ValueError:
        abort(400)
    ids = form_ids()
    if decision is Review.HELD:
        abort(400)
    engine = _engine()
    try:
        with session_factory(engine).begin() as session:
            changed = decide(session, ids, decision, datetime.now(UTC))
    except ReviewRefused as exc:
        abort(409, description=str(exc))
    config: Config = current_app.extensions["caulbart.config"]
    publish.announce(engine, config.site, changed)
    done = f"{decision.value}: " + ", ".join(str(i) for i in ids)
    return redirect("/admin/review?" + urlencode({"done": done}), code=303)
