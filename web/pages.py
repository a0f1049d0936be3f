"""Pages blueprint. For now only the story permalink: 200 with the story, 410 with the reason
once it is withdrawn, 301 to the current address when its headline (slug) or date moved."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from aggregator.publish import FORMATS, FeedQuery
from aggregator.tagging import tag_slug
from aggregator.types import Config
from web import queries

pages = Blueprint("pages", __name__)

FEED_NAMES = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
# Tags whose feeds a story page announces (its best ones).
DISCOVERED_TAGS = 3


@dataclass(frozen=True)
class FeedLink:
    """A `<link rel="alternate">` for feed autodiscovery."""

    title: str
    type: str
    href: str


def discovery_links(config: Config, section: str, tags: tuple[str, ...]) -> list[FeedLink]:
    """The feeds that fit a story page: the site's, its section's, its best tags'."""
    site = config.site
    scopes = [(site.title, FeedQuery())]
    scopes.append((f"{site.title} — {section}", FeedQuery("section", section)))
    scopes += [
        (f"{site.title} — {t}", FeedQuery("tag", tag_slug(t))) for t in tags[:DISCOVERED_TAGS]
    ]
    base = site.base_url.rstrip("/")
    return [
        FeedLink(
            f"{title} ({FEED_NAMES[fmt]})", FORMATS[fmt].split(";")[0], base + q.feed_path(fmt)
        )
        for title, q in scopes
        for fmt in ("atom", "rss", "json")
        if q.kind == "all" or fmt == "atom"
    ]


@pages.get(
    "/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<slug_id>"
)
def story(year: int, month: int, day: int, slug_id: str) -> ResponseReturnValue:
    config: Config = current_app.extensions["caulbart.config"]
    _, _, raw_id = slug_id.rpartition("-")
    if not raw_id.isdigit():
        return render_template("story.html", story=None, site=config.site, feeds=[]), 404
    engine = current_app.extensions["caulbart.engine"]
    found = queries.story_page(engine, config.site, int(raw_id))
    if found is None:
        return render_template("story.html", story=None, site=config.site, feeds=[]), 404
    current = urlsplit(found.url).path
    if request.path != current:
        return redirect(current, code=301)
    body = Markup(found.body_html) if found.body_html else None  # sanitised at ingest (nh3)
    status = 410 if found.withdrawn_at else 200
    return (
        render_template(
            "story.html",
            story=found,
            body=body,
            related=[]
            if found.withdrawn_at
            else queries.related_posts(engine, config.site, found.id),
            site=config.site,
            feeds=discovery_links(config, found.section, found.tags),
        ),
        status,
    )
