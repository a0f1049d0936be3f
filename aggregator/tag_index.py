"""The tag index in the database: each story's tags, and its related posts found through them.

Runs inside the caller's transaction (the source's, or `caulbart retag`'s). Related posts are
computed when a story is stored or changes and kept; candidates come from the tag index (the
latest stories of each of the story's tags), so the cost per story does not grow with the archive.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from aggregator import tagging
from aggregator.db import insert_missing
from aggregator.models import Entry, RelatedStory, Source, Story, StoryTag, Tag
from aggregator.normalise import plain_text
from aggregator.store import lock_stories
from aggregator.types import TagRules

# Latest stories looked at per tag when looking for related posts.
CANDIDATES_PER_TAG = 150
CANDIDATES_PER_SECTION = 100
# Document frequencies are counted up to this many stories, and reused for this many seconds.
DF_CAP = 2000
DF_CACHE_SECONDS = 300.0
_DF_CACHE: dict[tuple[str, int], tuple[int, float]] = {}


# story id -> its related posts as (score, other story id), best first.
RelatedLists = dict[int, list[tuple[float, int]]]


def update_stories(session: Session, story_ids: Iterable[int], rules: TagRules) -> RelatedLists:
    """Tag each story and keep its related posts; returns them for `offer_related`."""
    lists: RelatedLists = {}
    ordered = sorted(set(story_ids))
    # Each story's tags and related list are rewritten whole: one writer per story at a time.
    lock_stories(session, ordered)
    stories = [story for i in ordered if (story := session.get(Story, i)) is not None]
    for story in stories:  # all tagged first, so stories stored together can relate to each other
        tag_story(session, story, rules)
    for story in stories:
        lists[story.id] = relate_story(session, story)
    return lists


def offer_related(session: Session, lists: RelatedLists) -> None:
    """Slot each story into its related stories' own lists where it ranks high enough.

    Kept out of the source's transaction: it writes other stories' rows, and holding those locks
    while a whole feed is stored would make concurrent workers wait on each other.
    """
    offers = sorted(
        (other, story_id, score) for story_id, best in lists.items() for score, other in best
    )
    for other, story_id, score in offers:  # ascending ids: one lock order for every worker
        _offer_related(session, other, story_id, score)


def tag_story(session: Session, story: Story, rules: TagRules) -> list[str]:
    """Choose and store the story's tags (best first) and its terms; returns the labels."""
    rows = session.execute(
        select(Entry.categories, Source.tags)
        .join(Source, Source.id == Entry.source_id)
        .where(Entry.story_id == story.id)
    ).all()
    categories = [label for entry_categories, _ in rows for label in entry_categories or ()]
    source_tags = [label for _, tags in rows for label in tags or ()]
    text = plain_text(story.body_html) or story.lede
    labels = tagging.choose_tags(
        tagging.StoryText(story.title, text, categories, source_tags, story.section), rules
    )
    story.terms = tagging.story_terms(story.title, text)
    _replace_story_tags(session, story.id, _tag_ids(session, labels))
    return labels


def _tag_ids(session: Session, labels: list[str]) -> list[int]:
    """Tag ids for the labels in order, creating missing tags.

    On PostgreSQL new tags are committed at once on a connection of their own: an uncommitted
    new tag would make every worker that meets the same tag wait for this whole transaction.
    """
    slugs = [tagging.tag_slug(label) for label in labels]
    rows = sorted(
        ({"slug": slug, "label": label} for slug, label in zip(slugs, labels, strict=True)),
        key=lambda row: row["slug"],
    )
    bind = session.get_bind()
    if bind.dialect.name == "postgresql" and rows:
        with Session(bind.engine) as side, side.begin():
            insert_missing(side, Tag, rows, "slug")
    else:
        insert_missing(session, Tag, rows, "slug")
    ids = dict(session.execute(select(Tag.slug, Tag.id).where(Tag.slug.in_(slugs))).all())
    return [ids[slug] for slug in dict.fromkeys(slugs)]


def _replace_story_tags(session: Session, story_id: int, tag_ids: list[int]) -> None:
    session.execute(delete(StoryTag).where(StoryTag.story_id == story_id))
    session.add_all(
        StoryTag(story_id=story_id, tag_id=tag_id, rank=rank) for rank, tag_id in enumerate(tag_ids)
    )
    session.flush()


