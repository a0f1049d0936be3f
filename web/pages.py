"""Pages blueprint: home, story permalinks, section, tag, source, date archive and search pages.

Views read through `web.queries` / `web.search` and hand plain values to the templates; the
only Markup a template receives from feed content is the body sanitised at ingest (nh3).
A story answers 410 with the reason once withdrawn, and 301 when its slug or date moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, abort, redirect, render_template, request
from flask.typing import ResponseReturnValue
from markupsafe import Markup

from aggregator.ingest.markup import plain_text
from aggregator.publishing.scope import FORMATS, FeedQuery
from aggregator.publishing.stories import PublishedStory
from aggregator.stories.tagging import tag_slug
from aggregator.types import Config
from web import queries, search, structured
from web.context import config as _config
from web.context import engine as _engine
from web.routing import StoryRef

pages = Blueprint("pages", __name__)

FEED_NAMES = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
# Tags whose feeds a story page announces (its best ones).
DISCOVERED_TAGS = 3
PER_PAGE = 20  # stories per listing page
HOME_PER_PAGE = 30
SEARCH_PER_PAGE = 10
MAX_PAGE = 500  # deeper pages are refused: OFFSET grows with the page number
# Years an archive page may name; outside them the neighbouring periods cannot be dated.
ARCHIVE_YEARS = (1900, 2999)
PAGE_MAX_AGE = 60  # seconds a page may be cached; ETag/Last-Modified revalidate it after


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
    return _feed_links(config, scopes)


def _feed_links(config: Config, scopes: list[tuple[str, FeedQuery]]) -> list[FeedLink]:
    base = config.site.base_url.rstrip("/")
    return [
        FeedLink(
            f"{title} ({FEED_NAMES[fmt]})", FORMATS[fmt].split(";")[0], base + q.feed_path(fmt)
        )
        for title, q in scopes
        for fmt in ("atom", "rss", "json")
        if q.kind == "all" or fmt == "atom" or len(scopes) == 1
    ]


def _page_number() -> int:
    """?page=N, 1 by default; anything else than 1..MAX_PAGE is a 404."""
    number = request.args.get("page", 1, type=int)
    if number is None or not 1 <= number <= MAX_PAGE:
        abort(404)
    return number


def render(template: str, status: int = 200, **context: Any) -> Response:
    """A page with its caching headers. Last-Modified is the site's latest story change: every
    page shows more than one story (neighbours, related posts), so nothing narrower is safe for
    a client that revalidates by date alone. The ETag follows in `conditional`."""
    response = Response(render_template(template, **context), status=status)
    response.headers["Cache-Control"] = f"public, max-age={PAGE_MAX_AGE}"
    changed = queries.last_change(_engine())
    if changed is not None:
        response.last_modified = changed.replace(microsecond=0)
    return response


@pages.after_request
def conditional(response: Response) -> Response:
    """Strong ETag of the page's bytes, then 304 when the reader's copy is current."""
    if (
        request.method in ("GET", "HEAD")
        and response.status_code == 200
        and response.mimetype == "text/html"
    ):
        response.add_etag()
        response.make_conditional(request)  # turns this response into the 304 when current
    return response


def _listing_page(
    template: str, listing: queries.Listing, heading: str, scope: FeedQuery | None, **extra: Any
) -> Response:
    if listing.page > 1 and not listing.cards:
        abort(404)
    config = _config()
    feeds = _feed_links(config, [(f"{config.site.title} — {heading}", scope)]) if scope else []
    return render(
        template,
        listing=listing,
        heading=heading,
        feeds=feeds,
        **extra,
    )


@pages.get("/")
def home() -> ResponseReturnValue:
    """The newest stories grouped by section, in the navigation's order."""
    listing = queries.latest_stories(_engine(), _page_number(), HOME_PER_PAGE)
    if listing.page > 1 and not listing.cards:
        abort(404)
    groups: dict[str, list[queries.StoryCard]] = {}
    for card in listing.cards:
        groups.setdefault(card.section, []).append(card)
    order = {name: index for index, name in enumerate(current_sections())}
    grouped = sorted(groups.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    config = _config()
    return render(
        "home.html",
        listing=listing,
        groups=grouped,
        feeds=_feed_links(config, [(config.site.title, FeedQuery())]),
    )


def current_sections() -> list[str]:
    """The navigation's sections: feeds.yaml's, in the order editors listed them."""
    configured = list(dict.fromkeys(source.section for source in _config().sources))
    return configured or queries.known_sections(_engine())


@pages.get("/section/<name>")
def section(name: str) -> ResponseReturnValue:
    if name not in current_sections() and not queries.section_exists(_engine(), name):
        abort(404)
    listing = queries.latest_stories(_engine(), _page_number(), PER_PAGE, section=name)
    return _listing_page("listing.html", listing, name.title(), FeedQuery("section", name))


@pages.get("/tag/<slug>")
def tag(slug: str) -> ResponseReturnValue:
    found = queries.tag_stories(_engine(), slug, _page_number(), PER_PAGE)
    if found is None:
        abort(404)
    label, listing = found
    return _listing_page("listing.html", listing, label, FeedQuery("tag", slug), kind="Tag")


@pages.get("/source/<source_id>")
def source(source_id: str) -> ResponseReturnValue:
    found = queries.source_stories(_engine(), source_id, _page_number(), PER_PAGE)
    if found is None:
        abort(404)
    link, listing = found
    return _listing_page(
        "listing.html",
        listing,
        link.name,
        FeedQuery("source", source_id),
        kind="Source",
        source=link,
    )


@pages.get("/archive/<int(fixed_digits=4):year>")
@pages.get("/archive/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>")
@pages.get(
    "/archive/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>"
)
def archive(year: int, month: int | None = None, day: int | None = None) -> ResponseReturnValue:
    """A year, month or day of stories, with links to the periods either side."""
    if not ARCHIVE_YEARS[0] <= year <= ARCHIVE_YEARS[1]:
        abort(404)
    try:
        start = datetime(year, month or 1, day or 1, tzinfo=UTC)
    except ValueError:  # 2026/02/30, month 13
        abort(404)
    if day is not None:
        end, before = start + timedelta(days=1), start - timedelta(days=1)
        heading, fmt = f"{start:%d %B %Y}", "/archive/%Y/%m/%d"
    elif month is not None:
        end = (start + timedelta(days=32)).replace(day=1)
        before = (start - timedelta(days=1)).replace(day=1)
        heading, fmt = f"{start:%B %Y}", "/archive/%Y/%m"
    else:
        end, before = start.replace(year=year + 1), start.replace(year=year - 1)
        heading, fmt = f"{year}", "/archive/%Y"
    listing = queries.archive_stories(_engine(), start, end, _page_number(), PER_PAGE)
    periods = {"earlier": before.strftime(fmt), "later": end.strftime(fmt)}
    return _listing_page("listing.html", listing, heading, None, kind="Archive", periods=periods)


@pages.get("/search")
def search_page() -> ResponseReturnValue:
    """Full-text search, ranked, matches highlighted; an empty query shows the form alone."""
    query = request.args.get("q", "").strip()
    page = _page_number()
    results = search.search_stories(_engine(), query, page, SEARCH_PER_PAGE) if query else None
    if results is not None and page > 1 and not results.hits:
        abort(404)
    pages_count = -(-results.total // SEARCH_PER_PAGE) if results else 0
    return render("search.html", query=query, results=results, page=page, pages=pages_count)


@pages.get(
    "/<int(fixed_digits=4):year>/<int(fixed_digits=2):month>/<int(fixed_digits=2):day>/<story:ref>"
)
def story(year: int, month: int, day: int, ref: StoryRef) -> ResponseReturnValue:
    config = _config()
    engine = _engine()
    found = queries.story_page(engine, config.site, ref.id)
    if found is None:
        abort(404)
    current = urlsplit(found.url).path
    if request.path != current:
        return redirect(current, code=301)
    if found.withdrawn_at:
        return render("story.html", status=410, story=found, feeds=[], lang=story_language(found))
    body = Markup(found.body_html) if found.body_html else None  # sanitised at ingest (nh3)
    return render(
        "story.html",
        story=found,
        body=body,
        show_lede=not body or not _body_opens_with(found.body_html or "", found.lede),
        # Image files are the story's image already, or a gallery the body shows.
        media=[e for e in found.enclosures if e.medium != "image"],
        agencies=agency_links(found),
        tag_links=[(label, tag_slug(label)) for label in found.tags],
        around=queries.neighbours(engine, found.id, found.published),
        related=queries.related_posts(engine, config.site, found.id),
        feeds=discovery_links(config, found.section, found.tags),
        json_ld=structured.news_article(found, config.site),
        lang=story_language(found),
    )


@dataclass(frozen=True)
class AgencyLink:
    agency: str
    href: str


def agency_links(story: PublishedStory) -> list[AgencyLink]:
    """One link per agency, the reporting (best) one first: its entry's link, else its feed."""
    links: dict[str, AgencyLink] = {}
    for original in story.originals:
        if original.agency not in links:
            links[original.agency] = AgencyLink(original.agency, original.link or original.feed_url)
    return list(links.values())


def story_language(story: PublishedStory) -> str | None:
    """The story's language when it is a well-formed tag; else the site's is used."""
    language = (story.language or "").replace("_", "-")
    parts = language.split("-")
    if not (2 <= len(parts[0]) <= 3 and parts[0].isalpha()):
        return None
    if not all(1 <= len(p) <= 8 and p.isalnum() for p in parts[1:]):
        return None
    return language


def _body_opens_with(body_html: str, lede: str) -> bool:
    """Is the lede the body's first words (so the page need not print it twice)?"""
    opening = lede.strip().rstrip("…").strip()[:80]
    return bool(opening) and plain_text(body_html).startswith(opening)
