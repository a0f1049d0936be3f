"""The editors' blueprint, /admin: a landing page saying what waits, moderation of comments,
review of held stories, and the sources' health, all behind one token gate.

No token set (CAULBART_ADMIN_TOKEN): the pages do not exist (404). Without the token: 401. Every
POST also passes the app-wide CSRF check (web.guard), and every page is rate-limited as a wall
for token guessing. The health chart is inline SVG bars with a text alternative: no script,
allowed by the page's CSP.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, redirect, render_template, request
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from itsdangerous import BadData, URLSafeTimedSerializer

from aggregator.publishing import websub
from aggregator.storage.db import session_factory
from aggregator.storage.health import SourceHealth, source_health
from aggregator.stories.comments import (
    Status,
    UnknownComments,
    find_story,
    forget_ips,
    moderate,
    pending_comments,
    render_body,
)
from aggregator.stories.review import Review, ReviewRefused, decide, held_stories
from web import context, guard
from web.queries import SourceState, editors_counts, source_state
from web.routing import form_ids

__all__ = ["admin"]

log = logging.getLogger(__name__)

admin = Blueprint("admin", __name__, url_prefix="/admin")

# A queue's decision: a comment's Status or a held story's Review.
Decision = TypeVar("Decision", bound=StrEnum)

# Editors' pages: generous for people, a wall for token guessing.
ADMIN_RATE_LIMIT = "120 per minute"
# The editors' cookie, sent to /admin only. Its value is signed and dated with the secret key
# and holds an HMAC of the token under that key: nothing to guess the token from offline.
ADMIN_COOKIE = "caulbart_admin"
ADMIN_COOKIE_SALT = "caulbart-admin-session"
ADMIN_SESSION_SECONDS = 12 * 3600  # an editor's working day; then the token is asked again
# Below this, a token is guessable by brute force despite the rate limit: warn at start.
ADMIN_TOKEN_MIN_LENGTH = 16
REVIEW_LENGTH = 200  # one screen of decisions; the CLI lists them all
# The health chart's size in SVG user units: one bar per day.
BAR_WIDTH = 8
BAR_GAP = 2
CHART_HEIGHT = 24


# --- the gate -------------------------------------------------------------------------------


def _admin_token() -> str | None:
    token = current_app.config.get("CAULBART_ADMIN_TOKEN") or os.environ.get("CAULBART_ADMIN_TOKEN")
    return str(token) if token else None


def _admin_mark(token: str) -> str:
    """What the editors' cookie proves: the token, keyed with the secret key (so a leaked
    cookie gives nothing to test guesses against), and void once the token changes."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"admin-session:" + token.encode(), hashlib.sha256).hexdigest()


def _admin_cookies() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=ADMIN_COOKIE_SALT)


def _admin_cookie_valid(token: str) -> bool:
    kept = request.cookies.get(ADMIN_COOKIE)
    if not kept:
        return False
    try:
        mark = _admin_cookies().loads(kept, max_age=ADMIN_SESSION_SECONDS)
    except BadData:
        return False
    return isinstance(mark, str) and guard.same(mark, _admin_mark(token))


def _enter_admin(token: str) -> ResponseReturnValue:
    """The answer to a right ?token=: the address without it, and the editors' cookie."""
    rest = {k: v for k, v in request.args.items() if k != "token"}
    response = redirect(request.path + (f"?{urlencode(rest)}" if rest else ""), code=303)
    response.set_cookie(
        ADMIN_COOKIE,
        _admin_cookies().dumps(_admin_mark(token)),
        max_age=ADMIN_SESSION_SECONDS,
        path=admin.url_prefix or "/admin",
        secure=guard.is_https(context.config()),
        httponly=True,
        samesite="Strict",
    )
    return response


@admin.before_request
def authorise() -> ResponseReturnValue | None:
    """A token from CAULBART_ADMIN_TOKEN: as a Bearer header, as HTTP basic auth's password, or
    once as ?token= (then an editors' cookie for /admin is set, and the address cleaned of it).
    No token set: the admin pages do not exist."""
    token = _admin_token()
    if token is None:
        abort(404)
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and guard.same(header[7:].strip(), token):
        return None
    basic = request.authorization
    if basic is not None and basic.type == "basic" and guard.same(basic.password or "", token):
        return None
    given = request.args.get("token")
    if given is not None and guard.same(given, token):
        return _enter_admin(token)
    if _admin_cookie_valid(token):
        return None
    log.info("admin refused path=%s", request.path)
    return Response(
        "Editors only: give the admin token.",
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="Caulbart editors", charset="UTF-8"'},
        mimetype="text/plain",
    )


