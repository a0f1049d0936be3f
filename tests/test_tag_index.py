"""The tag index's reuse of candidates' terms across batches is never out of date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy

from aggregator import tag_index
from aggregator.db import session_factory
from aggregator.models import Story

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)


def test_candidate_terms_are_read_again_once_the_story_changed(engine: sqlalchemy.Engine) -> None:
    with session_factory(engine).begin() as session:
        story = Story(
            slug="rates", title="Rates", lede="", body_html="", section="news",
            terms=["rates", "bank"], published=NOW, updated=NOW, created_at=NOW,
        )  # fmt: skip
        session.add(story)
        session.flush()
        story_id = story.id
    with session_factory(engine)() as session:
        first = tag_index._terms_and_dates(session, [story_id])
    with session_factory(engine).begin() as session:
        changed = session.get_one(Story, story_id)
        changed.terms = ["rates", "inflation"]
        changed.updated = NOW + timedelta(minutes=5)
    with session_factory(engine)() as session:
        again = tag_index._terms_and_dates(session, [story_id])
    assert first == {story_id: (frozenset({"rates", "bank"}), NOW)}
    assert again == {story_id: (frozenset({"rates", "inflation"}), NOW)}
