"""Caulbart's own URLs for stories: readable, dated, and stable through the id at the end."""

from __future__ import annotations

from datetime import UTC, datetime


def story_path(story_id: int, slug: str, published: datetime) -> str:
    """`/2026/11/24/<slug>-<id>`: the id resolves the story even if the slug later changes."""
    day = published.astimezone(UTC)
    return f"/{day:%Y/%m/%d}/{slug}-{story_id}"


def story_url(base_url: str, story_id: int, slug: str, published: datetime) -> str:
    return base_url.rstrip("/") + story_path(story_id, slug, published)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as the export format promises."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
