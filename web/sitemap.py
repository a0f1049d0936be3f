"""/sitemap.xml (with Google News tags for the last two days) and /robots.txt."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import UTC, datetime, timedelta

from flask import Blueprint, Response, current_app, request
from flask.typing import ResponseReturnValue

from aggregator.permalinks import iso_utc
from aggregator.types import Config
from web import queries

sitemap = Blueprint("sitemap", __name__)

SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_NS = "http://www.google.com/schemas/sitemap-news/0.9"
MAX_URLS = 50_000  # the sitemap protocol's limit per file
NEWS_WINDOW = timedelta(days=2)  # Google News reads only the last two days' articles
MAX_NEWS = 1000  # and at most this many news entries per sitemap


def _config() -> Config:
    config: Config = current_app.extensions["caulbart.config"]
    return config


@sitemap.get("/sitemap.xml")
def sitemap_xml() -> ResponseReturnValue:
    config = _config()
    base = config.site.base_url.rstrip("/")
    ElementTree.register_namespace("", SITEMAP_NS)
    ElementTree.register_namespace("news", NEWS_NS)
    root = ElementTree.Element(f"{{{SITEMAP_NS}}}urlset")
    home = ElementTree.SubElement(root, f"{{{SITEMAP_NS}}}url")
    ElementTree.SubElement(home, f"{{{SITEMAP_NS}}}loc").text = base + "/"
    stories = queries.sitemap_stories(current_app.extensions["caulbart.engine"], MAX_URLS - 1)
    recent = datetime.now(UTC) - NEWS_WINDOW
    news_left = MAX_NEWS
    for story in stories:
        url = ElementTree.SubElement(root, f"{{{SITEMAP_NS}}}url")
        ElementTree.SubElement(url, f"{{{SITEMAP_NS}}}loc").text = base + story.path
        ElementTree.SubElement(url, f"{{{SITEMAP_NS}}}lastmod").text = iso_utc(story.updated)
        if story.published < recent or news_left == 0:
            continue
        news_left -= 1
        news = ElementTree.SubElement(url, f"{{{NEWS_NS}}}news")
        publication = ElementTree.SubElement(news, f"{{{NEWS_NS}}}publication")
        ElementTree.SubElement(publication, f"{{{NEWS_NS}}}name").text = config.site.title
        language = (story.language or config.site.language).split("-")[0].lower()
        ElementTree.SubElement(publication, f"{{{NEWS_NS}}}language").text = language
        date = ElementTree.SubElement(news, f"{{{NEWS_NS}}}publication_date")
        date.text = iso_utc(story.published)
        ElementTree.SubElement(news, f"{{{NEWS_NS}}}title").text = story.title
    document = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    response = Response(document, content_type="application/xml; charset=utf-8")
    response.headers["Cache-Control"] = "public, max-age=300"
    response.add_etag()
    return response.make_conditional(request)


@sitemap.get("/robots.txt")
def robots_txt() -> ResponseReturnValue:
    base = _config().site.base_url.rstrip("/")
    lines = [
        "User-agent: *",
        "Disallow: /search",
        "Disallow: /admin/",
        f"Sitemap: {base}/sitemap.xml",
    ]
    return Response("\n".join(lines) + "\n", content_type="text/plain; charset=utf-8")
