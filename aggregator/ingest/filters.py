"""Editors' filters: which new items become stories, which are turned away and why.

Pure functions of an `Item` and the source's `FilterRules` (feeds.yaml `filters:` joined with the
source's own keys). A turned-away item is returned with its rule, so the store records it and
`caulbart explain` can say why; nothing is dropped silently. Patterns are compiled when feeds.yaml
is read (`compile_pattern`), so a bad regular expression is a `file:line` problem, not a crash.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

from aggregator.types import FilteredItem, FilterRules, Item, TextPattern

# `/pattern/` or `/pattern/i`: a regular expression (Python syntax); anything else is a keyword.
REGEX_FORM = re.compile(r"^/(?P<body>.+)/(?P<flags>i?)$", re.DOTALL)
# What a removed title part may leave dangling at the cut: "Headline -" after " Reuters".
TITLE_EDGE = " \t-–—|:·,;"
# How much of the matched text a recorded filtering quotes.
QUOTE_CHARS = 60


def compile_pattern(text: str, *, strip: bool = False) -> re.Pattern[str]:
    """A `/regex/[i]` as written, or a keyword: whole words in any case (for `title_strip`, a
    literal at the start or end of the title). Raises re.error or ValueError for bad input."""
    text = text.strip()
    if not text:
        raise ValueError("must not be empty")
    form = REGEX_FORM.match(text)
    if form:
        flags = re.IGNORECASE if form.group("flags") else 0
        return re.compile(form.group("body"), flags)
    literal = re.escape(text)
    if strip:
        return re.compile(rf"^{literal}|{literal}$", re.IGNORECASE)
    words = literal.replace(r"\ ", r"\s+")
    return re.compile(rf"(?<!\w){words}(?!\w)", re.IGNORECASE)


def language_tag(value: str) -> str:
    """`en_GB` and `EN-gb` are the same tag: lower case, hyphens (RFC 5646 is case-insensitive)."""
    return value.strip().replace("_", "-").lower()


def strip_title(title: str, patterns: tuple[TextPattern, ...]) -> str:
    """The title without the editors' `title_strip` parts; never empty (kept whole instead)."""
    cleaned = title
    for pattern in patterns:
        cut = pattern.regex.sub("", cleaned)
        if cut != cleaned:
            cleaned = " ".join(cut.split()).strip(TITLE_EDGE)
    return cleaned or title


def apply_filters(
    items: list[Item], rules: FilterRules, *, source_language: str | None, now: datetime
) -> tuple[list[Item], list[FilteredItem]]:
    """Split items into those to store (with their mapped section) and those turned away."""
    kept: list[Item] = []
    filtered: list[FilteredItem] = []
    for item in items:
        refusal = _refusal(item, rules, source_language, now)
        if refusal is not None:
            filtered.append(refusal)
            continue
        section = map_section(item.categories, rules)
        kept.append(replace(item, section=section) if section else item)
    return kept, filtered


def map_section(categories: tuple[str, ...], rules: FilterRules) -> str | None:
    """The section of the first category (in feed order) that `section_map` names."""
    for category in categories:
        section = rules.section_map.get(category.casefold())
        if section:
            return section
    return None


def _refusal(
    item: Item, rules: FilterRules, source_language: str | None, now: datetime
) -> FilteredItem | None:
    """The first rule that turns the item away: age, language, exclude, then include."""
    if rules.max_age is not None and item.published < now - timedelta(seconds=rules.max_age):
        age = _duration(now - item.published)
        return FilteredItem(
            item, "max_age", f"published {age} ago, older than max_age {_seconds(rules.max_age)}"
        )
    language = item.language or source_language
    if rules.languages and language and not _accepted(language, rules.languages):
        accepted = ", ".join(rules.languages)
        return FilteredItem(item, "language", f"language {language!r} not in [{accepted}]")
    for pattern in rules.exclude:
        found = _search(item, pattern)
        if found:
            return FilteredItem(item, "exclude", f"{_name(pattern)} matched {found}")
    if rules.include and not any(_search(item, pattern) for pattern in rules.include):
        wanted = ", ".join(p.text for p in rules.include)
        return FilteredItem(item, "include", f"matched none of include [{wanted}]")
    return None


def _search(item: Item, pattern: TextPattern) -> str | None:
    """Where and what the pattern matched (`"Football" in the title`), or None."""
    for field, text in (("title", item.title), ("text", item.body_text or item.lede)):
        match = pattern.search(text)
        if match:
            return f"{match.group(0)[:QUOTE_CHARS]!r} in the {field}"
    return None


def _accepted(language: str, ranges: tuple[str, ...]) -> bool:
    """RFC 4647 section 3.3.1 basic filtering: a range matches a tag equal to it or a prefix
    of it followed by `-`."""
    tag = language_tag(language)
    return any(tag == r or tag.startswith(r + "-") for r in ranges)


def _name(pattern: TextPattern) -> str:
    return f"{pattern.where} {pattern.text!r} (line {pattern.line})"


def _duration(delta: timedelta) -> str:
    return _seconds(int(delta.total_seconds()))


def _seconds(seconds: int) -> str:
    """`2d3h`, `45m`, `30s`: a unit and the next one down, the way feeds.yaml writes durations."""
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
    for index, (unit, size) in enumerate(units):
        if seconds >= size or unit == "s":
            text = f"{seconds // size}{unit}"
            if unit != "s":
                next_unit, next_size = units[index + 1]
                rest = (seconds % size) // next_size
                text += f"{rest}{next_unit}" if rest else ""
            return text
    raise AssertionError("unreachable")
