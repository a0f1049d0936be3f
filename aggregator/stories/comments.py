"""Readers' comments: validation, storage, moderation, and the safe rendering of their text.

A comment is plain text. It is validated here (pure functions of the submitted values), stored
pending, and shown once an editor approves it, or at once when its email had an approved
comment before and none marked spam (`comments.auto_approve`). The email is kept for editors
and auto-approval only: nothing in this module returns it, and log lines name comments by id.
"""

from __future__ import annotations

import enum
import hashlib
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from markupsafe import Markup, escape
from sqlalchemy import Engine, func, select, update
from sqlalchemy.orm import Session

from aggregator.errors import StoryClosed as StoryClosed
from aggregator.errors import UnknownComments as UnknownComments
from aggregator.ingest.text import visible
from aggregator.permalinks import story_path
from aggregator.storage.db import read_sessions, session_factory
from aggregator.storage.models import Comment, Story
from aggregator.stories.review import is_visible
from aggregator.types import CommentsConfig

log = logging.getLogger(__name__)

# Limits, each with its reason. A name is a name, not a paragraph; RFC 5321 caps a forward
# path at 256 octets, so 254 characters for an address; a reply longer than ~1,000 words
# is an article of its own (and a spammer's favourite).
NAME_MAX = 100
EMAIL_MAX = 254
WEBSITE_MAX = 500
BODY_MAX = 5000
# What `comments pending` shows of a comment's text.
EXCERPT_LENGTH = 120

# local@domain.tld with no spaces, angle brackets or a second @: what a reply needs to reach
# the reader, not the whole of RFC 5322 (whose quoted forms no commenter types).
EMAIL_PATTERN = re.compile(r"[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;.]{2,}")
# Control characters (C0 other than tab and newline, DEL, C1): invisible, and NUL is refused by
# PostgreSQL.
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# An http(s) URL in running text, not preceded by a word character or a slash; trailing
# punctuation (the full stop ending a sentence, a closing bracket) is left out of the link.
URL = re.compile(r"(?<![\w/@])https?://[^\s<>\"'`]+", re.IGNORECASE)
URL_TRAILING = ".,;:!?)]}'\""


