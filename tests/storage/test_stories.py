"""Story rows and their voice (storage.stories). Real databases, real feed documents over HTTP."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select

from aggregator.ingest.pipeline import sync_config
from aggregator.storage.db import session_factory
from aggregator.storage.models import Story
from tests.conftest import FeedServer, recorded_statements
from tests.storage.feeds import (
    config_for,
    distinct_texts,
    fetch_all,
    item,
    rss,
)


def test_the_story_speaks_with_the_highest_priority_source(
    engine: Engine, feed_server: FeedServer
) -> None:
    link = "https://example.org/rates"
    low = feed_server.add("/low", rss(item("l", "Low priority headline", link)))
    high = feed_server.add("/high", rss(item("h", "High priority headline", link,
                                             date="Tue, 24 Nov 2026 11:00:00 GMT")))  # fmt: skip
    fetch_all(engine, config_for({"low": low, "high": high}, priorities={"high": 5}))
    with session_factory(engine)() as session:
        story = session.scalars(select(Story)).one()
        assert story.title == "High priority headline"
        assert story.published == datetime(2026, 11, 24, 10, tzinfo=UTC)  # earliest telling


def test_new_stories_are_written_once_with_their_drafted_terms(
    engine: Engine, feed_server: FeedServer
) -> None:
    """A first ingest inserts each new story with the terms drafted for it and neither updates
    the row afterwards nor reads its text back: tagging it from its draft needs neither."""
    texts = enumerate(distinct_texts(11, 6))
    items = [item(f"n{n}", f"Report {n}", f"http://a.example/{n}", t) for n, t in texts]
    config = config_for({"agency": feed_server.add("/agency.rss", rss(*items))})
    sync_config(engine, config)
    with recorded_statements(engine) as statements:
        (outcome,) = fetch_all(engine, config)
    assert (outcome.status, outcome.new) == ("ok", 6), outcome.error
    assert not [s for s in statements if s.startswith("UPDATE stories")]
    assert not [s for s in statements if s.startswith("SELECT") and "stories.body_html" in s]
    with session_factory(engine)() as session:
        terms = session.scalars(select(Story.terms)).all()
    assert len(terms) == 6 and all(terms), terms
