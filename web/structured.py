"""JSON-LD `NewsArticle` for a story page, serialised so it cannot end its <script> element."""

from __future__ import annotations

import json
from typing import Any

from markupsafe import Markup

from aggregator.permalinks import iso_utc
from aggregator.publishing.stories import PublishedStory
from aggregator.types import SiteConfig

# JSON allows these escapes in strings; with them, no "</script>", "<!--" or line separator
# (which older JavaScript parsers reject) can appear in the element's text.
_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
            "\u2029": "\\u2029"}  # fmt: skip


def script_json(value: Any) -> Markup:
    """JSON text safe inside <script type="application/ld+json">."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in _ESCAPES.items():
        text = text.replace(raw, escaped)
    return Markup(text)


def news_article(story: PublishedStory, site: SiteConfig) -> Markup:
    """schema.org NewsArticle: headline, dates, image, agencies as authors, the site as
    publisher, and the original article it is based on."""
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "mainEntityOfPage": story.url,
        "url": story.url,
        "headline": story.title[:110],
        "description": story.lede,
        "datePublished": iso_utc(story.published),
        "dateModified": iso_utc(story.updated),
        "articleSection": story.section,
        "keywords": list(story.tags),
        "author": [{"@type": "Organization", "name": name} for name in story.authors],
        "publisher": {"@type": "Organization", "name": site.title, "url": site.base_url},
    }
    if story.language:
        data["inLanguage"] = story.language
    if story.image_url:
        data["image"] = [story.image_url]
    if story.external_url:
        data["isBasedOn"] = story.external_url
    return script_json(data)
