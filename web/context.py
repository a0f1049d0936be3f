"""What every request reads from the application: its engine, its feeds.yaml, its feed cache.

One accessor per value, as Flask's tutorial has `get_db()`: views call `context.engine()`
rather than reaching into `current_app.extensions`, and `create_app` stores them once through
`install`. The extension keys stay public: tests and benches close the feed cache by its key.

feeds.yaml is followed while the site runs: before a request, at most every
`CONFIG_RECHECK_SECONDS`, the file is looked at; an edit that validates is applied to the
sources table (the rights, excerpt_only and images terms that pages and feeds are republished
under) and replaces the configuration; an invalid one is logged and the last good one kept.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from aggregator.config.watch import ConfigWatcher
from aggregator.publishing.feed_cache import FeedCache
from aggregator.storage.sources import sync_config
from aggregator.types import Config

log = logging.getLogger(__name__)

ENGINE = "caulbart.engine"
CONFIG = "caulbart.config"
FEEDS = "caulbart.feeds"
LIVE = "caulbart.live_config"

# How stale the site's feeds.yaml may be: a look at the file (a read and a hash of a few
# kilobytes) at most this often, whatever the request rate.
CONFIG_RECHECK_SECONDS = 1.0


class LiveConfig:
    """The app's feeds.yaml, re-read when the file changes; a file that does not exist (the
    documented defaults) is never watched."""

    def __init__(self, app: Flask, engine: Engine, config: Config) -> None:
        self.app = app
        self.engine = engine
        self.watcher = ConfigWatcher(config.path, config) if Path(config.path).exists() else None
        self._next_check = time.monotonic() + CONFIG_RECHECK_SECONDS
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Apply an edit of feeds.yaml, if the file changed since the last look."""
        if self.watcher is None or time.monotonic() < self._next_check:
            return
        with self._lock:  # one thread looks and applies; the others go on with what is there
            if time.monotonic() < self._next_check:
                return
            self._next_check = time.monotonic() + CONFIG_RECHECK_SECONDS
            config = self.watcher.poll()
            if config is not None:
                self._apply(config)

    def _apply(self, config: Config) -> None:
        assert self.watcher is not None
        try:
            sync_config(self.engine, config)
        except SQLAlchemyError as exc:
            log.error("config path=%s not applied, tried again next time: %s", config.path, exc)
            self.watcher.retry()
            return
        self.app.extensions[CONFIG] = config
        cache: FeedCache = self.app.extensions[FEEDS]
        cache.config = config
        cache.clear()  # the site's title, hubs and feed length may have changed too


def install(app: Flask, engine: Engine, config: Config) -> None:
    """The app's engine and configuration, and the feed cache built over them."""
    app.extensions[ENGINE] = engine
    app.extensions[CONFIG] = config
    app.extensions[FEEDS] = FeedCache(engine, config)
    live = app.extensions[LIVE] = LiveConfig(app, engine, config)
    app.before_request(live.refresh)


def engine() -> Engine:
    """The database of the current app."""
    found: Engine = current_app.extensions[ENGINE]
    return found


def config() -> Config:
    """The current app's feeds.yaml, as last read (see `LiveConfig`)."""
    found: Config = current_app.extensions[CONFIG]
    return found


def feed_cache() -> FeedCache:
    """The current app's rendered feeds, kept between requests."""
    found: FeedCache = current_app.extensions[FEEDS]
    return found
