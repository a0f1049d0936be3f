"""Turn fetched bytes into a `ParsedFeed` with feedparser, keeping only the fields Caulbart uses.

feedparser's own sanitiser and relative-URI pass are off: normalise.py does both with nh3, once.
The body is handed over as a stream, never as bytes or str (feedparser would treat a string as a
URL or a file name and open it itself).
"""

from __future__ import annotations

import io
import time
from datetime import UTC, datetime
from typing import Any

import feedparser

from aggregator.errors import ParseError
from aggregator.types import FetchResult, ParsedFeed, RawEntry

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
# sy:updatePeriod values (RSS 1.0 Syndication module) in seconds.
SY_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400,
              "yearly": 365 * 86400}  # fmt: skip


def parse_feed(result: FetchResult, max_entries: int) -> ParsedFeed:
    """Parse a fetched feed; raise ParseError when the bytes hold no feed at all."""
    headers = {key.lower(): value for key, value in result.headers}
    base = result.final_url or result.url
    parsed = feedparser.parse(
        io.BytesIO(result.body),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    warning = _bozo_message(parsed)
    if not parsed.get("version") and not parsed.entries:
        kind = headers.get("content-type", "unknown content type")
        reason = f": {warning}" if warning else ""
        raise ParseError(f"not a feed ({kind}, {len(result.body)} bytes){reason}")
    feed = parsed.feed
    language = _text(feed.get("language"))
    entries = parsed.entries
    truncated_from = None
    if len(entries) > max_entries:
        truncated_from = len(entries)
        entries = entries[:max_entries]
    return ParsedFeed(
        title=_text(feed.get("title")),
        link=_text(feed.get("link")),
        language=language,
        entries=tuple(_raw_entry(entry, language, base) for entry in entries),
        warning=warning,
        truncated_from=truncated_from,
        refresh_hint=feed_refresh_hint(
            feed.get("ttl"), feed.get("sy_updateperiod"), feed.get("sy_updatefrequency")
        ),
    )


def _bozo_message(parsed: Any) -> str | None:
    if not parsed.get("bozo"):
        return None
    exc = parsed.get("bozo_exception")
    return f"{type(exc).__name__}: {exc}"[:300] if exc is not None else "ill-formed"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, time.struct_time):
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def _raw_entry(entry: Any, feed_language: str | None, feed_base: str) -> RawEntry:
    content = None
    base = None
    language = None
    for part in entry.get("content") or ():
        value = part.get("value")
        if isinstance(value, str) and value.strip():
            content = value
            base = part.get("base")
            language = part.get("language")
            break
    summary = _text(entry.get("summary"))
    if base is None:
        base = (entry.get("summary_detail") or {}).get("base")
    title_detail = entry.get("title_detail") or {}
    categories = tuple(
        label
        for tag in entry.get("tags") or ()
        if (label := _text(tag.get("label")) or _text(tag.get("term")))
    )
    image_url, image_credit = _image(entry)
    return RawEntry(
        id=_text(entry.get("id")),
        link=_text(entry.get("link")),
        title=_text(entry.get("title")),
        title_is_html=title_detail.get("type") in ("text/html", "application/xhtml+xml"),
        summary=summary,
        content=content,
        published=_datetime(entry.get("published_parsed")),
        # dict.get: FeedParserDict would map a missing updated_parsed to published_parsed.
        updated=_datetime(dict.get(entry, "updated_parsed")),
        author=_text((entry.get("author_detail") or {}).get("name")) or _text(entry.get("author")),
        categories=categories,
        image_url=image_url,
        image_credit=image_credit,
        language=_text(language) or feed_language,
        base=_text(base) or feed_base,
    )


def _is_image(url: str | None, medium: str | None, mime: str | None) -> bool:
    if not url:
        return False
    if medium:
        return medium == "image"
    if mime:
        return mime.startswith("image/")
    return url.lower().split("?")[0].endswith(IMAGE_SUFFIXES)


def _image(entry: Any) -> tuple[str | None, str | None]:
    """The entry's lead image and its credit: media:content, media:thumbnail, then enclosures."""
    credit = None
    for item in entry.get("media_credit") or ():
        credit = _text(item.get("content"))
        if credit:
            break
    for media in entry.get("media_content") or ():
        if _is_image(media.get("url"), media.get("medium"), media.get("type")):
            return media["url"], credit
    for thumb in entry.get("media_thumbnail") or ():
        if _text(thumb.get("url")):
            return thumb["url"], credit
    for enclosure in entry.get("enclosures") or ():
        if _is_image(enclosure.get("href"), None, enclosure.get("type")):
            return enclosure["href"], credit
    return None, credit


def feed_refresh_hint(ttl: object, update_period: object, update_frequency: object) -> int | None:
    """Seconds a feed asks to be left alone: RSS <ttl> (minutes) or sy:updatePeriod/Frequency."""
    hints: list[int] = []
    if isinstance(ttl, str) and ttl.strip().isdigit():
        hints.append(int(ttl.strip()) * 60)
    if isinstance(update_period, str) and update_period.strip().lower() in SY_PERIODS:
        frequency = 1
        if isinstance(update_frequency, str) and update_frequency.strip().isdigit():
            frequency = max(1, int(update_frequency.strip()))
        hints.append(SY_PERIODS[update_period.strip().lower()] // frequency)
    return max(hints) if hints else None
