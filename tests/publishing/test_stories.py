"""aggregator.publishing.stories with plain values: tag URIs and a source's `images: false`."""

from __future__ import annotations

from datetime import timedelta

from aggregator.publishing import stories
from tests.publishing.values import NOW


def test_story_tag_uri_depends_only_on_authority_day_and_id() -> None:
    uri = stories.story_tag_uri("news.example", 42, NOW)
    assert uri == "tag:news.example,2026-11-24:story:42"
    later = NOW + timedelta(hours=5)
    assert stories.story_tag_uri("news.example", 42, later) == uri


def test_without_images_keeps_everything_but_img() -> None:
    body = (
        '<figure><img src="https://i.example/x.jpg" alt="x"><figcaption>Cap</figcaption>'
        "</figure><p>Text</p>"
    )
    assert (
        stories.without_images(body) == "<figure><figcaption>Cap</figcaption></figure><p>Text</p>"
    )
