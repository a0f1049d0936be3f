"""aggregator.publishing.render with plain values: every format escapes, Atom's tombstones
and archives."""

from __future__ import annotations

import json

import feedparser
from lxml import etree

from aggregator.publishing import render
from aggregator.publishing.scope import FeedQuery
from tests.publishing.values import NOW, SITE, page_of, published_story

HOSTILE = 'Bombs & "bullets" </title></content><script>alert(1)</script>'


def test_hostile_text_is_escaped_in_every_format() -> None:
    story = published_story(1, title=HOSTILE, lede=HOSTILE, body_html=f"<p>{HOSTILE}</p>")
    page = page_of(story)
    for fmt in ("atom", "rss"):
        body = render.render(SITE, page, FeedQuery(), fmt, NOW, 300)
        tree = etree.fromstring(body)
        assert not list(tree.iter("script")), fmt
        parsed = feedparser.parse(body, sanitize_html=False)
        assert parsed.bozo == 0
        assert parsed.entries[0].title == HOSTILE
    json_body = render.render(SITE, page, FeedQuery(), "json", NOW, 300)
    assert json.loads(json_body)["items"][0]["title"] == HOSTILE


def test_atom_tombstone_names_the_withdrawn_story_with_reason_and_date() -> None:
    gone = published_story(7, withdrawn_at=NOW, withdrawn_reason="Legal & <advice>")
    body = render.render(SITE, page_of(published_story(8), tombstones=(gone,)), FeedQuery(),
                          "atom", NOW, 300)  # fmt: skip
    tree = etree.fromstring(body)
    (tombstone,) = tree.findall(f"{{{render.TOMBSTONE_NS}}}deleted-entry")
    assert tombstone.get("ref") == gone.tag_uri
    assert tombstone.get("when") == "2026-11-24T12:00:00Z"
    assert tombstone.findtext(f"{{{render.TOMBSTONE_NS}}}comment") == "Legal & <advice>"
    entry_ids = [e.findtext("{http://www.w3.org/2005/Atom}id") for e in tree.iter("{*}entry")]
    assert entry_ids == [published_story(8).tag_uri]


def test_archive_document_is_marked_and_links_its_neighbours() -> None:
    archive = page_of(published_story(3), page=None, pages=0, archive=2, archives=3)
    body = render.render(SITE, archive, FeedQuery("section", "world"), "atom", NOW, 300)
    tree = etree.fromstring(body)
    assert tree.find(f"{{{render.HISTORY_NS}}}archive") is not None
    links = {
        link.get("rel"): link.get("href")
        for link in tree.findall("{http://www.w3.org/2005/Atom}link")
    }
    feed = "https://news.example/section/world/feed.atom"
    assert links["self"] == f"{feed}?archive=2"
    assert links["prev-archive"] == f"{feed}?archive=1"
    assert links["next-archive"] == f"{feed}?archive=3"
    assert links["current"] == feed
    assert "next" not in links


def test_atom_tombstone_links_the_story_with_a_plain_atom_link() -> None:
    """RFC 6721 puts an atom:link in the deleted-entry; written as `<link>` in the document's
    own default namespace, as every other link of the feed, never under a made-up prefix."""
    gone = published_story(7, withdrawn_at=NOW, withdrawn_reason="Legal")
    body = render.render(SITE, page_of(tombstones=(gone,)), FeedQuery(), "atom", NOW, 300)
    assert b"ns0" not in body and b"xmlns:ns" not in body
    assert f'<link href="{gone.url}"/>'.encode() in body
    (tombstone,) = etree.fromstring(body).findall(f"{{{render.TOMBSTONE_NS}}}deleted-entry")
    (link,) = tombstone.findall(f"{{{render.ATOM_NS}}}link")
    assert link.get("href") == gone.url
