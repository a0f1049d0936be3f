"""Rendering a feed document: Atom 1.0 and RSS 2.0 (feedgen, with the extensions below for
what it lacks) and JSON Feed 1.1. Withdrawn stories appear in Atom as RFC 6721 tombstones.
"""

from __future__ import annotations

import html
import json
import mimetypes
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from aggregator.permalinks import iso_utc
from aggregator.publishing.feed_pages import FeedPage
from aggregator.publishing.links import FeedLinks, feed_links
from aggregator.publishing.scope import FeedQuery
from aggregator.publishing.stories import PublishedStory
from aggregator.stories import tagging
from aggregator.types import Enclosure, SiteConfig

ATOM_NS = "http://www.w3.org/2005/Atom"
TOMBSTONE_NS = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721
HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005
MEDIA_NS = "http://search.yahoo.com/mrss/"
DC_NS = "http://purl.org/dc/elements/1.1/"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "Caulbart"
OCTET_STREAM = "application/octet-stream"
# media:content's `medium` values (MRSS 1.5); other files go without one.
MRSS_MEDIA = ("image", "audio", "video", "document", "executable")


class _CaulbartFeed(BaseExtension):  # type: ignore[misc]
    """Feed-level elements feedgen lacks: RFC 5005 links and fh:archive, RFC 6721 tombstones."""

    def __init__(self) -> None:
        self.links: FeedLinks | None = None
        self.archive = False
        self.tombstones: tuple[PublishedStory, ...] = ()

    def extend_ns(self) -> dict[str, str]:
        return {"at": TOMBSTONE_NS, "fh": HISTORY_NS, "media": MEDIA_NS, "dc": DC_NS}

    def extend_atom(self, feed: Any) -> Any:
        if self.archive:
            xml_elem(f"{{{HISTORY_NS}}}archive", feed)
        for story in self.tombstones:
            assert story.withdrawn_at is not None
            tombstone = xml_elem(
                f"{{{TOMBSTONE_NS}}}deleted-entry",
                feed,
                ref=story.tag_uri,
                when=iso_utc(story.withdrawn_at),
            )
            # Unqualified, as feedgen writes every Atom element: the root's default namespace
            # (an xmlns attribute, not lxml's nsmap) makes it atom:link to a reader.
            xml_elem("link", tombstone, href=story.url)
            if story.withdrawn_reason:
                xml_elem(f"{{{TOMBSTONE_NS}}}comment", tombstone).text = story.withdrawn_reason
        return feed

    def extend_rss(self, feed: Any) -> Any:
        channel = feed.find("channel")
        if self.links is not None:
            for rel, href in self.links.rels():
                xml_elem(f"{{{ATOM_NS}}}link", channel, rel=rel, href=href)
        return feed


class _CaulbartEntry(BaseEntryExtension):  # type: ignore[misc]
    """Entry elements feedgen lacks or mangles: credits (via, source), image with its credit."""

    def __init__(self) -> None:
        self.story: PublishedStory | None = None

    def extend_atom(self, entry: Any) -> Any:
        story = self.story
        assert story is not None
        for original in story.originals:
            if original.link:
                xml_elem("link", entry, rel="via", href=original.link, title=original.title)
        if story.image_url:
            xml_elem("link", entry, rel="enclosure", href=story.image_url, type=_image_type(story))
        for enclosure in story.enclosures:
            if enclosure.url != story.image_url:
                xml_elem(
                    "link",
                    entry,
                    rel="enclosure",
                    href=enclosure.url,
                    **_file_attributes(enclosure, "length"),
                )
        if story.originals:
            best = story.originals[0]
            source = xml_elem("source", entry)
            xml_elem("id", source).text = best.feed_url
            xml_elem("title", source).text = best.feed_title
            xml_elem("link", source, rel="self", href=best.feed_url)
            if story.rights:
                xml_elem("rights", source).text = story.rights
        self._media(entry, story)
        return entry

    def extend_rss(self, item: Any) -> Any:
        story = self.story
        assert story is not None
        for agency in story.authors:
            xml_elem(f"{{{DC_NS}}}creator", item).text = agency
        if story.rights:
            xml_elem(f"{{{DC_NS}}}rights", item).text = story.rights
        played = rss_enclosure(story)
        if played is not None:
            xml_elem(
                "enclosure",
                item,
                url=played.url,
                length=str(played.length or 0),
                type=played.type or OCTET_STREAM,
            )
        elif story.image_url:
            xml_elem("enclosure", item, url=story.image_url, length="0", type=_image_type(story))
        self._media(item, story)
        if story.originals:
            best = story.originals[0]
            xml_elem("source", item, url=best.feed_url).text = best.feed_title
        return item

    @staticmethod
    def _media(parent: Any, story: PublishedStory) -> None:
        if story.image_url:
            content = xml_elem(
                f"{{{MEDIA_NS}}}content",
                parent,
                url=story.image_url,
                medium="image",
                type=_image_type(story),
            )
            if story.image_credit:
                xml_elem(f"{{{MEDIA_NS}}}credit", content).text = story.image_credit
        for enclosure in story.enclosures:
            if enclosure.url != story.image_url:
                medium = {"medium": enclosure.medium} if enclosure.medium in MRSS_MEDIA else {}
                xml_elem(
                    f"{{{MEDIA_NS}}}content",
                    parent,
                    url=enclosure.url,
                    **medium,
                    **_file_attributes(enclosure, "fileSize"),
                )


