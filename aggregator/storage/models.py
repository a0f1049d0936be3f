"""The stored data model: Source (a feed and its fetch state), Entry (the evidence), Story.

Typed SQLAlchemy 2 models; every schema change goes through an Alembic migration.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every database (SQLite stores them naive, in UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


EPOCH = datetime(1970, 1, 1)  # naive UTC, as UTCDateTime hands dates to SQLite
MICROSECOND = timedelta(microseconds=1)


class BandTime(UTCDateTime):
    """A band key's date: microseconds since the epoch on SQLite, a timestamp on PostgreSQL.

    Band keys are written at random places of their index, so the index's size is much of what
    an ingest writes: an integer of 8 bytes instead of 26 characters of text (UTCDateTime's
    form) makes it about a third smaller, and exact to the microsecond like the text was.
    """

    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return super().load_dialect_impl(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        utc = super().process_bind_param(value, dialect)
        if utc is None or dialect.name != "sqlite":
            return utc
        return (utc - EPOCH) // MICROSECOND

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if isinstance(value, int):
            value = EPOCH + value * MICROSECOND
        return super().process_result_value(value, dialect)


class Base(DeclarativeBase):
    pass


class Source(Base):
    """A feed from feeds.yaml. `url` is what is fetched; a permanent redirect changes it."""

    __tablename__ = "sources"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    config_url: Mapped[str] = mapped_column(String(2048))
    url: Mapped[str] = mapped_column(String(2048))
    # The host of `url`: politeness budgets are per host, whatever the number of sources.
    host: Mapped[str] = mapped_column(String(255), index=True)
    agency: Mapped[str] = mapped_column(String(200))
    section: Mapped[str] = mapped_column(String(64))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    language: Mapped[str | None] = mapped_column(String(35))
    interval_seconds: Mapped[int] = mapped_column(Integer)
    # `interval: auto`: the next interval follows the source's posting rate.
    adaptive: Mapped[bool] = mapped_column(Boolean, default=False)
    # The publisher's own refresh hint (Cache-Control max-age, RSS ttl, sy:updatePeriod).
    hint_seconds: Mapped[int | None] = mapped_column(Integer)
    # None while the source is fetched; otherwise why it is not (removed, disabled, 410 Gone).
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    feed_title: Mapped[str | None] = mapped_column(String(500))
    etag: Mapped[str | None] = mapped_column(String(1024))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[str | None] = mapped_column(String(20))
    last_http_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    consecutive_errors: Mapped[int] = mapped_column(Integer, default=0)
    next_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # A permanent redirect seen on the last fetch, for editors to copy into feeds.yaml.
    moved_to: Mapped[str | None] = mapped_column(String(2048))
    # Tags from feeds.yaml given to every story of this source.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Republishing terms from feeds.yaml: credit/rights line, lede and link only, no images.
    rights: Mapped[str | None] = mapped_column(String(500))
    excerpt_only: Mapped[bool] = mapped_column(Boolean, default=False)
    images: Mapped[bool] = mapped_column(Boolean, default=True)
    # `full_text` sources: why articles of the last pass that tried some kept their summary.
    full_text_error: Mapped[str | None] = mapped_column(Text)
    # Entries of the last document read that repeated an identity already read in it (the same
    # guid twice, or a guid-less item twice): skipped, and counted for `caulbart status`.
    repeated_items: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # When those terms last changed: published feeds built under the old terms are stale.
    terms_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # feeds.yaml `publish`: "auto", or "review" to hold its stories for an editor.
    publish: Mapped[str] = mapped_column(String(16), default="auto")
    # A worker's lease on the source while it fetches it; an expired lease is free to take.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    entries: Mapped[list[Entry]] = relationship(back_populates="source")


class Setting(Base):
    """A value fixed once for the life of the site's database, whatever feeds.yaml says later:
    `tag_authority`, the host in every feed item's id (stories.story_tag_uri), taken from
    `site.base_url` at the first run, so that moving the site to another address never
    re-delivers its stories to subscribers."""

    __tablename__ = "settings"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Host(Base):
    """A publisher's host: the request budget its sources share across all workers."""

    __tablename__ = "hosts"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    next_request_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Story(Base):
    """What Caulbart publishes: one or more entries telling the same news."""

    __tablename__ = "stories"
    # A section's listing and its feed's version read one index range, not the whole section.
    __table_args__ = (
        Index("ix_stories_section_published", "section", "published", "id"),
        Index("ix_stories_section_updated", "section", "updated"),
        Index("ix_stories_section_id", "section", "id"),
        # A section feed's count of visible stories, read from the index alone.
        Index("ix_stories_section_review", "section", "review"),
        # The editors' queue only (aggregator.stories.review.held_stories); see migration 0010.
        Index(
            "ix_stories_held",
            "created_at",
            "id",
            sqlite_where=text("review = 'held'"),
            postgresql_where=text("review = 'held'"),
        ),
        # Withdrawn stories only, newest withdrawal first: a feed's tombstones (migration 0020).
        Index(
            "ix_stories_withdrawn",
            "withdrawn_at",
            "id",
            sqlite_where=text("withdrawn_at IS NOT NULL"),
            postgresql_where=text("withdrawn_at IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(Text)
    lede: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    section: Mapped[str] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(35))
    image_url: Mapped[str | None] = mapped_column(String(2048))
    image_credit: Mapped[str | None] = mapped_column(String(500))
    best_entry_id: Mapped[int | None] = mapped_column(Integer)
    # The story's most frequent content words, kept for related-post similarity.
    terms: Mapped[list[str]] = mapped_column(JSON, default=list)
    published: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # Moves whenever the story changes (an entry joins or is edited, a withdrawal); indexed
    # because max(updated) is the published feeds' version check.
    updated: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    # When its own headline or text last changed, as told by the same source (an edit, a
    # re-send): what readers see as "Updated". Another agency's copy joining it is no revision.
    revised: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set when an editor or a wire KILL advisory withdraws the story: its page answers 410.
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)
    # Editors' curation (aggregator.stories.review.Review): None for a story published at once,
    # "held"
    # until an editor decides, then "approved" or "rejected". Held and rejected are invisible.
    review: Mapped[str | None] = mapped_column(String(16))
    # Set by `caulbart pin`: retention (`defaults.keep`) never deletes a pinned story.
    pinned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    entries: Mapped[list[Entry]] = relationship(back_populates="story", order_by="Entry.id")


class Entry(Base):
    """One item as one source published it; never thrown away (it is the evidence)."""

    __tablename__ = "entries"
    __table_args__ = (
        UniqueConstraint("source_id", "guid", name="uq_entries_source_guid"),
        Index("ix_entries_link", "link"),
        Index("ix_entries_text_hash", "text_hash"),
        # A source's page and feed: the stories it told, without reading its entries' rows.
        Index("ix_entries_source_story", "source_id", "story_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), index=True)
    guid: Mapped[str] = mapped_column(String(1100))
    link: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(Text)
    lede: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(200))
    categories: Mapped[list[str]] = mapped_column(JSON)
    image_url: Mapped[str | None] = mapped_column(String(2048))
    image_credit: Mapped[str | None] = mapped_column(String(500))
    language: Mapped[str | None] = mapped_column(String(35))
    has_full_text: Mapped[bool] = mapped_column(Boolean)
    # Its files (types.Enclosure as {"url", "type", "length"}), None when it carries none.
    enclosures: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    # The headline as the feed gave it, when `title` is cleaned of a wire style; else None.
    raw_title: Mapped[str | None] = mapped_column(Text)
    # The feed gave no title: `title` was made from the text, an enclosure's name or the link.
    title_derived: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Why the linked article's text is not the body (`full_text` sources); None when it is.
    full_text_error: Mapped[str | None] = mapped_column(String(500))
    # Why the feed's dates were set aside and the entry dated when it was fetched (a date out of
    # range: year 1, or ahead of the clock); None when the feed's dates are the entry's.
    date_note: Mapped[str | None] = mapped_column(String(300))
    # None when there is too little text for equal hashes to mean the same story.
    text_hash: Mapped[str | None] = mapped_column(String(64))
    content_hash: Mapped[str] = mapped_column(String(64))
    published: Mapped[datetime] = mapped_column(UTCDateTime)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Sorted 32-bit hashes of the headline + text word 3-grams: what near-duplicates are
    # confirmed on. None when the text is too short to be matched on its words.
    shingles: Mapped[bytes | None] = mapped_column(LargeBinary)
    # Why the entry is in its story (dedupe.Rule), how sure, and the entry it was matched with;
    # None for entries stored before explanations were kept.
    match_rule: Mapped[str | None] = mapped_column(String(16))
    match_score: Mapped[float | None] = mapped_column(Float)
    matched_entry_id: Mapped[int | None] = mapped_column(ForeignKey("entries.id"))

    source: Mapped[Source] = relationship(back_populates="entries")
    story: Mapped[Story] = relationship(back_populates="entries")
    matched_entry: Mapped[Entry | None] = relationship(remote_side=[id])


class FilteredEntry(Base):
    """An arriving item an editor's filter turned away: kept as evidence of why, never published.

    One row per source and guid; a later fetch of the same item refreshes its rule and `seen_at`.
    """

    __tablename__ = "filtered_entries"
    __table_args__ = (
        UniqueConstraint("source_id", "guid", name="uq_filtered_entries_source_guid"),
        Index("ix_filtered_entries_link", "link"),
        # `caulbart explain --filtered`: the latest first.
        Index("ix_filtered_entries_seen_at", "seen_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_id: Mapped[str] = mapped_column(ForeignKey("sources.id"))
    guid: Mapped[str] = mapped_column(String(1100))
    link: Mapped[str | None] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(Text)
    published: Mapped[datetime] = mapped_column(UTCDateTime)
    # include, exclude, max_age or language; `detail` says which pattern matched what.
    rule: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class EntryBand(Base):
    """One LSH band key of an entry's text: the shared near-duplicate index of every worker.

    The primary key is the lookup: a band key, then the time window, so finding candidates costs
    the same with a thousand stories stored or a million.
    """

    __tablename__ = "entry_bands"
    __table_args__ = (
        # An edited entry's old keys, and a pruned story's, are deleted by entry.
        Index("ix_entry_bands_entry", "entry_id"),
        # On SQLite the table is its key's index: no second B-tree of rowids to write.
        {"sqlite_with_rowid": False},
    )

    band: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    published: Mapped[datetime] = mapped_column(BandTime, primary_key=True)
    # No foreign key (0017): checking the entry of each of some 40 keys an entry cost more than
    # it guards. An entry's keys are written with it and deleted before it (store, retention).
    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True)


class ArticlePage(Base):
    """What an article page gave when it was fetched (aggregator.ingest.fulltext): fetched once per
    address policy, ever."""

    __tablename__ = "article_pages"

    # SHA-256 of the policy and the URL (aggregator.storage.page_cache.page_key).
    page_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The address policy that fetched it (fetch.AddressGuard.policy): "public", then any host
    # and port allowed to be private.
    policy: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str | None] = mapped_column(Text)
    http_status: Mapped[int | None] = mapped_column(Integer)
    # The extracted main text, sanitised; empty when `error` says why there is none.
    body_html: Mapped[str] = mapped_column(Text)
    image_url: Mapped[str | None] = mapped_column(String(2048))
    error: Mapped[str | None] = mapped_column(String(500))
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Tag(Base):
    """A normalised label: one slug per person, place, organisation or topic."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    label: Mapped[str] = mapped_column(String(200))


class StoryTag(Base):
    """A story's tag and its rank (0 = best)."""

    __tablename__ = "story_tags"
    __table_args__ = (Index("ix_story_tags_tag_story", "tag_id", "story_id"),)

    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)


class RelatedStory(Base):
    """A kept related post: computed when a story is stored or changes, never at page time."""

    __tablename__ = "related_stories"

    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), primary_key=True)
    related_id: Mapped[int] = mapped_column(ForeignKey("stories.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float] = mapped_column(Float)


class StoryToRelate(Base):
    """A story whose related posts are still to be worked out.

    A `caulbart fetch` pass stores its sources' stories first and relates them at its end, on
    every core (pipeline.relate_pending); kept here, in the stories' transactions, so that a
    pass stopped in between leaves the work to the next pass or tick. No foreign key: a story
    deleted meanwhile is simply dropped from here when it is met.
    """

    __tablename__ = "stories_to_relate"

    story_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class Comment(Base):
    """A reader's reply to a story, held (pending) until an editor approves it.

    The email is kept for editors and auto-approval only: never shown, exported or logged. The
    IP is kept for abuse handling and cleared after `comments.keep_ip_days`. `author_token` is
    the SHA-256 of a random value in its author's session: who may see it while it is pending.
    """

    __tablename__ = "comments"
    __table_args__ = (
        # A story's approved comments in order; the author's own pending ones by the same path.
        Index("ix_comments_story_status_created", "story_id", "status", "created_at"),
        # The moderation queue, oldest first.
        Index("ix_comments_status_created", "status", "created_at"),
        # Auto-approval: has this email an approved comment already?
        Index("ix_comments_email_status", "email", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    story_id: Mapped[int] = mapped_column(ForeignKey("stories.id"))
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))
    website: Mapped[str | None] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    # pending, approved, rejected or spam (aggregator.stories.comments.Status).
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ip: Mapped[str | None] = mapped_column(String(45))
    author_token: Mapped[str | None] = mapped_column(String(64))


class Prune(Base):
    """One run of retention: when, the cutoff, what went. The latest is part of every feed's
    version, so documents built before stories were deleted are rendered again."""

    __tablename__ = "prunes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime)
    stories: Mapped[int] = mapped_column(Integer)
    entries: Mapped[int] = mapped_column(Integer)


class FeedChange(Base):
    """A change to which stories a feed holds that no story's `updated` tells: a story lost a
    tag (kind "tag", the tag's slug), or every story was tagged again (kind "all", value "").

    A story that joins a feed was stored or edited, so its `updated` moved; one that leaves is
    no longer there to be seen. A story keeps its section and its sources for life (retention,
    which dates its own runs, is what takes them away), so tags are all that is recorded. The
    latest row for a feed is part of its version: one probe of the index, however many stories
    the feed holds. Rows are only added (no row for workers to contend for); retention deletes
    old ones."""

    __tablename__ = "feed_changes"
    __table_args__ = (
        Index("ix_feed_changes_scope_at", "kind", "value", "at"),
        # A commit's departures, for its WebSub ping; retention deletes by time.
        Index("ix_feed_changes_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(200))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
