"""The whole shared real-world corpus in one `caulbart fetch --all`, as a new user's feed list.

Every file of ../shared/corpus/feeds/real, and every feed-rs conformance file (trimmed real feeds
and spec examples: whole documents), is served on loopback as one source of one feeds.yaml. The
pass must end with exit code 0, every source must hold entries or a readable recorded error,
and every document must keep at least as many entries as feedparser reads in the same bytes,
exact duplicates aside. Each document that keeps fewer is listed in LOSSES with its reasons, and
the list must be exact: a fix that stops a loss fails the test until its line is taken out.
Each listed reason is checked too, on the product's own parse and normalise stages.
Eight of the real feeds (Hugo sites) date some pages "Mon, 01 Jan 0001": the pass must store
those items too, and every other source of the pass.

feedparser's own conformance suite is left out: each of its 2,100 files is a minimal document
made to check one field of feedparser's result (most hold no item at all, many only a channel
title), not a feed as a publisher serves it. Its cases belong to field-level tests.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import feedparser
import pytest
import sqlalchemy

from aggregator import limits
from aggregator.ingest.links import media_url
from aggregator.ingest.normalise import normalise_entry, told_apart_guid
from aggregator.ingest.parse import parse_feed
from aggregator.types import Defaults, FetchResult, FetchStatus, Item, RawEntry
from tests.conftest import CORPUS, Caulbart, FeedServer, corpus_path, write_feeds_yaml
from tests.ingest.test_corpus import CONTENT_TYPES, GZIP_MAGIC

FEEDS = CORPUS / "feeds"
FOLDERS = ("real", "conformance/feed-rs")
# Seconds for the first ingest of ~440 sources: generous, for a small machine shared with others.
PASS_TIMEOUT = 900


def documents() -> list[str]:
    """Every served file, by its path under feeds/ (the key of LOSSES and EMPTY)."""
    return sorted(
        path.relative_to(FEEDS).as_posix()
        for folder in FOLDERS
        for path in (FEEDS / folder).rglob("*")
        if path.is_file()
    )


def source_id(document: str) -> str:
    """A feeds.yaml id made from the file's path: lower-case words joined by '-'."""
    words = re.sub(r"[^a-z0-9]+", "-", document.lower().removeprefix("conformance/"))
    return words.strip("-")[:64].rstrip("-")


def content_type(document: str) -> str:
    return CONTENT_TYPES.get(Path(document).suffix, "application/xml")


def served_bytes(document: str) -> bytes:
    """What the product parses: the body after its Content-Encoding is undone."""
    body = (FEEDS / document).read_bytes()
    return gzip.decompress(body) if body.startswith(GZIP_MAGIC) else body


# --- the reference: feedparser's reading of the same bytes ----------------------------------


