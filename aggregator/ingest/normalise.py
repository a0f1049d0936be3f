"""Turn an untrusted `RawEntry` into a clean `Item`: pure functions, no I/O.

Everything a feed says is hostile until this module has read it: titles become plain text,
links become canonical http(s) URLs, HTML passes nh3's allow-list, dates become UTC.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from aggregator import dates, limits
from aggregator.ingest.filters import strip_title
from aggregator.ingest.links import canonical_url, media_url
from aggregator.ingest.markup import (
    first_paragraph,
    plain_text,
    sanitise_html,
)
from aggregator.ingest.text import collapse, text_fingerprint, truncate, visible
from aggregator.types import Enclosure, Item, RawEntry, TextPattern

FIRST_IMG_SRC = re.compile(r'<img\b[^>]*\bsrc="([^"]+)"', re.IGNORECASE)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def headline_text(raw: RawEntry) -> str:
    """The entry's title as text: markup read only where the feed says the title is HTML.

    A plain-text title ("Nice <gorilla>", `&#x3C;` in the XML) is text, its brackets included;
    templates and feed writers escape it when they print it.
    """
    if not raw.title:
        return ""
    return (
        plain_text(raw.title) if raw.title_is_html else collapse(raw.title.removeprefix("\ufeff"))
    )


def clean_person(name: str | None) -> str | None:
    """An author name with any e-mail address removed: emails are never published."""
    if not name:
        return None
    text = EMAIL.sub("", visible(plain_text(name)))
    text = collapse(text.replace("()", "").strip(" ()<>,;"))
    return truncate(text, limits.MAX_AUTHOR_CHARS) or None


def normalise_entry(
    raw: RawEntry, *, now: datetime, title_strip: tuple[TextPattern, ...] = ()
) -> Item | None:
    """A clean Item, or None when the entry has neither a title, a link nor any text.

    `title_strip` are the editors' clean-up rules: the parts removed from the published title.
    """
    base = raw.base
    link = canonical_url(raw.link, base)
    body_source = raw.content or raw.summary or ""
    body_html = sanitise_html(body_source, link or base) if body_source else ""
    body_text = plain_text(body_html) if body_html else ""
    if raw.summary and raw.content:
        lede = first_paragraph(raw.summary)
    else:
        lede = first_paragraph(body_html)
    lede = truncate(visible(lede), limits.MAX_LEDE_CHARS)
    headline = visible(headline_text(raw))
    title = strip_title(truncate(headline, limits.MAX_TITLE_CHARS), title_strip)
    enclosures = _enclosures(raw.enclosures, base)
    if not title and not link and not body_text and not enclosures:
        return None
    title_derived = not title
    if title_derived:
        # Its first words, else its media file's name, else its link: never "Untitled".
        names = [e.file_name for e in enclosures if e.medium != "image"] or [
            e.file_name for e in enclosures
        ]
        text = lede or visible(body_text)
        title = truncate(text, limits.DERIVED_TITLE_CHARS) if text else names[0] if names else ""
        title = visible(title)
        title = title or link or "Untitled"

    published, updated, date_note = _dates(raw, now)
    categories = _categories(raw.categories)
    image_url = canonical_url(raw.image_url, base)
    if image_url is None and body_html:
        match = FIRST_IMG_SRC.search(body_html)
        image_url = html.unescape(match.group(1)) if match else None
    image_credit = (
        truncate(visible(plain_text(raw.image_credit)), 200) if raw.image_credit else None
    )
    author = clean_person(raw.author)
    guid = _guid(raw, link, title, body_text)
    # Content besides the summary, and longer: the summary's text is read only for this.
    has_full_text = bool(raw.content) and len(body_text) > len(plain_text(raw.summary or ""))
    content_hash = hashlib.sha256(
        "\x1f".join(
            [
                title,
                link or "",
                lede,
                body_html,
                image_url or "",
                image_credit or "",
                author or "",
                *list(categories),
                *[f"{e.url} {e.type} {e.length}" for e in enclosures],
            ]
        ).encode()
    ).hexdigest()
    return Item(
        guid=guid,
        link=link,
        title=title,
        lede=lede,
        body_html=body_html,
        published=published,
        updated=updated,
        author=author,
        categories=categories,
        image_url=image_url,
        image_credit=image_credit or None,
        language=collapse(raw.language)[:35] if raw.language else None,
        text_hash=text_fingerprint(title, body_text)
        if len(body_text.split()) >= limits.MIN_WORDS_FOR_TEXT_MATCH
        else None,
        content_hash=content_hash,
        has_full_text=has_full_text,
        body_text=body_text,
        date_note=date_note,
        enclosures=enclosures,
        title_derived=title_derived,
    )


def _enclosures(found: tuple[Enclosure, ...], base: str | None) -> tuple[Enclosure, ...]:
    """Each http(s) file once, with a MIME type (the feed's, else guessed from the name)."""
    kept: dict[str, Enclosure] = {}
    for enclosure in found:
        url = media_url(enclosure.url, base)
        if url is None or url in kept:
            continue
        declared = collapse(enclosure.type or "").lower().split(";")[0].strip()
        kind = declared if MIME_TYPE.match(declared) and len(declared) <= 100 else None
        kind = kind or mimetypes.guess_type(urlsplit(url).path)[0]
        length = enclosure.length if enclosure.length and enclosure.length < 2**53 else None
        kept[url] = Enclosure(url, kind, length)
        if len(kept) == limits.MAX_ENCLOSURES:
            break
    return tuple(kept.values())


def _dates(raw: RawEntry, now: datetime) -> tuple[datetime, datetime, str | None]:
    """Published and updated in UTC, and a note on any date of the feed that was set aside.

    A missing date means first seen (`now`); so does one no entry can have (limits.EARLIEST_DATE,
    or after `now`: a placeholder or a wrong clock), which is named in the note instead.
    """
    notes: list[str] = []

    def plausible(name: str, when: datetime | None) -> datetime | None:
        if when is None:
            return None
        reason = dates.implausible(when, now)
        if reason is None:
            return when.astimezone(UTC)
        notes.append(f"{name} {when.isoformat()} is {reason}")
        return None

    given_published = plausible("published", raw.published)
    given_updated = plausible("updated", raw.updated)
    published = given_published or given_updated or now
    updated = given_updated or published
    note = "; ".join(notes) + ": dated when fetched" if notes else None
    return published, max(updated, published), note


def _categories(values: tuple[str, ...]) -> tuple[str, ...]:
    seen: set[str] = set()
    result: list[str] = []
    for value in values:
        label = truncate(visible(plain_text(value)), limits.MAX_CATEGORY_CHARS)
        if label and label.casefold() not in seen:
            seen.add(label.casefold())
            result.append(label)
        if len(result) == limits.MAX_CATEGORIES:
            break
    return tuple(result)


def _guid(raw: RawEntry, link: str | None, title: str, body_text: str) -> str:
    """The feed's id, else the canonical link, else a hash of the content; never too long.

    Items without an id that share a link are told apart by `told_apart_guid`."""
    candidate = collapse(raw.id) if raw.id else (link or "")
    if candidate and len(candidate) <= limits.MAX_GUID_CHARS:
        return candidate
    material = candidate or f"{title}\x1f{body_text}"
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()


def told_apart_guid(raw: RawEntry, item: Item) -> str:
    """The identity of an item without an id whose link (or content hash) another item of the
    same document shares: a podcast's episodes all linking to the show's home page.

    The link alone would fold them into one entry; with the headline, the text, the files it
    carries and the date the feed gives (never the time of fetching, which moves), each episode
    is an entry of its own, and only a true repeat of the same item keeps the same identity.
    """
    given = raw.published or raw.updated
    files = (enclosure.url for enclosure in item.enclosures)
    material = "\x1f".join(
        (item.guid, item.title, item.body_text, given.isoformat() if given else "", *files)
    )
    return "sha256:" + hashlib.sha256(material.encode()).hexdigest()
