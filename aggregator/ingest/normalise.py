"""Turn an untrusted `RawEntry` into a clean `Item`: pure functions, no I/O.

Everything a feed says is hostile until this module has read it: titles become plain text,
links become canonical http(s) URLs, HTML passes nh3's allow-list, dates become UTC.
"""

from __future__ import annotations

import hashlib
import html
import mimetypes
import re
import unicodedata
from collections import Counter
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

import nh3

from aggregator import dates, limits
from aggregator.ingest.filters import strip_title
from aggregator.types import Enclosure, Item, RawEntry, TextPattern

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

# Query parameters that track the click and never change the page (utm_* and friends).
TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|_hsenc|_hsmi|"
    r"igshid|ocid|cmpid|at_\w+|ns_\w+|sr_share|spm|_ga|xtor|cmp|icid|ito|dicbo)$",
    re.IGNORECASE,
)
# Keys that, besides TRACKING_PARAMS, only track the click when they make up a fragment
# ("#ref=rss", "#Echobox=1700000000"): such a fragment is dropped, any other is kept.
TRACKING_FRAGMENT_KEYS = re.compile(r"^(ref|src|from|source|echobox)$", re.IGNORECASE)
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
FIRST_IMG_SRC = re.compile(r'<img\b[^>]*\bsrc="([^"]+)"', re.IGNORECASE)
BLOCK_BOUNDARY = re.compile(
    r"<\s*(?:br|/p|/div|/li|/h[1-6]|/blockquote|/tr|/td|/th|/figcaption|/dd|/dt|hr)\b[^>]*>",
    re.IGNORECASE,
)
PARAGRAPH_SPLIT = re.compile(r"</p\s*>|<br\s*/?>\s*<br\s*/?>|\n\s*\n", re.IGNORECASE)
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Characters RFC 3986 never allows unescaped in a URL and that HTML gives meaning to.
UNSAFE_URL_CHARS = re.compile(r"[<>\"`]")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
WORD = re.compile(r"\w+")
# Bidirectional controls (U+202A-202E, U+2066-2069, U+200E/F, U+061C) and zero-width characters
# (U+200B-200D, U+2060, U+FEFF): invisible, yet they make text read otherwise than it is
# ("fdp.exe" behind U+202E shows as "exe.pdf") or two equal-looking links differ.
INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u200b-\u200d\u2060\ufeff]")
MIME_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
NON_ASCII = re.compile(r"[^\x00-\x7f]")


def collapse(text: str) -> str:
    """Control characters removed, whitespace runs made one space, ends stripped.

    str.split() and regex "\\s" agree on what is whitespace (str.isspace); split is the faster.
    """
    return " ".join(CONTROL_CHARS.sub("", text).split())


def visible(text: str) -> str:
    """One line of text (a headline, a name, a tag) without invisible characters; whitespace
    they separated is made one space again."""
    if text.isascii():
        return text
    return " ".join(INVISIBLE.sub("", text).split())


def _encode_invisible(url: str) -> str:
    """Invisible characters in a link percent-encoded (UTF-8), so the stored link shows them."""
    return INVISIBLE.sub(lambda match: quote(match.group(0)), url)


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


def truncate(text: str, limit: int) -> str:
    """Cut at a word boundary with an ellipsis; short text is returned unchanged."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.-") + "…"


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """Absolute http(s) URL without tracking parameters or tracking fragment; None if not a
    web link. Any other fragment is kept: it may be what tells two items apart (a live page's
    posts, a weblog's entries of one day)."""
    if not url:
        return None
    url = _encode_invisible(collapse(url).replace(" ", "%20"))
    if UNSAFE_URL_CHARS.search(url):
        return None  # not a link but markup or prose ("http://x </title> <author>...")
    try:
        absolute = _join(base, url)
        parts = urlsplit(absolute)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal keeps its brackets (RFC 3986 section 3.2.2)
        host = f"[{host}]"
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    kept = [(k, v) for k, v in query if not TRACKING_PARAMS.match(k)]
    query_text = parts.query if len(kept) == len(query) else urlencode(kept)
    fragment = _kept_fragment(parts.fragment)
    result = urlunsplit((scheme, host, parts.path or "/", query_text, fragment))
    return result if len(result) <= limits.MAX_URL_CHARS else None


def _kept_fragment(fragment: str) -> str:
    """The fragment, unless it is empty or only tracking parameters ("xtor=RSS-3")."""
    if "=" not in fragment:
        return fragment
    keys = [key for key, _ in parse_qsl(fragment, keep_blank_values=True)]
    tracking = all(TRACKING_PARAMS.match(k) or TRACKING_FRAGMENT_KEYS.match(k) for k in keys)
    return "" if keys and tracking else fragment


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
        return canonical_url(value, base) if attribute == "src" else _absolute(value, base)

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


def _join(base: str | None, url: str) -> str:
    """`url` against `base`; a URL with a scheme is already absolute (RFC 3986 section 5.2.2).

    urljoin would read "http:" or "http:page" as relative when the base is http too, turning a
    broken link into the base URL (and so into a second story's canonical link).
    """
    if urlsplit(url).scheme:
        return url
    return urljoin(base or "", url)


def _absolute(url: str, base: str | None) -> str | None:
    """Like canonical_url but keeps the fragment and query as written (in-article links)."""
    try:
        absolute = _join(base, _encode_invisible(url.strip()))
        scheme = urlsplit(absolute).scheme.lower()
        if scheme in ("http", "https") and not urlsplit(absolute).hostname:
            return None
    except ValueError:
        return None
    return absolute if scheme in ("http", "https") else None


def first_paragraph(markup: str) -> str:
    for chunk in PARAGRAPH_SPLIT.split(markup):
        text = plain_text(chunk)
        if text:
            return text
    return ""


def fold(text: str) -> str:
    """Lower case without accents ("Café" -> "cafe"): the form texts are compared in."""
    folded = text.casefold()
    if folded.isascii():  # most copy is: nothing to take off
        return folded
    # Only the non-ASCII characters are looked at: in English copy, a few quotes and dashes.
    return NON_ASCII.sub(_without_accent, unicodedata.normalize("NFKD", folded))


def _without_accent(match: re.Match[str]) -> str:
    return "" if unicodedata.combining(match.group()) else match.group()


def text_fingerprint(*parts: str) -> str:
    """Hash of case-, accent- and punctuation-insensitive text: equal for the same wording."""
    words = WORD.findall(fold(" ".join(parts)))  # what splitting at every non-word run leaves
    return hashlib.sha256(" ".join(words).encode()).hexdigest()


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


def media_url(url: str, base: str | None) -> str | None:
    """An enclosure's absolute http(s) URL, its query kept (podcast hosts sign their files)."""
    url = collapse(url).replace(" ", "%20")
    if UNSAFE_URL_CHARS.search(url) or len(url) > limits.MAX_URL_CHARS:
        return None
    return _absolute(url, base)


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
