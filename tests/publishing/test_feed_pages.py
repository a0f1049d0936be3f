"""aggregator.publishing.feed_pages on a real database: what moves a feed's version, and the
page's stories and tombstones."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy
from sqlalchemy.orm import Session

from aggregator.publishing import feed_pages
from aggregator.publishing.scope import FeedQuery
from aggregator.storage.models import Story
from aggregator.stories import withdrawals
from tests.publishing.values import NOW, SITE, ingest, wire_config, wire_item


def test_withdrawal_and_new_rights_change_the_feed_version(engine: sqlalchemy.Engine) -> None:
    config = wire_config()
    ingest(
        engine, config, [wire_item("g1", "Story one", NOW), wire_item("g2", "Story two", NOW)], NOW
    )
    with Session(engine) as session:
        before = feed_pages.feed_version(session.connection(), FeedQuery("source", "wire"))
        story_id = session.scalars(sqlalchemy.select(Story.id)).first()
    assert before.newest_id is not None
    with Session(engine) as session, session.begin():
        withdrawals.withdraw_story(session, story_id, "wrong", NOW + timedelta(minutes=1))
    with Session(engine) as session:
        withdrawn = feed_pages.feed_version(session.connection(), FeedQuery("source", "wire"))
    assert withdrawn != before
    ingest(engine, wire_config(rights="© Wire"), [], NOW + timedelta(minutes=2))
    with Session(engine) as session:
        after = feed_pages.feed_version(session.connection(), FeedQuery())
        page = feed_pages.load_page(session, SITE, FeedQuery(), 1)
    assert after.last_modified == NOW + timedelta(minutes=2)
    assert [s.rights for s in page.stories] == ["© Wire"]
    assert [s.id for s in page.tombstones] == [story_id]
