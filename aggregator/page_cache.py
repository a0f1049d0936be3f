"""The article page cache (store layer of aggregator.fulltext): a page is fetched once, ever.

Keyed by the SHA-256 of the article URL (URLs are too long for a portable unique index). Workers
storing the same page at once race harmlessly: the first row wins, the same answer either way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from aggregator.db import among, in_transaction, insert_missing
from aggregator.models import ArticlePage
from aggregator.types import ArticleText


def url_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def load(engine: Engine, urls: Sequence[str]) -> dict[str, ArticleText]:
    """url -> what its page gave when it was fetched, for the pages fetched before."""
    keys = {url_key(url): url for url in urls}
    found: dict[str, ArticleText] = {}
    with engine.connect() as connection:
        for is_wanted in among(connection, ArticlePage.url_hash, list(keys)):
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


def save(engine: Engine, texts: Sequence[ArticleText], now: datetime | None = None) -> None:
    """Keep these outcomes; a page cached already (by another worker) keeps its row."""
    if not texts:
        return
    fetched_at = now or datetime.now(UTC)
    rows = [
        {
            "url_hash": url_key(text.url),
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
    in_transaction(engine, lambda session: insert_missing(session, ArticlePage, rows, "url_hash"))
