"""Fetch feeds over HTTP: conditional GET, bounded size and time, redirects, per-host limits.

Every outcome, including every failure, is a `FetchResult`; nothing here raises for a bad server.
Requests run on one asyncio loop in a background thread so that the whole request, headers
included, has one deadline (a server dripping its headers a byte a second cannot hold a worker),
and bodies are decompressed here, chunk by chunk, so a compression bomb stops at `max_bytes`.
Every request goes through an `AddressGuard`, checked on every redirect, at the transport: public
addresses, and private ones only at the host and port an editor wrote (a feed's own URL, a
source's `allow_private`), never at another service a feed or page points to.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ipaddress
import socket
import threading
import time
import zlib
from collections.abc import Coroutine, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from aggregator import __version__, limits
from aggregator.errors import AddressRefused as AddressRefused
from aggregator.errors import FetchError as FetchError
from aggregator.types import (
    Defaults,
    FetchResult,
    FetchStatus,
    HostPort,
    SourceConfig,
    Validators,
)

T = TypeVar("T")

PERMANENT_REDIRECTS = {301, 308}
RETRY_AFTER_STATUSES = {429, 503}
ACCEPT = (
    "application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
    "application/feed+json, application/json;q=0.8, application/xml;q=0.8, text/xml;q=0.8, "
    "*/*;q=0.1"
)
ACCEPT_PAGE = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"
# Cloud metadata services, named in refusals (they are link-local or private anyway).
METADATA_ADDRESSES = {ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254")}
GUARD = "caulbart.address_guard"
# zlib window bits: gzip or zlib header detected automatically; raw deflate as a fallback.
AUTO_HEADER = 47
RAW_DEFLATE = -15


@dataclass(frozen=True)
class AddressGuard:
    """Requests, each redirect included, may reach public addresses, and private, loopback or
    link-local ones only at `allowed`: the hosts and ports an editor wrote (a feed's URL, a
    source's `full_text.allow_private`, the address typed to `caulbart add`). A feed must not
    steer Caulbart into the local network, nor one service of a host into another."""

    allowed: frozenset[HostPort] = frozenset()

    @classmethod
    def for_feed(cls, url: str, source: SourceConfig | None = None) -> AddressGuard:
        """A feed's requests: its own host and port (the editor's choice), and any its source
        lists in `full_text.allow_private`."""
        own = HostPort.of(url)
        return cls(frozenset({*([own] if own else []), *_listed(source)}))

    @classmethod
    def for_pages(cls, source: SourceConfig) -> AddressGuard:
        """The pages a source's feed links to: public, or where `allow_private` names."""
        return cls(frozenset(_listed(source)))

    def allows(self, url: str) -> bool:
        """Whether `url` is at a host and port exempted from the address check."""
        return HostPort.of(url) in self.allowed

    @property
    def policy(self) -> str:
        """The policy in words, as caches of what it fetched are keyed: two guards that allow
        the same places have the same policy."""
        return " ".join(["public", *map(str, sorted(self.allowed))])


def _listed(source: SourceConfig | None) -> tuple[HostPort, ...]:
    return source.full_text.allow_private if source and source.full_text else ()


@dataclass(frozen=True)
class FetchRequest:
    source_id: str
    url: str
    validators: Validators = field(default_factory=Validators)
    # None: AddressGuard.for_feed(url), the URL's own host and port and public addresses.
    guard: AddressGuard | None = None
    accept: str = ACCEPT
    # Seconds after the last request to this host from this process before this one may start
    # (feeds.yaml host_spacing; 0: none).
    spacing: float = 0.0
    # time.monotonic() before which it may not start: its host's turn, handed out when the
    # source was claimed, so that requests of several processes are spaced too (0: at once).
    not_before: float = 0.0


def refused_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why a guarded request may not go to `address`; None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_private or address.is_reserved or not address.is_global:
        return "a private or reserved address"
    return None