@admin.after_request
def never_stored(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# --- the landing page -----------------------------------------------------------------------


@admin.get("")
def desk() -> ResponseReturnValue:
    """Where an editor starts: each queue linked with what waits in it, the sources by state."""
    return render_template("admin/desk.html", counts=editors_counts(context.engine()))


@admin.get("/")
def desk_slash() -> ResponseReturnValue:
    return redirect("/admin", code=301)


# --- an editor's decision, as both queues take it -------------------------------------------


def _decision(kind: type[Decision], undecided: Decision) -> tuple[Decision, list[int]]:
    """The decision a queue's button sent and the ids it is for: an unknown action, bad ids or
    the undecided state itself (pending, held) are a bad request (400)."""
    try:
        decision = kind(request.form.get("action", ""))
    except ValueError:
        abort(400)
    ids = form_ids()
    if decision is undecided:
        abort(400)
    return decision, ids


def _done(queue: str, decision: StrEnum, ids: list[int]) -> ResponseReturnValue:
    """Back to the queue (303), which says what was just decided."""
    done = f"{decision.value}: " + ", ".join(str(i) for i in ids)
    return redirect(f"{queue}?" + urlencode({"done": done}), code=303)


# --- comments: the moderation queue ---------------------------------------------------------


@admin.get("/comments")
def comments_queue() -> ResponseReturnValue:
    """The moderation queue, oldest first, with approve / reject / spam for each comment."""
    now = datetime.now(UTC)
    forget_ips(context.engine(), now, context.config().comments)
    queue = pending_comments(context.engine(), limit=200)
    stories = {c.story: find_story(context.engine(), c.story) for c in queue}
    return render_template(
        "admin/comments.html",
        queue=queue,
        stories=stories,
        done=request.args.get("done", ""),
        render_comment=render_body,
    )


@admin.post("/comments")
def comments_decide() -> ResponseReturnValue:
    """approve, reject or spam the comment ids sent (one button per comment)."""
    status, ids = _decision(Status, undecided=Status.PENDING)
    try:
        moderate(context.engine(), ids, status, datetime.now(UTC))
    except UnknownComments as exc:
        abort(404, description=str(exc))
    return _done("/admin/comments", status, ids)


# --- review: held stories -------------------------------------------------------------------


@admin.get("/review")
def review_queue() -> ResponseReturnValue:
    """Held stories, oldest first, each with its lede, sources and links, and the decisions."""
    held = held_stories(context.engine(), limit=REVIEW_LENGTH)
    return render_template("admin/review.html", held=held, done=request.args.get("done", ""))


@admin.post("/review")
def review_decide() -> ResponseReturnValue:
    """approved or rejected for the story ids sent (one form per story)."""
    decision, ids = _decision(Review, undecided=Review.HELD)
    engine = context.engine()
    try:
        with session_factory(engine).begin() as session:
            changed = decide(session, ids, decision, datetime.now(UTC))
    except ReviewRefused as exc:
        abort(409, description=str(exc))
    websub.announce(engine, context.config().site, changed)
    return _done("/admin/review", decision, ids)


# --- sources: every source's health (the same query as `caulbart status`) -------------------


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


def _chosen_state() -> SourceState | None:
    """?state= names one SourceState, or is absent (every source); anything else is a 400."""
    given = request.args.get("state")
    if given is None:
        return None
    try:
        return SourceState(given)
    except ValueError:
        abort(400)


@admin.get("/sources")
def sources() -> ResponseReturnValue:
    """Every source (or those in one ?state=): state, last success, errors, items per day, next
    fetch, redirects; the live ones first, those removed from feeds.yaml apart."""
    chosen = _chosen_state()
    rows = source_health(context.engine(), datetime.now(UTC))
    states = {
        row.id: source_state(row.disabled_reason, row.last_status, row.consecutive_errors)
        for row in rows
    }
    shown = [row for row in rows if chosen is None or states[row.id] is chosen]
    live = [row for row in shown if states[row.id] is not SourceState.REMOVED]
    return render_template(
        "admin/sources.html",
        live=live,
        removed=[row for row in shown if states[row.id] is SourceState.REMOVED],
        states=states,
        counts={state: sum(1 for s in states.values() if s is state) for state in SourceState},
        total=len(rows),
        chosen=chosen,
        charts={row.id: chart(row) for row in shown},
        moved=[row for row in live if row.write_back],
        bar_width=BAR_WIDTH,
    )


# --- set-up ---------------------------------------------------------------------------------


@admin.record_once
def limit_editors(state: BlueprintSetupState) -> None:
    """Once the routes above are registered: the rate limit on every admin page, and a warning
    when the token is short enough to be guessed."""
    app = state.app
    warn_if_short(app.config.get("CAULBART_ADMIN_TOKEN") or os.environ.get("CAULBART_ADMIN_TOKEN"))
    for endpoint in [name for name in app.view_functions if name.startswith("admin.")]:
        guard.limit(app, endpoint, ADMIN_RATE_LIMIT)


def warn_if_short(token: object) -> None:
    """A log WARNING at start when the admin token is short enough to be guessed."""
    if token and len(str(token)) < ADMIN_TOKEN_MIN_LENGTH:
        log.warning(
            "the admin token (CAULBART_ADMIN_TOKEN) is %d characters long; use at least %d "
            "random characters (docs/comments.md says how to make one)",
            len(str(token)),
            ADMIN_TOKEN_MIN_LENGTH,
        )
