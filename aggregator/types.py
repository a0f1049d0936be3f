"""The values passed between pipeline stages: small frozen dataclasses, no ORM rows, no dicts.

Each stage depends on these types and not on its neighbour, so it can be tested with plain values.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote, urlsplit

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
    # Seconds at least between the starts of two requests to one host, whoever makes them.
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


DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, order=True)
class HostPort:
    """A host and port an editor named (a source's URL, an `allow_private` entry): the only
    places a private, loopback or link-local address may be reached at."""

    host: str  # lower case, IDNA-encoded; an IPv6 address without its brackets
    port: int

    @classmethod
    def of(cls, url: str) -> HostPort | None:
        """The host and port an http(s) URL connects to (the scheme's port if none is written);
        None for a URL without a host, or with a port outside 1-65535."""
        try:
            parts = urlsplit(url)
            port = parts.port if parts.port is not None else DEFAULT_PORTS.get(parts.scheme.lower())
        except ValueError:
            return None
        if not parts.hostname or not port:
            return None
        host = parts.hostname.rstrip(".")
        try:
            host = host.encode("idna").decode("ascii") if not host.isascii() else host
        except UnicodeError:
            return None
        return cls(host.lower(), port)

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class FullTextConfig:
    """A source's `full_text`: fetch the article pages of its summary-only entries."""

    # Where article pages may be at a private address: none, unless `allow_private` names the
    # source's own host and port (`true`), with any others it lists. Public ones always may.
    allow_private: tuple[HostPort, ...] = ()


@dataclass(frozen=True)
class TextPattern:
    """A keyword (whole words, any case) or a `/regular expression/` an editor wrote.

    `where` names it as feeds.yaml does (`sources[2].exclude[0]`, line 14), so a recorded
    filtering says which rule did it.
    """

    text: str
    regex: re.Pattern[str]
    where: str
    line: int = 0

    def search(self, text: str) -> re.Match[str] | None:
        return self.regex.search(text)


@dataclass(frozen=True)
class FilterRules:
    """Editors' filters (feeds.yaml `filters:` site-wide, the same keys on a source).

    A source's rules add to the site-wide ones: patterns and section mappings are joined (the
    source's mapping wins a shared category); `max_age` and `languages` of a source replace them.
    """

    include: tuple[TextPattern, ...] = ()
    exclude: tuple[TextPattern, ...] = ()
    # Seconds: entries published longer ago than this are filtered.
    max_age: int | None = None
    # Accepted language ranges (RFC 4647 basic filtering: `en` accepts `en-GB`).
    languages: tuple[str, ...] = ()
    # Casefolded feed category -> our section.
    section_map: Mapping[str, str] = field(default_factory=dict)
    title_strip: tuple[TextPattern, ...] = ()

    def with_source(self, source: FilterRules) -> FilterRules:
        return FilterRules(
            include=self.include + source.include,
            exclude=self.exclude + source.exclude,
            max_age=source.max_age if source.max_age is not None else self.max_age,
            languages=source.languages or self.languages,
            section_map={**self.section_map, **source.section_map},
            title_strip=self.title_strip + source.title_strip,
        )


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
    # None: the feed's own text only; else the linked article page is fetched and extracted.
    full_text: FullTextConfig | None = None
    filters: FilterRules = field(default_factory=FilterRules)
    # "auto" publishes at once; "review" holds its stories until an editor approves them.
    publish: str = "auto"
    # Wire headline styles cleaned for readers (aggregator.ingest.headlines); false: as given.
    clean_headlines: bool = True
    line: int = 0


@dataclass(frozen=True)
class HeadlineStyle:
    """What a source's headlines are cleaned of (aggregator.ingest.headlines): its agency's
    name, and these section names (casefolded) before a colon."""

    agency: str
    sections: frozenset[str]


@dataclass(frozen=True)
class TagRules:
    """Editors' tag mapping (feeds.yaml `tags`): alias slug -> canonical label; silenced slugs."""

    aliases: Mapping[str, str] = field(default_factory=dict)
    ignore: frozenset[str] = frozenset()


# Related posts: story id -> its best others as (score, other story id), best first.
RelatedLists = dict[int, list[tuple[float, int]]]


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
    # Site-wide filters; `rules_for` joins a source's own to them.
    filters: FilterRules = field(default_factory=FilterRules)

    def source(self, source_id: str) -> SourceConfig | None:
        """The feeds.yaml entry of a source, or None once it has been removed from the file."""
        return next((s for s in self.sources if s.id == source_id), None)

    def rules_for(self, source: SourceConfig) -> FilterRules:
        return self.filters.with_source(source.filters)

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


class SourceStatus(enum.StrEnum):
    """What one pass came to for a source (`caulbart fetch`'s status column, the log line): the
    fetch's status, unless a later stage failed, which makes it an error."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    GONE = "gone"
    ERROR = "error"

    @property
    def failed(self) -> bool:
        return self in (SourceStatus.GONE, SourceStatus.ERROR)


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
class Enclosure:
    """A file an entry carries: an RSS `enclosure`, an Atom `link rel="enclosure"`, a JSON Feed
    attachment, an MRSS audio or video `media:content`. `length` is in bytes, when known."""

    url: str
    type: str | None = None
    length: int | None = None

    @property
    def medium(self) -> str | None:
        """ "audio", "video", "image"... from the MIME type; None when it is not known."""
        return self.type.split("/", 1)[0] if self.type else None

    @property
    def file_name(self) -> str:
        """The last segment of the URL's path, decoded ("Morning Show 14.mp3")."""
        path = urlsplit(self.url).path
        return unquote(path.rstrip("/").rsplit("/", 1)[-1]) or urlsplit(self.url).netloc


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
    enclosures: tuple[Enclosure, ...] = ()


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
    # The document's format as read: feedparser's version ("rss20", "atom10"...) or "json1.1".
    format: str | None = None


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
    # Why the linked article's text is not the body (full_text sources); None when it is or
    # when it was not wanted.
    full_text_error: str | None = None
    # The section a `section_map` gave it from its categories; None: the source's section.
    section: str | None = None
    # Why the feed's dates were set aside for the time it was fetched (out of range); None if not.
    date_note: str | None = None
    # Every file the entry carries, http(s) only, each once.
    enclosures: tuple[Enclosure, ...] = ()
    # The feed gave no title: `title` was made from the text, an enclosure's name or the link.
    title_derived: bool = False
    # The headline as the feed gave it, when `title` is cleaned of a wire style; else None.
    raw_title: str | None = None


@dataclass(frozen=True)
class ArticleText:
    """What one article page gave (aggregator.ingest.fulltext): its sanitised main text and lead
    image,
    or why it gave nothing. `cacheable` outcomes are kept so the page is never fetched again."""

    url: str
    body_html: str = ""
    image_url: str | None = None
    error: str | None = None
    http_status: int | None = None
    final_url: str | None = None
    cacheable: bool = False


@dataclass(frozen=True)
class FilteredItem:
    """An item a filter turned away: recorded with the rule, never published."""

    item: Item
    rule: str  # include, exclude, max_age or language
    detail: str


# --- onboarding: new sources for feeds.yaml ---------------------------------------------------


@dataclass(frozen=True)
class SourceDraft:
    """A feed offered for feeds.yaml (from an OPML outline or `caulbart add`), not yet an id."""

    url: str
    title: str | None = None
    # The OPML folder it sat in, or the editor's --section.
    section: str | None = None


@dataclass(frozen=True)
class ProbeReport:
    """What one fetch of a feed showed: can it be read, and what would its stories carry."""

    source_id: str
    url: str
    reachable: bool
    http_status: int | None = None
    final_url: str | None = None
    format: str | None = None
    title: str | None = None
    items: int = 0
    newest: datetime | None = None
    full_text_items: int = 0
    image_items: int = 0
    credited_images: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.reachable and self.error is None


# --- store ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceOutcome:
    """What one pass did for one source: the row of `caulbart fetch`'s summary table."""

    source_id: str
    status: SourceStatus
    http_status: int | None = None
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    # Entries of this fetch that a filter turned away (recorded, not published).
    filtered: int = 0
    error: str | None = None
    notes: tuple[str, ...] = field(default=())
