"""`caulbart export`: every story as one JSON object per line, the portability format.

The shape is a contract (ARCHITECTURE.md, README): other tools read it, so fields are only ever
added. A complete copy of the site to restore from is `caulbart backup` (storage/backup.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import selectinload

from aggregator.permalinks import iso_utc, story_url
from aggregator.storage.db import read_sessions
from aggregator.storage.models import Story
from aggregator.stories import tag_index

BATCH = 500


def export_stories(engine: Engine, base_url: str) -> Iterator[str]:
    """JSON Lines, oldest story first, entries in the order Caulbart first saw them."""
    Session = read_sessions(engine)
    with Session() as session:
        last_id = 0
        while True:
            batch = list(
                session.scalars(
                    select(Story)
                    .where(Story.id > last_id)
                    .order_by(Story.id)
                    .limit(BATCH)
                    .options(selectinload(Story.entries))
                )
            )
            if not batch:
                return
            ids = [story.id for story in batch]
            tags = tag_index.story_tag_labels(session, ids)
            related = tag_index.related_ids(session, ids)
            for story in batch:
                record = story_record(story, base_url, tags[story.id], related[story.id])
                yield json.dumps(record, ensure_ascii=False)
            last_id = batch[-1].id
            session.expunge_all()


def story_record(
    story: Story, base_url: str, tags: list[str], related: list[int]
) -> dict[str, Any]:
    return {
        "id": story.id,
        "url": story_url(base_url, story.id, story.slug, story.published),
        "title": story.title,
        "published": iso_utc(story.published),
        "updated": iso_utc(story.updated),
        "section": story.section,
        "tags": tags,
        "related": related,
        # Editorial state: a held or rejected story, and a withdrawn one, is not on the site.
        "review": story.review,
        "held": story.review == "held",
        "withdrawn": story.withdrawn_at is not None,
        "withdrawn_at": iso_utc(story.withdrawn_at) if story.withdrawn_at else None,
        "withdrawn_reason": story.withdrawn_reason,
        "pinned": story.pinned_at is not None,
        "entries": [
            {
                "source": entry.source_id,
                "guid": entry.guid,
                "link": entry.link,
                "title": entry.title,
                "published": iso_utc(entry.published),
            }
            for entry in story.entries
        ],
    }
