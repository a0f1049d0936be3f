"""Turn fetched bytes into a `ParsedFeed` with feedparser, keeping only the fields Caulbart uses.

feedparser's own sanitiser and relative-URI pass are off: normalise.py does both with nh3, once.
The body is handed over as a stream, never as bytes or str (feedparser would treat a string as a
URL or a file name and open it itself). JSON Feed (jsonfeed.org), which feedparser 6.0 does not
read, is read here from the same bytes into the same `RawEntry`s.
"""

from __future__ import annotations

import html
import io
import json
import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser

from aggregator.errors import ParseError
from aggregator.types import Enclosure, FetchResult, ParsedFeed, RawEntry

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif")
# sy:updatePeriod values (RSS 1.0 Syndication module) in seconds.
SY_PERIODS = {"hourly": 3600, "daily": 86400, "weekly": 7 * 86400, "monthly": 30 * 86400,
              "yearly": 365 * 86400}  # fmt: skip
# JSON Feed 1.0 and 1.1 name their version by URL (https://www.jsonfeed.org/version/1.1/).
JSON_FEED_VERSION = re.compile(r"^https?://(?:www\.)?jsonfeed\.org/version/1(?:\.\d+)?/?$")
UTF8_BOM = b"\xef\xbb\xbf"
HTML_TYPES = ("text/html", "application/xhtml+xml")
# An RSS title has no declared type (feedparser guesses text/plain unless it sees known tags
# closed). A tag with attributes, or one of these elements, is markup a publisher put there;
# anything else in angle brackets ("Nice <gorilla>", "the <dialog> element") is text.
MARKUP_ELEMENTS = {
    "a", "abbr", "b", "big", "blink", "body", "br", "center", "cite", "code", "div", "em", "font",
    "frame", "head", "html", "i", "iframe", "img", "input", "layer", "link", "marquee", "meta",
    "object", "p", "script", "small", "span", "strong", "style", "sub", "sup", "svg", "table",
    "td", "tr", "u",
}  # fmt: skip
TAG = re.compile(r"</?([a-zA-Z][\w:-]*)(\s+[^\s>/][^>]*)?")


def parse_feed(result: FetchResult, max_entries: int) -> ParsedFeed:
    """Parse a fetched feed; raise ParseError when the bytes hold no feed at all."""
    headers = {key.lower(): value for key, value in result.headers}
    base = result.final_url or result.url
    # No XML document starts with "{": sniffed, since JSON feeds are often served as text/plain.
    if result.body.removeprefix(UTF8_BOM).lstrip()[:1] == b"{":
        return parse_json_feed(result.body, base, max_entries)
    try:
        parsed = feedparser.parse(
            io.BytesIO(result.body),
            response_headers=headers,
            sanitize_html=False,
            resolve_relative_uris=False,
        )
    except Exception as exc:  # feedparser's own bugs on broken input (found by bench/fuzz_parse)
        raise ParseError(f"feedparser failed: {type(exc).__name__}: {exc}"[:300]) from exc
    warning = _bozo_message(parsed)
    if not parsed.get("version") and not parsed.entries:
        kind = headers.get("content-type", "unknown content type")
        reason = f": {warning}" if warning else ""
        raise ParseError(f"not a feed ({kind}, {len(result.body)} bytes){reason}")
    feed = parsed.feed
    language = _text(feed.get("language"))
    entries, truncated_from = _window(parsed.entries, max_entries)
    return ParsedFeed(
        title=_text(feed.get("title")),
        link=_text(feed.get("link")),
        language=language,
        entries=tuple(
            _raw_entry(
                entry,
                language,
                base,
                typed_titles=str(parsed.get("version", "")).startswith("atom"),
            )
            for entry in entries
        ),
        warning=warning,
        truncated_from=truncated_from,
        refresh_hint=feed_refresh_hint(
            feed.get("ttl"), feed.get("sy_updateperiod"), feed.get("sy_updatefrequency")
        ),
        format=_text(parsed.get("version")),
    )


def _window(entries: list[Any], max_entries: int) -> tuple[list[Any], int | None]:
    """The first `max_entries` entries, and how many there were when some were left out."""
    if len(entries) > max_entries:
        return entries[:max_entries], len(entries)
    return entries, None


def parse_json_feed(body: bytes, base: str, max_entries: int) -> ParsedFeed:
    """A JSON Feed 1.0/1.1 document (https://www.jsonfeed.org/version/1.1/) as a ParsedFeed."""
    try:
        # strict=False: raw control characters inside strings are common and harmless.
        document = json.loads(body, strict=False)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"not a feed (invalid JSON, {len(body)} bytes): {exc}"[:300]) from None
    if not isinstance(document, dict) or not JSON_FEED_VERSION.match(
        str(document.get("version", ""))
    ):
        raise ParseError(f"not a feed (JSON without a jsonfeed.org version, {len(body)} bytes)")
    items = document.get("items")
    if not isinstance(items, list):
        raise ParseError("not a feed (JSON Feed without an items list)")
    language = _text(document.get("language"))
    feed_author = _json_author(document)
    entries, truncated_from = _window([i for i in items if isinstance(i, dict)], max_entries)
    return ParsedFeed(
        title=_text(document.get("title")),
        link=_text(document.get("home_page_url")),
        language=language,
        entries=tuple(_json_entry(item, language, feed_author, base) for item in entries),
        truncated_from=truncated_from,
        format="json" + str(document["version"]).rstrip("/").rsplit("/", 1)[-1],
    )


