"""What every request reads from the application: its engine, its feeds.yaml, its feed cache.

One accessor per value, as Flask's tutorial has `get_db()`: views call `context.engine()`
rather than reaching into `current_app.extensions`, and `create_app` stores them once through
`install`. The extension keys stay public: tests and benches close the feed cache by its key.
"""

from __future__ import annotations

from flask import Flask, current_app
from sqlalchemy import Engine

from aggregator.publishing.feed_cache import FeedCache
from aggregator.types import Config

ENGINE = "caulbart.engine"
CONFIG = "caulbart.config"
FEEDS = "caulbart.feeds"


def install(app: Flask, engine: Engine, config: Config) -> None:
    """The app's engine and configuration, and the feed cache built over them."""
    app.extensions[ENGINE] = engine
    app.extensions[CONFIG] = config
    app.extensions[FEEDS] = FeedCache(engine, config)


def engine() -> Engine:
    """The database of the current app."""
    found: Engine = current_app.extensions[ENGINE]
    return found


def config() -> Config:
    """The current app's feeds.yaml, read once at start."""
    found: Config = current_app.extensions[CONFIG]
    return found


def feed_cache() -> FeedCache:
    """The current app's rendered feeds, kept between requests."""
    found: FeedCache = current_app.extensions[FEEDS]
    return found