class Status(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SPAM = "spam"


@dataclass(frozen=True)
class Draft:
    """What a reader submitted, cleaned (trimmed, control characters removed, CRLF -> LF)."""

    body: str
    name: str
    email: str
    website: str

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Draft:
        def clean(key: str) -> str:
            text = form.get(key, "").replace("\r\n", "\n").replace("\r", "\n")
            return CONTROL.sub("", text).strip()

        return cls(
            body=clean("comment"),
            name=" ".join(visible(clean("name")).split()),
            email=clean("email"),
            website=clean("url"),
        )


def validate(draft: Draft) -> dict[str, str]:
    """Problems by form field (comment, name, email, url); empty when the draft may be stored."""
    problems: dict[str, str] = {}
    if not draft.body:
        problems["comment"] = "Please write a comment."
    elif len(draft.body) > BODY_MAX:
        problems["comment"] = (
            f"Your comment is {len(draft.body)} characters long; the limit is {BODY_MAX}."
        )
    if not draft.name:
        problems["name"] = "Please give your name."
    elif len(draft.name) > NAME_MAX:
        problems["name"] = f"A name can be at most {NAME_MAX} characters long."
    if not draft.email:
        problems["email"] = "Please give your email address (it will not be published)."
    elif len(draft.email) > EMAIL_MAX or not EMAIL_PATTERN.fullmatch(draft.email):
        problems["email"] = "Please give a valid email address, such as name@example.com."
    if draft.website:
        problem = _website_problem(draft.website)
        if problem:
            problems["url"] = problem
    return problems


def _website_problem(website: str) -> str | None:
    if len(website) > WEBSITE_MAX:
        return f"A website address can be at most {WEBSITE_MAX} characters long."
    try:
        parts = urlsplit(website)
    except ValueError:
        return "Please give a website address starting with http:// or https://."
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Please give a website address starting with http:// or https://."
    if any(character.isspace() for character in website):
        return "A website address cannot contain spaces."
    if visible(website) != website:
        return "A website address cannot contain invisible characters."
    return None


def token_digest(token: str) -> str:
    """What is stored of an author's session token: enough to recognise it, not to reuse it."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- storing and moderating -----------------------------------------------------------------


@dataclass(frozen=True)
class CommentedStory:
    """What comments need of their story: its permalink path and title, and if it is open."""

    id: int
    title: str
    path: str
    published: datetime
    withdrawn: bool
    # Held or rejected in review: readers cannot see it, so it has no comments at all (404).
    hidden: bool = False


def find_story(engine: Engine, story_id: int) -> CommentedStory | None:
    with read_sessions(engine)() as session:
        story = session.get(Story, story_id)
        if story is None:
            return None
        return CommentedStory(
            story.id,
            story.title,
            story_path(story.id, story.slug, story.published),
            story.published,
            story.withdrawn_at is not None,
            not is_visible(story.review),
        )


def add_comment(
    engine: Engine,
    story_id: int,
    draft: Draft,
    *,
    now: datetime,
    settings: CommentsConfig,
    ip: str | None,
    author_token: str,
) -> tuple[int, Status]:
    """Store a valid draft: pending, or approved when its author was approved before."""

    def store(session: Session) -> tuple[int, Status]:
        story = session.get(Story, story_id)
        if story is None or story.withdrawn_at is not None or not is_visible(story.review):
            raise StoryClosed(story_id)
        status = Status.PENDING
        if settings.auto_approve and _approved_before(session, draft):
            status = Status.APPROVED
        comment = Comment(
            story_id=story_id,
            name=draft.name,
            email=draft.email,
            website=draft.website or None,
            body=draft.body,
            status=status.value,
            created_at=now,
            approved_at=now if status is Status.APPROVED else None,
            ip=ip if settings.keep_ip_days > 0 else None,
            author_token=token_digest(author_token),
        )
        session.add(comment)
        session.flush()
        _forget_ips(session, now, settings)
        return comment.id, status

    with session_factory(engine).begin() as session:
        comment_id, status = store(session)
    log.info("comment stored comment_id=%d story_id=%d status=%s", comment_id, story_id, status)
    return comment_id, status


def _approved_before(session: Session, draft: Draft) -> bool:
    """The email (any case) has an approved comment and none marked spam, under any name: trust
    is earned and lost by the address, so a spammer cannot come back under a trusted name."""
    email = draft.email.lower()
    statuses = dict(
        session.execute(
            select(Comment.status, func.count())
            .where(func.lower(Comment.email) == email)
            .group_by(Comment.status)
        ).all()
    )
    return bool(statuses.get(Status.APPROVED.value)) and not statuses.get(Status.SPAM.value)


def moderate(engine: Engine, ids: Iterable[int], status: Status, now: datetime) -> list[int]:
    """Set these comments' status; all or none. Raises UnknownComments naming missing ids."""
    wanted = sorted(set(ids))
    with session_factory(engine).begin() as session:
        found = set(session.scalars(select(Comment.id).where(Comment.id.in_(wanted))))
        missing = set(wanted) - found
        if missing:
            raise UnknownComments(missing)
        values: dict[str, object] = {"status": status.value}
        if status is Status.APPROVED:
            values["approved_at"] = now
        session.execute(update(Comment).where(Comment.id.in_(wanted)).values(**values))
    log.info("comments moderated ids=%s status=%s", ",".join(map(str, wanted)), status)
    return wanted


def forget_ips(engine: Engine, now: datetime, settings: CommentsConfig) -> int:
    """Clear the IP of every comment older than `keep_ip_days`; how many were cleared."""
    with session_factory(engine).begin() as session:
        return _forget_ips(session, now, settings)


def _forget_ips(session: Session, now: datetime, settings: CommentsConfig) -> int:
    cutoff = now - timedelta(days=settings.keep_ip_days)
    result = session.execute(
        update(Comment)
        .where(Comment.ip.is_not(None), Comment.created_at <= cutoff)
        .values(ip=None)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShownComment:
    """A comment as pages and feeds show it: never its email or IP."""

    id: int
    story_id: int
    name: str
    website: str | None
    body: str
    status: str
    created_at: datetime
    approved_at: datetime | None

    @property
    def html(self) -> Markup:
        return render_body(self.body)


def _shown(comment: Comment) -> ShownComment:
    return ShownComment(
        comment.id,
        comment.story_id,
        comment.name,
        comment.website,
        comment.body,
        comment.status,
        comment.created_at,
        comment.approved_at,
    )


def approved_comments(
    engine: Engine, story_id: int, limit: int | None = None
) -> list[ShownComment]:
    """A story's approved comments, oldest first (or the newest `limit`, still oldest first)."""
    query = select(Comment).where(
        Comment.story_id == story_id, Comment.status == Status.APPROVED.value
    )
    with read_sessions(engine)() as session:
        if limit is None:
            rows = list(session.scalars(query.order_by(Comment.created_at, Comment.id)))
        else:
            newest = query.order_by(Comment.created_at.desc(), Comment.id.desc()).limit(limit)
            rows = list(reversed(list(session.scalars(newest))))
        return [_shown(c) for c in rows]


def own_pending(engine: Engine, story_id: int, author_token: str | None) -> list[ShownComment]:
    """The pending comments on a story whose author holds this session token."""
    if not author_token:
        return []
    with read_sessions(engine)() as session:
        rows = session.scalars(
            select(Comment)
            .where(
                Comment.story_id == story_id,
                Comment.status == Status.PENDING.value,
                Comment.author_token == token_digest(author_token),
            )
            .order_by(Comment.created_at, Comment.id)
        )
        return [_shown(c) for c in rows]


@dataclass(frozen=True)
class PendingComment:
    """One line of `caulbart comments pending` and one row of /admin/comments."""

    id: int
    story: int
    name: str
    excerpt: str
    created: datetime
    website: str | None
    body: str


def pending_comments(engine: Engine, limit: int | None = None) -> list[PendingComment]:
    """The moderation queue, oldest first."""
    query = (
        select(Comment)
        .where(Comment.status == Status.PENDING.value)
        .order_by(Comment.created_at, Comment.id)
        .limit(limit)
    )
    with read_sessions(engine)() as session:
        return [
            PendingComment(
                c.id, c.story_id, c.name, excerpt(c.body), c.created_at, c.website, c.body
            )
            for c in session.scalars(query)
        ]


def comment_counts(engine: Engine, story_ids: Iterable[int]) -> dict[int, int]:
    """Approved comments per story, for listings; every asked id is present (0 when none)."""
    wanted = sorted(set(story_ids))
    counts = dict.fromkeys(wanted, 0)
    if not wanted:
        return counts
    with read_sessions(engine)() as session:
        rows = session.execute(
            select(Comment.story_id, func.count())
            .where(Comment.story_id.in_(wanted), Comment.status == Status.APPROVED.value)
            .group_by(Comment.story_id)
        ).all()
    counts.update({story_id: count for story_id, count in rows})
    return counts


def excerpt(body: str, length: int = EXCERPT_LENGTH) -> str:
    """The text on one line, cut at a word near `length` characters."""
    text = " ".join(body.split())
    if len(text) <= length:
        return text
    cut = text[:length].rsplit(" ", 1)[0] or text[:length]
    return cut + "…"


# --- rendering ------------------------------------------------------------------------------


def render_body(body: str) -> Markup:
    """Plain text as HTML: everything escaped, paragraphs and line breaks kept, http(s) URLs
    linked with rel="nofollow ugc noopener". No markup of the reader's survives as markup."""
    paragraphs = [p for p in re.split(r"\n\s*\n", body.strip()) if p.strip()]
    return Markup("\n").join(
        Markup("<p>{}</p>").format(Markup("<br>\n").join(_linkify(line) for line in p.split("\n")))
        for p in paragraphs
    )


def _linkify(text: str) -> Markup:
    """Escape `text`, turning each http(s) URL into a link (its href escaped as an attribute)."""
    parts: list[Markup] = []
    position = 0
    for match in URL.finditer(text):
        url = match.group(0).rstrip(URL_TRAILING)
        if len(url) <= len("https://"):
            continue
        parts.append(escape(text[position : match.start()]))
        parts.append(
            Markup('<a href="{0}" rel="nofollow ugc noopener">{0}</a>').format(url)  # escaped
        )
        position = match.start() + len(url)
    parts.append(escape(text[position:]))
    return Markup("").join(parts)
