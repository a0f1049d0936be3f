"""Related posts through the tag index: each story's candidates are the latest stories of its tags
and of its section, scored (tagging.most_related) and kept as its list; so the cost per story
does not grow with the archive. Runs inside the caller's transaction, or on a pass's queue.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Mapping

from sqlalchemy import TextClause, delete, func, select, text, type_coerce
from sqlalchemy.orm import Session, load_only
from sqlalchemy.types import NullType

from aggregator.storage.bulk import insert_rows
from aggregator.storage.db import among
from aggregator.storage.models import RelatedStory, Story, StoryTag, StoryToRelate
from aggregator.storage.stories import lock_stories
from aggregator.stories import tagging
from aggregator.types import RelatedLists

# For deleting story tags and related rows: they are never loaded as ORM objects, so the ORM
# need not fetch the deleted rows back (RETURNING) to take them out of the session.
NO_SYNC = {"synchronize_session": False}

# Latest stories looked at per tag, and of the same section, when looking for related posts:
# larger pools found no better lists in bench/related_eval.py, and cost more to load and score.
CANDIDATES_PER_TAG = 60
CANDIDATES_PER_SECTION = 30
# Document frequencies are counted up to this many stories, and reused for this many seconds.
DF_CAP = 2000
DF_CACHE_SECONDS = 300.0
_DF_CACHE: dict[tuple[str, int], tuple[int, float]] = {}
# Candidates' tags, terms and dates kept per process (see _candidate_facts), at most this many.
FACTS_CACHE_SIZE = 100_000
_FACTS_CACHE: dict[tuple[str, int], tuple[object, tagging.RelatedCandidate]] = {}
# Tags per UNION ALL statement.
UNION_PARTS = 50


def stories_to_relate(session: Session) -> list[int]:
    """The stories queued by `tag_index.update_stories(..., relate_later=True)`, oldest first."""
    return list(session.scalars(select(StoryToRelate.story_id).order_by(StoryToRelate.story_id)))


def relate_stored(session: Session, story_ids: list[int]) -> RelatedLists:
    """Related lists of stored stories from their stored tags; reads only, so a parsing worker
    process can work them out while the storing process writes (see `keep_related`)."""
    stories = [
        story
        for is_wanted in among(session, Story.id, story_ids)
        for story in session.scalars(
            select(Story)
            .where(is_wanted)
            .order_by(Story.id)
            .options(load_only(Story.id, Story.section, Story.terms, Story.published))
        )
    ]
    return related_lists(session, stories, stored_tags(session, [s.id for s in stories]))


def keep_related(session: Session, story_ids: list[int], lists: RelatedLists) -> RelatedLists:
    """Store `relate_stored`'s lists and take `story_ids` off the queue; returns the lists kept.

    A story deleted since (retention) is only taken off the queue, and so is any related story
    deleted since from a list.
    """
    lock_stories(session, sorted(lists))
    ids = sorted({story_id for best in lists.values() for _, story_id in best} | set(lists))
    existing = {
        story_id
        for is_wanted in among(session, Story.id, ids)
        for story_id in session.scalars(select(Story.id).where(is_wanted))
    }
    kept = {
        story_id: [(score, other) for score, other in best if other in existing]
        for story_id, best in lists.items()
        if story_id in existing
    }
    save_related(session, kept)
    for is_done in among(session, StoryToRelate.story_id, story_ids):
        session.execute(delete(StoryToRelate).where(is_done), execution_options=NO_SYNC)
    return kept


def offer_related(session: Session, lists: RelatedLists) -> None:
    """Slot each story into its related stories' own lists where it ranks high enough.

    Kept out of the source's transaction: it writes other stories' rows, and holding those locks
    while a whole feed is stored would make concurrent workers wait on each other. The result is
    each list's best RELATED_COUNT of what it held and what was offered.
    """
    offers: dict[int, list[tuple[float, int]]] = {}
    for story_id, best in lists.items():
        for score, other in best:
            offers.setdefault(other, []).append((score, story_id))
    if not offers:
        return
    others = sorted(offers)
    lock_stories(session, others)  # ascending ids: one lock order for every worker
    current = _related_rows(session, others)
    changed: dict[int, list[tuple[float, int]]] = {}
    for other in others:
        held = current.get(other, [])
        known = {story for _, story in held}
        fresh = [(score, story) for score, story in offers[other] if story not in known]
        ranked = sorted([*held, *fresh], key=lambda pair: (-pair[0], -pair[1]))
        kept = ranked[: tagging.RELATED_COUNT]
        if kept != sorted(held, key=lambda pair: (-pair[0], -pair[1])):
            changed[other] = kept
    save_related(session, changed)


def _chunks(values: list[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def related_lists(
    session: Session, stories: list[Story], story_tags: Mapping[int, list[int]]
) -> RelatedLists:
    """Each story's 5 most related others, as (score, story id), best first."""
    all_tags = sorted({tag_id for tag_ids in story_tags.values() for tag_id in tag_ids})
    latest_by_tag = _latest_by_tag(session, all_tags)
    latest_by_section = {
        section: list(
            session.scalars(
                select(Story.id)
                .where(Story.section == section)
                .order_by(Story.id.desc())
                .limit(CANDIDATES_PER_SECTION + len(stories))
            )
        )
        for section in sorted({story.section for story in stories})
    }
    wanted: dict[int, set[int]] = {}
    for story in stories:
        ids = {c for tag_id in story_tags[story.id] for c in latest_by_tag.get(tag_id, ())}
        ids.update(latest_by_section[story.section][: CANDIDATES_PER_SECTION + 1])
        ids.discard(story.id)
        wanted[story.id] = ids
    pool = sorted({c for ids in wanted.values() for c in ids})
    facts = _candidate_facts(session, pool)
    idf = _idf(session, all_tags)
    lists: RelatedLists = {}
    for story in stories:
        tag_idf = {tag_id: idf[tag_id] for tag_id in story_tags[story.id]}
        candidates = [facts[c] for c in wanted[story.id] if c in facts]
        terms = frozenset(story.terms or ())
        lists[story.id] = tagging.most_related(terms, story.published, tag_idf, candidates)
    return lists


