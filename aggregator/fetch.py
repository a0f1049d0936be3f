"""Fetch feeds over HTTP: conditional GET, bounded size and time, redirects, per-host limits.

Every outcome, including every failure, is a `FetchResult`; nothing here raises for a bad server.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from aggregator import __version__, limits
from aggregator.types import Defaults, FetchResult, FetchStatus, Validators

log = logging.getLogger(__name__)

PERMANENT_REDIRECTS = {301, 308}
RETRY_AFTER_STATUSES = {429, 503}
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/feed+json, application/json;q=0.8, application/xml;q=0.8, text/xml;q=0.8, "
    "*/*;q=0.1"
)


@dataclass(frozen=True)
class FetchRequest:
    source_id: str
    url: str
    validators: Validators = field(default_factory=Validators)


class BodyTooLarge(Exception):
    pass


class DeadlineExceeded(Exception):
    pass


def user_agent(base_url: str) -> str:
    return f"Caulbart/{__version__} (+{base_url}; news aggregator)"


def parse_retry_after(value: str | None, now: datetime | None = None) -> int | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), RFC 9110 10.2.3."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return int(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0, int((when - now).total_seconds()))


class Fetcher:
    """One shared connection pool for all sources; at most `per_host` requests per host at once."""

    def __init__(self, defaults: Defaults, agent: str) -> None:
        self.defaults = defaults
        self.client = httpx.Client(
            headers={"User-Agent": agent, "Accept": ACCEPT, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(
                defaults.timeout, connect=min(limits.CONNECT_TIMEOUT, defaults.timeout)
            ),
            follow_redirects=True,
            max_redirects=limits.MAX_REDIRECTS,
            limits=httpx.Limits(max_connections=max(defaults.concurrency, 4) * 2),
            trust_env=False,
        )
        self._host_slots: dict[str, threading.Semaphore] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def _slot(self, url: str) -> threading.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            if host not in self._host_slots:
                self._host_slots[host] = threading.Semaphore(self.defaults.per_host)
            return self._host_slots[host]

    def fetch(self, request: FetchRequest) -> FetchResult:
        with self._slot(request.url):
            return self._fetch(request)

    def _fetch(self, request: FetchRequest) -> FetchResult:
        started = time.monotonic()
        headers: dict[str, str] = {}
        if request.validators.etag:
            headers["If-None-Match"] = request.validators.etag
        if request.validators.last_modified:
            headers["If-Modified-Since"] = request.validators.last_modified

        def failed(message: str, http_status: int | None = None, **extra: object) -> FetchResult:
            return FetchResult(
                source_id=request.source_id,
                url=request.url,
                status=FetchStatus.ERROR,
                http_status=http_status,
                error=message,
                elapsed=time.monotonic() - started,
                **extra,  # type: ignore[arg-type]
            )

        try:
            with self.client.stream("GET", request.url, headers=headers) as response:
                redirects = [r.status_code for r in response.history]
                final_url = str(response.url)
                moved = (
                    bool(redirects)
                    and all(code in PERMANENT_REDIRECTS for code in redirects)
                    and final_url != request.url
                )
                common = {
                    "source_id": request.source_id,
                    "url": request.url,
                    "http_status": response.status_code,
                    "headers": tuple(response.headers.multi_items()),
                    "final_url": final_url,
                    "permanent_redirect": moved,
                }
                status = response.status_code
                if status == 304:
                    return FetchResult(
                        status=FetchStatus.NOT_MODIFIED,
                        validators=request.validators,
                        elapsed=time.monotonic() - started,
                        **common,  # type: ignore[arg-type]
                    )
                if status == 410:
                    return FetchResult(
                        status=FetchStatus.GONE,
                        error="HTTP 410 Gone: the publisher removed this feed",
                        elapsed=time.monotonic() - started,
                        **common,  # type: ignore[arg-type]
                    )
                if not 200 <= status < 300:
                    retry_after = None
                    if status in RETRY_AFTER_STATUSES:
                        retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    return failed(
                        f"HTTP {status} {response.reason_phrase}".strip(),
                        status,
                        retry_after=retry_after,
                        headers=common["headers"],
                    )
                body = self._read_body(response, started)
                return FetchResult(
                    status=FetchStatus.OK,
                    body=body,
                    validators=Validators(
                        etag=response.headers.get("ETag"),
                        last_modified=response.headers.get("Last-Modified"),
                    ),
                    elapsed=time.monotonic() - started,
                    **common,  # type: ignore[arg-type]
                )
        except BodyTooLarge as exc:
            return failed(str(exc))
        except DeadlineExceeded as exc:
            return failed(str(exc))
        except httpx.TooManyRedirects:
            return failed(f"too many redirects (limit {limits.MAX_REDIRECTS})")
        except httpx.TimeoutException as exc:
            return failed(f"timeout after {self.defaults.timeout:g}s ({type(exc).__name__})")
        except httpx.DecodingError as exc:
            return failed(f"undecodable body: {exc}")
        except httpx.UnsupportedProtocol as exc:
            return failed(f"unsupported URL: {exc}")
        except httpx.HTTPError as exc:
            return failed(f"connection failed: {type(exc).__name__}: {exc}")

    def _read_body(self, response: httpx.Response, started: float) -> bytes:
        """Read the (decompressed) body, stopping at max_bytes or the total timeout."""
        limit = self.defaults.max_bytes
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(f"body too large: Content-Length {declared} > max_bytes {limit}")
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge(f"body too large: more than max_bytes {limit} bytes")
            if time.monotonic() - started > self.defaults.timeout:
                raise DeadlineExceeded(
                    f"timeout: body not complete within {self.defaults.timeout:g}s"
                )
            chunks.append(chunk)
        return b"".join(chunks)


def fetch_many(fetcher: Fetcher, requests: Iterable[FetchRequest]) -> Iterator[FetchResult]:
    """Fetch several sources at once; yield each result as soon as it is complete."""
    pending = list(requests)
    if not pending:
        return
    workers = min(fetcher.defaults.concurrency, len(pending))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fetch") as pool:
        futures = [pool.submit(fetcher.fetch, request) for request in pending]
        for future in as_completed(futures):
            yield future.result()