class GuardedTransport(httpx.AsyncBaseTransport):
    """Checks the resolved address of every guarded request, each redirect being a new one, and
    connects to the address it checked (so a DNS answer cannot change in between)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        guard = request.extensions.get(GUARD)
        if guard is None or guard.allows(str(request.url)):
            return await self.inner.handle_async_request(request)
        address = await _checked_address(request.url)
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=str(address)),
            headers=request.headers,  # keeps Host: the name, not the address
            stream=request.stream,
            extensions={**request.extensions, "sni_hostname": request.url.host},
        )
        return await self.inner.handle_async_request(pinned)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _checked_address(url: httpx.URL) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The first address of the URL's host, once every address it has is found allowed."""
    host = url.host
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, url.port or 443, type=socket.SOCK_STREAM
            )
        except OSError as exc:
            raise FetchError(f"cannot resolve {host}: {exc}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        reason = refused_reason(address)
        if reason:
            where = HostPort.of(str(url)) or host
            raise AddressRefused(f"address refused: {where} is {reason} ({address})")
    return addresses[0]


async def _refusals(urls: list[str]) -> list[str | None]:
    async def refusal(url: str) -> str | None:
        try:
            await _checked_address(httpx.URL(url))
        except FetchError as exc:  # refused, or unresolvable: not checked, so not allowed
            return str(exc)
        except (httpx.InvalidURL, ValueError) as exc:
            return f"bad URL: {exc}"
        return None

    return list(await asyncio.gather(*map(refusal, urls)))


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


class BoundedDecoder:
    """Content-Encoding decoding that never produces more than `limit` bytes in all."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.limit = limit
        self.size = 0
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            self._zlib = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._zlib = zlib.decompressobj(AUTO_HEADER)
            self._raw_fallback = encoding == "deflate"
        else:
            raise FetchError(f"unsupported Content-Encoding {encoding!r}")

    def feed(self, chunk: bytes) -> bytes:
        if self._zlib is None:
            return self._count(chunk)
        try:
            # max_length: inflate at most what is still allowed, plus one byte to detect excess.
            out = self._zlib.decompress(chunk, self.limit - self.size + 1)
        except zlib.error as exc:
            if self._raw_fallback and self.size == 0:  # some servers send raw deflate
                self._zlib = zlib.decompressobj(RAW_DEFLATE)
                self._raw_fallback = False
                return self.feed(chunk)
            raise FetchError(f"undecodable compressed body: {exc}") from None
        if self._zlib.unconsumed_tail:
            raise FetchError(f"body too large: more than max_bytes {self.limit} bytes")
        return self._count(out)

    def finish(self) -> bytes:
        """Whatever the decompressor still holds once the body has ended."""
        return self._count(self._zlib.flush()) if self._zlib is not None else b""

    def _count(self, data: bytes) -> bytes:
        self.size += len(data)
        if self.size > self.limit:
            raise FetchError(f"body too large: more than max_bytes {self.limit} bytes")
        return data


class Fetcher:
    """One shared connection pool; at most `concurrency` requests at once, `per_host` per host,
    and requests to one host `spacing` apart."""

    def __init__(self, defaults: Defaults, agent: str) -> None:
        self.defaults = defaults
        self._agent = agent
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fetch", daemon=True)
        self._thread.start()
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        # Host -> the lock its requests take their turns under, one at a time.
        self._host_turns: dict[str, asyncio.Lock] = {}
        # Host -> the earliest time (monotonic) its next request may start.
        self._host_next: dict[str, float] = {}
        self.client, self._slots = self._run(self._open())

    async def _open(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        client = httpx.AsyncClient(
            headers={
                "User-Agent": self._agent,
                "Accept": ACCEPT,
                "Accept-Encoding": "gzip, deflate",
            },
            timeout=httpx.Timeout(
                self.defaults.timeout, connect=min(limits.CONNECT_TIMEOUT, self.defaults.timeout)
            ),
            follow_redirects=True,
            max_redirects=limits.MAX_REDIRECTS,
            transport=GuardedTransport(
                httpx.AsyncHTTPTransport(
                    limits=httpx.Limits(max_connections=max(self.defaults.concurrency, 4) * 2)
                )
            ),
            trust_env=False,
        )
        return client, asyncio.Semaphore(self.defaults.concurrency)

    @property
    def agent(self) -> str:
        """The User-Agent sent, also the name robots.txt rules are matched against."""
        return self._agent

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self.client.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def refusals(self, urls: Iterable[str], guard: AddressGuard) -> dict[str, str]:
        """url -> why `guard` refuses its own address, for the URLs it refuses: checked before
        anything fetched under another policy (a cache) may stand in for asking it."""
        wanted = [url for url in urls if not guard.allows(url)]
        return {
            url: why for url, why in zip(wanted, self._run(_refusals(wanted)), strict=True) if why
        }

    def fetch(self, request: FetchRequest) -> FetchResult:
        """Fetch one source, blocking the calling thread (workers call this from their pool)."""
        return self._run(self.fetch_async(request))

    def submit(self, request: FetchRequest) -> concurrent.futures.Future[FetchResult]:
        return asyncio.run_coroutine_threadsafe(self.fetch_async(request), self._loop)

    async def fetch_async(self, request: FetchRequest) -> FetchResult:
        try:
            parts = urlsplit(request.url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 -- raises ValueError for a port outside 0-65535
        except ValueError as exc:
            return _failed(request, time.monotonic(), f"bad URL: {exc}")
        host_slot = self._host_slots.setdefault(host, asyncio.Semaphore(self.defaults.per_host))
        async with host_slot:
            await self._take_turn(host, request)
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.defaults.timeout):
                    return await self._fetch(request, started)
            except TimeoutError:
                message = f"timeout: no complete answer within {self.defaults.timeout:g}s"
                return _failed(request, started, message)
            finally:
                self._slots.release()

    async def _take_turn(self, host: str, request: FetchRequest) -> None:
        """Wait for this host's turn, then for one of the `concurrency` slots, and return holding
        it (the caller releases it). Requests to one host start `spacing` apart, counted from
        when each really starts, so ones that waited for a host slot do not start together; a
        request waiting for its turn holds no slot, so the other hosts go on meanwhile."""
        async with self._host_turns.setdefault(host, asyncio.Lock()):
            delay = max(self._host_next.get(host, 0.0), request.not_before) - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await self._slots.acquire()
            self._host_next[host] = time.monotonic() + request.spacing

    async def _fetch(self, request: FetchRequest, started: float) -> FetchResult:
        headers: dict[str, str] = {"Accept": request.accept}
        if request.validators.etag:
            headers["If-None-Match"] = request.validators.etag
        if request.validators.last_modified:
            headers["If-Modified-Since"] = request.validators.last_modified
        try:
            extensions = {GUARD: request.guard or AddressGuard.for_feed(request.url)}
            async with self.client.stream(
                "GET", request.url, headers=headers, extensions=extensions
            ) as response:
                return await self._answer(request, response, started)
        except FetchError as exc:
            return _failed(request, started, str(exc))
        except httpx.TooManyRedirects:
            return _failed(request, started, f"too many redirects (limit {limits.MAX_REDIRECTS})")
        except httpx.TimeoutException as exc:
            message = f"timeout after {self.defaults.timeout:g}s ({type(exc).__name__})"
            return _failed(request, started, message)
        except httpx.UnsupportedProtocol as exc:
            return _failed(request, started, f"unsupported URL: {exc}")
        except httpx.HTTPError as exc:
            return _failed(request, started, f"connection failed: {type(exc).__name__}: {exc}")
        except (httpx.InvalidURL, ValueError) as exc:
            # A URL httpx refuses (a control character, or a redirect's Location that is one).
            return _failed(request, started, f"bad URL: {exc}")
        except (OverflowError, ExceptionGroup) as exc:
            # Errors httpx does not map, such as a redirect to port 99999, reach us wrapped in
            # the connect task group; they are the server's fault, recorded like any other.
            causes = exc.exceptions if isinstance(exc, ExceptionGroup) else (exc,)
            reason = "; ".join(f"{type(e).__name__}: {e}" for e in causes)
            return _failed(request, started, f"connection failed: {reason}")

    async def _answer(
        self, request: FetchRequest, response: httpx.Response, started: float
    ) -> FetchResult:
        redirects = [r.status_code for r in response.history]
        final_url = str(response.url)
        status = response.status_code
        common: dict[str, Any] = {
            "source_id": request.source_id,
            "url": request.url,
            "http_status": status,
            "headers": tuple(response.headers.multi_items()),
            "final_url": final_url,
            "permanent_redirect": bool(redirects)
            and all(code in PERMANENT_REDIRECTS for code in redirects)
            and final_url != request.url,
        }
        if status == 304:
            return FetchResult(
                status=FetchStatus.NOT_MODIFIED,
                validators=request.validators,
                elapsed=time.monotonic() - started,
                **common,
            )
        if status == 410:
            return FetchResult(
                status=FetchStatus.GONE,
                error="HTTP 410 Gone: the publisher removed this feed",
                elapsed=time.monotonic() - started,
                **common,
            )
        if not 200 <= status < 300:
            retry_after = None
            if status in RETRY_AFTER_STATUSES:
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return FetchResult(
                status=FetchStatus.ERROR,
                error=f"HTTP {status} {response.reason_phrase}".strip(),
                retry_after=retry_after,
                elapsed=time.monotonic() - started,
                **common,
            )
        body = await self._read_body(response)
        return FetchResult(
            status=FetchStatus.OK,
            body=body,
            validators=Validators(
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
            ),
            elapsed=time.monotonic() - started,
            **common,
        )

    async def _read_body(self, response: httpx.Response) -> bytes:
        """The decoded body, refused as soon as it (or its declared length) passes max_bytes."""
        limit = self.defaults.max_bytes
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"body too large: Content-Length {declared} > max_bytes {limit}")
        decoder = BoundedDecoder(response.headers.get("Content-Encoding", ""), limit)
        chunks = [decoder.feed(chunk) async for chunk in response.aiter_raw()]
        chunks.append(decoder.finish())
        return b"".join(chunks)


def _failed(request: FetchRequest, started: float, message: str) -> FetchResult:
    return FetchResult(
        source_id=request.source_id,
        url=request.url,
        status=FetchStatus.ERROR,
        error=message,
        elapsed=time.monotonic() - started,
    )


def fetch_many(fetcher: Fetcher, requests: Iterable[FetchRequest]) -> Iterator[FetchResult]:
    """Fetch several sources at once; yield each result as soon as it is complete."""
    futures = [fetcher.submit(request) for request in requests]
    for future in concurrent.futures.as_completed(futures):
        yield future.result()
