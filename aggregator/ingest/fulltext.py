"""Full text for summary-only feeds: fetch each new entry's article page and extract its text.

For sources with `full_text`, an entry whose feed gives only a summary gets the main text and lead
image of the page it links to (trafilatura), sanitised like feed HTML; the summary stays its lede.
Pages are fetched with the feeds' client and limits, politely (robots.txt, per-host spacing and
concurrency) and safely (public addresses only, redirects included, unless the source's
`allow_private` names the host and port). A page's outcome is cached by URL and address policy, so
it is fetched once per policy, and the address is checked before the cache is read. Any failure
keeps the summary, and says why on the entry and the source.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from sqlalchemy import Engine

from aggregator import limits
from aggregator.ingest.fetch import ACCEPT_PAGE, AddressGuard, Fetcher, FetchRequest, fetch_many
from aggregator.ingest.links import canonical_url
from aggregator.ingest.markup import plain_text, sanitise_html
from aggregator.ingest.text import text_fingerprint
from aggregator.storage import page_cache
from aggregator.types import ArticleText, Defaults, FetchResult, FetchStatus, Item, SourceConfig

log = logging.getLogger(__name__)

HTML_TYPES = ("text/html", "application/xhtml+xml")
# The page's own headline: the story shows its headline already.
HEADLINE = re.compile(r"<h1\b[^>]*>.*?</h1\s*>", re.IGNORECASE | re.DOTALL)
ROBOTS_DISALLOWS = "robots.txt disallows"
ROBOTS_UNREACHABLE = "robots.txt unreachable"
# How aggregator.ingest.fetch words a request it refuses for its address.
ADDRESS_REFUSED = "address refused"
# Answers that will not change on a second try (RFC 9110 15.5.5, 15.5.11): kept in the cache.
PERMANENT_STATUSES = {404, 410}


@dataclass(frozen=True)
class FullTextPass:
    """Items with their full text where it was found, and what the pass tried."""

    items: tuple[Item, ...]
    completed: frozenset[str]  # guids whose body is now the article's text
    tried: int
    failures: tuple[str, ...]  # "url: reason" for each entry that kept its summary

    @property
    def source_error(self) -> str | None:
        """The source's full-text health line; None when every article gave its text."""
        if not self.failures:
            return None
        kept = f"{len(self.failures)} of {self.tried} articles kept their summary"
        return f"{kept}; first: {self.failures[0]}"[: limits.MAX_ERROR_CHARS]


def wants_full_text(item: Item) -> bool:
    return bool(item.link) and not item.has_full_text


def complete_items(
    engine: Engine,
    fetcher: Fetcher,
    defaults: Defaults,
    source: SourceConfig,
    items: Sequence[Item],
    new_guids: set[str],
) -> FullTextPass:
    """Give each new or edited summary-only item (`new_guids`) its article's text."""
    wanted = [i for i in items if i.guid in new_guids and wants_full_text(i)]
    urls = sorted({i.link for i in wanted if i.link})
    if not urls:
        return FullTextPass(tuple(items), frozenset(), 0, ())
    guard = AddressGuard.for_pages(source)
    # The address first, for every page: a page another source was allowed to fetch is not
    # served from the cache to one that may not ask for it.
    refused = fetcher.refusals(urls, guard)
    texts = page_cache.load(engine, [url for url in urls if url not in refused], guard.policy)
    texts.update((url, ArticleText(url, error=reason)) for url, reason in refused.items())
    missing = [url for url in urls if url not in texts]
    fetched = fetch_articles(fetcher, defaults, source, missing)
    page_cache.save(engine, [text for text in fetched if text.cacheable], guard.policy)
    texts.update((text.url, text) for text in fetched)
    wanted_guids = {item.guid for item in wanted}
    completed: set[str] = set()
    failures: list[str] = []
    result: list[Item] = []
    for item in items:
        text = texts.get(item.link or "") if item.guid in wanted_guids else None
        if text is None:
            result.append(item)
            continue
        merged = merge(item, text)
        if merged.full_text_error:
            failures.append(f"{item.link}: {merged.full_text_error}")
        else:
            completed.add(item.guid)
        result.append(merged)
    outcomes = Counter(page_outcome(text) for text in fetched)
    log.info(
        "source=%s full_text tried=%d cached=%d refused=%d robots=%d fetched=%d kept_summary=%d",
        source.id,
        len(urls),
        len(urls) - len(refused) - len(missing),
        len(refused) + outcomes["refused"],
        outcomes["robots"],
        outcomes["fetched"],
        len(failures),
    )
    return FullTextPass(tuple(result), frozenset(completed), len(wanted), tuple(failures))


def page_outcome(text: ArticleText) -> str:
    """What became of a page `fetch_articles` was given, for the log: `refused` for its address
    (its robots.txt's, or a redirect's), `robots` (robots.txt forbids it or could not be read),
    else `fetched` (asked for, whatever it answered)."""
    error = text.error or ""
    if error.startswith(ADDRESS_REFUSED):
        return "refused"
    if error.startswith((ROBOTS_DISALLOWS, ROBOTS_UNREACHABLE)):
        return "robots"
    return "fetched"


def merge(item: Item, text: ArticleText) -> Item:
    """The item with the article's text as its body (its lede stays the feed's summary), or
    with the reason it has none. `content_hash` stays the feed's: an unchanged entry in the
    feed is seen as unchanged, and costs nothing, on every later fetch."""
    if text.error:
        return replace(item, full_text_error=text.error)
    words = len(plain_text(text.body_html).split())
    if words <= max(len(item.body_text.split()), limits.FULL_TEXT_MIN_WORDS):
        return replace(item, full_text_error="extraction failed: no text longer than the summary")
    body_text = plain_text(text.body_html)
    return replace(
        item,
        body_html=text.body_html,
        body_text=body_text,
        text_hash=text_fingerprint(item.title, body_text),
        has_full_text=True,
        image_url=item.image_url or text.image_url,
        full_text_error=None,
    )


