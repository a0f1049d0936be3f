"""The one builder of the feed documents tests serve: an RSS 2.0 channel from items.

An `Item`'s text fields are what a feed parser reads back (the builder escapes them, so a
description may hold HTML as a feed carries it); `extra` is raw XML for what has no field (media,
enclosures). A test whose point is the XML as written passes an item as a string instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape

__all__ = ["Item", "rss"]

NAMESPACES = (
    'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
    'xmlns:media="http://search.yahoo.com/mrss/"'
)


@dataclass(frozen=True)
class Item:
    """One <item>; a field left None is left out of the document."""

    guid: str | None = None
    title: str | None = None
    link: str | None = None
    published: datetime | str | None = None
    description: str | None = None
    # The full text (content:encoded), HTML.
    content: str | None = None
    categories: tuple[str, ...] = ()
    # False: <guid isPermaLink="false">, an id that is not an address.
    permalink: bool = True
    extra: str = ""

    def xml(self) -> str:
        parts = []
        if self.guid is not None:
            attribute = "" if self.permalink else ' isPermaLink="false"'
            parts.append(f"<guid{attribute}>{escape(self.guid)}</guid>")
        if self.title is not None:
            parts.append(f"<title>{escape(self.title)}</title>")
        if self.link is not None:
            parts.append(f"<link>{escape(self.link)}</link>")
        if self.published is not None:
            parts.append(f"<pubDate>{rfc822(self.published)}</pubDate>")
        parts.extend(f"<category>{escape(c)}</category>" for c in self.categories)
        if self.description is not None:
            parts.append(f"<description>{escape(self.description)}</description>")
        if self.content is not None:
            parts.append(f"<content:encoded>{escape(self.content)}</content:encoded>")
        return f"<item>{''.join(parts)}{self.extra}</item>"


def rfc822(when: datetime | str) -> str:
    """RSS's date format; a string is written as given (a test of odd dates)."""
    return when if isinstance(when, str) else format_datetime(when)


def rss(
    *items: Item | str,
    title: str = "Wire",
    link: str | None = None,
    description: str | None = None,
    language: str | None = None,
    prolog: str = "",
) -> str:
    """An RSS 2.0 document (UTF-8, with the content: and media: namespaces) holding `items`;
    `prolog` goes between the XML declaration and <rss> (a DOCTYPE)."""
    channel = [f"<title>{escape(title)}</title>"]
    if link is not None:
        channel.append(f"<link>{escape(link)}</link>")
    if description is not None:
        channel.append(f"<description>{escape(description)}</description>")
    if language is not None:
        channel.append(f"<language>{escape(language)}</language>")
    channel.extend(item if isinstance(item, str) else item.xml() for item in items)
    return (
        f'<?xml version="1.0" encoding="utf-8"?>{prolog}<rss version="2.0" {NAMESPACES}>'
        f"<channel>{''.join(channel)}</channel></rss>"
    )
