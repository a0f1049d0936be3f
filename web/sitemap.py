"""/sitemap.xml, a sitemap index, its sitemaps, and /robots.txt.

Every published story is in one sitemap, however big the archive: the stories sitemaps are
fixed blocks of story ids (`/sitemap-stories-<n>.xml`, STORIES_PER_SITEMAP ids each), so a
block's URL keeps its stories and each file costs the same at any archive size. Google News
reads its own sitemap of the last two days (`/sitemap-news.xml`); the home page and the
sections are in `/sitemap-pages.xml`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from flask import Blueprint, Response, abort, request
from flask.typing import ResponseReturnValue

from aggregator.permalinks import iso_utc
from web import context, queries
from web.pages import current_sections

sitemap = Blueprint("sitemap", __name__)

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
# Story ids per stories sitemap (the protocol allows 50,000 URLs a file): few enough that one
# file is built within a crawler's patience.
STORIES_PER_SITEMAP = 5_000
NEWS_WINDOW = timedelta(days=2)  # Google News reads only the last two days' articles
MAX_NEWS = 1000  # and at most this many news entries per sitemap

ElementTree.register_namespace("", SITEMAP_NS)
ElementTree.register_namespace("news", NEWS_NS)


def _base() -> str:
    return context.config().site.base_url.rstrip("/")


@sitemap.get("/sitemap.xml")
def sitemap_index() -> ResponseReturnValue:
    """The sitemaps: pages, the last two days' news when there is any, every stories block."""
    base = _base()
    names = ["sitemap-pages.xml"]
    if queries.recent_stories(context.engine(), datetime.now(UTC) - NEWS_WINDOW, 1):
        names.append("sitemap-news.xml")
    blocks = queries.sitemap_blocks(context.engine(), STORIES_PER_SITEMAP)
    names += [f"sitemap-stories-{block}.xml" for block in blocks]
    root = ElementTree.Element(f"{{{SITEMAP_NS}}}sitemapindex")
    for name in names:
        entry = ElementTree.SubElement(root, f"{{{SITEMAP_NS}}}sitemap")
        ElementTree.SubElement(entry, f"{{{SITEMAP_NS}}}loc").text = f"{base}/{name}"
    return _xml(root)


@sitemap.get("/sitemap-pages.xml")
def pages_sitemap() -> ResponseReturnValue:
    base = _base()
    paths = ["/"] + [f"/section/{quote(name)}" for name in current_sections()]
    root = _urlset()
    for path in paths:
        _url(root, base + path)
    return _xml(root)


@sitemap.get("/sitemap-stories-<id:block>.xml")
def stories_sitemap(block: int) -> ResponseReturnValue:
    """One block of story ids: its published stories, with their last change."""
    stories = (
        queries.block_stories(context.engine(), block, STORIES_PER_SITEMAP) if block > 0 else []
    )
    if not stories:
        abort(404)  # beyond the newest story, or every story of it withdrawn or pruned
    base, root = _base(), _urlset()
    for story in stories:
        _story_url(root, base, story)
    return _xml(root)


@sitemap.get("/sitemap-news.xml")
def news_sitemap() -> ResponseReturnValue:
    """The last two days' stories with Google News tags, newest first."""
    config = context.config()
    base, root = _base(), _urlset()
    recent = datetime.now(UTC) - NEWS_WINDOW
    for story in queries.recent_stories(context.engine(), recent, MAX_NEWS):
        url = _story_url(root, base, story)
        news = ElementTree.SubElement(url, f"{{{NEWS_NS}}}news")
        publication = ElementTree.SubElement(news, f"{{{NEWS_NS}}}publication")
        ElementTree.SubElement(publication, f"{{{NEWS_NS}}}name").text = config.site.title
        language = (story.language or config.site.language).split("-")[0].lower()
        ElementTree.SubElement(publication, f"{{{NEWS_NS}}}language").text = language
        date = ElementTree.SubElement(news, f"{{{NEWS_NS}}}publication_date")
        date.text = iso_utc(story.published)
        ElementTree.SubElement(news, f"{{{NEWS_NS}}}title").text = story.title
    return _xml(root)


def _urlset() -> ElementTree.Element:
    return ElementTree.Element(f"{{{SITEMAP_NS}}}urlset")


def _url(root: ElementTree.Element, loc: str) -> ElementTree.Element:
    url = ElementTree.SubElement(root, f"{{{SITEMAP_NS}}}url")
    ElementTree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = loc
    return url


def _story_url(
    root: ElementTree.Element, base: str, story: queries.SitemapStory
) -> ElementTree.Element:
    url = _url(root, base + story.path)
    ElementTree.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = iso_utc(story.updated)
    return url


def _xml(root: ElementTree.Element) -> ResponseReturnValue:
    document = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    response = Response(document, content_type="application/xml; charset=utf-8")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.add_etag()
    return response.make_conditional(request)


@sitemap.get("/robots.txt")
def robots_txt() -> ResponseReturnValue:
    base = _base()
    lines = [
        "User-agent: *",
        "Disallow: /search",
        "Disallow: /admin",
        f"Sitemap: {base}/sitemap.xml",
    ]
    return Response("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
