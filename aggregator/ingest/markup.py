"""Untrusted HTML made safe to store (nh3's allow-list, absolute links, no pixels) and read
as text (for headlines, ledes and the search index), in linear time whatever its nesting.
"""

from __future__ import annotations

import html
import re
from collections import Counter

import nh3

from aggregator import limits
from aggregator.ingest.links import absolute_url, canonical_url
from aggregator.ingest.text import CONTROL_CHARS, collapse

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "dfn", "div",
    "dl", "dt", "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img",
    "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong", "sub",
    "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "blockquote": {"cite"},
    "img": {"src", "alt", "title", "width", "height"},
    "q": {"cite"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
}
# Removed with everything inside them: their content is code, not text for a reader.
DROPPED_WITH_CONTENT = {
    "script", "style", "noscript", "template", "iframe", "object", "embed", "svg", "math",
    "form", "button", "select", "textarea", "head", "title",
}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "cite"}
URL_SCHEMES = {"http", "https", "mailto"}
# At most this many sanitising passes (see sanitise_html); hostile nesting settles in two or three.
SANITISE_PASSES = 5
# Tracking pixels: 0/1-pixel images and known counters, dropped from the body.
PIXEL_IMG = re.compile(
    r'<img\b[^>]*?(?:\b(?:width|height)="[01]"|'
    r'src="[^"]*(?:feeds\.feedburner\.com/~r/|/~ff/|pixel\.wp\.com|stats\.wordpress\.com|'
    r'doubleclick\.net|feedsportal\.com|pixel\.|/pixel\b|/beacon\b)[^"]*")[^>]*>',
    re.IGNORECASE,
)
# An image whose src was refused (javascript:, data:...) shows nothing; a link left empty by a
# removed pixel (feedburner's "feedflare" share buttons) is an invisible click target.
SRCLESS_IMG = re.compile(r'<img\b(?![^>]*\bsrc=")[^>]*>', re.IGNORECASE)
EMPTY_LINK = re.compile(r"<a\b[^>]*>\s*</a>", re.IGNORECASE)
BLOCK_BOUNDARY = re.compile(
    r"<\s*(?:br|/p|/div|/li|/h[1-6]|/blockquote|/tr|/td|/th|/figcaption|/dd|/dt|hr)\b[^>]*>",
    re.IGNORECASE,
)
PARAGRAPH_SPLIT = re.compile(r"</p\s*>|<br\s*/?>\s*<br\s*/?>|\n\s*\n", re.IGNORECASE)
# What an HTML tokenizer reads as the start of a tag: "<" then a letter, "!", "/" or "?".
MARKUP = re.compile(r"<[a-zA-Z!/?]")
# A start or end tag as an HTML tokenizer reads it, near enough to count nesting. It ends at the
# first ">" (a quoted ">" in an attribute is rare, and a miscount only moves where capping starts)
# and never spans a "<", which keeps every scan short: linear time on any input.
TAG = re.compile(r"<(/?)([a-zA-Z][^\s/<>]*)[^<>]*>")
# Elements that never hold content (HTML "void elements"): they do not nest.
VOID_ELEMENTS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link", "meta", "param",
    "source", "track", "wbr",
}  # fmt: skip
# Start tags that end an open element of these names first (HTML's implied end tags), so that
# a list of unclosed <li> or <p> counts as siblings, not as nesting.
ENDS_SIBLING = {
    "p": {"p"}, "li": {"li"}, "dt": {"dt", "dd"}, "dd": {"dt", "dd"}, "option": {"option"},
    "tr": {"tr"}, "td": {"td", "th"}, "th": {"td", "th"},
}  # fmt: skip
# Tags whose removal runs text together: dropped, they leave a space.
BLOCK_ELEMENTS = {
    "address", "article", "aside", "blockquote", "dd", "details", "div", "dl", "dt", "figcaption",
    "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "main", "nav", "ol",
    "p", "pre", "section", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul",
}  # fmt: skip
# A tag of sanitised HTML: nh3 writes every attribute value in double quotes and escapes "<" and
# ">" in text, so the first ">" outside quotes ends the tag.
SANITISED_TAG = re.compile(r'<[^>"]*(?:"[^"]*"[^>"]*)*>')


def search_text(body_html: str | None) -> str:
    """The words of a sanitised body for the search index, as `plain_text` reads them: tags, and
    the addresses and names in their attributes, left out; entities decoded.

    SQLite's full-text triggers call it (as `caulbart_search_text`, migration 0022) for every
    story they index, so most bodies take a cut at their tags and one decoding, several times
    cheaper than `plain_text`'s parse; exact for `sanitise_html`'s output. A body whose decoded
    text still holds a "<" or "&" (a feed that escaped its markup twice, "Banks & lenders") is
    read by `plain_text`, which decodes to a fixed point.

    The index takes a story out by the words this gives for its old body: a change to what it
    (or `plain_text`) returns for a stored body needs a migration that rebuilds the index.
    """
    if not body_html:
        return ""
    text = html.unescape(SANITISED_TAG.sub(" ", body_html))
    return plain_text(body_html) if "<" in text or "&" in text else text


