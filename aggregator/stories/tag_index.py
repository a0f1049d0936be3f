"""The tag index in the database: each story's tags, and its related posts found through them
(related_index).

Runs inside the caller's transaction (the source's, or `caulbart retag`'s). Related posts are
computed when a story is stored or changes and kept; candidates come from the tag index (the
latest stories of each of the story's tags), so the cost per story does not grow with the archive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session, defer

from aggregator.ingest.markup import plain_text
from aggregator.storage.bulk import insert_missing, insert_rows
from aggregator.storage.db import among
from aggregator.storage.models import (
    Entry,
    FeedChange,
    Source,
    Story,
    StoryTag,
    StoryToRelate,
    Tag,
)
from aggregator.storage.stories import lock_stories
from aggregator.stories import related_index, tagging
from aggregator.stories.related_index import NO_SYNC
from aggregator.stories.related_index import offer_related as offer_related
from aggregator.stories.related_index import relate_stored as relate_stored
from aggregator.stories.related_index import related_ids as related_ids
from aggregator.types import RelatedLists, TagRules


def update_stories(
    session: Session,
    story_ids: Iterable[int],
    rules: TagRules,
    drafts: Mapping[int, tagging.TagDraft] | None = None,
    *,
    relate_only: Iterable[int] = (),
    relate_later: bool = False,
    now: datetime | None = None,
) -> RelatedLists:
    """Tag each story and keep its related posts; returns them for `offer_related`.

    Works on the whole batch at once (a source's stories, a retag chunk): a fixed number of
    statements per batch, not per story, is what keeps a first ingest of thousands fast.
    `drafts` are tags worked out ahead from a story's first entry (aggregator.ingest.prepare); they
    are used while that entry is the story's only one. `relate_only` stories keep the tags they
    have and are only related again (their date moved, not their text). With `relate_later`
    the stories are only queued to be related (`stories_to_relate`, see `relate_stored`).
    """
    retag = set(story_ids)
    relate = set(relate_only) - retag
    ordered = sorted(retag | relate)
    if not ordered:
        return {}
    if relate_later:
        insert_missing(session, StoryToRelate, [{"story_id": i} for i in ordered], "story_id")
    # Each story's tags and related list are rewritten whole: one writer per story at a time.
    # Queued stories' lists are not written here, nor are those only to be related read.
    rewritten = sorted(retag) if relate_later else ordered
    lock_stories(session, rewritten)
    # Without their text, read only for stories tagged anew from it (_choose_labels): most are
    # tagged from drafts, and a story's text is most of its row.
    stories = [
        story
        for is_wanted in among(session, Story.id, rewritten)
        for story in session.scalars(
            select(Story).where(is_wanted).order_by(Story.id).options(defer(Story.body_html))
        )
    ]
    tagged = [story for story in stories if story.id in retag]
    labels = _choose_labels(session, tagged, rules, drafts or {})
    ids = _tag_ids(session, [label for story in tagged for label in labels[story.id]])
    story_tags = {
        story.id: list(dict.fromkeys(ids[tagging.tag_slug(label)] for label in labels[story.id]))
        for story in tagged
    }
    _replace_story_tags(session, story_tags, now or datetime.now(UTC))
    if relate_later:
        return {}
    story_tags.update(related_index.stored_tags(session, sorted(relate)))
    # All tagged first, so stories stored together can relate to each other.
    lists = related_index.related_lists(session, stories, story_tags)
    related_index.save_related(session, lists)
    return lists


def _choose_labels(
    session: Session,
    stories: list[Story],
    rules: TagRules,
    drafts: Mapping[int, tagging.TagDraft],
) -> dict[int, list[str]]:
    """Each story's tags (best first) from its text, its entries' categories and sources' tags;
    also sets the story's terms."""
    categories: dict[int, list[str]] = {story.id: [] for story in stories}
    source_tags: dict[int, list[str]] = {story.id: [] for story in stories}
    entries: Counter[int] = Counter()
    for in_stories in among(session, Entry.story_id, [story.id for story in stories]):
        for story_id, entry_categories, tags in session.execute(
            select(Entry.story_id, Entry.categories, Source.tags)
            .join(Source, Source.id == Entry.source_id)
            .where(in_stories)
            .order_by(Entry.id)
        ):
            categories[story_id] += entry_categories or ()
            source_tags[story_id] += tags or ()
            entries[story_id] += 1
    # A draft holds while the story's first entry is its only one; the others are read again.
    usable = {s.id: drafts[s.id] for s in stories if entries[s.id] == 1 and s.id in drafts}
    body_html = {
        story_id: markup
        for is_wanted in among(session, Story.id, [s.id for s in stories if s.id not in usable])
        for story_id, markup in session.execute(select(Story.id, Story.body_html).where(is_wanted))
    }
    labels: dict[int, list[str]] = {}
    for story in stories:
        draft = usable.get(story.id)
        if draft is None:
            text = plain_text(body_html[story.id]) or story.lede
            draft = tagging.draft_tags(
                tagging.StoryText(
                    story.title, text, categories[story.id], source_tags[story.id], story.section
                ),
                rules,
            )
        labels[story.id] = list(draft.labels)
        if story.terms != list(draft.terms):  # a new story was inserted with its draft's
            story.terms = list(draft.terms)
    related_index.forget_candidates(session, labels)
    return labels


def _tag_ids(session: Session, labels: list[str]) -> dict[str, int]:
    """Tag ids by slug for the labels, creating missing tags.

    On PostgreSQL new tags are committed at once on a connection of their own: an uncommitted
    new tag would make every worker that meets the same tag wait for this whole transaction.
    """
    # The first label of a slug names the tag: later ones are overwritten in reverse order.
    label_of = {tagging.tag_slug(label): label for label in reversed(labels)}
    rows = [{"slug": slug, "label": label_of[slug]} for slug in sorted(label_of)]
    ids = _ids_of(session, [row["slug"] for row in rows])
    missing = [row for row in rows if row["slug"] not in ids]  # most tags exist already
    bind = session.get_bind()
    for start in range(0, len(missing), 500):
        new_rows = missing[start : start + 500]
        if bind.dialect.name == "postgresql":
            with Session(bind.engine) as side, side.begin():
                insert_missing(side, Tag, new_rows, "slug")
        else:
            insert_missing(session, Tag, new_rows, "slug")
    ids.update(_ids_of(session, [row["slug"] for row in missing]))
    return ids


def _ids_of(session: Session, slugs: list[str]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for is_wanted in among(session, Tag.slug, slugs):
        ids.update(session.execute(select(Tag.slug, Tag.id).where(is_wanted)).all())
    return ids


def _replace_story_tags(session: Session, story_tags: dict[int, list[int]], now: datetime) -> None:
    """Write these stories' tags, noting the tags a story lost: it left their feeds."""
    lost: set[int] = set()
    for is_wanted in among(session, StoryTag.story_id, sorted(story_tags)):
        old = session.execute(
            delete(StoryTag).where(is_wanted).returning(StoryTag.story_id, StoryTag.tag_id),
            execution_options=NO_SYNC,
        )
        lost.update(tag_id for story_id, tag_id in old if tag_id not in story_tags[story_id])
    if lost:
        slugs = session.scalars(select(Tag.slug).where(Tag.id.in_(sorted(lost))))
        note_departures(session, "tag", slugs, now)
    rows = [
        (story_id, tag_id, rank)
        for story_id, tag_ids in story_tags.items()
        for rank, tag_id in enumerate(tag_ids)
    ]
    insert_rows(session, StoryTag, ("story_id", "tag_id", "rank"), rows)


def note_departures(session: Session, kind: str, values: Iterable[str], now: datetime) -> None:
    """Stories lost these tags (kind "tag", slugs), or every story's tags may have changed
    (kind "all", value ""): the feeds' versions must move though no story in them did."""
    rows = [{"kind": kind, "value": value, "at": now} for value in sorted(set(values))]
    if rows:
        session.execute(insert(FeedChange), rows)


def story_tag_labels(session: Session, story_ids: list[int]) -> dict[int, list[str]]:
    """Each story's tag labels, best first: what exports, pages and feeds show."""
    labels: dict[int, list[str]] = {story_id: [] for story_id in story_ids}
    for story_id, label in session.execute(
        select(StoryTag.story_id, Tag.label)
        .join(Tag, Tag.id == StoryTag.tag_id)
        .where(StoryTag.story_id.in_(story_ids))
        .order_by(StoryTag.story_id, StoryTag.rank)
    ):
        labels[story_id].append(label)
    return labels