def relate_story(session: Session, story: Story) -> list[tuple[float, int]]:
    """Keep the story's 5 most related others, as (score, story id), best first."""
    tag_ids = list(
        session.scalars(
            select(StoryTag.tag_id).where(StoryTag.story_id == story.id).order_by(StoryTag.rank)
        )
    )
    candidates = _candidates(session, story, tag_ids)
    idf = _idf(session, tag_ids)
    max_weight = sum(idf.values())
    terms = frozenset(story.terms or ())
    scored = sorted(
        (
            (tagging.related_score(terms, story.published, candidate, idf, max_weight), candidate)
            for candidate in candidates
        ),
        key=lambda pair: (-pair[0], -pair[1].story_id),
    )
    best = [(score, c.story_id) for score, c in scored if score > 0][: tagging.RELATED_COUNT]
    _save_related(session, story.id, best)
    return best


def _candidates(
    session: Session, story: Story, tag_ids: list[int]
) -> list[tagging.RelatedCandidate]:
    """The latest stories of each of the story's tags, and the latest of its section (so a story
    whose names no other story shares still finds its neighbours by their words)."""
    ids: set[int] = set()
    for tag_id in tag_ids:
        ids.update(
            session.scalars(
                select(StoryTag.story_id)
                .where(StoryTag.tag_id == tag_id, StoryTag.story_id != story.id)
                .order_by(StoryTag.story_id.desc())
                .limit(CANDIDATES_PER_TAG)
            )
        )
    ids.update(
        session.scalars(
            select(Story.id)
            .where(Story.section == story.section, Story.id != story.id)
            .order_by(Story.id.desc())
            .limit(CANDIDATES_PER_SECTION)
        )
    )
    if not ids:
        return []
    shared: dict[int, set[int]] = {candidate: set() for candidate in ids}
    for candidate, tag_id in session.execute(
        select(StoryTag.story_id, StoryTag.tag_id).where(
            StoryTag.story_id.in_(ids), StoryTag.tag_id.in_(tag_ids)
        )
    ):
        shared[candidate].add(tag_id)
    return [
        tagging.RelatedCandidate(
            candidate, frozenset(shared[candidate]), frozenset(terms or ()), published
        )
        for candidate, terms, published in session.execute(
            select(Story.id, Story.terms, Story.published).where(Story.id.in_(ids))
        )
    ]


def _idf(session: Session, tag_ids: list[int]) -> dict[int, float]:
    """IDF per tag from bounded counts: past DF_CAP stories a tag is simply common, and the
    count costs the same however large the archive grows. Counts are reused for a while: an IDF
    a few minutes old ranks related posts just as well."""
    # The newest story id stands for the archive's size: no count over the whole table.
    document_count = session.scalar(select(func.max(Story.id))) or 1
    now = time.monotonic()
    idf: dict[int, float] = {}
    for tag_id in tag_ids:
        key = (str(session.get_bind().engine.url), tag_id)  # per database, not per session
        cached = _DF_CACHE.get(key)
        if cached is None or now - cached[1] > DF_CACHE_SECONDS:
            capped = select(StoryTag.story_id).where(StoryTag.tag_id == tag_id).limit(DF_CAP)
            count = session.scalar(select(func.count()).select_from(capped.subquery())) or 1
            cached = _DF_CACHE[key] = (count, now)
        idf[tag_id] = tagging.inverse_document_frequency(document_count, cached[0])
    return idf


def _save_related(session: Session, story_id: int, best: list[tuple[float, int]]) -> None:
    session.execute(delete(RelatedStory).where(RelatedStory.story_id == story_id))
    session.add_all(
        RelatedStory(story_id=story_id, related_id=other, rank=rank, score=score)
        for rank, (score, other) in enumerate(best)
    )
    session.flush()


def _offer_related(session: Session, story_id: int, newcomer: int, score: float) -> None:
    """Put `newcomer` into `story_id`'s related posts if it beats the weakest of them."""
    lock_stories(session, [story_id])  # two workers never rewrite one list at once
    current = [
        (row.score, row.related_id)
        for row in session.scalars(select(RelatedStory).where(RelatedStory.story_id == story_id))
    ]
    if any(other == newcomer for _, other in current):
        return
    if len(current) >= tagging.RELATED_COUNT and score <= min(s for s, _ in current):
        return
    ranked = sorted([*current, (score, newcomer)], key=lambda pair: (-pair[0], -pair[1]))
    _save_related(session, story_id, ranked[: tagging.RELATED_COUNT])


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


def related_ids(session: Session, story_ids: list[int]) -> dict[int, list[int]]:
    related: dict[int, list[int]] = {story_id: [] for story_id in story_ids}
    for story_id, other in session.execute(
        select(RelatedStory.story_id, RelatedStory.related_id)
        .where(RelatedStory.story_id.in_(story_ids))
        .order_by(RelatedStory.story_id, RelatedStory.rank)
    ):
        related[story_id].append(other)
    return related