def rss_enclosure(story: PublishedStory) -> Enclosure | None:
    """RSS 2.0 allows one enclosure an item: the first audio or video file (what a podcast
    client plays), else none (the image takes the slot). Every file is also a media:content."""
    return next((e for e in story.enclosures if e.medium in ("audio", "video")), None)


def _file_attributes(enclosure: Enclosure, length_name: str) -> dict[str, str]:
    attributes = {"type": enclosure.type} if enclosure.type else {}
    if enclosure.length:
        attributes[length_name] = str(enclosure.length)
    return attributes


def _image_type(story: PublishedStory) -> str:
    guessed, _ = mimetypes.guess_type(urlsplit(story.image_url or "").path)
    return guessed if guessed and guessed.startswith("image/") else "image/jpeg"


def _generator(site: SiteConfig, page: FeedPage, links: FeedLinks, updated: datetime) -> Any:
    feed = FeedGenerator()
    feed.register_extension("caulbart", _CaulbartFeed, _CaulbartEntry)
    feed.caulbart.links = links
    feed.caulbart.archive = page.archive is not None
    feed.id(links.subscription)
    feed.title(page.title)
    feed.subtitle(site.tagline)
    feed.description(site.tagline)
    feed.language(site.language)
    feed.updated(updated)
    feed.generator(GENERATOR)
    feed.author({"name": site.title, "uri": site.base_url})
    feed.link(href=links.alternate, rel="alternate", type="text/html")
    feed.link(href=links.self_url, rel="self")
    if page.rights:
        feed.rights(page.rights)
    return feed


def render_atom(site: SiteConfig, page: FeedPage, links: FeedLinks, updated: datetime) -> bytes:
    feed = _generator(site, page, links, updated)
    for rel, href in links.rels():
        feed.link(href=href, rel=rel)
    feed.caulbart.tombstones = page.tombstones
    for story in page.stories:
        entry = feed.add_entry(order="append")
        entry.caulbart.story = story
        entry.id(story.tag_uri)
        entry.title(story.title)
        entry.link(href=story.url)  # no rel: alternate (RFC 4287 4.2.7.2)
        entry.published(story.published)
        entry.updated(story.updated)
        for agency in story.authors:
            entry.author({"name": agency})
        if story.lede:
            entry.summary(story.lede)
        if story.body_html:
            entry.content(story.body_html, type="html")
        for label in story.tags:
            entry.category(term=tagging.tag_slug(label), label=label, scheme=_tag_scheme(site))
        if story.rights:
            entry.rights(story.rights)
    return bytes(feed.atom_str(pretty=False))


