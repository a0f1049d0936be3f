#!/usr/bin/env python3
"""The README's promise, checked as a new user meets it: Caulbart built as a wheel and installed
into a fresh venv WITHOUT the test extras, then its main job over a small corpus served on
loopback; and `make run` itself in this checkout.

Each step prints one line; the first failure prints `smoke: FAIL` with the reason, exit 1.
- a loopback HTTP server: three real feeds from ../shared/corpus, and a feed of summaries whose
  article pages (real layouts around BBC texts, and one odd page only trafilatura's jusText
  fallback reads) a `full_text: true` source fetches;
- `pip wheel --no-deps .`, then a fresh venv and `pip install` of that wheel (a plain install);
- that venv's `caulbart check`, `fetch --all`, `serve` (home page, a story page, /feed.atom,
  /feed.rss, /feed.json, the full texts), `export`;
- `make run` with CAULBART_CONFIG and PORT on the same corpus, started before the wheel's
  install (both installs wait on the package index): /healthz, stories in /feed.json, then
  SIGTERM and a prompt exit of make and every process it started.

Databases are SQLite files in a temporary directory (CAULBART_DATABASE_URL), the web front's
key comes from CAULBART_SECRET_KEY: nothing is written to instance/. Only the standard library:
run it with any Python 3.11+, `python3 .ci/smoke.py`.
"""

from __future__ import annotations

import contextlib
import html
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import venv
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.article_pages import LAYOUT_LIST, load_articles, render, render_odd  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus"
REAL = CORPUS / "feeds" / "real"
# Real feeds of the shared corpus: two wire services' RSS and a blog's Atom.
FEEDS = {
    "reuters-world": REAL / "wire" / "reuters-worldnews-2018-01-30.rss",
    "huffpost-world": REAL / "wire" / "huffpost-worldnews-2019.rss",
    "art-of-the-problem": REAL / "fastfeedparser-2026" / "021a787a782817fc.atom",
}
STEP_TIMEOUT = 180  # seconds for one command; the whole smoke takes far less
INSTALL_TIMEOUT = 900  # seconds for an install from the package index, on a slow network


class SmokeFailure(Exception):
    """A step did not do what the README promises."""


def step(name: str, started: float, detail: str = "") -> None:
    print(f"smoke: ok   {name:<28} {time.monotonic() - started:6.1f} s  {detail}", flush=True)


