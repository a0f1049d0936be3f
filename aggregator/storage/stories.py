"""Stories: their rows, their locks, and their text taken from their best entry."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aggregator.storage.db import among
from aggregator.storage.models import Entry, Source, Story
from aggregator.stories import assign
from aggregator.stories.assign import Voice


def slugify(title: str, limit: int = 80) -> str:
    """ASCII, lower-case, hyphenated words: a readable permalink part."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    words = re.sub(r"[^a-z0-9]+", " ", ascii_text.lower()).split()
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > limit:
            break
        slug = candidate
    return slug or "story"


@dataclass(slots=True, eq=False)
class NewStoryRow:
    """A story this batch starts. New stories and entries are written by one INSERT each
    (bulk.insert_rows), with the ids numbered here: the ORM's bookkeeping of many thousands of new
    objects a first ingest cost more than the database's work."""

    section: str
    language: str | None
    published: datetime
    updated: datetime
    created_at: datetime
    review: str | None
    id: int = 0  # numbered once the batch is placed
    # Taken from its best entry once the batch is placed (refresh_story).
    best_entry_id: int | None = None
    slug: str = ""
    title: str = ""
    lede: str = ""
    body_html: str = ""
    image_url: str | None = None
    image_credit: str | None = None
    # Its first entry's drafted terms (aggregator.ingest.prepare), inserted with it, not updated
    # after.
    terms: Sequence[str] = ()


STORY_COLUMNS = (
    "id", "slug", "title", "lede", "body_html", "section", "language", "image_url",
    "image_credit", "best_entry_id", "terms", "published", "updated", "created_at", "review",
)  # fmt: skip


def story_row(story: NewStoryRow) -> tuple[object, ...]:
    """`story` as values in STORY_COLUMNS' order."""
    return (
        story.id, story.slug, story.title, story.lede, story.body_html, story.section,
        story.language, story.image_url, story.image_credit, story.best_entry_id, list(story.terms),
        story.published, story.updated, story.created_at, story.review,
    )  # fmt: skip


def lock_stories(session: Session, story_ids: Iterable[int]) -> None:
    """Lock these stories' rows, in ascending ids (one lock order for every worker), on
    PostgreSQL; SQLite's transaction already holds the database's single write lock."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for is_wanted in among(session, Story.id, sorted(set(story_ids))):
        session.execute(
            select(Story.id)
            .where(is_wanted)
            .order_by(Story.id)
            # NO KEY UPDATE: does not block other transactions' foreign keys to these stories.
            .with_for_update(key_share=True)
        )


def stories_by_id(session: Session, story_ids: set[int]) -> list[Story]:
    return [
        story
        for is_wanted in among(session, Story.id, sorted(story_ids))
        for story in session.scalars(select(Story).where(is_wanted))
    ]


def tag_inputs(story: Story) -> tuple[object, ...]:
    """What a story's tags and terms are worked out from, besides its entries' labels:
    unchanged, re-tagging it would give the same tags."""
    return (story.title, story.lede, story.body_html, story.section)


def refresh_stories(session: Session, stories: Iterable[Story]) -> set[int]:
    """Take each story's headline, text and image from its best entry (one query a chunk);
    returns the stories whose own telling changed (see refresh_story)."""
    by_id = {story.id: story for story in stories}
    voices: dict[int, list[tuple[Voice, int]]] = {}
    for in_story in among(session, Entry.story_id, sorted(by_id)):
        rows = session.execute(
            select(Entry.story_id, Source.priority, *(getattr(Entry, f) for f in Voice._fields))
            .join(Source, Source.id == Entry.source_id)
            .where(in_story)
        )
        for story_id, priority, *fields in rows:
            voices.setdefault(story_id, []).append((Voice(*fields), priority))
    return {story_id for story_id, told in voices.items() if refresh_story(by_id[story_id], told)}


def refresh_story(story: Story | NewStoryRow, voices: list[tuple[Voice, int]]) -> bool:
    """Take the story's headline, text and image from its best entry (stories.assign); returns
    whether its own telling changed: a new headline or text from the source that told it before
    (an edit, a re-send), not another source's copy taking over or joining."""
    before = (story.title, story.lede, story.body_html)
    told = assign.story_text(voices, story.best_entry_id)
    story.best_entry_id = told.best_entry_id
    story.title = told.title
    story.slug = slugify(story.title)
    story.lede = told.lede
    story.body_html = told.body_html
    story.image_url = told.image_url
    story.image_credit = told.image_credit
    story.language = told.language or story.language
    story.published = told.published
    return told.told_again and before != (story.title, story.lede, story.body_html)
