"""Read an OPML subscription list (https://opml.org/spec2.opml) into `SourceDraft`s.

An OPML file comes from elsewhere: it is parsed with defusedxml, which refuses DTDs, entities
and external references (no billion laughs, no file reads), as feedparser does for feeds.
An outline with an `xmlUrl` is a feed. Its section is named by the folder outline it sits in
(the outermost), as Miniflux, FreshRSS, NetNewsWire and Feedly write them, or else by its own
`category` attribute (OPML 2.0: comma-separated slash-delimited paths, `/news`; the first path's
first segment is taken), as some readers and older Caulbarts write it.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from aggregator.config.load import check_url
from aggregator.errors import OpmlError as OpmlError
from aggregator.ingest.text import collapse
from aggregator.storage.stories import slugify
from aggregator.types import SourceDraft

# No real subscription list comes near this; a larger file is refused unread.
MAX_OPML_BYTES = 5 * 1024 * 1024


def read_opml(data: bytes, path: str = "subscriptions.opml") -> tuple[list[SourceDraft], list[str]]:
    """The feeds in document order, and a note for each outline that was not taken."""
    if len(data) > MAX_OPML_BYTES:
        raise OpmlError(path, 1, f"OPML larger than {MAX_OPML_BYTES} bytes: refused")
    try:
        root = fromstring(data, forbid_dtd=True)
    except ParseError as exc:
        line = exc.position[0] if exc.position else 1
        raise OpmlError(path, line, f"not well-formed XML: {exc}") from None
    except DefusedXmlException as exc:
        reason = type(exc).__name__
        raise OpmlError(path, 1, f"refused: {reason} (DTDs and entities are not allowed)") from None
    if root.tag != "opml":
        raise OpmlError(path, 1, f"not OPML: the root element is <{root.tag}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise OpmlError(path, 1, "OPML without a <body>")
    drafts: list[SourceDraft] = []
    notes: list[str] = []
    _walk(body, None, drafts, notes)
    if not drafts:
        raise OpmlError(path, 1, "no feeds: no <outline> has an xmlUrl")
    return drafts, notes


def _walk(
    parent: Element, section: str | None, drafts: list[SourceDraft], notes: list[str]
) -> None:
    for outline in parent.findall("outline"):
        title = _attribute(outline, "title") or _attribute(outline, "text")
        url = _attribute(outline, "xmlUrl")
        if url is None:
            # A folder: its feeds go to the section it names (the outermost folder wins).
            folder = section or (slugify(title, 64) if title else None)
            _walk(outline, folder, drafts, notes)
            continue
        try:
            found = section or _category_section(outline)
            drafts.append(SourceDraft(url=check_url(url), title=title, section=found))
        except ValueError as exc:
            notes.append(f"{title or url}: {exc}")


def _attribute(outline: Element, name: str) -> str | None:
    """OPML writers disagree on case (xmlUrl, xmlurl); values are trimmed and without control
    characters, empty is none."""
    for key, value in outline.attrib.items():
        if key.lower() == name.lower() and (text := collapse(value)):
            return text
    return None


def _category_section(outline: Element) -> str | None:
    """`category="/news"`, `"news"`, `"/World/Europe,/x"`: the first path's first segment."""
    categories = _attribute(outline, "category")
    if categories is None:
        return None
    first = categories.split(",")[0]
    segment = next((part for part in first.split("/") if part.strip()), None)
    return slugify(segment, 64) if segment else None
