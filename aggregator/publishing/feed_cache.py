"""The per-process cache of rendered feed documents.

Each document is rendered once per change and kept per process; a request first asks the
database for the feed's version (one statement of index probes) and only renders when it moved
or the document is a minute old, so several web processes are never stale.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from aggregator import limits
from aggregator.errors import FeedNotFound
from aggregator.publishing.feed_pages import FeedVersion, feed_version, load_page
from aggregator.publishing.render import render
from aggregator.publishing.scope import FORMATS, FeedQuery
from aggregator.storage.db import make_engine, read_sessions
from aggregator.types import Config


@dataclass(frozen=True)
class FeedDocument:
    body: bytes
    media_type: str
    etag: str  # strong: a digest of the body, the same in every process
    last_modified: datetime
    version: FeedVersion
    rendered_at: float  # time.monotonic(), for FeedCache.recheck_after


@dataclass
class FeedCache:
    """Rendered documents per (query, format, page, archive), checked against the feed's version
    on every use: a request for an unchanged feed costs one query and no rendering.

    A document is also rendered again once it is `recheck_after` seconds old. Two workers'
    transactions may commit in the other order than they took their story ids and dates; a
    version read between the two commits already shows the later ones, so the earlier one's
    story would not move it. Rendering again bounds how long such a story can be missing."""

    engine: Engine
    config: Config
    max_entries: int = limits.FEED_CACHE_ENTRIES
    recheck_after: float = limits.FEED_RECHECK_SECONDS
    _documents: OrderedDict[tuple[FeedQuery, str, int, int | None], FeedDocument] = field(
        default_factory=OrderedDict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._sessions = read_sessions(self.engine)
        # Version checks run on a connection kept per thread, its transaction ended after each
        # check (so the next sees the latest commit): a pool checkout, ping and reset cost more
        # than the query. Their own engine, so held connections never starve the render path.
        self._version_engine = make_engine(self.engine.url.render_as_string(hide_password=False))
        self._local = threading.local()

    def version(self, query: FeedQuery) -> FeedVersion:
        connection: Connection | None = getattr(self._local, "connection", None)
        if connection is None or connection.invalidated or connection.closed:
            connection = self._version_engine.connect()
            if connection.dialect.name == "postgresql":  # no transaction to end: one round trip
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            self._local.connection = connection
        try:
            return feed_version(connection, query)
        except DBAPIError:  # a dropped connection (database restart): retry once on a new one
            self._local.connection = None
            connection.invalidate()
            with self._version_engine.connect() as fresh:
                return feed_version(fresh, query)
        finally:
            if not connection.invalidated and connection.in_transaction():
                connection.rollback()

    def clear(self) -> None:
        """Forget every rendered document (the next requests render again)."""
        with self._lock:
            self._documents.clear()

    def close(self) -> None:
        self._version_engine.dispose()

    def document(
        self, query: FeedQuery, fmt: str, page: int = 1, archive: int | None = None
    ) -> FeedDocument:
        if fmt not in FORMATS:
            raise FeedNotFound(f"no feed format {fmt!r}")
        key = (query, fmt, page, archive)
        version = self.version(query)
        with self._lock:
            cached = self._documents.get(key)
            if cached is None or cached.version != version:
                cached = None  # a new version: nothing to compare the new rendering with
            elif time.monotonic() - cached.rendered_at < self.recheck_after:
                self._documents.move_to_end(key)
                return cached
        with self._sessions() as session:  # an unknown scope: load_page raises FeedNotFound
            page_values = load_page(session, self.config.site, query, page, archive)
        body = render(
            self.config.site,
            page_values,
            query,
            fmt,
            version.last_modified,
            self.config.defaults.min_interval,
        )
        last_modified = version.last_modified
        if cached is not None:  # the same version, rendered again for its age
            if cached.body == body:
                last_modified = cached.last_modified
            else:  # a late commit the version could not show: now is when the feed changed
                last_modified = max(last_modified, datetime.now(UTC).replace(microsecond=0))
        document = FeedDocument(
            body=body,
            media_type=FORMATS[fmt],
            etag=hashlib.blake2b(body, digest_size=16).hexdigest(),
            last_modified=last_modified,
            version=version,
            rendered_at=time.monotonic(),
        )
        with self._lock:
            self._documents[key] = document
            self._documents.move_to_end(key)
            while len(self._documents) > self.max_entries:
                self._documents.popitem(last=False)
        return document
