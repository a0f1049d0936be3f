"""The Flask application factory; pages, feeds and comments arrive as blueprints."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Flask
from sqlalchemy import Engine, func, select, text

from aggregator.db import open_database
from aggregator.models import Source


def create_app(engine: Engine | None = None, config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    app.extensions["caulbart.engine"] = engine or open_database()

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