def _latest_by_tag(session: Session, tag_ids: list[int]) -> dict[int, list[int]]:
    """The latest CANDIDATES_PER_TAG stories of each tag: one bounded index range per tag, many
    tags per statement, so the cost follows the tags, not the archive."""
    latest: dict[int, list[int]] = {tag_id: [] for tag_id in tag_ids}
    query = (
        "SELECT story_id FROM story_tags WHERE tag_id = {tag} ORDER BY story_id DESC LIMIT :limit"
    )
    for tag_id, story_id in _per_tag(session, query, tag_ids, limit=CANDIDATES_PER_TAG):
        latest[tag_id].append(story_id)
    return latest


def _per_tag(
    session: Session, query: str, tag_ids: list[int], **values: int
) -> Iterable[tuple[int, int]]:
    """(tag, value) rows of `query`, a one-column query on the tag `{tag}`, for each tag.

    On PostgreSQL one statement joins it (LATERAL) to an array of all the tags, planned once;
    its earlier union of 50 parts took twice as long. SQLite has no LATERAL: there it is
    UNION ALL-ed, 50 tags a statement. Plain SQL: building such a union with the ORM cost
    more than running it.
    """
    if not tag_ids:
        return
    if session.get_bind().dialect.name == "postgresql":
        statement = _lateral(query)
        rows = session.execute(statement, {"tags": tag_ids, **values})
        yield from ((int(first), int(second)) for first, second in rows)
        return
    for chunk in _chunks(tag_ids, UNION_PARTS):
        tags = {f"t{n}": tag_id for n, tag_id in enumerate(chunk)}
        for first, second in session.execute(_union(query, len(chunk)), {**tags, **values}):
            yield int(first), int(second)


@functools.lru_cache(maxsize=8)
def _lateral(query: str) -> TextClause:
    return text(
        "SELECT tag.id, q.* FROM unnest(CAST(:tags AS integer[])) AS tag(id) "
        f"CROSS JOIN LATERAL ({query.format(tag='tag.id')}) AS q"
    )


@functools.lru_cache(maxsize=2 * UNION_PARTS)
def _union(query: str, count: int) -> TextClause:
    """The statement, built once per shape: building it cost more than SQLite's reading it."""
    return text(
        " UNION ALL ".join(
            f"SELECT :t{n}, q{n}.* FROM ({query.format(tag=f':t{n}')}) AS q{n}"
            for n in range(count)
        )
    )