def _json_entry(
    item: dict[str, Any], feed_language: str | None, feed_author: str | None, base: str
) -> RawEntry:
    # Only content_html is HTML; summary and content_text are plain text and are escaped here
    # so that normalise reads them as text, not markup.
    content = _text(item.get("content_html"))
    if content is None and (text := _text(item.get("content_text"))):
        content = _text_as_html(text)
    summary = _text(item.get("summary"))
    tags = item.get("tags")
    raw_id = item.get("id")
    return RawEntry(
        id=str(raw_id) if isinstance(raw_id, (str, int)) and str(raw_id).strip() else None,
        link=_text(item.get("url")) or _text(item.get("external_url")),
        title=_text(item.get("title")),
        title_is_html=False,
        summary=_text_as_html(summary) if summary else None,
        content=content,
        published=_json_date(item.get("date_published")),
        updated=_json_date(item.get("date_modified")),
        author=_json_author(item) or feed_author,
        categories=tuple(t for t in tags if _text(t)) if isinstance(tags, list) else (),
        image_url=_json_image(item),
        image_credit=None,
        language=_text(item.get("language")) or feed_language,
        base=base,
        enclosures=_json_attachments(item),
    )


def _json_attachments(item: dict[str, Any]) -> tuple[Enclosure, ...]:
    attachments = item.get("attachments")
    return tuple(
        Enclosure(url, _text(a.get("mime_type")), _length(a.get("size_in_bytes")))
        for a in (attachments if isinstance(attachments, list) else ())
        if isinstance(a, dict) and (url := _text(a.get("url")))
    )


def _text_as_html(text: str) -> str:
    return "".join(f"<p>{html.escape(p.strip())}</p>" for p in text.split("\n\n") if p.strip())


def _json_date(value: object) -> datetime | None:
    """RFC 3339 as the spec asks, or an RFC 822 date as some generators write anyway."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except OverflowError:  # year 1 ahead of UTC, or 9999 behind it: normalise sets it aside
        return when


def _json_author(obj: dict[str, Any]) -> str | None:
    """`authors` (1.1) before the deprecated `author` (1.0)."""
    candidates = obj.get("authors")
    people = list(candidates) if isinstance(candidates, list) else []
    people.append(obj.get("author"))
    for person in people:
        if isinstance(person, dict) and (name := _text(person.get("name"))):
            return name
    return None


def _json_image(item: dict[str, Any]) -> str | None:
    for key in ("image", "banner_image"):
        if url := _text(item.get(key)):
            return url
    attachments = item.get("attachments")
    for attachment in attachments if isinstance(attachments, list) else ():
        if (
            isinstance(attachment, dict)
            and str(attachment.get("mime_type", "")).startswith("image/")
            and (url := _text(attachment.get("url")))
        ):
            return url
    return None


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


def _title_is_html(title: object, declared: object, typed: bool) -> bool:
    """Is the title markup? Atom says so (`type`); an RSS title is, when it holds markup."""
    if declared in HTML_TYPES:
        return True
    if typed or not isinstance(title, str):
        return False
    return any(
        attributes or name.lower() in MARKUP_ELEMENTS for name, attributes in TAG.findall(title)
    )


def _raw_entry(
    entry: Any, feed_language: str | None, feed_base: str, *, typed_titles: bool = False
) -> RawEntry:
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
        title_is_html=_title_is_html(entry.get("title"), title_detail.get("type"), typed_titles),
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
        enclosures=_enclosures(entry),
    )


def _length(value: object) -> int | None:
    """A size in bytes as feeds write it ("12345678", 777); None when absent or not a size."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None


def _enclosures(entry: Any) -> tuple[Enclosure, ...]:
    """Every enclosure (RSS, and Atom's rel="enclosure" links, which feedparser lists with them),
    then MRSS audio and video media:content (podcasts often give both: normalise keeps one)."""
    found = [
        Enclosure(url, _text(e.get("type")), _length(e.get("length")))
        for e in entry.get("enclosures") or ()
        if (url := _text(e.get("href")))
    ]
    for media in entry.get("media_content") or ():
        kind = _text(media.get("medium")) or (_text(media.get("type")) or "").split("/")[0]
        if kind in ("audio", "video") and (url := _text(media.get("url"))):
            found.append(Enclosure(url, _text(media.get("type")), _length(media.get("fileSize"))))
    return tuple(found)


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
