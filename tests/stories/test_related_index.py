"""The related index's reuse of candidates' tags and terms across batches is never out of date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy

from aggregator.storage.db import session_factory
from aggregator.storage.models import Story, StoryTag, Tag
from aggregator.stories import related_index, tag_index
from aggregator.types import TagRules

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def _story(engine: sqlalchemy.Engine) -> tuple[int, int, int]:
    """A story tagged "rates"; returns its id and the ids of tags "rates" and "banks"."""
    with session_factory(engine).begin() as session:
        story = Story(
            slug="rates", title="Rates", lede="", body_html="", section="news",
            terms=["rates", "bank"], published=NOW, updated=NOW, created_at=NOW,
        )  # fmt: skip
        rates, banks = Tag(slug="rates", label="Rates"), Tag(slug="banks", label="Banks")
        session.add_all([story, rates, banks])
        session.flush()
        session.add(StoryTag(story_id=story.id, tag_id=rates.id, rank=0))
        return story.id, rates.id, banks.id


def test_candidate_facts_are_read_again_once_the_story_changed(engine: sqlalchemy.Engine) -> None:
    story_id, rates, banks = _story(engine)
    with session_factory(engine)() as session:
        first = related_index._candidate_facts(session, [story_id])
    with session_factory(engine).begin() as session:
        changed = session.get_one(Story, story_id)
        changed.terms = ["rates", "inflation"]
        changed.updated = NOW + timedelta(minutes=5)
        session.add(StoryTag(story_id=story_id, tag_id=banks, rank=1))
    with session_factory(engine)() as session:
        again = related_index._candidate_facts(session, [story_id])
    at = NOW.timestamp()
    assert first == {story_id: (story_id, frozenset({rates}), frozenset({"rates", "bank"}), at)}
    assert again == {
        story_id: (story_id, frozenset({rates, banks}), frozenset({"rates", "inflation"}), at)
    }


def test_a_retag_here_drops_the_cached_facts(engine: sqlalchemy.Engine) -> None:
    story_id, rates, _ = _story(engine)
    with session_factory(engine)() as session:
        assert related_index._candidate_facts(session, [story_id])[story_id].tag_ids == {rates}
    with session_factory(engine).begin() as session:
        tag_index.update_stories(session, [story_id], TagRules())
    with session_factory(engine)() as session:
        after = related_index._candidate_facts(session, [story_id])[story_id]
        stored = set(session.scalars(
            sqlalchemy.select(StoryTag.tag_id).where(StoryTag.story_id == story_id)
        ))  # fmt: skip
    # The retag left the story's `updated` alone, yet its new tags are what is read.
    assert after.tag_ids == stored != {rates}