def render_rss(
    site: SiteConfig, page: FeedPage, links: FeedLinks, updated: datetime, ttl: int
) -> bytes:
    feed = _generator(site, page, links, updated)
    feed.lastBuildDate(updated)
    feed.ttl(max(1, ttl // 60))
    for story in page.stories:
        entry = feed.add_entry(order="append")
        entry.caulbart.story = story
        entry.guid(story.tag_uri, permalink=False)
        entry.title(story.title)
        entry.link(href=story.url)
        entry.pubDate(story.published)
        entry.description(rss_description(story))
        if story.body_html:
            entry.content(rss_content(story, story.body_html))
        for label in story.tags:
            entry.category(term=label, scheme=_tag_scheme(site))
    return bytes(feed.rss_str(pretty=False))


def rss_description(story: PublishedStory) -> str:
    """The lede, then a link to the original article naming its agency: RSS has no `rel="via"`,
    and many readers show only the description."""
    text = f"<p>{html.escape(story.lede or story.title, quote=False)}</p>"
    original = next((o for o in story.originals if o.link), None)
    if original is None:
        return text
    link = html.escape(original.link or "")
    return f'{text}<p>Read the original at <a href="{link}">{html.escape(original.agency)}</a></p>'


def rss_content(story: PublishedStory, body_html: str) -> str:
    """The body, opened by the story's image and its credit (the agency's name when the feed
    gave none) unless the body shows that image already: readers of content:encoded ignore
    media:content."""
    if not story.image_url or f'src="{html.escape(story.image_url)}"' in body_html:
        return body_html
    credit = story.image_credit or (story.originals[0].agency if story.originals else "")
    caption = f"<figcaption>{html.escape(credit)}</figcaption>" if credit else ""
    image = f'<img src="{html.escape(story.image_url)}" alt="{html.escape(story.title)}">'
    return f"<figure>{image}{caption}</figure>{body_html}"


def render_json(site: SiteConfig, page: FeedPage, links: FeedLinks) -> bytes:
    """JSON Feed 1.1; credits and rights go in the `_caulbart` extension object."""
    document: dict[str, Any] = {
        "version": JSON_FEED_VERSION,
        "title": page.title,
        "home_page_url": links.alternate,
        "feed_url": links.self_url,
        "description": site.tagline,
        "language": site.language,
        "authors": [{"name": site.title, "url": site.base_url}],
    }
    if links.next:
        document["next_url"] = links.next
    if links.hubs:
        document["hubs"] = [{"type": "WebSub", "url": hub} for hub in links.hubs]
    document["items"] = [_json_item(story) for story in page.stories]
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _json_item(story: PublishedStory) -> dict[str, Any]:
    item: dict[str, Any] = {"id": story.tag_uri, "url": story.url}
    if story.external_url:
        item["external_url"] = story.external_url
    item["title"] = story.title
    if story.body_html:
        item["content_html"] = story.body_html
    else:
        item["content_text"] = story.lede or story.title
    if story.lede:
        item["summary"] = story.lede
    if story.image_url:
        item["image"] = story.image_url
    if story.enclosures:
        item["attachments"] = [_attachment(e) for e in story.enclosures]
    item["date_published"] = iso_utc(story.published)
    item["date_modified"] = iso_utc(story.updated)
    item["authors"] = [{"name": agency} for agency in story.authors]
    if story.tags:
        item["tags"] = list(story.tags)
    if story.language:
        item["language"] = story.language
    extension: dict[str, Any] = {
        "sources": [
            {
                "id": o.source_id,
                "name": o.source_name,
                "agency": o.agency,
                "feed_url": o.feed_url,
                "url": o.link,
                "title": o.title,
            }
            for o in story.originals
        ]
    }
    if story.rights:
        extension["rights"] = story.rights
    if story.image_credit:
        extension["image_credit"] = story.image_credit
    item["_caulbart"] = extension
    return item


def _attachment(enclosure: Enclosure) -> dict[str, Any]:
    """A JSON Feed attachment: `mime_type` is required, so an unknown type is a byte stream."""
    attachment: dict[str, Any] = {"url": enclosure.url, "mime_type": enclosure.type or OCTET_STREAM}
    if enclosure.length:
        attachment["size_in_bytes"] = enclosure.length
    return attachment


def _tag_scheme(site: SiteConfig) -> str:
    return site.base_url.rstrip("/") + "/tag/"


def render(
    site: SiteConfig, page: FeedPage, query: FeedQuery, fmt: str, updated: datetime, ttl: int
) -> bytes:
    links = feed_links(site, query, fmt, page)
    if fmt == "atom":
        return render_atom(site, page, links, updated)
    if fmt == "rss":
        return render_rss(site, page, links, updated, ttl)
    if fmt == "json":
        return render_json(site, page, links)
    raise ValueError(f"unknown feed format {fmt!r}")