def _candidate_facts(session: Session, story_ids: list[int]) -> dict[int, tagging.RelatedCandidate]:
    """Candidates' tags, terms and dates, read again only for stories changed since they were
    cached: a tag's latest stories are candidates for batch after batch, and reading their tags
    and decoding their terms each time was most of relating a first ingest. A story's tags, terms
    and date change only with a new or edited entry, which moves its `updated`, or by a retag,
    which drops it from this process's cache (a retag in another process is seen once the story
    next changes)."""
    database = _database(session)
    found: dict[int, tagging.RelatedCandidate] = {}
    stale: dict[int, object] = {}
    # `updated` as the driver gives it (text on SQLite): it is only compared, and parsing it
    # into a datetime cost more than the query, for thousands of candidates a batch.
    updated_as_stored = type_coerce(Story.updated, NullType())
    for is_wanted in among(session, Story.id, story_ids):
        for story_id, updated in session.execute(
            select(Story.id, updated_as_stored).where(is_wanted)
        ):
            cached = _FACTS_CACHE.get((database, story_id))
            if cached is not None and cached[0] == updated:
                found[story_id] = cached[1]
            else:
                stale[story_id] = updated
    if not stale:
        return found
    if len(_FACTS_CACHE) + len(stale) > FACTS_CACHE_SIZE:
        _FACTS_CACHE.clear()
    tags_of: dict[int, set[int]] = {story_id: set() for story_id in stale}
    for in_stale in among(session, StoryTag.story_id, sorted(stale)):
        for story_id, tag_id in session.execute(
            select(StoryTag.story_id, StoryTag.tag_id).where(in_stale)
        ):
            tags_of[story_id].add(tag_id)
    # `updated` as first read: a story changed in between is read again next time.
    for in_stale in among(session, Story.id, sorted(stale)):
        for story_id, terms, published in session.execute(
            select(Story.id, Story.terms, Story.published).where(in_stale)
        ):
            facts = tagging.RelatedCandidate(
                story_id,
                frozenset(tags_of[story_id]),
                frozenset(terms or ()),
                published.timestamp(),
            )
            _FACTS_CACHE[(database, story_id)] = (stale[story_id], facts)
            found[story_id] = facts
    return found


def _database(session: Session) -> str:
    """What the per-process caches are kept per: the database, not the session."""
    return str(session.get_bind().engine.url)


def _idf(session: Session, tag_ids: list[int]) -> dict[int, float]:
    """IDF per tag from bounded counts: past DF_CAP stories a tag is simply common, and the
    count costs the same however large the archive grows. Counts are reused for a while: an IDF
    a few minutes old ranks related posts just as well."""
    # The newest story id stands for the archive's size: no count over the whole table.
    document_count = session.scalar(select(func.max(Story.id))) or 1
    now = time.monotonic()
    database = _database(session)
    stale = [
        tag_id
        for tag_id in tag_ids
        if (cached := _DF_CACHE.get((database, tag_id))) is None
        or now - cached[1] > DF_CACHE_SECONDS
    ]
    query = "SELECT count(*) FROM (SELECT 1 FROM story_tags WHERE tag_id = {tag} LIMIT :cap) AS c"
    for tag_id, count in _per_tag(session, query, stale, cap=DF_CAP):
        _DF_CACHE[(database, tag_id)] = (count or 1, now)
    return {
        tag_id: tagging.inverse_document_frequency(document_count, _DF_CACHE[(database, tag_id)][0])
        for tag_id in tag_ids
    }


def _related_rows(session: Session, story_ids: list[int]) -> dict[int, list[tuple[float, int]]]:
    rows: dict[int, list[tuple[float, int]]] = {}
    for is_wanted in among(session, RelatedStory.story_id, story_ids):
        for story_id, score, related_id in session.execute(
            select(RelatedStory.story_id, RelatedStory.score, RelatedStory.related_id).where(
                is_wanted
            )
        ):  # plain rows, not ORM objects: thousands of them per batch
            rows.setdefault(story_id, []).append((score, related_id))
    return rows


def save_related(session: Session, lists: RelatedLists) -> None:
    """Rewrite these stories' related lists whole, in one delete and one insert."""
    for is_wanted in among(session, RelatedStory.story_id, sorted(lists)):
        session.execute(delete(RelatedStory).where(is_wanted), execution_options=NO_SYNC)
    rows = [
        (story_id, other, rank, score)
        for story_id, best in lists.items()
        for rank, (score, other) in enumerate(best)
    ]
    insert_rows(session, RelatedStory, ("story_id", "related_id", "rank", "score"), rows)


def related_ids(session: Session, story_ids: list[int]) -> dict[int, list[int]]:
    related: dict[int, list[int]] = {story_id: [] for story_id in story_ids}
    for story_id, other in session.execute(
        select(RelatedStory.story_id, RelatedStory.related_id)
        .where(RelatedStory.story_id.in_(story_ids))
        .order_by(RelatedStory.story_id, RelatedStory.rank)
    ):
        related[story_id].append(other)
    return related


def forget_candidates(session: Session, story_ids: Iterable[int]) -> None:
    """Drop these stories' cached candidate facts: their tags or terms are being rewritten."""
    database = _database(session)
    for story_id in story_ids:
        _FACTS_CACHE.pop((database, story_id), None)


def stored_tags(session: Session, story_ids: list[int]) -> dict[int, list[int]]:
    """Stories' tag ids as stored, best first."""
    tags: dict[int, list[int]] = {story_id: [] for story_id in story_ids}
    for is_wanted in among(session, StoryTag.story_id, story_ids):
        for story_id, tag_id in session.execute(
            select(StoryTag.story_id, StoryTag.tag_id)
            .where(is_wanted)
            .order_by(StoryTag.story_id, StoryTag.rank)
        ):
            tags[story_id].append(tag_id)
    return tags
