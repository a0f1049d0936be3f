"""Links out of untrusted feeds: absolute http(s) URLs, tracking parameters and fragments
dropped, markup posing as a link refused.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlencode, urljoin, urlsplit, urlunsplit

from aggregator import limits
from aggregator.ingest.text import INVISIBLE, collapse

# Query parameters that track the click and never change the page (utm_* and friends).
TRACKING_PARAMS = re.compile(
    r"^(utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|yclid|mc_cid|mc_eid|_hsenc|_hsmi|"
    r"igshid|ocid|cmpid|at_\w+|ns_\w+|sr_share|spm|_ga|xtor|cmp|icid|ito|dicbo)$",
    re.IGNORECASE,
)
# Keys that, besides TRACKING_PARAMS, only track the click when they make up a fragment
# ("#ref=rss", "#Echobox=1700000000"): such a fragment is dropped, any other is kept.
TRACKING_FRAGMENT_KEYS = re.compile(r"^(ref|src|from|source|echobox)$", re.IGNORECASE)
# Characters RFC 3986 never allows unescaped in a URL and that HTML gives meaning to.
UNSAFE_URL_CHARS = re.compile(r"[<>\"`]")


def _encode_invisible(url: str) -> str:
    """Invisible characters in a link percent-encoded (UTF-8), so the stored link shows them."""
    return INVISIBLE.sub(lambda match: quote(match.group(0)), url)


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


def _join(base: str | None, url: str) -> str:
    """`url` against `base`; a URL with a scheme is already absolute (RFC 3986 section 5.2.2).

    urljoin would read "http:" or "http:page" as relative when the base is http too, turning a
    broken link into the base URL (and so into a second story's canonical link).
    """
    if urlsplit(url).scheme:
        return url
    return urljoin(base or "", url)


def absolute_url(url: str, base: str | None) -> str | None:
    """Like canonical_url but keeps the fragment and query as written (in-article links)."""
    try:
        absolute = _join(base, _encode_invisible(url.strip()))
        scheme = urlsplit(absolute).scheme.lower()
        if scheme in ("http", "https") and not urlsplit(absolute).hostname:
            return None
    except ValueError:
        return None
    return absolute if scheme in ("http", "https") else None


def media_url(url: str, base: str | None) -> str | None:
    """An enclosure's absolute http(s) URL, its query kept (podcast hosts sign their files)."""
    url = collapse(url).replace(" ", "%20")
    if UNSAFE_URL_CHARS.search(url) or len(url) > limits.MAX_URL_CHARS:
        return None
    return absolute_url(url, base)
