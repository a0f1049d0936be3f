"""One fetched source's entries made ready to store (the prepare stage's work, which prepare.py
runs on a pool of processes): parse, normalise, filter; fingerprint and draft the tags of the
entries the database does not hold yet, or holds with other content.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from aggregator.errors import ParseError
from aggregator.ingest import filters, headlines
from aggregator.ingest.normalise import normalise_entry, told_apart_guid
from aggregator.ingest.parse import parse_feed
from aggregator.storage.db import among
from aggregator.storage.models import Entry
from aggregator.stories import dedupe, tagging
from aggregator.types import (
    Config,
    FetchResult,
    FetchStatus,
    FilteredItem,
    Item,
    ParsedFeed,
    SourceConfig,
    TextPattern,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A fetched source made ready to store; `error` is a parse error to record instead."""

    feed: ParsedFeed | None = None
    items: tuple[Item, ...] = ()
    # Entries new to the database, or edited since, and what storing them needs: fingerprints
    # of all but the new ones whose text is stored already, tags of the stories they start.
    unseen: tuple[str, ...] = ()
    prints: dict[str, dedupe.Fingerprint | None] = field(default_factory=dict)
    drafts: dict[str, tagging.TagDraft] = field(default_factory=dict)
    error: str | None = None
    # New entries the editors' filters turned away, with the rule: recorded, never stories.
    filtered: tuple[FilteredItem, ...] = ()
    # Entries of the document that repeat another's identity: skipped, and said so.
    repeated: int = 0


def prepare(
    config: Config, result: FetchResult, now: datetime, engine: Engine | None = None
) -> Prepared:
    """Parse and normalise a fetched source; fingerprint and draft the tags of unseen entries.

    `engine` (read only) tells which entries are stored already; without one every entry is
    treated as new, which is correct, only slower.
    """
    if result.status is not FetchStatus.OK:
        return Prepared()  # a 304 or an error carries no feed: nothing to parse
    try:
        feed = parse_feed(result, config.defaults.max_entries)
    except ParseError as exc:
        return Prepared(error=f"parse error: {exc}")
    source = config.source(result.source_id)
    rules = config.rules_for(source) if source else config.filters
    style = headlines.style_for(config, source)
    read = items_of(feed, now, rules.title_strip)
    items = [headlines.restyle(item, style) for item in read.items]
    stored, told = _stored(engine, result.source_id, items) if engine is not None else ({}, set())
    # Filters judge arriving entries only: a stored story is never taken back by a later rule.
    kept, filtered = filters.apply_filters(
        [item for item in items if item.guid not in stored],
        rules,
        source_language=source.language if source else None,
        now=now,
    )
    turned_away = {f.item.guid for f in filtered}
    sectioned = {item.guid: item for item in kept}
    items = [sectioned.get(i.guid, i) for i in items if i.guid not in turned_away]
    unseen = [item for item in items if stored.get(item.guid) != item.content_hash]
    # A new entry repeating a stored text word for word will join that text's story and stay
    # out of the near-duplicate index (store.save_items): it needs no band keys, nor tags.
    prints = {
        item.guid: dedupe.fingerprint(item)
        for item in unseen
        if item.guid in stored or item.text_hash not in told
    }
    drafts = {
        item.guid: tag_draft_for(config, source, item)
        for item in unseen
        if item.guid not in stored  # an edited entry is re-tagged with its whole story
        # Drafts are for the stories new entries start; one whose very text is stored already
        # (wire copy another agency sent first) joins that story instead.
        and item.text_hash not in told
    }
    return Prepared(
        replace(feed, entries=()),
        tuple(items),
        tuple(item.guid for item in unseen),
        prints,
        drafts,
        filtered=tuple(filtered),
        repeated=read.repeated,
    )


def tag_draft_for(config: Config, source: SourceConfig | None, item: Item) -> tagging.TagDraft:
    """The tags a story started by `item` would take from its own text and its source."""
    return tagging.draft_tags(
        tagging.StoryText(
            dedupe.wire_headline(item.title),
            item.body_text or item.lede,
            item.categories,
            source.tags if source else (),
            item.section or (source.section if source else None),
        ),
        config.tags,
    )


@dataclass(frozen=True)
class FeedItems:
    """A document's items, each identity once, and how many entries repeated one (skipped)."""

    items: tuple[Item, ...]
    repeated: int = 0


def items_of(
    feed: ParsedFeed, now: datetime, title_strip: tuple[TextPattern, ...] = ()
) -> FeedItems:
    """Normalised items of a parsed feed, without empty entries; items without an id that share
    a link are told apart (normalise.told_apart_guid), and an entry repeating an identity
    already read is counted, not silently dropped."""
    read = [
        (raw, item)
        for raw in feed.entries
        if (item := normalise_entry(raw, now=now, title_strip=title_strip)) is not None
    ]
    without_id = Counter(item.guid for raw, item in read if not raw.id)
    items: list[Item] = []
    seen: set[str] = set()
    for raw, item in read:
        if not raw.id and without_id[item.guid] > 1:
            item = replace(item, guid=told_apart_guid(raw, item))
        if item.guid in seen:
            continue
        seen.add(item.guid)
        items.append(item)
    return FeedItems(tuple(items), len(read) - len(items))


def _stored(engine: Engine, source_id: str, items: list[Item]) -> tuple[dict[str, str], set[str]]:
    """What the database has of these items, on one connection, one query a chunk: this
    source's content hash by guid, and which of the other items' texts any source's entry has
    (those will join that entry's story)."""
    content: dict[str, str] = {}
    told: set[str] = set()
    try:
        with engine.connect() as connection:
            for is_wanted in among(connection, Entry.guid, [item.guid for item in items]):
                rows = connection.execute(
                    select(Entry.guid, Entry.content_hash).where(
                        Entry.source_id == source_id, is_wanted
                    )
                )
                content.update((guid, content_hash) for guid, content_hash in rows)
            texts = {i.text_hash for i in items if i.text_hash and i.guid not in content}
            for is_wanted in among(connection, Entry.text_hash, sorted(texts)):
                told.update(connection.scalars(select(Entry.text_hash).where(is_wanted).distinct()))
    except SQLAlchemyError as exc:
        # Only an optimisation: treat every entry as new; the store records the real failure.
        log.warning("source=%s stored entries not readable: %s", source_id, exc)
        return {}, set()
    return content, told
