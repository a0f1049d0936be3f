"""Limits and defaults in one place, each with the reason it has the value it has."""

from __future__ import annotations

from datetime import UTC, datetime

# Fetching. A wire feed is far below this; the rest leaves room for full-content feeds while
# keeping a hostile endless body from filling memory.
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
# Seconds for the whole request (connect + headers + body): a slow-drip server cannot hold a slot.
DEFAULT_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
# RFC 9110 lets clients stop following; 5 is what browsers' feed readers commonly allow.
MAX_REDIRECTS = 5
# Sources in flight at once, and per host, so one publisher never sees a burst from us.
FETCH_CONCURRENCY = 8
PER_HOST_CONCURRENCY = 2

# Full text (aggregator.ingest.fulltext). A robots.txt is trusted for a day (RFC 9309 section 2.4).
ROBOTS_CACHE_SECONDS = 24 * 60 * 60
# A robots.txt that could not be read (5xx, no answer) is asked again after this long.
ROBOTS_RETRY_SECONDS = 5 * 60
# An extraction shorter than this many words is a page without an article (a paywall, a gallery).
FULL_TEXT_MIN_WORDS = 30
# Longest error kept on an entry or a source.
MAX_ERROR_CHARS = 500

# Scheduling defaults (feeds.yaml `defaults` may override them).
DEFAULT_INTERVAL = 15 * 60
DEFAULT_MIN_INTERVAL = 5 * 60
DEFAULT_MAX_INTERVAL = 24 * 60 * 60
# Seconds between a worker's ticks: how soon a due source is noticed (`--tick`). Here, not only in
# the scheduler, so `caulbart --help` shows it without importing the scheduler.
DEFAULT_TICK = 2.0
# Seconds between two requests to one host, across all workers (feeds.yaml defaults.host_spacing).
HOST_SPACING = 1
# A claim lasts twice the fetch timeout plus this margin; then another worker may take it.
LEASE_MARGIN = 5
# Backoff after consecutive errors doubles from the interval up to this cap.
BACKOFF_CAP = 24 * 60 * 60

# Seconds one fetched document may take to prepare (parse, normalise, fingerprint) on the pool
# (env CAULBART_PREPARE_SECONDS): a feed at max_bytes takes seconds; past this the document is its
# source's error and its worker process is killed, so that no document holds a core for minutes.
PREPARE_SECONDS = 60.0

# Parsing. Entries beyond this in one document are ignored (a feed is a window, not an archive).
DEFAULT_MAX_ENTRIES = 1000
# Normalised text lengths: longer titles are truncated, not rejected.
MAX_TITLE_CHARS = 500
MAX_LEDE_CHARS = 600
MAX_URL_CHARS = 2048
MAX_GUID_CHARS = 1024
MAX_AUTHOR_CHARS = 200
MAX_CATEGORY_CHARS = 100
MAX_CATEGORIES = 30
# Files one entry carries (podcast audio, video): a feed listing more is a catalogue, not an item.
MAX_ENCLOSURES = 20
# A headline derived from an untitled item's text: its first words, about a line.
DERIVED_TITLE_CHARS = 120
# A date this far ahead of now is a publisher's clock error: the entry is dated when it was
# fetched, as an undated one is (normalise), and the date kept as a note on the entry.
FUTURE_TOLERANCE_SECONDS = 10 * 60
# A date before this is a placeholder or a broken generator (`Sat, 01 Jan 0001`), not when the
# news was published: no web feed is that old (RSS 0.9 is from 1999). Treated as the future is.
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)
# Elements open inside one another in an item's HTML, at most; deeper tags are dropped (their
# text kept) before the HTML parser reads it. Its scope checks walk the open elements on every
# block-level start tag, so its time grows with the square of the nesting; real articles nest a
# few dozen deep, hostile ones a hundred thousand.
MAX_MARKUP_DEPTH = 512
# Exact text matching joins stories only when the body has at least this many words.
MIN_WORDS_FOR_TEXT_MATCH = 12
# Near-duplicates are looked for among entries published this close in time (feeds.yaml
# defaults.dedup_window): wire re-sends and other agencies' tellings come within hours, and a
# bounded window keeps the cost of a lookup the same however large the archive grows.
DEDUP_WINDOW = 72 * 60 * 60

# Publishing. Stories per feed document: enough for a day of a busy section, small enough that a
# poll stays a few hundred KB; older stories are reached through RFC 5005 pages and archives.
FEED_LENGTH = 50
# Withdrawn stories announced as RFC 6721 tombstones in the subscription document.
FEED_TOMBSTONES = 50
# Rendered feed documents kept per process (feeds x formats x pages in use).
FEED_CACHE_ENTRIES = 512
# Seconds a rendered feed document is served on an unchanged version before it is rendered again
# (feed_cache.FeedCache: a story committed out of order by another worker shows within this).
FEED_RECHECK_SECONDS = 60.0
# Seconds a WebSub hub gets to accept a publish ping; a slow hub must not stall the ingest.
WEBSUB_TIMEOUT = 5.0
# Topics (`hub.url`) per publish ping: a retag changes every feed, thousands of URLs.
WEBSUB_TOPICS_PER_PING = 500
# Seconds a command waits at its end for the pings it asked for (they are sent in the background,
# websub.HubPings): a few requests to a hub that answers, or two timeouts of one that does not.
WEBSUB_EXIT_WAIT = 3 * WEBSUB_TIMEOUT
