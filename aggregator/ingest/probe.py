"""Look at a feed before (or without) storing it: `caulbart check --probe` and `caulbart add`.

A probe goes through the real ingest path, fetch.py's limits, parse.py and normalise.py, so
what it reports is what an ingest would see; nothing is written to the database. Discovery
finds a site's feed from its home page's `<link rel="alternate">`, as browsers and readers do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from aggregator.config.values import check_url
from aggregator.errors import NoFeedFound as NoFeedFound
from aggregator.errors import ParseError
from aggregator.ingest.fetch import AddressGuard, Fetcher, FetchRequest, fetch_many
from aggregator.ingest.normalise import normalise_entry
from aggregator.ingest.parse import parse_feed
from aggregator.types import FetchResult, FetchStatus, HostPort, ProbeReport

# The alternate link types that name a feed (RSS, Atom, JSON Feed), best first.
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/feed+json",
    "application/json",
    "application/rdf+xml",
)


def probe_all(
    fetcher: Fetcher, requests: Iterable[FetchRequest], now: datetime
) -> list[ProbeReport]:
    """Each source fetched once, at the fetcher's concurrency; reports in the requests' order."""
    wanted = list(requests)
    max_entries = fetcher.defaults.max_entries
    reports = {
        result.source_id: probe_result(result, max_entries, now)
        for result in fetch_many(fetcher, wanted)
    }
    return [reports[request.source_id] for request in wanted]


def probe_result(result: FetchResult, max_entries: int, now: datetime) -> ProbeReport:
    """What a fetched document holds, as an ingest would read it (pure: no I/O)."""
    base = ProbeReport(
        source_id=result.source_id,
        url=result.url,
        reachable=True,
        http_status=result.http_status,
        final_url=result.final_url,
    )
    if result.http_status is None:  # no answer at all: refused, timed out, bad address
        return replace(base, reachable=False, error=result.error)
    if result.status is not FetchStatus.OK:
        return replace(base, error=result.error)
    try:
        feed = parse_feed(result, max_entries)
    except ParseError as exc:
        return replace(base, error=f"parse error: {exc}")
    items = [item for raw in feed.entries if (item := normalise_entry(raw, now=now))]
    images = [item for item in items if item.image_url]
    return replace(
        base,
        format=feed.format,
        title=feed.title,
        items=len(items),
        newest=max((item.published for item in items), default=None),
        full_text_items=sum(1 for item in items if item.has_full_text),
        image_items=len(images),
        credited_images=sum(1 for item in images if item.image_credit),
    )


class _AlternateLinks(HTMLParser):
    """Collects `<link rel="alternate" type="...feed type..." href>` and `<base href>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: (value or "").strip() for name, value in attrs}
        if tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]
        if tag != "link" or "alternate" not in values.get("rel", "").lower().split():
            return
        kind = values.get("type", "").lower().split(";")[0].strip()
        if kind in FEED_TYPES and values.get("href"):
            self.links.append((kind, values["href"]))


def feed_links(page: bytes, page_url: str, charset: str | None = None) -> list[str]:
    """The feeds a page announces, as absolute http(s) URLs, RSS and Atom before JSON."""
    parser = _AlternateLinks()
    parser.feed(page.decode(charset or "utf-8", errors="replace"))
    parser.close()
    base = urljoin(page_url, parser.base) if parser.base else page_url
    ranked = sorted(parser.links, key=lambda link: FEED_TYPES.index(link[0]))
    urls: list[str] = []
    for _, href in ranked:
        try:
            url = check_url(urljoin(base, href))
        except ValueError:
            continue
        if url not in urls:
            urls.append(url)
    return urls


def on_site(base_url: str, url: str) -> bool:
    """Whether `url` is under the site's own `base_url` (same scheme, host and port, and below
    its path): a feed there is Caulbart's own."""
    site, other = urlsplit(base_url), urlsplit(url)
    if (site.scheme.lower(), HostPort.of(base_url)) != (other.scheme.lower(), HostPort.of(url)):
        return False
    prefix = site.path.rstrip("/") + "/"
    return (other.path.rstrip("/") + "/").startswith(prefix)


def discover(fetcher: Fetcher, url: str, now: datetime) -> ProbeReport:
    """Probe `url`; if it is a page rather than a feed, probe the first feed it announces that
    reads. Raises NoFeedFound with what was tried. Only the host and port of `url`, the address
    the editor typed, may be private: not a redirect's or an announced feed's other ones."""
    guard = AddressGuard.for_feed(url)
    result = fetcher.fetch(FetchRequest("new", url, guard=guard))
    report = probe_result(result, fetcher.defaults.max_entries, now)
    if report.ok or result.status is not FetchStatus.OK:
        return report
    page_url = result.final_url or url
    candidates = feed_links(result.body, page_url, _charset(result.header("Content-Type")))
    if not candidates:
        raise NoFeedFound(f"{url}: not a feed, and the page announces none ({report.error})")
    tried: list[str] = []
    for candidate in candidates:
        found = probe_result(
            fetcher.fetch(FetchRequest("new", candidate, guard=guard)),
            fetcher.defaults.max_entries,
            now,
        )
        if found.ok:
            return found
        tried.append(f"{candidate}: {found.error}")
    raise NoFeedFound(f"{url}: no announced feed could be read ({'; '.join(tried)})")


def _charset(content_type: str | None) -> str | None:
    for part in (content_type or "").split(";")[1:]:
        name, _, value = part.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
            try:
                "".encode(charset)
            except LookupError:
                return None
            return charset
    return None
