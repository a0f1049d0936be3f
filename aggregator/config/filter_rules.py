"""The editors' filters in feeds.yaml (site-wide `filters:` and each source's own): patterns
compiled and language codes checked while the file is read, so a bad one is a file:line problem.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from yaml.nodes import MappingNode, Node

from aggregator.config.values import Reader, line_of
from aggregator.ingest.filters import compile_pattern, language_tag
from aggregator.types import FilterRules, TextPattern

# Editors' filters: site-wide under `filters:`, and the same keys on a source
# (aggregator.ingest.filters).
FILTER_KEYS = {"include", "exclude", "max_age", "languages", "section_map", "title_strip"}
# A language range: `en`, `pt-BR`, `zh-Hant` (RFC 5646 shape; `_` accepted for `-`).
LANGUAGE_RANGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")


def read_site_filters(reader: Reader, entry: tuple[Node, Node] | None) -> FilterRules:
    if entry is None:
        return FilterRules()
    return read_filters(reader, reader.mapping(entry[1], "filters", FILTER_KEYS), "filters")


def read_filters(reader: Reader, fields: dict[str, tuple[Node, Node]], where: str) -> FilterRules:
    """include/exclude/title_strip patterns compiled now, so a bad one is a file:line problem."""
    values: dict[str, Any] = {}
    for key in ("include", "exclude", "title_strip"):
        if key in fields:
            strip = key == "title_strip"
            values[key] = _read_patterns(reader, fields[key], f"{where}.{key}", strip)
    if "max_age" in fields:
        max_age = reader.value(fields["max_age"], f"{where}.max_age", "duration")
        if max_age == 0:
            reader.problem(fields["max_age"][1], f"{where}.max_age: must be above zero")
        elif max_age is not None:
            values["max_age"] = max_age
    if "languages" in fields:
        values["languages"] = _read_languages(reader, fields["languages"], f"{where}.languages")
    if "section_map" in fields:
        values["section_map"] = _read_section_map(
            reader, fields["section_map"], f"{where}.section_map"
        )
    return FilterRules(**values)


def _read_patterns(
    reader: Reader, entry: tuple[Node, Node], where: str, strip: bool
) -> tuple[TextPattern, ...]:
    """A list of keywords and `/regular expressions/`; a single one may go without brackets."""
    read = functools.partial(_pattern, reader, strip)
    return reader.texts(entry, where, "keywords or /regular expressions/", read)


def _pattern(reader: Reader, strip: bool, text: str, node: Node, where: str) -> TextPattern | None:
    try:
        regex = compile_pattern(text, strip=strip)
    except re.error as exc:
        reader.problem(node, f"{where}: bad regular expression {text!r}: {exc}")
        return None
    if regex.search("") is not None:
        reader.problem(node, f"{where}: {text!r} matches an empty text (every item)")
        return None
    return TextPattern(text, regex, where, line_of(node))


def _read_languages(reader: Reader, entry: tuple[Node, Node], where: str) -> tuple[str, ...]:
    read = functools.partial(_language, reader)
    return reader.texts(entry, where, "language codes such as [en, fr]", read)


def _language(reader: Reader, text: str, node: Node, where: str) -> str | None:
    tag = language_tag(text)
    if not LANGUAGE_RANGE.match(tag):
        reader.problem(node, f"{where}: {text!r} is not a language code (en, pt-BR)")
        return None
    return tag


def _read_section_map(reader: Reader, entry: tuple[Node, Node], where: str) -> dict[str, str]:
    """`{feed category: our section}`; categories are matched in any case."""
    node = entry[1]
    if not isinstance(node, MappingNode):
        reader.problem(node, f"{where}: must map a feed category to a section")
        return {}
    mapping: dict[str, str] = {}
    for key_node, value_node in node.value:
        category = reader.value((key_node, key_node), f"{where}: category", "str")
        section = reader.value((key_node, value_node), f"{where}.{category}", "str")
        if category is None or section is None:
            continue
        if category.casefold() in mapping:
            reader.problem(key_node, f"{where}: category {category!r} is repeated")
            continue
        mapping[category.casefold()] = section
    return mapping
