"""The values passed between pipeline stages: small frozen dataclasses, no ORM rows, no dicts.

Each stage depends on these types and not on its neighbour, so it can be tested with plain values.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aggregator import limits

# --- configuration (feeds.yaml) -------------------------------------------------------------


@dataclass(frozen=True)
class SiteConfig:
    title: str = "Caulbart"
    tagline: str = "News that matter to you."
    base_url: str = "http://127.0.0.1:8000"
    language: str = "en"
    # WebSub hubs announced in every feed and pinged after an ingest that changed stories.
    websub_hubs: tuple[str, ...] = ()
    # Stories per feed document (RFC 5005 pages and archives).
    feed_length: int = limits.FEED_LENGTH


@dataclass(frozen=True)
class Defaults:
    """Site-wide defaults for every source; seconds for durations, bytes for sizes."""

    interval: int = limits.DEFAULT_INTERVAL
    min_interval: int = limits.DEFAULT_MIN_INTERVAL
    max_interval: int = limits.DEFAULT_MAX_INTERVAL
    timeout: float = limits.DEFAULT_TIMEOUT
    max_bytes: int = limits.DEFAULT_MAX_BYTES
    max_entries: int = limits.DEFAULT_MAX_ENTRIES
    concurrency: int = limits.FETCH_CONCURRENCY
    per_host: int = limits.PER_HOST_CONCURRENCY
    # Seconds between two claims of sources on one host, across all workers.
    host_spacing: int = limits.HOST_SPACING
    # `interval: auto` site-wide: sources without their own interval follow their posting rate.
    adaptive: bool = False
    # Seconds apart two entries may be published and still be matched as near-duplicates.
    dedup_window: int = limits.DEDUP_WINDOW
    # Retention: seconds after which entries and stories are pruned; None keeps everything.
    keep: int | None = None

    @property
    def lease(self) -> int:
        """Seconds a worker's claim on a source lasts: long enough for one slow fetch."""
        return int(2 * self.timeout) + limits.LEASE_MARGIN


@dataclass(frozen=True)
class SourceConfig:
    """One feed as an editor declared it; `line` is where it starts in feeds.yaml."""

    id: str
    name: str
    url: str
    agency: str
    section: str = "news"
    interval: int | None = None
    # None: follow defaults; True: `interval: auto` (from the posting rate).
    adaptive: bool | None = None
    enabled: bool = True
    priority: int = 0
    language: str | None = None
    tags: tuple[str, ...] = ()
    # Republishing terms: a credit/rights line; lede and link only; no images.
    rights: str | None = None
    excerpt_only: bool = False
    images: bool = True
    # "auto" publishes at once; "review" holds its stories until an editor approves them.
    publish: str = "auto"
    line: int = 0


@dataclass(frozen=True)
class TagRules:
    """Editors' tag mapping (feeds.yaml `tags`): alias slug -> canonical label; silenced slugs."""

    aliases: Mapping[str, str] = field(default_factory=dict)
    ignore: frozenset[str] = frozenset()


@dataclass(frozen=True)
class CommentsConfig:
    """Readers' replies (feeds.yaml `comments`): how long an IP is kept, who skips moderation."""

    # Days a comment's IP address is kept for abuse handling; 0 keeps none at all.
    keep_ip_days: int = 30
    # A commenter with an approved earlier comment (same email and name) is approved at once.
    auto_approve: bool = True


@dataclass(frozen=True)
class Config:
    path: str
    site: SiteConfig
    defaults: Defaults
    sources: tuple[SourceConfig, ...]
    tags: TagRules = field(default_factory=TagRules)
    comments: CommentsConfig = field(default_factory=CommentsConfig)

    def interval_for(self, source: SourceConfig) -> int:
        """A source's polling interval in seconds, within the site's minimum and maximum."""
        wanted = source.interval if source.interval is not None else self.defaults.interval
        return min(max(wanted, self.defaults.min_interval), self.defaults.max_interval)

    def is_adaptive(self, source: SourceConfig) -> bool:
        if source.adaptive is not None:
            return source.adaptive
        return self.defaults.adaptive and source.interval is None


# --- fetch ----------------------------------------------------------------------------------


class FetchStatus(enum.Enum):
    OK = "ok"
    NOT_MODIFIED = "not_modified"
    GONE = "gone"
    ERROR = "error"


@dataclass(frozen=True)
class Validators:
    """What a conditional GET sends back to the server."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class FetchResult:
    source_id: str
    url: str
    status: FetchStatus
    http_status: int | None = None
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    final_url: str | None = None
    permanent_redirect: bool = False
    validators: Validators = field(default_factory=Validators)
    retry_after: int | None = None
    error: str | None = None
    elapsed: float = 0.0

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


# --- parse ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RawEntry:
    """One entry as feedparser read it, reduced to the fields Caulbart uses (values untrusted)."""

    id: str | None
    link: str | None
    title: str | None
    title_is_html: bool
    summary: str | None
    content: str | None
    published: datetime | None
    updated: datetime | None
    author: str | None
    categories: tuple[str, ...]
    image_url: str | None
    image_credit: str | None
    language: str | None
    # The URL relative links in this entry's HTML resolve against (xml:base or the feed's URL).
    base: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    title: str | None
    link: str | None
    language: str | None
    entries: tuple[RawEntry, ...]
    # feedparser's "bozo" note for ill-formed documents that were still read.
    warning: str | None = None
    truncated_from: int | None = None
    # Seconds the feed asks to be left alone (RSS <ttl>, sy:updatePeriod); a hint, not an order.
    refresh_hint: int | None = None


# --- normalise ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """A clean entry: plain-text title, canonical link, UTC dates, sanitised HTML."""

    guid: str
    link: str | None
    title: str
    lede: str
    body_html: str
    published: datetime
    updated: datetime
    author: str | None
    categories: tuple[str, ...]
    image_url: str | None
    image_credit: str | None
    language: str | None
    # Hash of the normalised headline + text: equal hashes mean the same story text. None when
    # the text is too short for that to hold (a bare headline recurs: "Live: latest updates").
    text_hash: str | None
    # Hash of everything stored for the entry: a change means the entry was edited.
    content_hash: str
    has_full_text: bool
    # The body as plain text: what near-duplicate matching compares.
    body_text: str = ""


# --- store ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceOutcome:
    """What one pass did for one source: the row of `caulbart fetch`'s summary table."""

    source_id: str
    status: str  # "ok", "not_modified", "gone", "error"
    http_status: int | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    error: str | None = None
    notes: tuple[str, ...] = field(default=())
