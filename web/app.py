"""The Flask application factory; pages, feeds and comments arrive as blueprints."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import Engine, func, select, text

from aggregator.config import load_config
from aggregator.db import open_database
from aggregator.models import Source
from aggregator.publish import FeedCache
from aggregator.types import Config, Defaults, SiteConfig


def create_app(engine: Engine | None = None, config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    app.extensions["caulbart.engine"] = engine or open_database()
    app.extensions["caulbart.config"] = site_config(app.config.get("CAULBART_CONFIG"))
    app.extensions["caulbart.feeds"] = FeedCache(
        app.extensions["caulbart.engine"], app.extensions["caulbart.config"]
    )

    from web.feeds import feeds
    from web.pages import pages

    app.register_blueprint(feeds)
    app.register_blueprint(pages)

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, Any], int]:
        """Database reachable and the last successful ingest, for load balancers and operators."""
        db: Engine = app.extensions["caulbart.engine"]
        with db.connect() as connection:
            connection.execute(text("SELECT 1"))
            last = connection.execute(select(func.max(Source.last_success_at))).scalar()
        if isinstance(last, str):  # SQLite aggregate bypasses the column type
            last = datetime.fromisoformat(last).replace(tzinfo=UTC)
        return {"status": "ok", "last_success_at": last.isoformat() if last else None}, 200

    return app


def site_config(path: str | None) -> Config:
    """feeds.yaml (config `CAULBART_CONFIG`, env `CAULBART_CONFIG`, or ./feeds.yaml), read once;
    without the file, the documented defaults. An invalid file raises ConfigError."""
    chosen = Path(path or os.environ.get("CAULBART_CONFIG") or "feeds.yaml")
    if not chosen.exists():
        return Config(path=str(chosen), site=SiteConfig(), defaults=Defaults(), sources=())
    return load_config(chosen)