def cap_nesting(markup: str, depth: int = limits.MAX_MARKUP_DEPTH) -> str:
    """`markup` with the tags of elements nested deeper than `depth` removed, their text kept.

    The HTML parser under nh3 takes time growing with the square of the nesting (its scope
    checks walk the open elements), so a feed item of a hundred thousand nested <div> held a
    worker for minutes. Markup nested no deeper comes back unchanged (the same string), so
    capping never changes what ordinary bodies store. Linear time; the result still needs
    sanitising: it is as untrusted as the input.
    """
    if markup.count("<") <= depth:
        return markup  # fewer tags than the cap: they cannot nest deeper
    names: list[str] = []  # the open elements, from the outermost
    kept: list[bool] = []  # whether each one's tags stay
    open_names: Counter[str] = Counter()
    kept_depth = 0
    parts: list[str] = []
    copied = 0  # markup[:copied] is in parts
    for tag in TAG.finditer(markup):
        closing, name = tag.groups()
        name = name.lower()
        if name in VOID_ELEMENTS:
            continue
        if closing:  # an end tag: closes its element and any left open inside it
            if not open_names[name]:
                continue  # a stray end tag: left for the parser
            while True:
                popped = names.pop()
                open_names[popped] -= 1
                stays = kept.pop()
                kept_depth -= stays
                if popped == name:
                    break
            if stays:
                continue
        else:
            if names and names[-1] in ENDS_SIBLING.get(name, ()):
                open_names[names.pop()] -= 1
                kept_depth -= kept.pop()
            # Elements removed with their content stay, so that their content never shows.
            stays = kept_depth < depth or name in DROPPED_WITH_CONTENT
            names.append(name)
            kept.append(stays)
            open_names[name] += 1
            kept_depth += stays
            if stays:
                continue
        parts.append(markup[copied : tag.start()])
        parts.append(" " if name in BLOCK_ELEMENTS else "")
        copied = tag.end()
    if not parts:
        return markup
    parts.append(markup[copied:])
    return "".join(parts)


def plain_text(markup: str) -> str:
    """Visible text of an HTML fragment: tags removed, entities decoded, whitespace collapsed.

    Repeated while decoding reveals more markup ("&lt;script&gt;" is a tag once decoded), so
    plain text never carries a tag, however many times the feed escaped it.
    """
    if "<" not in markup and "&" not in markup:
        # Nothing for a parser to read but text (most titles, names, labels): what it would
        # give back is this text less a leading byte order mark, and `collapse` evens out the
        # rest (its CR and NUL handling).
        return collapse(markup.removeprefix("\ufeff"))
    text = markup
    for _ in range(4):  # to a fixed point, so plain_text(plain_text(x)) == plain_text(x)
        # Capped after the end tags became spaces: sibling <div>s are left open, nested.
        spaced = cap_nesting(BLOCK_BOUNDARY.sub(" ", text))
        stripped = nh3.clean(spaced, tags=set(), clean_content_tags=DROPPED_WITH_CONTENT)
        decoded = html.unescape(stripped)
        if decoded == text:
            break
        text = decoded
        if "<" not in text and "&" not in text:
            # No tag or entity left: another pass would change only what `collapse` below
            # takes out anyway (the parser's CR and NUL handling). Saves a parse of every body.
            break
    # What is left is text that only looks like a tag ("<content type=" cut off mid-tag), also
    # once control characters are gone ("<\x1f?") or a "<" was dropped before another ("<<a").
    text = collapse(text)
    while MARKUP.search(text):
        text = MARKUP.sub(lambda match: match.group(0)[1:], text)
    return text


def sanitise_html(markup: str, base: str | None) -> str:
    """Allow-listed HTML with absolute URLs: no scripts, styles, frames, forms, handlers, pixels.

    Sanitised again until nothing changes: the HTML parser repairs misnested markup (a link
    inside a link, a table inside either) one step per pass, and what is stored must come out of
    a second sanitising the same (its content hash, a re-ingest). Well-formed markup takes two.
    """
    markup = CONTROL_CHARS.sub("", markup)  # C0 and C1 controls: never text for a reader
    for _ in range(SANITISE_PASSES):
        cleaned = _sanitise_once(markup, base)
        if cleaned == markup:
            break
        markup = cleaned
    return cleaned


def _sanitise_once(markup: str, base: str | None) -> str:
    def absolute_urls(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in URL_ATTRIBUTES:
            return value
        if value.startswith("mailto:") and tag == "a":
            return value
        return canonical_url(value, base) if attribute == "src" else absolute_url(value, base)

    cleaned = nh3.clean(
        cap_nesting(markup),  # each pass: the parser's repairs may nest formatting deeper
        tags=ALLOWED_TAGS,
        clean_content_tags=DROPPED_WITH_CONTENT,
        attributes=ALLOWED_ATTRIBUTES,
        attribute_filter=absolute_urls,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )
    without_pixels = SRCLESS_IMG.sub("", PIXEL_IMG.sub("", cleaned))
    return EMPTY_LINK.sub("", without_pixels).strip()


def first_paragraph(markup: str) -> str:
    for chunk in PARAGRAPH_SPLIT.split(markup):
        text = plain_text(chunk)
        if text:
            return text
    return ""
