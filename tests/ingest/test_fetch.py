"""fetch.py against a real HTTP server on 127.0.0.1: every outcome is a `FetchResult`."""

from __future__ import annotations

import gzip
import itertools
import socket
import time
from dataclasses import replace
from email.utils import formatdate

import pytest

from aggregator import limits
from aggregator.ingest.fetch import (
    AddressGuard,
    Fetcher,
    FetchRequest,
    fetch_many,
    parse_retry_after,
    user_agent,
)
from aggregator.types import (
    Defaults,
    FetchResult,
    FetchStatus,
    FullTextConfig,
    HostPort,
    SourceConfig,
    Validators,
)
from tests.conftest import FeedServer

FEED = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Test wire</title><link>http://wire.test/</link>
<item><title>Storm reaches the coast</title><link>http://wire.test/storm</link></item>
</channel></rss>
"""
SITE = "http://caulbart.test"


def fetch(url: str, validators: Validators | None = None, **defaults: object) -> FetchResult:
    """One fetch through a fresh Fetcher, as a worker would do it."""
    settings = replace(Defaults(), **defaults)  # type: ignore[arg-type]
    with Fetcher(settings, user_agent(SITE)) as fetcher:
        return fetcher.fetch(FetchRequest("src", url, validators or Validators()))


def test_ok_fetch_returns_body_and_validators(feed_server: FeedServer) -> None:
    url = feed_server.add(
        "/feed.xml", FEED, etag='"v1"', last_modified="Tue, 01 Oct 2024 10:00:00 GMT"
    )

    result = fetch(url)

    assert result.status is FetchStatus.OK
    assert result.http_status == 200
    assert result.body == FEED
    assert result.validators == Validators('"v1"', "Tue, 01 Oct 2024 10:00:00 GMT")
    assert result.final_url == url
    assert not result.permanent_redirect
    assert result.header("content-type") == "application/rss+xml; charset=utf-8"


def test_conditional_get_sends_validators_and_304_has_no_body(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", FEED)
    first = fetch(url)
    assert first.status is FetchStatus.OK and first.validators.etag

    second = fetch(url, first.validators)

    sent = feed_server.request_headers["/feed.xml"][-1]
    assert sent["If-None-Match"] == first.validators.etag
    assert sent["If-Modified-Since"] == first.validators.last_modified
    assert second.status is FetchStatus.NOT_MODIFIED
    assert second.http_status == 304
    assert second.body == b""
    # The stored validators stay what they were: a 304 changes nothing.
    assert second.validators == first.validators


def test_last_modified_alone_makes_a_conditional_get(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", FEED, etag=None)
    first = fetch(url)
    assert first.validators.etag is None and first.validators.last_modified

    second = fetch(url, first.validators)

    assert "If-None-Match" not in feed_server.request_headers["/feed.xml"][-1]
    assert second.status is FetchStatus.NOT_MODIFIED


def test_stale_etag_gets_the_new_body(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", FEED, etag='"v2"')
    result = fetch(url, Validators(etag='"v1"'))
    assert result.status is FetchStatus.OK
    assert result.body == FEED
    assert result.validators.etag == '"v2"'


def test_gzip_body_is_decoded(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", FEED, gzip=True)
    result = fetch(url)
    assert result.header("Content-Encoding") == "gzip"
    assert result.body == FEED
    assert "gzip" in feed_server.request_headers["/feed.xml"][0]["Accept-Encoding"]


def test_gzip_bomb_stops_at_max_bytes(feed_server: FeedServer) -> None:
    # 5 MB of zeros compresses to a few KB: Content-Length says nothing about the decoded size.
    bomb = gzip.compress(b"\0" * 5_000_000)
    url = feed_server.add("/bomb.xml", bomb, headers={"Content-Encoding": "gzip"})
    result = fetch(url, max_bytes=100_000)
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "max_bytes 100000" in result.error


def test_user_agent_names_caulbart_and_its_site(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", FEED)
    fetch(url)
    agent = feed_server.request_headers["/feed.xml"][0]["User-Agent"]
    assert agent.startswith("Caulbart/")
    assert SITE in agent


@pytest.mark.parametrize("code", [301, 308])
def test_permanent_redirect_is_flagged_with_final_url(feed_server: FeedServer, code: int) -> None:
    new = feed_server.add("/new.xml", FEED)
    old = feed_server.add("/old.xml", status=code, location=new)

    result = fetch(old)

    assert result.status is FetchStatus.OK
    assert result.body == FEED
    assert result.url == old
    assert result.final_url == new
    assert result.permanent_redirect


@pytest.mark.parametrize("codes", [(302,), (307,), (301, 302)])
def test_temporary_redirect_is_not_permanent(feed_server: FeedServer, codes: tuple[int]) -> None:
    target = feed_server.add("/target.xml", FEED)
    for index, code in reversed(list(enumerate(codes))):
        target = feed_server.add(f"/hop{index}", status=code, location=target)

    result = fetch(target)

    assert result.status is FetchStatus.OK
    assert result.final_url == feed_server.url("/target.xml")
    assert not result.permanent_redirect


def test_redirect_loop_is_an_error_naming_the_limit(feed_server: FeedServer) -> None:
    feed_server.add("/a", status=302, location=feed_server.url("/b"))
    url = feed_server.add("/b", status=302, location=feed_server.url("/a"))

    result = fetch(url)

    assert result.status is FetchStatus.ERROR
    assert result.error == f"too many redirects (limit {limits.MAX_REDIRECTS})"
    # The client stopped after the limit rather than bouncing forever.
    assert sum(feed_server.requests.values()) == limits.MAX_REDIRECTS + 1


def _chain(feed_server: FeedServer, hops: int) -> str:
    """A URL that reaches the feed after exactly `hops` redirects."""
    target = feed_server.add("/end.xml", FEED)
    for index in range(hops):
        target = feed_server.add(f"/r{index}", status=301, location=target)
    return target


def test_five_redirects_are_followed(feed_server: FeedServer) -> None:
    result = fetch(_chain(feed_server, limits.MAX_REDIRECTS))
    assert result.status is FetchStatus.OK
    assert result.body == FEED
    assert result.permanent_redirect


def test_six_redirects_are_an_error(feed_server: FeedServer) -> None:
    result = fetch(_chain(feed_server, limits.MAX_REDIRECTS + 1))
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and f"limit {limits.MAX_REDIRECTS}" in result.error
    assert feed_server.requests["/end.xml"] == 0


def test_410_means_gone(feed_server: FeedServer) -> None:
    url = feed_server.add("/gone.xml", b"gone", status=410)
    result = fetch(url)
    assert result.status is FetchStatus.GONE
    assert result.http_status == 410
    assert result.error is not None and "410" in result.error


def test_429_retry_after_seconds_is_parsed(feed_server: FeedServer) -> None:
    url = feed_server.add("/busy.xml", b"slow down", status=429, headers={"Retry-After": "120"})
    result = fetch(url)
    assert result.status is FetchStatus.ERROR
    assert result.http_status == 429
    assert result.retry_after == 120
    assert result.error == "HTTP 429 Too Many Requests"


def test_503_retry_after_http_date_is_parsed(feed_server: FeedServer) -> None:
    when = formatdate(time.time() + 300, usegmt=True)
    url = feed_server.add("/down.xml", b"", status=503, headers={"Retry-After": when})
    result = fetch(url)
    assert result.status is FetchStatus.ERROR
    assert result.retry_after is not None and 290 <= result.retry_after <= 300


def test_retry_after_is_ignored_on_other_errors(feed_server: FeedServer) -> None:
    url = feed_server.add("/broken.xml", b"", status=500, headers={"Retry-After": "120"})
    assert fetch(url).retry_after is None


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("0", 0),
        (" 3600 ", 3600),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0),  # in the past: no wait
        ("soon", None),
        ("", None),
        ("-5", None),
    ],
)
def test_parse_retry_after(value: str, seconds: int | None) -> None:
    assert parse_retry_after(value) == seconds


@pytest.mark.parametrize(("code", "text"), [(404, "HTTP 404 Not Found"), (500, "HTTP 500")])
def test_http_errors_are_reported_as_text(feed_server: FeedServer, code: int, text: str) -> None:
    url = feed_server.add("/err.xml", b"oops", status=code)
    result = fetch(url)
    assert result.status is FetchStatus.ERROR
    assert result.http_status == code
    assert result.error is not None and result.error.startswith(text)
    assert result.body == b""


def test_unknown_path_is_404(feed_server: FeedServer) -> None:
    result = fetch(feed_server.url("/never-added.xml"))
    assert (result.status, result.error) == (FetchStatus.ERROR, "HTTP 404 Not Found")


def test_body_over_max_bytes_with_content_length_is_refused(feed_server: FeedServer) -> None:
    url = feed_server.add("/big.xml", b"x" * 5000)
    result = fetch(url, max_bytes=1000)
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "max_bytes 1000" in result.error
    assert result.body == b""


def test_endless_body_without_length_stops_at_max_bytes(feed_server: FeedServer) -> None:
    url = feed_server.add("/endless.xml", endless_chunk=b"<item>spam</item>" * 64)
    started = time.monotonic()
    result = fetch(url, max_bytes=50_000, timeout=20.0)
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "max_bytes 50000" in result.error
    assert time.monotonic() - started < 10


def test_body_of_exactly_max_bytes_is_accepted(feed_server: FeedServer) -> None:
    url = feed_server.add("/exact.xml", b"x" * 1000)
    assert fetch(url, max_bytes=1000).body == b"x" * 1000


def test_slow_drip_body_exceeds_the_timeout(feed_server: FeedServer) -> None:
    # 200 bytes at one per 50 ms take 10 s; each byte alone arrives well within a read timeout.
    url = feed_server.add("/slow.xml", FEED[:200], drip_delay=0.05)
    started = time.monotonic()
    result = fetch(url, timeout=0.5)
    elapsed = time.monotonic() - started
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "timeout" in result.error and "0.5s" in result.error
    assert elapsed < 3


def test_slow_drip_headers_exceed_the_timeout(feed_server: FeedServer) -> None:
    url = feed_server.add("/slow-head.xml", FEED, header_drip=0.05)
    started = time.monotonic()
    result = fetch(url, timeout=0.5)
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and "0.5s" in result.error
    assert time.monotonic() - started < 3


def test_connection_refused_is_an_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port now.
    result = fetch(f"http://127.0.0.1:{port}/feed.xml", timeout=5.0)
    assert result.status is FetchStatus.ERROR
    assert result.http_status is None
    assert result.error is not None and result.error.startswith("connection failed")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/feed.xml", "file:///etc/passwd"])
def test_non_http_url_is_an_error_without_reading_it(url: str) -> None:
    result = fetch(url)
    assert result.status is FetchStatus.ERROR
    assert result.body == b""
    assert result.error is not None and "root:" not in result.error


def test_fetch_many_returns_every_source_and_keeps_the_per_host_limit(
    feed_server: FeedServer,
) -> None:
    # Each answer takes the server at least HOLD seconds (a 20-byte body dripped), so arrivals
    # k and k+2 can be closer than HOLD only if three requests were in flight at once.
    hold = 0.4
    body = FEED[:20]
    requests = [
        FetchRequest(f"s{n}", feed_server.add(f"/f{n}.xml", body, drip_delay=hold / len(body)))
        for n in range(6)
    ]
    settings = replace(Defaults(), per_host=2, concurrency=8)

    with Fetcher(settings, user_agent(SITE)) as fetcher:
        results = list(fetch_many(fetcher, requests))

    assert sorted(r.source_id for r in results) == [f"s{n}" for n in range(6)]
    assert all(r.status is FetchStatus.OK and r.body == body for r in results)
    arrivals = sorted(t for t, _ in feed_server.request_log)
    assert len(arrivals) == 6
    # Two at once: the fetches overlap rather than run one after another ...
    assert arrivals[1] - arrivals[0] < hold / 2
    # ... and never three at once on one host.
    for first, third in zip(arrivals, arrivals[2:], strict=False):
        assert third - first >= hold * 0.9, arrivals


def test_spaced_requests_to_one_host_start_spacing_apart_after_waiting_for_a_slot(
    feed_server: FeedServer,
) -> None:
    # The first answer takes HOLD seconds and one request is allowed in flight: the others
    # wait for the slot, and must still start SPACING apart once it is free, not together.
    hold, spacing = 0.8, 0.5
    body = FEED[:20]
    slow = feed_server.add("/slow.xml", body, drip_delay=hold / len(body))
    fast = [feed_server.add(f"/f{n}.xml", body) for n in range(3)]
    requests = [FetchRequest(f"s{n}", url, spacing=spacing) for n, url in enumerate([slow, *fast])]
    settings = replace(Defaults(), per_host=1, concurrency=8)

    with Fetcher(settings, user_agent(SITE)) as fetcher:
        results = list(fetch_many(fetcher, requests))

    assert all(r.status is FetchStatus.OK for r in results)
    arrivals = [t for t, _ in feed_server.request_log]
    assert len(arrivals) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    # Tolerance: a request on a new connection reaches the server later after it starts than
    # one on a kept-alive connection (tens of milliseconds on a loaded machine).
    assert min(gaps) >= spacing - 0.1, gaps


def test_fetch_many_reports_failures_beside_successes(feed_server: FeedServer) -> None:
    requests = [
        FetchRequest("ok", feed_server.add("/ok.xml", FEED)),
        FetchRequest("gone", feed_server.add("/gone.xml", status=410)),
        FetchRequest("missing", feed_server.url("/missing.xml")),
    ]
    with Fetcher(Defaults(), user_agent(SITE)) as fetcher:
        results = {r.source_id: r.status for r in fetch_many(fetcher, requests)}
    assert results == {
        "ok": FetchStatus.OK,
        "gone": FetchStatus.GONE,
        "missing": FetchStatus.ERROR,
    }


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:99999/feed.xml", "http://[::1/feed.xml", "http://127.0.0.1/\x00"]
)
def test_malformed_url_is_an_error_not_an_exception(url: str) -> None:
    result = fetch(url)
    assert result.status is FetchStatus.ERROR
    assert result.error is not None and result.error.startswith("bad URL")


@pytest.mark.parametrize(
    "location", ["http://127.0.0.1:99999/feed.xml", "http://[::1/feed.xml", "http://127.0.0.1:0/"]
)
def test_redirect_to_a_malformed_url_is_an_error_not_an_exception(
    feed_server: FeedServer, location: str
) -> None:
    url = feed_server.add("/moved.xml", status=301, location=location)
    result = fetch(url, timeout=5.0)
    assert result.status is FetchStatus.ERROR
    assert result.error is not None


def test_fetch_many_survives_a_malformed_url_among_good_ones(feed_server: FeedServer) -> None:
    requests = [
        FetchRequest("bad", "http://127.0.0.1:99999/feed.xml"),
        FetchRequest("redirected", feed_server.add("/r.xml", status=302, location="http://[x/")),
        FetchRequest("ok", feed_server.add("/ok.xml", FEED)),
    ]
    with Fetcher(Defaults(), user_agent(SITE)) as fetcher:
        results = {r.source_id: r.status for r in fetch_many(fetcher, requests)}
    assert results == {
        "bad": FetchStatus.ERROR,
        "redirected": FetchStatus.ERROR,
        "ok": FetchStatus.OK,
    }


def test_a_feeds_guard_exempts_its_own_host_and_port_and_its_sources_list_only() -> None:
    listed = FullTextConfig(allow_private=(HostPort("docs.intranet", 8443),))
    source = SourceConfig(
        id="wiki", name="Wiki", agency="Wiki", url="http://Wiki.Intranet/rss", full_text=listed
    )
    feed = AddressGuard.for_feed(source.url, source)
    assert feed.allows("http://wiki.intranet:80/other")  # the scheme's port, any case
    assert feed.allows("https://docs.intranet:8443/page")
    assert not feed.allows("http://wiki.intranet:8080/admin")  # another service
    assert not feed.allows("https://wiki.intranet/rss")  # 443: another port
    assert feed.policy == "public docs.intranet:8443 wiki.intranet:80"
    pages = AddressGuard.for_pages(source)
    assert not pages.allows("http://wiki.intranet/story") and pages.allows(
        "https://docs.intranet:8443/"
    )
    assert (
        AddressGuard.for_pages(SourceConfig(id="p", name="P", agency="P", url="http://x/")).policy
        == "public"
    )
