"""Comments blueprint: the story page's reply form (POST), its comments feed, and /admin/comments.

Protections, all on: a CSRF token bound to the reader's session on every unsafe request, a
hidden honeypot field, a per-client rate limit (Flask-Limiter), server-side validation, and
moderation before anything is shown. The email is never rendered, put in a feed, or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from feedgen.feed import FeedGenerator
from flask import (
    Blueprint,
    Flask,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
)
from flask.typing import ResponseReturnValue
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException

from aggregator.stories.comments import (
    CommentedStory,
    Draft,
    ShownComment,
    Status,
    StoryClosed,
    UnknownComments,
    add_comment,
    approved_comments,
    comment_counts,
    find_story,
    forget_ips,
    moderate,
    own_pending,
    pending_comments,
    render_body,
    validate,
)
from aggregator.types import Config
from web.routing import StoryRef, form_ids

__all__ = ["comment_counts", "init_comments"]

log = logging.getLogger(__name__)

comments = Blueprint("comments", __name__)
admin = Blueprint("admin", __name__, url_prefix="/admin")

STORY_RULE = (
    "/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<story:ref>"
)
# The hidden field a person never sees (nor fills); bots filling every input do.
HONEYPOT = "homepage"
# A reader rarely sends more than a reply or two a minute; a flood is a script.
DEFAULT_RATE_LIMIT = "5 per minute;30 per hour"
# Editors' pages: generous for people, a wall for token guessing.
ADMIN_RATE_LIMIT = "120 per minute"
FEED_LENGTH = 50  # newest approved comments in a story's comments feed
FEED_MAX_AGE = 60
SECRET_KEY_FILE = Path("instance") / "secret_key"
SESSION_CSRF = "csrf"
SESSION_AUTHOR = "comment_author"
# The editors' cookie, sent to /admin only. Its value is signed and dated with the secret key
# and holds an HMAC of the token under that key: nothing to guess the token from offline.
ADMIN_COOKIE = "caulbart_admin"
ADMIN_COOKIE_SALT = "caulbart-admin-session"
ADMIN_SESSION_SECONDS = 12 * 3600  # an editor's working day; then the token is asked again
# Below this, a token is guessable by brute force despite the rate limit: warn at start.
ADMIN_TOKEN_MIN_LENGTH = 16


# --- the application's side -----------------------------------------------------------------


def init_comments(app: Flask) -> Limiter:
    """Secret key, session cookie, CSRF check, rate limits, blueprints and template globals."""
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key()
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    site: Config = app.extensions["caulbart.config"]
    app.config.setdefault("SESSION_COOKIE_SECURE", _is_https(site))
    warn_if_short(app.config.get("CAULBART_ADMIN_TOKEN") or os.environ.get("CAULBART_ADMIN_TOKEN"))
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=os.environ.get("CAULBART_RATELIMIT_STORAGE", "memory://"),
        headers_enabled=True,
        # Redis away: each process limits on its own meanwhile, rather than refusing comments.
        in_memory_fallback_enabled=True,
    )
    app.extensions["caulbart.limiter"] = limiter
    app.register_blueprint(comments)
    app.register_blueprint(admin)
    rate = app.config.get("COMMENTS_RATE_LIMIT") or os.environ.get(
        "CAULBART_COMMENT_RATE_LIMIT", DEFAULT_RATE_LIMIT
    )
    # Wrapped here, not decorated at import: each app gets its own limiter and storage.
    _limit(app, limiter, "comments.post_comment", rate)
    _limit(app, limiter, "admin.pending", ADMIN_RATE_LIMIT)
    _limit(app, limiter, "admin.decide", ADMIN_RATE_LIMIT)
    if "admin.sources" in app.view_functions:
        _limit(app, limiter, "admin.sources", ADMIN_RATE_LIMIT)
    app.before_request(check_csrf)
    app.after_request(private_when_personal)
    app.add_template_global(csrf_token)
    app.add_template_global(comment_thread)
    app.add_template_global(reply_counts)
    app.register_error_handler(429, too_many)
    app.register_error_handler(400, bad_request)
    return limiter


def warn_if_short(token: object) -> None:
    """A log WARNING at start when the admin token is short enough to be guessed."""
    if token and len(str(token)) < ADMIN_TOKEN_MIN_LENGTH:
        log.warning(
            "the admin token (CAULBART_ADMIN_TOKEN) is %d characters long; use at least %d "
            "random characters (docs/comments.md says how to make one)",
            len(str(token)),
            ADMIN_TOKEN_MIN_LENGTH,
        )


def _is_https(config: Config) -> bool:
    return config.site.base_url.lower().startswith("https://")


def _limit(app: Flask, limiter: Limiter, endpoint: str, rate: str) -> None:
    view: Any = app.view_functions[endpoint]
    app.view_functions[endpoint] = limiter.limit(rate)(view)


def secret_key() -> str:
    """CAULBART_SECRET_KEY, else a random key made once and kept in instance/secret_key (0600),
    so sessions survive restarts and every process on the machine signs alike."""
    from_env = os.environ.get("CAULBART_SECRET_KEY")
    if from_env:
        return from_env
    if SECRET_KEY_FILE.exists():
        return SECRET_KEY_FILE.read_text(encoding="ascii").strip()
    SECRET_KEY_FILE.parent.mkdir(parents=True, exist_ok=True)
    draft = SECRET_KEY_FILE.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32))
    try:
        os.link(draft, SECRET_KEY_FILE)  # atomic: of two processes racing, one key wins
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return SECRET_KEY_FILE.read_text(encoding="ascii").strip()


def csrf_token() -> str:
    """The form token: an HMAC of a random value kept in the reader's signed session cookie.

    Stable for a session (so a story page's ETag holds for its reader), useless to any other
    site, which can neither read the cookie nor compute the HMAC without the secret key.
    """
    g.personal = True
    raw = session.get(SESSION_CSRF)
    if not isinstance(raw, str):
        raw = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = raw
    return _sign(raw)


def _sign(raw: str) -> str:
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"csrf:" + raw.encode(), hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison that any text may be given to (str needs ASCII)."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def check_csrf() -> None:
    """Every unsafe request to the app carries the session's token, or is refused (400).

    A request no route takes (an unknown address, a method such as PUT) is left to routing,
    which answers it 404 or 405 before any view runs."""
    if request.method in ("GET", "HEAD", "OPTIONS") or request.routing_exception is not None:
        return
    raw = session.get(SESSION_CSRF)
    sent = request.form.get("csrf_token", "")
    if not isinstance(raw, str) or not sent or not _same(sent, _sign(raw)):
        log.info("refused without a valid CSRF token path=%s", request.path)
        abort(400, description="csrf")


def private_when_personal(response: Response) -> Response:
    """A page that read the session (a form token, an author's own pending comment) is for its
    reader alone: shared caches must not keep it."""
    if g.get("personal") and "public" in (response.headers.get("Cache-Control") or ""):
        response.headers["Cache-Control"] = "private, no-cache"
    return response


def too_many(error: HTTPException) -> ResponseReturnValue:
    return (
        render_template(
            "error.html",
            heading="Too many comments",
            message="You have sent several comments in a short time. Please wait a few "
            "minutes before sending another.",
        ),
        429,
    )


def bad_request(error: HTTPException) -> ResponseReturnValue:
    if getattr(error, "description", "") == "csrf":
        message = (
            "Your comment could not be accepted: the form had expired or did not come from "
            "this site. Please reload the story, then send your comment again."
        )
    else:
        message = "The request could not be understood."
    return render_template("error.html", heading="Request refused", message=message), 400


def _engine() -> Engine:
    engine: Engine = current_app.extensions["caulbart.engine"]
    return engine


def _config() -> Config:
    config: Config = current_app.extensions["caulbart.config"]
    return config


# --- the story page's comments --------------------------------------------------------------


@dataclass(frozen=True)
class Thread:
    """What _comments.html shows: approved comments, the reader's own pending ones, the form."""

    approved: list[ShownComment]
    pending: list[ShownComment]
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    action: str = ""


def comment_thread(story_id: int) -> Thread:
    """Template global for the story page: its comments, and the form as last submitted."""
    submitted: tuple[dict[str, str], dict[str, str]] | None = g.get("comment_form")
    values, errors = submitted or ({}, {})
    g.personal = True
    author = session.get(SESSION_AUTHOR)
    return Thread(
        approved=approved_comments(_engine(), story_id),
        pending=own_pending(_engine(), story_id, author if isinstance(author, str) else None),
        values=values,
        errors=errors,
        action=request.path,
    )


def reply_counts(cards: Iterable[Any]) -> dict[int, int]:
    """Template global for listings: approved comments per card's story, in one query."""
    return comment_counts(_engine(), (card.id for card in cards))


def _open_story(ref: StoryRef) -> CommentedStory:
    story = find_story(_engine(), ref.id)
    if story is None or story.hidden:
        abort(404)
    if story.withdrawn:
        abort(410)
    return story


@comments.post(STORY_RULE)
def post_comment(year: int, month: int, day: int, ref: StoryRef) -> ResponseReturnValue:
    """A reader's reply: held for moderation (or approved), then back to the story (303)."""
    story = _open_story(ref)
    back = redirect(f"{story.path}#comments", code=303)
    if request.form.get(HONEYPOT):
        log.info("comment discarded: honeypot filled story_id=%d", story.id)
        return back  # the same answer as a success: nothing for a bot to learn
    draft = Draft.from_form(request.form)
    problems = validate(draft)
    if problems:
        g.comment_form = (
            {key: request.form.get(key, "") for key in ("comment", "name", "email", "url")},
            problems,
        )
        view: Any = current_app.view_functions["pages.story"]
        page: Response = current_app.make_response(view(year=year, month=month, day=day, ref=ref))
        page.status_code = 422
        page.headers["Cache-Control"] = "no-store"
        return page
    author = session.get(SESSION_AUTHOR)
    if not isinstance(author, str):
        author = secrets.token_urlsafe(32)
        session[SESSION_AUTHOR] = author
    try:
        add_comment(
            _engine(),
            story.id,
            draft,
            now=datetime.now(UTC),
            settings=_config().comments,
            ip=request.remote_addr,
            author_token=author,
        )
    except StoryClosed:
        abort(410)
    return back


@comments.get(STORY_RULE + "/comments.atom")
def story_comments_feed(year: int, month: int, day: int, ref: StoryRef) -> ResponseReturnValue:
    """The story's approved comments, newest first, as Atom: names and text, never emails."""
    story = _open_story(ref)
    site = _config().site
    story_url = site.base_url.rstrip("/") + story.path
    shown = approved_comments(_engine(), story.id, limit=FEED_LENGTH)
    feed = FeedGenerator()
    feed.id(story_url + "/comments.atom")
    feed.title(f"Comments on: {story.title}")
    feed.link(href=story_url, rel="alternate", type="text/html")
    feed.link(href=story_url + "/comments.atom", rel="self", type="application/atom+xml")
    feed.language(site.language)
    moments = [c.approved_at or c.created_at for c in shown]
    feed.updated(max(moments, default=story.published))
    for comment in shown:  # feedgen lists entries newest first when added oldest first
        entry = feed.add_entry()
        entry.id(f"{story_url}#comment-{comment.id}")
        entry.title(f"Comment by {comment.name}")
        entry.author(
            {"name": comment.name, **({"uri": comment.website} if comment.website else {})}
        )
        entry.link(href=f"{story_url}#comment-{comment.id}", rel="alternate")
        entry.published(comment.created_at)
        entry.updated(comment.approved_at or comment.created_at)
        entry.content(str(comment.html), type="html")
    response = Response(feed.atom_str(pretty=True), mimetype="application/atom+xml")
    response.headers["Cache-Control"] = f"public, max-age={FEED_MAX_AGE}"
    response.add_etag()
    return response.make_conditional(request)


# --- editors: /admin/comments ---------------------------------------------------------------


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
    return isinstance(mark, str) and _same(mark, _admin_mark(token))


def _enter_admin(token: str) -> ResponseReturnValue:
    """The answer to a right ?token=: the address without it, and the editors' cookie."""
    rest = {k: v for k, v in request.args.items() if k != "token"}
    response = redirect(request.path + (f"?{urlencode(rest)}" if rest else ""), code=303)
    response.set_cookie(
        ADMIN_COOKIE,
        _admin_cookies().dumps(_admin_mark(token)),
        max_age=ADMIN_SESSION_SECONDS,
        path=admin.url_prefix or "/admin",
        secure=_is_https(_config()),
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
    if header.startswith("Bearer ") and _same(header[7:].strip(), token):
        return None
    basic = request.authorization
    if basic is not None and basic.type == "basic" and _same(basic.password or "", token):
        return None
    given = request.args.get("token")
    if given is not None and _same(given, token):
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


@admin.get("/comments")
def pending() -> ResponseReturnValue:
    """The moderation queue, oldest first, with approve / reject / spam for each comment."""
    now = datetime.now(UTC)
    forget_ips(_engine(), now, _config().comments)
    queue = pending_comments(_engine(), limit=200)
    stories = {c.story: find_story(_engine(), c.story) for c in queue}
    return render_template(
        "admin_comments.html",
        queue=queue,
        stories=stories,
        done=request.args.get("done", ""),
        render_comment=render_body,
    )


@admin.post("/comments")
def decide() -> ResponseReturnValue:
    """approve, reject or spam the comment ids sent (one button per comment)."""
    try:
        status = Status(request.form.get("action", ""))
    except ValueError:
        abort(400)
    ids = form_ids()
    if status is Status.PENDING:
        abort(400)
    try:
        moderate(_engine(), ids, status, datetime.now(UTC))
    except UnknownComments as exc:
        abort(404, description=str(exc))
    done = f"{status.value}: " + ", ".join(str(i) for i in ids)
    return redirect("/admin/comments?" + urlencode({"done": done}), code=303)
