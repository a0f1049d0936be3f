"""The Flask application factory: every blueprint is listed here, each in its own module."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, render_template
from sqlalchemy import Engine

from aggregator.config.load import load_config
from aggregator.storage.db import open_database
from aggregator.types import Config, Defaults, SiteConfig
from web import context, queries
from web.admin import admin
from web.comments import comments
from web.feeds import feeds
from web.guard import guard
from web.pages import pages
from web.routing import register_converters
from web.sitemap import sitemap

# No script runs on Caulbart's pages: JSON-LD is a data block, which CSP does not execute or
# block. Images, audio and video come from the sources' hosts (normalise keeps only http(s)
# URLs), so any https or http one is allowed.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'none'",
        "style-src 'self'",
        "img-src 'self' https: http: data:",
        "media-src 'self' https: http:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
    "Permissions-Policy": "interest-cohort=(), browsing-topics=()",
}


def create_app(engine: Engine | None = None, config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.update(config or {})
    context.install(app, engine or open_database(), site_config(app.config.get("CAULBART_CONFIG")))
    register_converters(app.url_map)
    guard(app)  # before the blueprints: comments and admin add their limits to its limiter
    app.register_blueprint(feeds)
    app.register_blueprint(pages)
    app.register_blueprint(sitemap)
    app.register_blueprint(comments)
    app.register_blueprint(admin)
    app.add_url_rule("/healthz", view_func=healthz)
    register_site_chrome(app)
    return app


def healthz() -> tuple[dict[str, Any], int]:
    """Database reachable and the last successful ingest, for load balancers and operators."""
    last = queries.health_summary(context.engine()).last_success_at
    return {"status": "ok", "last_success_at": last.isoformat() if last else None}, 200


def register_site_chrome(app: Flask) -> None:
    """What every response shares: security headers, the layout's values, error pages."""

    @app.after_request
    def security_headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.context_processor
    def layout_values() -> dict[str, Any]:
        config = context.config()
        sections = list(dict.fromkeys(source.section for source in config.sources))
        return {"site": config.site, "nav_sections": sections, "now": datetime.now(UTC)}

    def error_page(status: int, heading: str, message: str) -> tuple[str, int]:
        return render_template("error.html", heading=heading, message=message), status

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return error_page(404, "Page not found", "There is nothing at this address.")

    @app.errorhandler(500)
    def server_error(error: Exception) -> tuple[str, int]:
        return error_page(
            500, "Something went wrong", "The page could not be shown. Please try again soon."
        )


def site_config(path: str | None) -> Config:
    """feeds.yaml (config `CAULBART_CONFIG`, env `CAULBART_CONFIG`, or ./feeds.yaml), read once;
    without the file, the documented defaults. An invalid file raises ConfigError."""
    chosen = Path(path or os.environ.get("CAULBART_CONFIG") or "feeds.yaml")
    if not chosen.exists():
        return Config(path=str(chosen), site=SiteConfig(), defaults=Defaults(), sources=())
    return load_config(chosen)
