"""Feeds blueprint: Atom, RSS and JSON Feed for the site, a section, a tag or a source, and
/sources.opml. Conditional GET throughout; rendering happens only when a feed changed."""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from flask import Blueprint, Response, abort, request
from flask.typing import ResponseReturnValue

from aggregator.errors import FeedNotFound
from aggregator.publishing.scope import FeedQuery
from web import context, queries

feeds = Blueprint("feeds", __name__)


@feeds.get("/feed.<fmt>")
@feeds.get("/<any(section, tag, source):kind>/<value>/feed.<fmt>")
def feed(fmt: str, kind: str = "all", value: str = "") -> ResponseReturnValue:
    page = request.args.get("page", 1, type=int)
    archive = request.args.get("archive", None, type=int)
    try:
        document = context.feed_cache().document(FeedQuery(kind, value), fmt, page, archive)
    except (FeedNotFound, ValueError):
        abort(404)
    # Headers written directly: this is the hot path of every poll, 200 or 304.
    etag = f'"{document.etag}"'  # strong: the same bytes in every process
    headers = {
        "ETag": etag,
        "Last-Modified": format_datetime(document.last_modified, usegmt=True),
        # Near the ingest interval: the quickest any source refreshes (feeds.yaml min_interval).
        "Cache-Control": f"public, max-age={context.config().defaults.min_interval}",
    }
    if _not_modified(etag, document.last_modified):
        # Note: waitress closes the connection after a 304 (it has no Content-Length).
        return Response(status=304, headers=headers)
    return Response(document.body, headers=headers, content_type=document.media_type)


def _not_modified(etag: str, last_modified: datetime) -> bool:
    """RFC 9110 section 13.2.2: If-None-Match decides when sent, else If-Modified-Since."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
        return "*" in tags or etag in tags
    if_modified_since = request.headers.get("If-Modified-Since")
    if not if_modified_since:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False
    return since.tzinfo is not None and last_modified <= since


@feeds.get("/sources.opml")
def sources_opml() -> ResponseReturnValue:
    """OPML 2.0 of the enabled sources, so readers can subscribe to the originals too.

    One folder outline per section holding its feeds: the form feed readers (Miniflux, FreshRSS,
    NetNewsWire, Feedly) and `caulbart import-opml` file into folders; `category` says the same
    for readers that read that attribute instead."""
    config = context.config()
    root = ElementTree.Element("opml", version="2.0")
    head = ElementTree.SubElement(root, "head")
    ElementTree.SubElement(head, "title").text = f"{config.site.title}: sources"
    ElementTree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = ElementTree.SubElement(root, "body")
    folders: dict[str, ElementTree.Element] = {}
    for source in queries.enabled_sources(context.engine()):
        folder = folders.get(source.section)
        if folder is None:
            folder = ElementTree.SubElement(
                body, "outline", text=source.section, title=source.section
            )
            folders[source.section] = folder
        ElementTree.SubElement(
            folder,
            "outline",
            type="rss",
            text=source.name,
            title=source.title or source.name,
            xmlUrl=source.feed_url,
            category=f"/{source.section}",
        )
    document = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    response = Response(document, content_type="text/x-opml; charset=utf-8")
    response.add_etag()
    return response.make_conditional(request)
