"""Shared fixtures: a real HTTP server on 127.0.0.1, and real databases (SQLite and PostgreSQL).

Nothing here mocks HTTP or the database. Every test that takes `database_url` runs twice, once per
backend; each PostgreSQL run gets its own schema so parallel runs cannot collide.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import sqlalchemy
from lxml import etree
from sqlalchemy import event

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus"
IN_CI = os.environ.get("CI") == "true"
POSTGRES_URL = os.environ.get(
    "CAULBART_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def corpus_path(*parts: str) -> Path:
    """A file or folder of ../shared/corpus; outside CI a missing corpus skips, in CI it fails."""
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        if IN_CI:
            pytest.fail(f"{path} is missing: CI must have ../shared/corpus beside the checkout")
        pytest.skip(f"{path} not found: ../shared/corpus is not beside this checkout")
    return path


# --- the feed server ------------------------------------------------------------------------


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    content_type: str = "application/rss+xml; charset=utf-8"
    etag: str | None = None
    last_modified: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    location: str | None = None
    gzip: bool = False
    # Seconds to wait between chunks of the body (a slow server); 0 sends it at once.
    drip_delay: float = 0.0
    # Send no Content-Length and keep sending this chunk until the client goes away.
    endless_chunk: bytes | None = None
    # Seconds between bytes of the status line and headers (a server that never finishes them).
    header_drip: float = 0.0


class FeedServer:
    """Serves registered routes over real HTTP; counts requests and remembers their headers."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        # Another loopback address (127.0.0.2) is another host to Caulbart: its own budget.
        self.host = host
        self.routes: dict[str, Route] = {}
        self.requests: Counter[str] = Counter()
        self.request_headers: dict[str, list[dict[str, str]]] = {}
        # (time.monotonic(), path) of every request, in arrival order.
        self.request_log: list[tuple[float, str]] = []
        # (path, headers, body) of every POST (a WebSub hub's publish pings), answered 202 once
        # `posts_answered` is set (it is, unless a test clears it to play a hub that hangs).
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.posts_answered = threading.Event()
        self.posts_answered.set()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

            def do_POST(self) -> None:
                server._record_post(self)

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **options: object) -> str:
        """Serve `body` at `path` (with an ETag and Last-Modified unless given); returns the URL."""
        data = body.encode() if isinstance(body, str) else body
        route = Route(body=data, **options)  # type: ignore[arg-type]
        if route.status == 200 and route.etag is None and "etag" not in options:
            route.etag = f'"{uuid.uuid4().hex[:12]}"'
        if route.status == 200 and route.last_modified is None:
            route.last_modified = formatdate(usegmt=True)
        with self._lock:
            self.routes[path] = route
        return self.url(path)

    def add_file(self, path: str, file: Path, **options: object) -> str:
        return self.add(path, file.read_bytes(), **options)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        with self._lock:
            self.requests[path] += 1
            self.request_log.append((time.monotonic(), path))
            self.request_headers.setdefault(path, []).append(dict(handler.headers.items()))
            route = self.routes.get(path)
        if route is None:
            self._send(handler, 404, b"not found", {"Content-Type": "text/plain"})
            return
        headers = {"Content-Type": route.content_type, **route.headers}
        if route.location:
            headers["Location"] = route.location
        if route.status != 200:
            self._send(handler, route.status, route.body, headers)
            return
        if route.etag:
            headers["ETag"] = route.etag
        if route.last_modified:
            headers["Last-Modified"] = route.last_modified
        inm = handler.headers.get("If-None-Match")
        ims = handler.headers.get("If-Modified-Since")
        if (route.etag and inm == route.etag) or (
            not route.etag and route.last_modified and ims == route.last_modified
        ):
            self._send(handler, 304, b"", headers)
            return
        if route.endless_chunk is not None:
            self._send_endless(handler, route, headers)
            return
        if route.header_drip:
            self._drip_headers(handler, route)
            return
        body = route.body
        if route.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        self._send(handler, 200, body, headers, drip_delay=route.drip_delay)

    def _record_post(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length)
        with self._lock:
            self.posts.append((handler.path, dict(handler.headers.items()), body))
        self.posts_answered.wait(60)
        self._send(handler, 202, b"", {"Content-Type": "text/plain"})

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        headers: dict[str, str],
        drip_delay: float = 0.0,
    ) -> None:
        try:
            handler.send_response(status)
            for key, value in headers.items():
                handler.send_header(key, value)
            if status != 304:
                handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            if status == 304:
                return
            if drip_delay:
                for index in range(len(body)):
                    handler.wfile.write(body[index : index + 1])
                    handler.wfile.flush()
                    time.sleep(drip_delay)
            else:
                handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _send_endless(
        handler: BaseHTTPRequestHandler, route: Route, headers: dict[str, str]
    ) -> None:
        try:
            handler.send_response(200)
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.send_header("Connection", "close")
            handler.end_headers()
            assert route.endless_chunk is not None
            for _ in range(1_000_000):
                handler.wfile.write(route.endless_chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    @staticmethod
    def _drip_headers(handler: BaseHTTPRequestHandler, route: Route) -> None:
        head = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 200 + b"\r\n\r\n"
        try:
            for index in range(len(head)):
                handler.wfile.write(head[index : index + 1])
                handler.wfile.flush()
                time.sleep(route.header_drip)
        except (BrokenPipeError, ConnectionResetError):
            pass
        handler.close_connection = True

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


# --- databases ------------------------------------------------------------------------------


def _postgres_available() -> str | None:
    """None if the test PostgreSQL answers, else the reason it does not."""
    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # any failure to reach it is the reason reported
        return f"{type(exc).__name__}: {exc}"


@contextmanager
def database_for(kind: str, folder: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file in `folder`, or a PostgreSQL schema of its own
    (dropped afterwards). PostgreSQL unreachable: a skip outside CI, a failure in CI."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'caulbart.sqlite3'}"
        return
    problem = _postgres_available()
    if problem:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is required in CI: {problem}")
        pytest.skip(f"PostgreSQL at {POSTGRES_URL} not reachable: {problem}")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = sqlalchemy.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Every test taking this runs twice: on SQLite and on the local PostgreSQL."""
    with database_for(request.param, tmp_path) as url:
        yield url


@contextmanager
def opened(url: str) -> Iterator[sqlalchemy.Engine]:
    """The database at `url`, migrated as in production, its pool closed afterwards."""
    from aggregator.storage.db import open_database

    engine = open_database(url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[sqlalchemy.Engine]:
    with opened(database_url) as engine:
        yield engine


@contextmanager
def recorded_statements(engine: sqlalchemy.Engine) -> Iterator[list[str]]:
    """The SQL statements `engine` runs meanwhile, whitespace collapsed."""
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(" ".join(str(args[2]).split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[sqlalchemy.Engine]:
    """PostgreSQL alone, for what only happens there (concurrent writers, advisory locks)."""
    with database_for("postgresql", tmp_path) as url, opened(url) as engine:
        yield engine


# --- the command line -----------------------------------------------------------------------


@dataclass
class Caulbart:
    """Runs the installed `caulbart` entry point in a subprocess, as an editor would."""

    config: Path
    database_url: str
    cwd: Path

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "CAULBART_DATABASE_URL": self.database_url,
            "CAULBART_CONFIG": str(self.config),
        }
        return subprocess.run(
            [str(Path(sys.executable).parent / "caulbart"), *args],
            cwd=self.cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.fixture
def caulbart(tmp_path: Path, database_url: str) -> Caulbart:
    return Caulbart(config=tmp_path / "feeds.yaml", database_url=database_url, cwd=tmp_path)


def write_feeds_yaml(path: Path, sources: list[dict[str, object]], **top: object) -> Path:
    """A feeds.yaml with these sources (and optional site/defaults mappings).

    Every test feed is on 127.0.0.1, one host to Caulbart: unless a test sets `host_spacing`,
    its sources are fetched without spacing, as feeds on as many hosts would be.
    """
    import yaml

    given = top.pop("defaults", None)
    defaults = {"host_spacing": "0s", **(given if isinstance(given, dict) else {})}
    document: dict[str, object] = {
        "site": {"title": "Caulbart", "base_url": "http://caulbart.test"},
        **top,
        "defaults": defaults,
        "sources": sources,
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


SITEMAP_NS = {
    "s": "http://www.sitemaps.org/schemas/sitemap/0.9",
    "n": "http://www.google.com/schemas/sitemap-news/0.9",
}


def sitemaps(client: Any) -> dict[str, Any]:
    """Every sitemap /sitemap.xml (a sitemap index) names, parsed, by its path; each answered
    200 as XML."""

    def fetch(path: str) -> Any:
        response = client.get(path)
        assert response.status_code == 200 and response.mimetype == "application/xml", path
        return etree.fromstring(response.data)

    index = fetch("/sitemap.xml")
    assert index.tag == f"{{{SITEMAP_NS['s']}}}sitemapindex"
    paths = [
        urlsplit(loc).path for loc in index.xpath("s:sitemap/s:loc/text()", namespaces=SITEMAP_NS)
    ]
    return {path: fetch(path) for path in paths}
