"""Comments blueprint: the story page's reply form (POST) and its comments feed.

Protections, all on: the app-wide CSRF check (web.guard), a hidden honeypot field, a per-client
rate limit (Flask-Limiter), server-side validation, and moderation before anything is shown
(editors moderate at /admin/comments, web.admin). The email is never rendered, put in a feed,
or logged; the one exception is the reader's own form, filled in from their "Save my name..."
cookie, on a page that no cache keeps (Cache-Control: private, no-store).
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, abort, current_app, g, redirect, request, session
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from itsdangerous import BadData, URLSafeSerializer

from aggregator.stories.comments import (
    CommentedStory,
    Draft,
    ShownComment,
    StoryClosed,
    add_comment,
    approved_comments,
    comment_counts,
    find_story,
    own_pending,
    validate,
)
from web import context, guard
from web.routing import StoryRef

__all__ = ["comment_counts", "comments"]

log = logging.getLogger(__name__)

comments = Blueprint("comments", __name__)

STORY_RULE = (
    "/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<story:ref>"
)
# The hidden field a person never sees (nor fills); bots filling every input do.
HONEYPOT = "homepage"
# A reader rarely sends more than a reply or two a minute; a flood is a script.
DEFAULT_RATE_LIMIT = "5 per minute;30 per hour"
FEED_LENGTH = 50  # newest approved comments in a story's comments feed
FEED_MAX_AGE = 60
SESSION_AUTHOR = "comment_author"
# "Save my name, email, and website in this browser for the next time I comment.": the three
# fields, signed (so no other site can plant an address in a reader's form), in a cookie only the
# server reads, kept for half a year after the last comment.
REMEMBER_FIELD = "remember"
REMEMBER_COOKIE = "caulbart_commenter"
REMEMBER_MAX_AGE = 180 * 24 * 3600
REMEMBERED = ("name", "email", "url")


@dataclass(frozen=True)
class Thread:
    """What _comments.html shows: approved comments, the reader's own pending ones, the form."""

    approved: list[ShownComment]
    pending: list[ShownComment]
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    action: str = ""
    remember: bool = False  # the "Save my name..." box, ticked


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(str(current_app.config["SECRET_KEY"]), salt="comment-author-details")


def remembered_author() -> dict[str, str]:
    """The name, email and website this browser asked to be remembered; {} without (or with a
    forged or outdated) cookie."""
    raw = request.cookies.get(REMEMBER_COOKIE)
    if not raw:
        return {}
    try:
        saved = _signer().loads(raw)
    except BadData:
        return {}
    if not isinstance(saved, dict):
        return {}
    return {key: value for key in REMEMBERED if isinstance(value := saved.get(key), str)}


@comments.app_template_global()
def comment_thread(story_id: int) -> Thread:
    """Template global for the story page: its comments, and the form as last submitted."""
    submitted: tuple[dict[str, str], dict[str, str]] | None = g.get("comment_form")
    g.personal = True
    if submitted:
        (values, errors), remember = submitted, bool(request.form.get(REMEMBER_FIELD))
    else:
        values, errors = remembered_author(), {}
        remember = bool(values)
        g.remembered = remember
    author = session.get(SESSION_AUTHOR)
    return Thread(
        approved=approved_comments(context.engine(), story_id),
        pending=own_pending(
            context.engine(), story_id, author if isinstance(author, str) else None
        ),
        values=values,
        errors=errors,
        action=request.path,
        remember=remember,
    )


@comments.after_app_request
def unstored_when_filled_in(response: Response) -> Response:
    """A page whose form holds the reader's remembered email is stored by no cache at all
    (web.guard makes every page with a form private; this one is not kept even by its reader's
    browser)."""
    if g.get("remembered"):
        response.headers["Cache-Control"] = "private, no-store"
        response.vary.add("Cookie")
    return response


def remember_author(response: Response, draft: Draft) -> None:
    """Box ticked: (re)set the cookie with what was just sent; unticked: forget it."""
    if not request.form.get(REMEMBER_FIELD):
        if REMEMBER_COOKIE in request.cookies:
            response.delete_cookie(REMEMBER_COOKIE, httponly=True, samesite="Lax")
        return
    saved = {"name": draft.name, "email": draft.email, "url": draft.website}
    response.set_cookie(
        REMEMBER_COOKIE,
        _signer().dumps(saved),
        max_age=REMEMBER_MAX_AGE,
        secure=request.is_secure or guard.is_https(context.config()),
        httponly=True,  # the server fills the form in; no script needs to read it
        samesite="Lax",
    )


@comments.app_template_global()
def reply_counts(cards: Iterable[Any]) -> dict[int, int]:
    """Template global for listings: approved comments per card's story, in one query."""
    return comment_counts(context.engine(), (card.id for card in cards))


def _open_story(ref: StoryRef) -> CommentedStory:
    story = find_story(context.engine(), ref.id)
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
            context.engine(),
            story.id,
            draft,
            now=datetime.now(UTC),
            settings=context.config().comments,
            ip=request.remote_addr,
            author_token=author,
        )
    except StoryClosed:
        abort(410)
    answer = current_app.make_response(back)
    remember_author(answer, draft)
    return answer


@comments.get(STORY_RULE + "/comments.atom")
def story_comments_feed(year: int, month: int, day: int, ref: StoryRef) -> ResponseReturnValue:
    """The story's approved comments, newest first, as Atom: names and text, never emails."""
    story = _open_story(ref)
    site = context.config().site
    story_url = site.base_url.rstrip("/") + story.path
    shown = approved_comments(context.engine(), story.id, limit=FEED_LENGTH)
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


@comments.record_once
def limit_replies(state: BlueprintSetupState) -> None:
    """The readers' rate limit on replies, once the routes above are registered."""
    rate = state.app.config.get("COMMENTS_RATE_LIMIT") or os.environ.get(
        "CAULBART_COMMENT_RATE_LIMIT", DEFAULT_RATE_LIMIT
    )
    guard.limit(state.app, "comments.post_comment", rate)