def fetch_articles(
    fetcher: Fetcher, defaults: Defaults, source: SourceConfig, urls: Sequence[str]
) -> list[ArticleText]:
    """Fetch and extract these pages, each allowed by its host's robots.txt, all at once within
    the fetcher's concurrency and per-host limits."""
    guard = AddressGuard.for_pages(source)
    texts: list[ArticleText] = []
    requests: list[FetchRequest] = []
    for url in urls:
        refusal = robots_refusal(fetcher, defaults, source, guard, url)
        if refusal:
            texts.append(ArticleText(url, error=refusal))
            continue
        requests.append(page_request(defaults, source, guard, url))
    for result in fetch_many(fetcher, requests):
        texts.append(extract(result))
    return texts


def page_request(
    defaults: Defaults, source: SourceConfig, guard: AddressGuard, url: str
) -> FetchRequest:
    return FetchRequest(
        source.id, url, guard=guard, accept=ACCEPT_PAGE, spacing=float(defaults.host_spacing)
    )


def extract(result: FetchResult) -> ArticleText:
    """The sanitised main text and lead image of a fetched page, or why there is none."""
    if result.status is not FetchStatus.OK:
        return ArticleText(
            result.url,
            error=(result.error or "fetch failed")[: limits.MAX_ERROR_CHARS],
            http_status=result.http_status,
            cacheable=result.http_status in PERMANENT_STATUSES,
        )
    page_url = result.final_url or result.url
    body_html, image_url, error = _main_text(result, page_url)
    return ArticleText(
        result.url,
        body_html=body_html,
        image_url=image_url,
        error=error,
        http_status=result.http_status,
        final_url=page_url,
        cacheable=True,  # the same bytes would give the same answer
    )


def _main_text(result: FetchResult, page_url: str) -> tuple[str, str | None, str | None]:
    """(sanitised body, lead image, error) of an HTML page."""
    content_type = (result.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type and content_type not in HTML_TYPES:
        return "", None, f"not an HTML page ({content_type})"[: limits.MAX_ERROR_CHARS]
    import trafilatura  # slow to import (lxml, charset detection): only when pages are read
    from lxml.etree import LxmlError

    try:
        extracted = trafilatura.extract(
            result.body,
            url=page_url,
            output_format="html",
            include_comments=False,
            include_links=True,
            include_tables=True,
            favor_precision=True,
        )
        metadata = trafilatura.extract_metadata(result.body, default_url=page_url)
    except (LxmlError, ValueError) as exc:
        return "", None, f"extraction failed: {type(exc).__name__}: {exc}"[: limits.MAX_ERROR_CHARS]
    if not extracted:
        return "", None, "extraction failed: no article text found"
    body_html = sanitise_html(HEADLINE.sub("", extracted), page_url)
    image = canonical_url(metadata.image, page_url) if metadata and metadata.image else None
    return body_html, image, None


# --- robots.txt -----------------------------------------------------------------------------


class _RobotsCache:
    """Parsed robots.txt per address policy and origin, kept for a day, shared by the process's
    ingests. Keyed by the policy too: what one source may not reach (its robots.txt redirected
    to a refused address) says nothing of a source allowed to reach it, nor the reverse."""

    def __init__(self) -> None:
        self._rules: dict[tuple[str, str], tuple[float, RobotFileParser | str]] = {}
        self._lock = threading.Lock()

    def get(self, policy: str, origin: str) -> RobotFileParser | str | None:
        with self._lock:
            found = self._rules.get((policy, origin))
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, policy: str, origin: str, rules: RobotFileParser | str) -> None:
        """Rules are kept for a day; a failure to read them (a text) only for a few minutes."""
        ok = isinstance(rules, RobotFileParser)
        keep = limits.ROBOTS_CACHE_SECONDS if ok else limits.ROBOTS_RETRY_SECONDS
        with self._lock:
            self._rules[(policy, origin)] = (time.monotonic() + keep, rules)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()


ROBOTS = _RobotsCache()


def robots_refusal(
    fetcher: Fetcher, defaults: Defaults, source: SourceConfig, guard: AddressGuard, url: str
) -> str | None:
    """Why the page's robots.txt forbids fetching it (or could not be read); None if allowed."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    rules = ROBOTS.get(guard.policy, origin)
    if rules is None:
        result = fetcher.fetch(page_request(defaults, source, guard, origin + "/robots.txt"))
        rules = _robots_rules(result)
        ROBOTS.put(guard.policy, origin, rules)
    if isinstance(rules, str):
        return rules
    return None if rules.can_fetch(fetcher.agent, url) else ROBOTS_DISALLOWS


def _robots_rules(result: FetchResult) -> RobotFileParser | str:
    """RFC 9309 section 2.3.1: a robots.txt that is missing (4xx) allows everything; one that
    cannot be read (5xx, no answer) forbids everything for now. A refused address is refused."""
    rules = RobotFileParser()
    if result.status is FetchStatus.OK:
        rules.parse(result.body.decode("utf-8", "replace").splitlines())
        return rules
    if result.http_status is not None and 400 <= result.http_status < 500:
        rules.parse([])
        return rules
    if result.error and result.error.startswith(ADDRESS_REFUSED):
        return result.error
    return f"{ROBOTS_UNREACHABLE}: {result.error or result.http_status}"[: limits.MAX_ERROR_CHARS]
