"""The story read model shared by the story page and the feeds: a story as Caulbart
republishes it (PublishedStory), with its credits, tags, files and its best source's terms
(excerpt_only, images, rights) already applied.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlsplit

import nh3
from sqlalchemy import select
from sqlalchemy.orm import Session

from aggregator.ingest import markup
from aggregator.permalinks import story_url
from aggregator.storage.models import Entry, Setting, Source, Story
from aggregator.stories import tag_index
from aggregator.types import Enclosure, SiteConfig


@dataclass(frozen=True)
class Original:
    """One source's telling of a story, credited in the feeds."""

    source_id: str
    source_name: str
    agency: str
    feed_url: str
    feed_title: str
    link: str | None
    title: str


@dataclass(frozen=True)
class PublishedStory:
    """A story as Caulbart republishes it, with its source's terms already applied."""

    id: int
    tag_uri: str
    url: str
    title: str
    lede: str
    body_html: str | None  # None: the source allows the lede and a link only
    published: datetime
    updated: datetime
    section: str
    language: str | None
    authors: tuple[str, ...]
    tags: tuple[str, ...]
    image_url: str | None
    image_credit: str | None
    rights: str | None
    originals: tuple[Original, ...]
    withdrawn_at: datetime | None = None
    withdrawn_reason: str | None = None
    # The best telling's files (audio, video...), under its source's terms.
    enclosures: tuple[Enclosure, ...] = ()

    @property
    def external_url(self) -> str | None:
        """The original article of the best telling."""
        return next((o.link for o in self.originals if o.link), None)


def story_tags(session: Session, story_ids: list[int]) -> dict[int, list[str]]:
    """Each story's tag labels, best first: the one place feeds and pages read tags from."""
    return tag_index.story_tag_labels(session, story_ids)


class CreditRow(NamedTuple):
    """What a story's credits show of an entry that told it. Read as these columns alone: an
    entry's row is mostly its own copy of the text, its shingles and categories, and a wire
    story has many tellings."""

    id: int
    link: str | None
    title: str


def load_stories(
    session: Session, site: SiteConfig, story_ids: Sequence[int]
) -> dict[int, PublishedStory]:
    """Stories with their credits, tags and their best source's terms, in a few queries."""
    ids = list(dict.fromkeys(story_ids))
    if not ids:
        return {}
    stories = list(session.scalars(select(Story).where(Story.id.in_(ids))))
    rows = session.execute(
        select(Entry.id, Entry.story_id, Entry.link, Entry.title, Entry.source_id)
        .where(Entry.story_id.in_(ids))
        .order_by(Entry.id)
    ).all()
    # The few sources once each, not a copy of a source's row with every entry.
    named = sorted({row.source_id for row in rows})
    sources = {s.id: s for s in session.scalars(select(Source).where(Source.id.in_(named)))}
    tellings: dict[int, list[tuple[CreditRow, Source]]] = {i: [] for i in ids}
    for entry_id, story_id, link, title, source_id in rows:
        tellings[story_id].append((CreditRow(entry_id, link, title), sources[source_id]))
    tags = story_tags(session, ids)
    authority = tag_authority(session, site)
    files = _enclosures(session, [s.best_entry_id for s in stories if s.best_entry_id])
    return {
        story.id: published_story(
            site,
            authority,
            story,
            tellings[story.id],
            tags.get(story.id, []),
            files.get(story.best_entry_id or 0, ()),
        )
        for story in stories
    }


def _enclosures(session: Session, entry_ids: list[int]) -> dict[int, tuple[Enclosure, ...]]:
    """The files of these entries, by entry id (only those that carry some)."""
    if not entry_ids:
        return {}
    rows = session.execute(
        select(Entry.id, Entry.enclosures).where(
            Entry.id.in_(entry_ids), Entry.enclosures.is_not(None)
        )
    )
    return {
        entry_id: tuple(
            Enclosure(str(f["url"]), f.get("type"), f.get("length")) for f in files or ()
        )
        for entry_id, files in rows
    }


def published_story(
    site: SiteConfig,
    authority: str,
    story: Story,
    tellings: list[tuple[CreditRow, Source]],
    tags: list[str],
    enclosures: tuple[Enclosure, ...] = (),
) -> PublishedStory:
    """Apply the best telling's source terms: excerpt_only drops the body and the files (lede and
    link only), images: false images (image files too)."""
    ordered = sorted(tellings, key=lambda pair: (pair[0].id != story.best_entry_id, pair[0].id))
    best_source = ordered[0][1] if ordered else None
    excerpt_only = bool(best_source and best_source.excerpt_only)
    images = best_source is None or best_source.images
    body: str | None = None if excerpt_only else story.body_html
    if body is not None and not images:
        body = without_images(body)
    return PublishedStory(
        id=story.id,
        tag_uri=story_tag_uri(authority, story.id, story.created_at),
        url=story_url(site.base_url, story.id, story.slug, story.published),
        title=story.title,
        lede=story.lede,
        body_html=body,
        published=story.published,
        # Revised as told by its own source; another agency's copy joining it is no update.
        updated=max(story.revised or story.published, story.published),
        section=story.section,
        language=story.language,
        authors=tuple(dict.fromkeys(source.agency for _, source in ordered)),
        tags=tuple(tags),
        image_url=story.image_url if images else None,
        image_credit=story.image_credit if images and story.image_url else None,
        rights=best_source.rights if best_source else None,
        originals=tuple(
            Original(
                source_id=source.id,
                source_name=source.name,
                agency=source.agency,
                feed_url=source.url,
                feed_title=source.feed_title or source.name,
                link=entry.link,
                title=entry.title,
            )
            for entry, source in ordered
        ),
        withdrawn_at=story.withdrawn_at,
        withdrawn_reason=story.withdrawn_reason,
        enclosures=()
        if excerpt_only
        else tuple(e for e in enclosures if images or e.medium != "image"),
    )


def story_tag_uri(authority: str, story_id: int, created: datetime) -> str:
    """RFC 4151 tag URI: the site's tag authority (a host), the day Caulbart made the story,
    its id. Never changes with the headline, the slug or the site's address."""
    return f"tag:{authority},{created.astimezone(UTC):%Y-%m-%d}:story:{story_id}"


def tag_authority(session: Session, site: SiteConfig) -> str:
    """The host fixed in the database at the first run (models.Setting); before any run has
    fixed it (a web front started on an empty database), the host of `base_url`."""
    stored = session.scalar(select(Setting.value).where(Setting.name == "tag_authority"))
    return stored or urlsplit(site.base_url).hostname or "localhost"


def without_images(body_html: str) -> str:
    """The sanitised body without its images (a source republished with `images: false`)."""
    return nh3.clean(
        body_html,
        tags=markup.ALLOWED_TAGS - {"img"},
        attributes=markup.ALLOWED_ATTRIBUTES,
        url_schemes=markup.URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
    )
