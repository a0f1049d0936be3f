"""The absolute URLs a feed document links to: itself, its subscription document, its page on
the site, its neighbours among the pages and archives (RFC 5005), and the WebSub hubs."""

from __future__ import annotations

from dataclasses import dataclass

from aggregator.publishing.feed_pages import FeedPage
from aggregator.publishing.scope import FeedQuery
from aggregator.types import SiteConfig


@dataclass(frozen=True)
class FeedLinks:
    """Absolute URLs of a document and its neighbours (RFC 5005), plus WebSub hubs."""

    self_url: str
    subscription: str
    alternate: str
    first: str | None = None
    last: str | None = None
    next: str | None = None
    previous: str | None = None
    prev_archive: str | None = None
    next_archive: str | None = None
    hubs: tuple[str, ...] = ()

    def rels(self) -> list[tuple[str, str]]:
        """(rel, href) for the feed-level links other than self and alternate."""
        pairs = [
            ("first", self.first),
            ("last", self.last),
            ("next", self.next),
            ("previous", self.previous),
            ("prev-archive", self.prev_archive),
            ("next-archive", self.next_archive),
        ]
        if self.prev_archive or self.next_archive:
            pairs.append(("current", self.subscription))
        pairs += [("hub", hub) for hub in self.hubs]
        return [(rel, href) for rel, href in pairs if href]


def feed_links(site: SiteConfig, query: FeedQuery, fmt: str, page: FeedPage) -> FeedLinks:
    base = site.base_url.rstrip("/")
    subscription = base + query.feed_path(fmt)

    def at_page(number: int) -> str:
        return subscription if number == 1 else f"{subscription}?page={number}"

    def at_archive(number: int) -> str:
        return f"{subscription}?archive={number}"

    alternate = base + (query.path + "/" if query.path else "/")
    hubs = tuple(site.websub_hubs)
    if page.archive is not None:
        return FeedLinks(
            self_url=at_archive(page.archive),
            subscription=subscription,
            alternate=alternate,
            prev_archive=at_archive(page.archive - 1) if page.archive > 1 else None,
            next_archive=at_archive(page.archive + 1) if page.archive < page.archives else None,
            hubs=hubs,
        )
    number = page.page or 1
    return FeedLinks(
        self_url=at_page(number),
        subscription=subscription,
        alternate=alternate,
        first=at_page(1),
        last=at_page(page.pages),
        next=at_page(number + 1) if number < page.pages else None,
        previous=at_page(number - 1) if number > 1 else None,
        prev_archive=at_archive(page.archives) if number == 1 and page.archives else None,
        hubs=hubs,
    )
