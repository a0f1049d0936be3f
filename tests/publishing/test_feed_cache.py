"""aggregator.publishing.feed_cache on a real database: rendered once per version, and again
for a story a version could not show."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy
from sqlalchemy.orm import Session

from aggregator.errors import FeedNotFound
from aggregator.publishing.feed_cache import FeedCache
from aggregator.publishing.scope import FeedQuery
from aggregator.storage.entries import save_items
from aggregator.storage.models import Source
from aggregator.storage.sources import sync_sources
from aggregator.types import Config, Defaults, SourceConfig
from tests.publishing.values import NOW, SITE, ingest, wire_config, wire_item


def test_unchanged_feed_is_served_from_cache_without_rendering(engine: sqlalchemy.Engine) -> None:
    config = wire_config()
    ingest(engine, config, [wire_item(f"g{i}", f"Story {i}", NOW) for i in range(5)], NOW)
    cache = FeedCache(engine, config)
    first = cache.document(FeedQuery(), "atom")
    assert cache.document(FeedQuery(), "atom") is first  # the same object: nothing rendered
    other_process = FeedCache(engine, config).document(FeedQuery(), "atom")
    assert other_process.etag == first.etag and other_process.body == first.body
    ingest(engine, config, [wire_item("g9", "Story nine", NOW)], NOW + timedelta(minutes=5))
    changed = cache.document(FeedQuery(), "atom")
    assert changed.etag != first.etag
    assert changed.last_modified == NOW + timedelta(minutes=5)


def test_unknown_scope_and_page_beyond_the_end_are_not_found(engine: sqlalchemy.Engine) -> None:
    config = wire_config()
    ingest(engine, config, [wire_item(f"g{i}", f"Story {i}", NOW) for i in range(3)], NOW)
    cache = FeedCache(engine, config)
    assert cache.document(FeedQuery("source", "wire"), "json", page=2).body
    for query, page in ((FeedQuery("source", "nobody"), 1), (FeedQuery(), 3)):
        with pytest.raises(FeedNotFound):
            cache.document(query, "atom", page=page)
    with pytest.raises(FeedNotFound):
        cache.document(FeedQuery(), "atom", archive=2)  # 3 stories: one full archive of 2


def test_a_story_committed_out_of_order_shows_once_its_document_is_rendered_again(
    postgres: sqlalchemy.Engine,
) -> None:
    """Two workers on PostgreSQL: the one that took the lower story id commits last. A version
    read between the two commits has the later story as newest and latest already, so the
    earlier story's commit cannot move it; the cache renders again after `recheck_after`."""
    sources = tuple(
        SourceConfig(id=name, name=name.title(), url=f"https://{name}.example/rss", agency=name)
        for name in ("early", "late")
    )
    config = Config(path="feeds.yaml", site=SITE, defaults=Defaults(), sources=sources)
    with Session(postgres) as session, session.begin():
        sync_sources(session, config, NOW)
    cache = FeedCache(postgres, config, recheck_after=3600)
    with Session(postgres) as early:
        early.begin()
        save_items(early, early.get_one(Source, "early"), [wire_item("e", "Early", NOW)], NOW)
        with Session(postgres) as late, late.begin():
            late.execute(sqlalchemy.text("SET LOCAL lock_timeout = '10s'"))  # fail, never hang
            later = NOW + timedelta(minutes=1)
            save_items(late, late.get_one(Source, "late"), [wire_item("l", "Late", later)], later)
        first = cache.document(FeedQuery(), "atom")
        early.commit()
    assert b"Late" in first.body and b"Early" not in first.body
    assert cache.document(FeedQuery(), "atom") is first  # the version did not move
    cache.recheck_after = 0
    again = cache.document(FeedQuery(), "atom")
    assert b"Early" in again.body and b"Late" in again.body
    assert again.version == first.version
    assert again.last_modified > first.last_modified  # If-Modified-Since sees the change
    assert cache.document(FeedQuery(), "atom").last_modified == again.last_modified