def run(
    *args: str | Path,
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    timeout: float = STEP_TIMEOUT,
) -> str:
    """A command's stdout; its stderr in the failure if it exits non-zero."""
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise SmokeFailure(
            f"{' '.join(map(str, args))} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
        )
    return done.stdout


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, timeout: float = 10) -> tuple[int, str, bytes]:
    """(status, content type, body); an HTTP error status is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def get_ok(url: str) -> tuple[str, bytes]:
    status, content_type, body = get(url)
    if status != 200 or not body:
        raise SmokeFailure(f"GET {url}: HTTP {status}, {len(body)} bytes")
    return content_type, body


# --- the loopback corpus --------------------------------------------------------------------


class Corpus(ThreadingHTTPServer):
    """Fixed documents by path on 127.0.0.1; anything else is 404 (robots.txt too)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CorpusHandler)
        self.documents: dict[str, tuple[str, bytes]] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class CorpusHandler(BaseHTTPRequestHandler):
    server: Corpus

    def do_GET(self) -> None:
        found = self.server.documents.get(self.path)
        if found is None:
            self.send_error(404)
            return
        content_type, body = found
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the smoke prints its own lines."""


@contextlib.contextmanager
def loopback_corpus() -> Iterator[Corpus]:
    server = Corpus()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def publish_corpus(server: Corpus) -> tuple[list[dict[str, object]], list[str]]:
    """Serve the real feeds, and a feed of summaries with its article pages (each layout, and
    one odd page only trafilatura's jusText fallback reads); the sources, and the last
    paragraph of each article, which only its page gives."""
    sources: list[dict[str, object]] = []
    for source_id, path in FEEDS.items():
        kind = "atom+xml" if path.suffix == ".atom" else "rss+xml"
        server.documents[f"/{source_id}.xml"] = (f"application/{kind}", path.read_bytes())
        sources.append({"id": source_id, "url": f"{server.base}/{source_id}.xml"})
    articles = load_articles(CORPUS)
    pages = [
        (f"/news/{layout.name}.html", render(layout, article, f"/img/{layout.name}.jpg"), article)
        for layout, article in zip(LAYOUT_LIST, articles, strict=False)
    ]
    odd = articles[len(LAYOUT_LIST)]
    pages.append(("/news/odd.html", render_odd(odd), odd))
    now = datetime.now(UTC)
    items = []
    for index, (page_path, page, article) in enumerate(pages):
        server.documents[page_path] = ("text/html; charset=utf-8", page.encode())
        summary = f"In brief: {article.paragraphs[0].split('. ')[0]}."
        items.append(
            f"<item><title>{html.escape(article.title)}</title>"
            f"<link>{server.base}{page_path}</link><guid isPermaLink='false'>{page_path}</guid>"
            f"<pubDate>{format_datetime(now - timedelta(minutes=index))}</pubDate>"
            f"<description>{html.escape(summary)}</description></item>"
        )
    rss = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Courier</title><link>{server.base}/</link><description>summaries</description>"
        f"{''.join(items)}</channel></rss>"
    )
    server.documents["/courier.xml"] = ("application/rss+xml", rss.encode())
    sources.append(
        {"id": "courier", "url": f"{server.base}/courier.xml", "full_text": {"allow_private": True}}
    )
    return sources, [article.paragraphs[-1] for _, _, article in pages]


def flat(text: str) -> str:
    return " ".join(html.unescape(text).split())


def write_feeds_yaml(path: Path, sources: list[dict[str, object]], base_url: str) -> None:
    """JSON is YAML: the file is written with json.dumps, no YAML library needed here."""
    config = {
        "site": {"title": "Caulbart smoke", "base_url": base_url, "language": "en"},
        "defaults": {"host_spacing": "0s", "timeout": "20s"},
        "sources": [{"section": "world", **source} for source in sources],
    }
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")


# --- the steps ------------------------------------------------------------------------------


def build_wheel(work: Path) -> Path:
    """The wheel of this checkout, built as pip builds it for an index."""
    begun = time.monotonic()
    wheels = work / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, ROOT)
    (wheel,) = wheels.glob("caulbart-*.whl")
    step("pip wheel --no-deps .", begun, wheel.name)
    return wheel


def install_wheel(work: Path, wheel: Path) -> Path:
    """The wheel in a fresh venv (its own pip), runtime dependencies only; the venv's bin/."""
    begun = time.monotonic()
    venv.EnvBuilder(with_pip=True).create(work / "venv")
    bin_dir = work / "venv" / "bin"
    run(bin_dir / "python", "-m", "pip", "install", "--quiet", wheel, timeout=INSTALL_TIMEOUT)
    run(bin_dir / "python", "-m", "pip", "check")
    step("fresh venv: pip install wheel", begun, "no test extras; pip check clean")
    return bin_dir


def story_path(feed_json: bytes) -> str:
    """The path of the first story of a JSON Feed whose items have stories' own URLs."""
    items = json.loads(feed_json)["items"]
    if not items:
        raise SmokeFailure("/feed.json has no items")
    return "/" + str(items[0]["url"]).split("/", 3)[3]


def check_site(base: str, article_ends: list[str]) -> str:
    """Home page, a story page and the three feeds answer 200 with a valid body; the full-text
    source's stories carry their articles' text."""
    content_type, home = get_ok(base + "/")
    if "text/html" not in content_type or b"<html" not in home.lower():
        raise SmokeFailure(f"home page is not HTML: {content_type}")
    _, feed_json = get_ok(base + "/feed.json")
    path = story_path(feed_json)
    _, story = get_ok(base + path)
    if b"<article" not in story and b"<h1" not in story:
        raise SmokeFailure(f"story page {path} has no article")
    atom = ElementTree.fromstring(get_ok(base + "/feed.atom")[1])  # well-formed, or ParseError
    if not atom.findall("{http://www.w3.org/2005/Atom}entry"):
        raise SmokeFailure("/feed.atom has no entry")
    rss = ElementTree.fromstring(get_ok(base + "/feed.rss")[1])
    if not rss.findall("channel/item"):
        raise SmokeFailure("/feed.rss has no item")
    count = len(json.loads(feed_json)["items"])
    _, courier = get_ok(base + "/source/courier/feed.json")
    bodies = [flat(item.get("content_html", "")) for item in json.loads(courier)["items"]]
    missing = [end[:60] for end in article_ends if not any(flat(end) in b for b in bodies)]
    if missing:
        raise SmokeFailure(f"full text missing from the courier's stories: {missing}")
    return f"home, {path[:30]}..., 3 feeds ({count} items), {len(article_ends)} full texts"


@contextlib.contextmanager
def started(
    args: list[str], env: dict[str, str], log: Path, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """A long-running command in its own process group, killed and reaped if still running."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_for(
    url: str, process: subprocess.Popen[bytes], log: Path, ready: str, within: float = STEP_TIMEOUT
) -> None:
    """Until `url` answers as `ready` says ("up": any 200; "stories": a JSON Feed with items)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SmokeFailure(
                f"exited {process.returncode} before {url} answered:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        with contextlib.suppress(OSError):
            status, _, body = get(url, timeout=2)
            if status == 200 and (ready == "up" or json.loads(body)["items"]):
                return
        time.sleep(0.25)
    raise SmokeFailure(
        f"{url} not {ready} after {within} s:\n" + log.read_text(errors="replace")[-3000:]
    )


def stop(process: subprocess.Popen[bytes], log: Path, within: float = 15) -> float:
    """SIGTERM to the process; seconds until it and every process of its group are gone."""
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        raise SmokeFailure(
            f"still running {within} s after SIGTERM:\n" + log.read_text(errors="replace")[-3000:]
        ) from None
    while time.monotonic() - sent < within:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return time.monotonic() - sent
        time.sleep(0.1)
    raise SmokeFailure(f"processes of the group left {within} s after SIGTERM")


def smoke_wheel(bin_dir: Path, env: dict[str, str], article_ends: list[str], work: Path) -> None:
    caulbart = bin_dir / "caulbart"
    begun = time.monotonic()
    out = run(caulbart, "check", env=env, cwd=work)
    step("caulbart check", begun, out.strip().splitlines()[-1] if out.strip() else "")

    begun = time.monotonic()
    out = run(caulbart, "fetch", "--all", env=env, cwd=work)
    summary = next((line for line in out.splitlines() if " sources: " in line), "")
    if " 0 error" not in summary and "error" in summary:
        raise SmokeFailure(f"fetch --all reported errors:\n{out}")
    step("caulbart fetch --all", begun, summary.strip())

    begun = time.monotonic()
    port = free_port()
    log = work / "serve.log"
    with started([str(caulbart), "serve", "--port", str(port)], env, log, work) as serve:
        wait_for(f"http://127.0.0.1:{port}/healthz", serve, log, "up")
        pages = check_site(f"http://127.0.0.1:{port}", article_ends)
        took = stop(serve, log)
        if serve.returncode != 0:
            raise SmokeFailure(f"caulbart serve exited {serve.returncode} on SIGTERM")
    step("caulbart serve", begun, f"{pages}; stopped in {took:.1f} s")

    begun = time.monotonic()
    lines = run(caulbart, "export", env=env, cwd=work).splitlines()
    stories = [json.loads(line) for line in lines]
    if not stories or not all(story.get("id") and story.get("entries") for story in stories):
        raise SmokeFailure(f"export printed no stories with entries ({len(lines)} lines)")
    with_text = [s for s in stories if any(e["source"] == "courier" for e in s["entries"])]
    if not with_text:
        raise SmokeFailure("export has no story of the full-text source")
    step("caulbart export", begun, f"{len(stories)} stories as JSON lines")


@dataclass(frozen=True)
class MakeRun:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    begun: float
    fresh: bool


@contextlib.contextmanager
def make_run(env: dict[str, str], work: Path) -> Iterator[MakeRun]:
    """`make run` as the README says (CAULBART_CONFIG, PORT), on a database of its own."""
    fresh = not (ROOT / ".venv").exists()
    port = free_port()
    run_env = {
        **env,
        "CAULBART_DATABASE_URL": f"sqlite:///{work / 'make-run.sqlite3'}",
        "PORT": str(port),
    }
    log = work / "make-run.log"
    begun = time.monotonic()
    with started(["make", "run"], run_env, log, ROOT) as process:
        yield MakeRun(process, port, log, begun, fresh)


def check_make_run(make: MakeRun) -> None:
    """It answers /healthz, serves stories at /feed.json, and stops on SIGTERM."""
    base = f"http://127.0.0.1:{make.port}"
    wait_for(base + "/healthz", make.process, make.log, "up", INSTALL_TIMEOUT)
    wait_for(base + "/feed.json", make.process, make.log, "stories")
    took = stop(make.process, make.log)
    venv_note = "fresh .venv, plain install" if make.fresh else "existing .venv reused"
    step(
        "make run",
        make.begun,
        f"{venv_note}; /healthz, stories at /feed.json; SIGTERM: all exited in {took:.1f} s"
        f" (make {make.process.returncode})",
    )


def main() -> int:
    begun = time.monotonic()
    instance = (ROOT / "instance").exists()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="caulbart-smoke-") as tmp,
            loopback_corpus() as server,
        ):
            work = Path(tmp)
            sources, article_ends = publish_corpus(server)
            feeds = work / "feeds.yaml"
            write_feeds_yaml(feeds, sources, "http://127.0.0.1:8000")
            env = {
                **os.environ,
                "CAULBART_CONFIG": str(feeds),
                "CAULBART_DATABASE_URL": f"sqlite:///{work / 'caulbart.sqlite3'}",
                # Else the web front keeps a key in ./instance.
                "CAULBART_SECRET_KEY": secrets.token_hex(32),
            }
            env.pop("PYTHONPATH", None)  # the installed wheel, never this checkout
            wheel = build_wheel(work)
            # `make run` installs its .venv while the wheel goes into its venv: both wait on
            # the package index, so they overlap; it is checked once the wheel's steps are done.
            with make_run(env, work) as make:
                bin_dir = install_wheel(work, wheel)
                smoke_wheel(bin_dir, env, article_ends, work)
                check_make_run(make)
        if not instance and (ROOT / "instance").exists():
            raise SmokeFailure("the smoke wrote into instance/")
    except Exception as exc:  # any failure is the smoke's verdict, printed with its reason
        print(f"smoke: FAIL {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"smoke: all steps passed in {time.monotonic() - begun:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