def distinct_entries(document: str) -> int:
    """How many entries feedparser reads in the document, exact duplicates counted once.

    Two entries are exact duplicates when feedparser gives them the same id, link, title,
    summary, content, published and updated dates and enclosure URLs: nothing a reader or the
    product's identity of an entry could tell apart. JSON Feed, which feedparser 6 does not
    read, counts the objects of its `items` list, identical objects once.
    """
    body = served_bytes(document)
    if body.removeprefix(b"\xef\xbb\xbf").lstrip()[:1] == b"{":
        return _distinct_json_items(body)
    # The product's own options: they change the values read, never how many entries there are.
    parsed = feedparser.parse(
        io.BytesIO(body),
        response_headers={"content-type": content_type(document)},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    return len({_identity(entry) for entry in parsed.entries})


def media_files(document: str) -> set[str]:
    """The audio and video files feedparser reads in the document's entries (each entry's first
    `limits.MAX_ENCLOSURES`), as the absolute http(s) URLs the product stores."""
    parsed = feedparser.parse(
        io.BytesIO(served_bytes(document)),
        response_headers={"content-type": content_type(document)},
    )
    found: set[str] = set()
    for entry in parsed.entries:
        for enclosure in (entry.get("enclosures") or [])[: limits.MAX_ENCLOSURES]:
            kind = str(enclosure.get("type") or "").lower()
            url = media_url(str(enclosure.get("href") or ""), None)
            if url and kind.startswith(("audio/", "video/")):
                found.add(url)
    return found


def stored_files(caulbart: Caulbart) -> dict[str, set[str]]:
    """Per source, the URLs of the files its stored entries carry."""
    engine = sqlalchemy.create_engine(caulbart.database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sqlalchemy.text("SELECT source_id, enclosures FROM entries")
            ).all()
    finally:
        engine.dispose()
    files: dict[str, set[str]] = {}
    for source, enclosures in rows:
        listed = json.loads(enclosures) if isinstance(enclosures, str) else enclosures
        files.setdefault(source, set()).update(e["url"] for e in listed or ())
    return files


def _identity(entry: Any) -> tuple[object, ...]:
    return (
        entry.get("id"),
        entry.get("link"),
        entry.get("title"),
        entry.get("summary"),
        tuple(part.get("value") for part in entry.get("content") or ()),
        entry.get("published"),
        dict.get(entry, "updated"),  # FeedParserDict would answer `published` for it
        tuple(enclosure.get("href") for enclosure in entry.get("enclosures") or ()),
    )


def _distinct_json_items(body: bytes) -> int:
    try:
        document = json.loads(body, strict=False)
    except ValueError:
        return 0
    if not isinstance(document, dict) or "jsonfeed.org/version/" not in str(
        document.get("version")
    ):
        return 0
    items = document.get("items")
    if not isinstance(items, list):
        return 0
    return len({json.dumps(item, sort_keys=True) for item in items if isinstance(item, dict)})


# --- what the product loses today, document by document -------------------------------------


@dataclass(frozen=True)
class Loss:
    """Entries of one document the pass does not store, and why."""

    entries: int
    reason: str


WINDOW = "more entries than defaults.max_entries (1000): the rest are not read, as the fetch notes"
REPEATED_ITEM = (
    "an item without a guid repeats an earlier item's link or text, title and date (feedparser "
    "tells them apart by a field the product does not read): one entry, and the fetch says so"
)
SHARED_GUID = (
    "the publisher gave two different items one guid; the first is kept and the second "
    "skipped, and the fetch's note says so"
)
NOTHING_SHOWN = (
    "an item with no title, link, text or enclosure (an id, an author, or nothing): "
    "normalise_entry returns None and it is dropped, without a word (issue 33 class 6 keeps "
    "untitled items that have a link, text or enclosure; these have none)"
)

LOSSES: dict[str, tuple[Loss, ...]] = {
    # A game-status feed of 1,046 items: only the first 1,000 are read (14 of those, "Halo
    # Infinite", "Fiesta Online" x3..., repeat an earlier item's title and text on other dates:
    # entries of their own).
    "real/fastfeedparser-2026/cc314ce5dfbb3adc.rss": (Loss(46, WINDOW),),
    # 10 illegally nested <item>s that feedparser reads as empty entries (9 exact duplicates).
    "real/node-feedparser/illegally-nested.xml": (Loss(1, NOTHING_SHOWN),),
    # Four items with an id, authors and an empty content_html.
    "real/rsparser/authors.json": (Loss(4, NOTHING_SHOWN),),
    # Two pairs of posts, each pair under one guid (#a080631, #a100632).
    "real/rsparser/scriptingNews.rss": (Loss(2, SHARED_GUID),),
    # An <entry> holding only an empty <author>.
    "real/rss-parser/incomplete-fields.atom": (Loss(1, NOTHING_SHOWN),),
    # Two Taverncast episodes under the guid of one mp3.
    "real/rss-parser/itunes-missing-image.rss": (Loss(1, SHARED_GUID),),
    # An <entry> holding only its <id>.
    "real/rss-parser/missing-fields.atom": (Loss(1, NOTHING_SHOWN),),
}

# Documents whose own items share a story, with how many such stories and why: each is one
# text told twice by its feed under two guids (the text says they are one item).
ONE_SOURCE_TWICE: dict[str, tuple[int, str]] = {
    "real/fastfeedparser-2026/137dd53eb3d6d860.rss": (
        1,
        "a post and its .fr page, untranslated: the same headline and text",
    ),
    "real/fastfeedparser-2026/cc314ce5dfbb3adc.rss": (
        2,
        "a game-status feed re-posting a service's status (Halo Infinite, AION) on other dates "
        "under new ids: the same headline and text",
    ),
}

# Sources that end the pass `ok` with no entry and no error: neither stored entries nor a
# recorded error to show for them. Each with why.
EMPTY = {
    "conformance/feed-rs/rss2/rss_2.0_invalid_1.xml": (
        "a channel cut off before its first item; feedparser reads no entry either"
    ),
    "real/fastfeedparser-2026/7ef13a42fa7e177a.rss": (
        "items in an undeclared rss: prefix after a broken XML declaration; feedparser reads "
        "no entry either"
    ),
    "real/fastfeedparser-integration/malformed_rss_namespaced.xml": (
        "items in an undeclared rss: prefix after a broken XML declaration; feedparser reads "
        "no entry either"
    ),
    "real/rsparser/authors.json": "all 4 items lost: " + NOTHING_SHOWN,
    "real/rss-parser/incomplete-fields.atom": "its one item lost: " + NOTHING_SHOWN,
    "real/rss-parser/missing-fields.atom": "its one item lost: " + NOTHING_SHOWN,
}


# --- the pass -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expected() -> Iterator[dict[str, int]]:
    """feedparser's count of each document, made once for both databases."""
    corpus_path("feeds", "real")
    corpus_path("feeds", "conformance", "feed-rs")
    yield {document: distinct_entries(document) for document in documents()}


def serve_corpus(server: FeedServer) -> list[dict[str, object]]:
    """Every document at /<its path>, with the content type its name suggests; feeds.yaml's
    sources for them, one per document."""
    sources: list[dict[str, object]] = []
    for document in documents():
        body = (FEEDS / document).read_bytes()
        # Two real files are gzip bodies as they came off the wire: served as a server would.
        headers = {"Content-Encoding": "gzip"} if body.startswith(GZIP_MAGIC) else {}
        url = server.add(f"/{document}", body, content_type=content_type(document), headers=headers)
        sources.append(
            {
                "id": source_id(document),
                "name": document,
                "url": url,
                "section": document.split("/")[-2],
            }
        )
    return sources


def test_whole_corpus_in_one_pass_keeps_every_entry_feedparser_reads(
    caulbart: Caulbart, feed_server: FeedServer, expected: dict[str, int]
) -> None:
    sources = serve_corpus(feed_server)
    ids = {str(source["id"]): str(source["name"]) for source in sources}
    assert len(ids) == len(sources), "two documents make the same source id"
    write_feeds_yaml(caulbart.config, sources)

    fetched = caulbart("fetch", "--all", timeout=PASS_TIMEOUT)
    assert fetched.returncode == 0, fetched.stderr[-5000:]
    status = caulbart("status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["id"]: row for row in map(json.loads, status.stdout.splitlines())}
    assert set(rows) == set(ids)

    for row in rows.values():
        # Fetched, and its claim released, whatever became of it.
        assert row["last_fetch_at"] and row["claimed_by"] is None, row["id"]
        assert row["last_status"] == ("error" if row["last_error"] else "ok"), row["id"]
    stored = {ids[source]: row["entries"] for source, row in rows.items()}
    errors = {ids[source]: row["last_error"] for source, row in rows.items() if row["last_error"]}
    for document, error in errors.items():
        assert error.strip() and "\n" not in error and "Traceback" not in error, document
    silent = {d for d, count in stored.items() if count == 0 and d not in errors}
    assert silent == set(EMPTY)

    losses = {d: expected[d] - count for d, count in stored.items() if count < expected[d]}
    listed = {d: sum(loss.entries for loss in found) for d, found in LOSSES.items()}
    assert losses == listed
    totals = (
        f"{len(sources)} sources: {sum(stored.values())} new, 0 updated, 0 unchanged, 0 304, "
        f"{len(errors)} error, 0 filtered"
    )
    assert totals in fetched.stdout
    told_twice = one_source_twice_in_a_story(caulbart, ids)
    assert told_twice == {d: count for d, (count, _) in ONE_SOURCE_TWICE.items()}
    # Every audio and video file of a document whose entries are all kept is carried with them.
    files = stored_files(caulbart)
    carried = {ids[s]: files.get(s, set()) for s in ids if ids[s] not in LOSSES}
    dropped = {d: media_files(d) - kept for d, kept in carried.items() if media_files(d) - kept}
    assert sum(len(media_files(d)) for d in carried) > 300  # 33 documents carry such files
    assert dropped == {}


def one_source_twice_in_a_story(caulbart: Caulbart, ids: dict[str, str]) -> Counter[str]:
    """Per document, the stories holding two or more of its items: a feed's distinct items are
    distinct news unless their text says otherwise (ONE_SOURCE_TWICE lists where it does)."""
    exported = caulbart("export")
    assert exported.returncode == 0, exported.stderr
    found: Counter[str] = Counter()
    for story in map(json.loads, exported.stdout.splitlines()):
        sources = Counter(entry["source"] for entry in story["entries"])
        found.update(ids[source] for source, count in sources.items() if count > 1)
    return found


def reasons_for(document: str) -> Counter[str]:
    """Why the product's own parse and normalise stages, run on the served bytes, leave entries
    of `document` out: the reason each one that does not become an item of its own falls under.

    Entries equal as the parser hands them over count once (RawEntry carries no enclosures: two
    items differing only in theirs would count once here and show up as an unexplained loss).
    """
    served = FetchResult(
        source_id="corpus",
        url=f"http://127.0.0.1/{document}",
        status=FetchStatus.OK,
        body=served_bytes(document),
        headers=(("content-type", content_type(document)),),
    )
    feed = parse_feed(served, Defaults().max_entries)
    reasons: Counter[str] = Counter()
    if feed.truncated_from:
        reasons[WINDOW] = feed.truncated_from - len(feed.entries)
    read: list[tuple[RawEntry, Item]] = []
    for raw in dict.fromkeys(feed.entries):
        item = normalise_entry(raw, now=datetime.now(UTC))
        if item is None:
            reasons[NOTHING_SHOWN] += 1
        else:
            read.append((raw, item))
    without_id = Counter(item.guid for raw, item in read if not raw.id)
    kept: dict[str, Item] = {}
    for raw, item in read:
        if not raw.id and without_id[item.guid] > 1:
            item = replace(item, guid=told_apart_guid(raw, item))
        if item.guid not in kept:
            kept[item.guid] = item
        else:
            reasons[SHARED_GUID if raw.id else REPEATED_ITEM] += 1
    return reasons


def test_each_listed_loss_has_the_reason_given() -> None:
    corpus_path("feeds", "real")
    for document, losses in LOSSES.items():
        listed = Counter({loss.reason: loss.entries for loss in losses})
        assert reasons_for(document) == listed, document
