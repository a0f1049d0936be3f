"""The article page cache (store layer of aggregator.ingest.fulltext): a page is fetched once per
address policy, ever.

Keyed by the SHA-256 of the address policy and the article URL (URLs are too long for a portable
unique index): a page fetched for a source allowed a private address (or whose redirect it
allowed) is never served to a source with another policy. Workers storing the same page at once
race harmlessly: the first row wins, the same answer either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from aggregator.storage.bulk import insert_missing
from aggregator.storage.db import among, in_transaction
from aggregator.storage.models import ArticlePage
from aggregator.types import ArticleText


def page_key(policy: str, url: str) -> str:
    return hashlib.sha256(f"{policy}\n{url}".encode()).hexdigest()


def load(engine: Engine, urls: Sequence[str], policy: str) -> dict[str, ArticleText]:
    """url -> what its page gave when it was fetched under `policy`, for the pages fetched so."""
    keys = {page_key(policy, url): url for url in urls}
    found: dict[str, ArticleText] = {}
    with engine.connect() as connection:
        for is_wanted in among(connection, ArticlePage.page_key, list(keys)):
            rows = connection.execute(select(ArticlePage).where(is_wanted))
            for row in rows:
                found[row.url] = ArticleText(
                    url=row.url,
                    body_html=row.body_html,
                    image_url=row.image_url,
                    error=row.error,
                    http_status=row.http_status,
                    final_url=row.final_url,
                    cacheable=True,
                )
    return found


def save(
    engine: Engine, texts: Sequence[ArticleText], policy: str, now: datetime | None = None
) -> None:
    """Keep these outcomes, fetched under `policy`; a page cached already (by another worker)
    keeps its row."""
    if not texts:
        return
    fetched_at = now or datetime.now(UTC)
    rows = [
        {
            "page_key": page_key(policy, text.url),
            "policy": policy,
            "url": text.url,
            "final_url": text.final_url,
            "http_status": text.http_status,
            "body_html": text.body_html,
            "image_url": text.image_url,
            "error": text.error,
            "fetched_at": fetched_at,
        }
        for text in texts
    ]
    in_transaction(engine, lambda session: insert_missing(session, ArticlePage, rows, "page_key"))
