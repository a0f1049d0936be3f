"""WebSub: after a commit, a publish ping to the site's hubs for every feed whose stories
changed, sent in the background so that a slow hub holds up neither the ingest nor a request.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from urllib.parse import urlencode

import httpx
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from aggregator import limits
from aggregator.publishing.scope import FORMATS, FeedQuery
from aggregator.storage.db import read_sessions
from aggregator.storage.models import Entry, FeedChange, Story, StoryTag, Tag
from aggregator.stories import review
from aggregator.types import SiteConfig

log = logging.getLogger(__name__)


def changed_feeds(
    session: Session, story_ids: Iterable[int], departed_at: datetime | None = None
) -> list[FeedQuery]:
    """The feeds the given stories appear in (subscription documents only), and, with
    `departed_at`, the tags' feeds that stories left at that moment (models.FeedChange): a
    story that lost a tag is no longer there to name that feed."""
    departed: list[FeedQuery] = []
    if departed_at is not None:
        slugs = session.scalars(
            select(FeedChange.value)
            .where(FeedChange.at == departed_at, FeedChange.kind == "tag")
            .distinct()
        )
        departed = [FeedQuery("tag", slug) for slug in sorted(slugs)]
    ids = sorted(set(story_ids))
    if ids:  # a held story changes no feed
        ids = list(session.scalars(select(Story.id).where(Story.id.in_(ids), review.visible())))
    if not ids:
        return departed
    queries = [FeedQuery()]
    sections = session.scalars(select(Story.section).where(Story.id.in_(ids)).distinct())
    queries += [FeedQuery("section", name) for name in sorted(sections)]
    sources = session.scalars(select(Entry.source_id).where(Entry.story_id.in_(ids)).distinct())
    queries += [FeedQuery("source", source_id) for source_id in sorted(sources)]
    slugs = session.scalars(
        select(Tag.slug)
        .join(StoryTag, StoryTag.tag_id == Tag.id)
        .where(StoryTag.story_id.in_(ids))
        .distinct()
    )
    queries += [FeedQuery("tag", slug) for slug in sorted(slugs)]
    return list(dict.fromkeys(queries + departed))


def topics(site: SiteConfig, queries: Iterable[FeedQuery]) -> list[str]:
    base = site.base_url.rstrip("/")
    return [base + query.feed_path(fmt) for query in queries for fmt in FORMATS]


def notify_hubs(site: SiteConfig, topic_urls: Sequence[str]) -> None:
    """WebSub publish ping (`hub.mode=publish`, one `hub.url` per topic) to every hub, in
    requests of at most WEBSUB_TOPICS_PER_PING topics.

    Best effort: a hub that fails is logged; subscribers still poll and get the change.
    """
    if not site.websub_hubs or not topic_urls:
        return
    step = limits.WEBSUB_TOPICS_PER_PING
    bodies = [
        urlencode(
            [("hub.mode", "publish")] + [("hub.url", url) for url in topic_urls[i : i + step]]
        )
        for i in range(0, len(topic_urls), step)
    ]
    for hub in site.websub_hubs:
        try:
            for body in bodies:
                response = httpx.post(
                    hub,
                    content=body.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                    timeout=limits.WEBSUB_TIMEOUT,
                )
                response.raise_for_status()
        except httpx.HTTPError as exc:
            log.warning("websub hub=%s publish failed: %s", hub, exc)
            continue
        log.info("websub hub=%s published topics=%d", hub, len(topic_urls))


class HubPings:
    """Publish pings sent by one background thread per process, so that a slow or unreachable hub
    holds up neither the ingest (which announces after every commit) nor a web request. Topics
    asked for while a ping is under way wait together and go in the next one; during a pass
    (`held`) they all wait for its end, so that each hub hears of each feed once a pass, not
    once for every source's commit that changed it.

    A command's process waits for them at its end, at most WEBSUB_EXIT_WAIT seconds (atexit).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        """Also in a forked child: the parent's thread is not there, and its lock may be held."""
        self._changed = threading.Condition()
        # Per site (its hubs): the topics waiting, in the order asked.
        self._waiting: dict[SiteConfig, dict[str, None]] = {}
        self._sending = False
        self._holds = 0
        self._thread: threading.Thread | None = None

    @contextmanager
    def held(self) -> Iterator[None]:
        """Keep the pings asked for inside this block, and send them together at its end."""
        with self._changed:
            self._holds += 1
        try:
            yield
        finally:
            with self._changed:
                self._holds -= 1
                self._changed.notify_all()

    def send(self, site: SiteConfig, topic_urls: Sequence[str]) -> None:
        """Queue a ping of these topics to the site's hubs; returns at once."""
        if not site.websub_hubs or not topic_urls:
            return
        with self._changed:
            self._waiting.setdefault(site, {}).update(dict.fromkeys(topic_urls))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="websub", daemon=True)
                self._thread.start()
            self._changed.notify_all()

    def flush(self, timeout: float) -> bool:
        """Wait until every ping asked for was sent or failed, at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._waiting or self._sending:
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sum(len(waiting) for waiting in self._waiting.values())
                    log.warning("websub gave up waiting for hubs: %d topics not pinged", topics)
                    return False
                self._changed.wait(left)
        return True

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._waiting or self._holds:
                    self._changed.wait()
                batch, self._waiting = self._waiting, {}
                self._sending = True
            try:
                for site, topic_urls in batch.items():
                    notify_hubs(site, list(topic_urls))
            except Exception:  # the thread must outlive any one ping
                log.exception("websub ping failed")
            finally:
                with self._changed:
                    self._sending = False
                    self._changed.notify_all()


PINGS = HubPings()
atexit.register(PINGS.flush, limits.WEBSUB_EXIT_WAIT)
os.register_at_fork(after_in_child=PINGS._reset)


def announce(
    engine: Engine,
    site: SiteConfig,
    story_ids: Iterable[int],
    departed_at: datetime | None = None,
) -> None:
    """After a commit that changed these stories: ping the hubs (in the background, HubPings)
    for every feed they are in, and for the tags' feeds stories left in that commit
    (`departed_at`, the time it noted)."""
    ids = list(story_ids)
    if not site.websub_hubs or not ids:  # a story that left a feed was itself changed
        return
    with read_sessions(engine)() as session:
        queries = changed_feeds(session, ids, departed_at)
    PINGS.send(site, topics(site, queries))
