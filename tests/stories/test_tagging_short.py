"""Tags of very short stories (a headline, no text), as README and docs/feeds.md state the rule:
a story whose text says enough gets 3 to 10 tags; a headline-only one gets what it holds, the
source's tags, its section and the names of a sentence-case headline, and no filler. Real
headlines of the AG News test set (../shared/corpus/news/ag-news-test.csv)."""

from __future__ import annotations

import csv
import re

from aggregator.stories.tagging import StoryText, choose_tags, headline_names
from aggregator.types import TagRules
from tests.conftest import corpus_path

# Real headlines, each with the names a reader sees in it.
SENTENCE_CASE = {
    "Super ant colony hits Australia": ["Australia"],
    "IBM to hire even more new workers": ["IBM"],
    "US fighter squadron to be deployed in South Korea next month (AFP)": ["South Korea"],
    "India's Tata expands regional footprint via NatSteel buyout (AFP)": ["Tata", "NatSteel"],
    "Sharon orders 1,000 homes in West Bank": ["West Bank"],
    "Israel kills 5 in strike at Hamas activist": ["Hamas"],
}


def headlines(count: int) -> list[str]:
    with corpus_path("news", "ag-news-test.csv").open(encoding="utf-8") as handle:
        return [row["title"] for _, row in zip(range(count), csv.DictReader(handle), strict=False)]


def test_a_headline_only_story_is_tagged_with_the_names_its_headline_holds() -> None:
    known = set(headlines(2000))
    for title, names in SENTENCE_CASE.items():
        assert title in known, title  # real headlines, not made up for the test
        tags = choose_tags(StoryText(title, "", section="asia"), TagRules())
        assert sorted(tags[: len(names)]) == sorted(names), (title, tags)
        assert tags[-1] == "asia"


def test_a_headline_only_story_gets_its_source_tags_section_and_names_first() -> None:
    story = StoryText(
        "Sharon orders 1,000 homes in West Bank", "", source_tags=["Middle East desk"],
        section="mideast",
    )  # fmt: skip
    assert choose_tags(story, TagRules())[:3] == ["Middle East desk", "West Bank", "mideast"]


def test_a_title_case_headline_gives_no_names_without_text_to_confirm_them() -> None:
    """Every word of a Title Case headline has a capital: none is taken for a name."""
    for title in ("Apple Launches Graphics Software, Video Bundle",
                  "Scientists Discover Ganymede has a Lumpy Interior"):  # fmt: skip
        assert headline_names(title) == [], title


def test_headline_only_stories_get_fewer_tags_never_filler() -> None:
    """Of 2,000 real headlines, every one gets its section, and no tag is words the headline
    does not hold (or the section)."""
    for title in headlines(2000):
        tags = choose_tags(StoryText(title, "", section="technology"), TagRules())
        assert 1 <= len(tags) <= 10 and "technology" in tags, (title, tags)
        for tag in tags:
            said = title.lower()
            words = re.findall(r"\w+", tag.lower())
            assert tag == "technology" or all(word in said for word in words), (title, tag)
