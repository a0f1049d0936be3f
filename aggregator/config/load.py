"""Read feeds.yaml into a typed `Config`, reporting every problem as `file:line: message`.

The YAML is composed into nodes (not loaded into dicts) so each value keeps the line it came from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aggregator.errors import ConfigError as ConfigError
from aggregator.errors import ConfigProblem as ConfigProblem
from aggregator.ingest.filters import compile_pattern, language_tag
from aggregator.types import (
    CommentsConfig,
    Config,
    Defaults,
    FilterRules,
    FullTextConfig,
    HostPort,
    SiteConfig,
    SourceConfig,
    TagRules,
    TextPattern,
)

# `interval: auto`: the interval follows the source's posting rate (scheduler.adaptive_interval).
AUTO = "auto"

SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
DURATION = re.compile(r"^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")
SIZE = re.compile(r"^(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$", re.IGNORECASE)
SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}

SITE_KEYS = {"title", "tagline", "base_url", "language", "websub_hubs", "feed_length"}
DEFAULT_KEYS = {
    "interval",
    "min_interval",
    "max_interval",
    "timeout",
    "max_bytes",
    "max_entries",
    "concurrency",
    "per_host",
    "host_spacing",
    "dedup_window",
    "keep",
}
# Editors' filters: site-wide under `filters:`, and the same keys on a source
# (aggregator.ingest.filters).
FILTER_KEYS = {"include", "exclude", "max_age", "languages", "section_map", "title_strip"}
SOURCE_KEYS = FILTER_KEYS | {
    "id",
    "name",
    "url",
    "agency",
    "section",
    "interval",
    "enabled",
    "priority",
    "language",
    "tags",
    "rights",
    "excerpt_only",
    "images",
    "full_text",
    "publish",
    "clean_headlines",
}
# `publish:` of a source: at once, or held for an editor (aggregator/stories/review.py).
PUBLISH_MODES = ("auto", "review")
FULL_TEXT_KEYS = {"allow_private"}
TOP_KEYS = {"site", "defaults", "sources", "tags", "comments", "filters"}
# A language range: `en`, `pt-BR`, `zh-Hant` (RFC 5646 shape; `_` accepted for `-`).
LANGUAGE_RANGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{1,8})*$")
COMMENTS_KEYS = {"keep_ip_days", "auto_approve"}
TAG_KEYS = {"aliases", "ignore"}


def parse_duration(value: object) -> int:
    """Seconds from `90`, `"90s"`, `"10m"`, `"1h"`, `"1h30m"`, `"2d"`; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration such as 90s, 10m, 1h or 1d")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a duration must not be negative")
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        match = DURATION.match(text)
        if text and match and any(match.groups()):
            days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
            return ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    raise ValueError(f"bad duration {value!r}: use e.g. 90s, 10m, 1h or 1d")


def parse_size(value: object) -> int:
    """Bytes from `1048576`, `"512KB"`, `"10MB"`, `"1GiB"`; ValueError otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    if isinstance(value, str):
        match = SIZE.match(value.strip())
        if match and int(match.group(1)) > 0:
            return int(match.group(1)) * SIZE_UNITS[(match.group(2) or "b").lower()]
    raise ValueError(f"bad size {value!r}: use e.g. 512KB or 10MB")


def check_url(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("must be an http(s) URL")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad URL {value!r}: must be an absolute http(s) URL")
    try:
        port = parts.port
    except ValueError:  # outside 0-65535
        port = 0
    if port == 0:
        raise ValueError(f"bad URL {value!r}: the port must be 1-65535")
    return value.strip()


class _Reader:
    """Walks the composed YAML nodes, collecting problems instead of stopping at the first."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[ConfigProblem] = []
        self._constructor = SafeConstructor()

    def problem(self, node: Node | None, message: str) -> None:
        line = node.start_mark.line + 1 if node is not None else 1
        self.problems.append(ConfigProblem(self.path, line, message))

    def scalar(self, node: Node) -> Any:
        return self._constructor.construct_object(node, deep=True)

    def mapping(self, node: Node, where: str, allowed: set[str]) -> dict[str, tuple[Node, Node]]:
        """Key -> (key node, value node); unknown and repeated keys are problems."""
        if not isinstance(node, MappingNode):
            self.problem(node, f"{where}: must be a mapping")
            return {}
        result: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node) if isinstance(key_node, ScalarNode) else None
            if not isinstance(key, str):
                self.problem(key_node, f"{where}: keys must be names")
                continue
            if key in result:
                self.problem(key_node, f"{where}: key {key!r} is repeated")
                continue
            if key not in allowed:
                known = ", ".join(sorted(allowed))
                self.problem(key_node, f"{where}: unknown key {key!r} (known: {known})")
                continue
            result[key] = (key_node, value_node)
        return result

    def value(self, entry: tuple[Node, Node], field: str, kind: str) -> Any:
        """Typed value of a mapping entry; on a problem, records it and returns None."""
        _, node = entry
        if not isinstance(node, ScalarNode):
            self.problem(node, f"{field}: must be a single value")
            return None
        raw = self.scalar(node)
        try:
            if kind == "str":
                if raw is None or isinstance(raw, (dict, list)) or str(raw).strip() == "":
                    raise ValueError("must be a non-empty text")
                return str(raw).strip()
            if kind == "duration":
                return parse_duration(raw)
            if kind == "interval":
                if isinstance(raw, str) and raw.strip().lower() == "auto":
                    return AUTO
                return parse_duration(raw)
            if kind == "size":
                return parse_size(raw)
            if kind == "url":
                return check_url(raw)
            if kind == "bool":
                if not isinstance(raw, bool):
                    raise ValueError(f"must be true or false, not {raw!r}")
                return raw
            if kind in ("int", "positive"):
                if isinstance(raw, bool) or not isinstance(raw, int):
                    raise ValueError(f"must be a whole number, not {raw!r}")
                if kind == "positive" and raw <= 0:
                    raise ValueError(f"must be above zero, not {raw}")
                return raw
        except ValueError as exc:
            self.problem(node, f"{field}: {exc}")
            return None
        raise AssertionError(kind)


def load_config(path: str | Path) -> Config:
    """Parse and validate feeds.yaml; raise ConfigError listing every problem."""
    path = Path(path)
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(name, 0, "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigProblem(name, 0, f"cannot read: {exc}")]) from None
    return parse_config(text, name)


def parse_config(text: str, path: str = "feeds.yaml") -> Config:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise ConfigError([ConfigProblem(path, line, f"YAML syntax: {exc.problem}")]) from None
    reader = _Reader(path)
    if root is None:
        raise ConfigError([ConfigProblem(path, 1, "empty file: expected site, defaults, sources")])
    top = reader.mapping(root, "top level", TOP_KEYS)
    site = _read_site(reader, top.get("site"))
    defaults = _read_defaults(reader, top.get("defaults"))
    sources = _read_sources(reader, top.get("sources"), root)
    tags = _read_tag_rules(reader, top.get("tags"))
    comments = _read_comments(reader, top.get("comments"))
    filters = _read_site_filters(reader, top.get("filters"))
    if reader.problems:
        raise ConfigError(reader.problems)
    return Config(
        path=path,
        site=site,
        defaults=defaults,
        sources=tuple(sources),
        tags=tags,
        comments=comments,
        filters=filters,
    )


def _read_comments(reader: _Reader, entry: tuple[Node, Node] | None) -> CommentsConfig:
    """`comments: {keep_ip_days: 30, auto_approve: true}`; days may be 0 (keep no IP)."""
    if entry is None:
        return CommentsConfig()
    fields = reader.mapping(entry[1], "comments", COMMENTS_KEYS)
    values: dict[str, Any] = {}
    for key, item in fields.items():
        kind = "int" if key == "keep_ip_days" else "bool"
        value = reader.value(item, f"comments.{key}", kind)
        if key == "keep_ip_days" and value is not None and value < 0:
            reader.problem(item[1], f"comments.keep_ip_days: must be 0 or more, not {value}")
            continue
        if value is not None:
            values[key] = value
    return CommentsConfig(**values)


def _read_tag_rules(reader: _Reader, entry: tuple[Node, Node] | None) -> TagRules:
    """`tags: {aliases: {Canonical: [alias, ...]}, ignore: [label, ...]}`."""
    from aggregator.stories.tagging import tag_slug

    if entry is None:
        return TagRules()
    fields = reader.mapping(entry[1], "tags", TAG_KEYS)
    aliases: dict[str, str] = {}
    if "aliases" in fields:
        node = fields["aliases"][1]
        if not isinstance(node, MappingNode):
            reader.problem(node, "tags.aliases: must map a tag to the labels that mean it")
        else:
            for key_node, value_node in node.value:
                canonical = str(reader.scalar(key_node)).strip()
                for alias in _read_tags(reader, (key_node, _as_list(value_node)), "tags.aliases"):
                    aliases[tag_slug(alias)] = canonical
                aliases[tag_slug(canonical)] = canonical
    ignore = (
        frozenset(tag_slug(label) for label in _read_tags(reader, fields["ignore"], "tags.ignore"))
        if "ignore" in fields
        else frozenset()
    )
    return TagRules(aliases=aliases, ignore=ignore)


def _as_list(node: Node) -> Node:
    """A single alias may be written without brackets."""
    if isinstance(node, ScalarNode):
        return SequenceNode("tag:yaml.org,2002:seq", [node], node.start_mark, node.end_mark)
    return node


def _read_site(reader: _Reader, entry: tuple[Node, Node] | None) -> SiteConfig:
    if entry is None:
        return SiteConfig()
    fields = reader.mapping(entry[1], "site", SITE_KEYS)
    values: dict[str, Any] = {}
    for key, item in fields.items():
        if key == "websub_hubs":
            values[key] = _read_urls(reader, item, "site.websub_hubs")
            continue
        kind = {"base_url": "url", "feed_length": "positive"}.get(key, "str")
        value = reader.value(item, f"site.{key}", kind)
        if value is not None:
            values[key] = value.rstrip("/") if key == "base_url" else value
    return SiteConfig(**values)


def _read_urls(reader: _Reader, entry: tuple[Node, Node], where: str) -> tuple[str, ...]:
    """A list of absolute http(s) URLs; each bad one is reported on its own line."""
    node = entry[1]
    if not isinstance(node, SequenceNode):
        reader.problem(node, f"{where}: must be a list of URLs")
        return ()
    urls: list[str] = []
    for index, item in enumerate(node.value):
        value = reader.value((item, item), f"{where}[{index}]", "url")
        if value is not None:
            urls.append(value)
    return tuple(urls)


def _read_defaults(reader: _Reader, entry: tuple[Node, Node] | None) -> Defaults:
    if entry is None:
        return Defaults()
    kinds = {
        "interval": "interval",
        "min_interval": "duration",
        "max_interval": "duration",
        "host_spacing": "duration",
        "dedup_window": "duration",
        "timeout": "duration",
        "max_bytes": "size",
        "max_entries": "positive",
        "concurrency": "positive",
        "per_host": "positive",
        "keep": "duration",
    }
    fields = reader.mapping(entry[1], "defaults", DEFAULT_KEYS)
    values: dict[str, Any] = {}
    for key, item in fields.items():
        value = reader.value(item, f"defaults.{key}", kinds[key])
        if value is not None:
            values[key] = value
    if values.get("interval") == AUTO:
        values["interval"] = Defaults.interval
        values["adaptive"] = True
    if values.get("timeout") == 0:
        reader.problem(fields["timeout"][1], "defaults.timeout: must be above zero")
        values.pop("timeout")
    if values.get("keep") == 0:
        reader.problem(fields["keep"][1], "defaults.keep: must be above zero (omit it to keep all)")
        values.pop("keep")
    defaults = Defaults(**values)
    if defaults.min_interval > defaults.max_interval:
        node = fields.get("min_interval", fields.get("max_interval", entry))[1]
        reader.problem(node, "defaults.min_interval: must not be above defaults.max_interval")
    return defaults


def _read_sources(
    reader: _Reader, entry: tuple[Node, Node] | None, root: Node
) -> list[SourceConfig]:
    if entry is None:
        reader.problem(root, "sources: missing (a list of feeds)")
        return []
    node = entry[1]
    if not isinstance(node, SequenceNode):
        reader.problem(node, "sources: must be a list of feeds")
        return []
    sources: list[SourceConfig] = []
    seen_ids: dict[str, int] = {}
    seen_urls: dict[str, int] = {}
    for index, source_node in enumerate(node.value):
        source = _read_source(reader, source_node, index)
        if source is None:
            continue
        id_node, url_node = _field_node(source_node, "id"), _field_node(source_node, "url")
        if source.id in seen_ids:
            reader.problem(
                id_node,
                f"sources[{index}].id: {source.id!r} already used on line {seen_ids[source.id]}",
            )
            continue
        key = url_key(source.url)
        if key in seen_urls:
            reader.problem(
                url_node,
                f"sources[{index}].url: {source.url!r} already used on line {seen_urls[key]}",
            )
            continue
        seen_ids[source.id] = _line(id_node)
        seen_urls[key] = _line(url_node)
        sources.append(source)
    return sources


def _field_node(mapping: Node, key: str) -> Node:
    """The value node of `key` in a source's mapping, so a problem names the line it is on."""
    assert isinstance(mapping, MappingNode)
    pairs: list[tuple[Node, Node]] = mapping.value
    for key_node, value_node in pairs:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return mapping


def _line(node: Node) -> int:
    return node.start_mark.line + 1


def url_key(url: str) -> str:
    """Two URLs name the same feed when they differ only in the case of scheme and host or in a
    trailing slash; the path and query are case-sensitive (RFC 3986 section 6.2.2.1)."""
    parts = urlsplit(url)
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :]
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{rest}".rstrip("/")


def _read_source(reader: _Reader, node: Node, index: int) -> SourceConfig | None:
    where = f"sources[{index}]"
    fields = reader.mapping(node, where, SOURCE_KEYS)
    if not isinstance(node, MappingNode):
        return None
    problems_before = len(reader.problems)
    for required in ("id", "url"):
        if required not in fields:
            reader.problem(node, f"{where}: missing required key {required!r}")
    kinds = {
        "id": "str",
        "name": "str",
        "url": "url",
        "agency": "str",
        "section": "str",
        "interval": "interval",
        "enabled": "bool",
        "priority": "int",
        "language": "str",
        "rights": "str",
        "excerpt_only": "bool",
        "images": "bool",
        "publish": "str",
        "clean_headlines": "bool",
    }
    values: dict[str, Any] = {"filters": _read_filters(reader, fields, where)}
    for key, item in fields.items():
        if key in FILTER_KEYS:
            continue
        if key == "tags":
            values["tags"] = _read_tags(reader, item, f"{where}.tags")
            continue
        if key == "full_text":  # read below, once the source's url is known
            continue
        value = reader.value(item, f"{where}.{key}", kinds[key])
        if value is not None:
            values[key] = value
    if "full_text" in fields:
        values["full_text"] = _read_full_text(
            reader, fields["full_text"], f"{where}.full_text", values.get("url")
        )
    if values.get("publish", "auto") not in PUBLISH_MODES:
        reader.problem(
            fields["publish"][1],
            f"{where}.publish: must be auto or review, not {values['publish']!r}",
        )
    source_id = values.get("id")
    if source_id is not None and not SOURCE_ID.match(source_id):
        reader.problem(
            fields["id"][1],
            f"{where}.id: {source_id!r} must be lower-case letters, digits, '-' or '_'",
        )
    if len(reader.problems) > problems_before:
        return None
    if values.get("interval") == AUTO:
        values["interval"] = None
        values["adaptive"] = True
    name = values.pop("name", None) or values["id"]
    agency = values.pop("agency", None) or name
    return SourceConfig(name=name, agency=agency, line=node.start_mark.line + 1, **values)


def _read_full_text(
    reader: _Reader, entry: tuple[Node, Node], where: str, url: str | None
) -> FullTextConfig | None:
    """`full_text: true`, `false`, or `full_text: {allow_private: ...}` (implies true), where
    `allow_private` is `true` (the host and port of the source's own `url`) or a list of
    `host:port` that may be private besides it."""
    node = entry[1]
    if not isinstance(node, MappingNode):
        if not isinstance(node, ScalarNode):
            reader.problem(node, f"{where}: must be true, false or {{allow_private: true}}")
            return None
        enabled = reader.value(entry, where, "bool")
        return FullTextConfig() if enabled else None
    fields = reader.mapping(node, where, FULL_TEXT_KEYS)
    if "allow_private" not in fields:
        return FullTextConfig()
    allow = fields["allow_private"]
    field = f"{where}.allow_private"
    own = HostPort.of(url) if url else None
    if isinstance(allow[1], SequenceNode):
        listed = _read_host_ports(reader, allow[1], field)
        return FullTextConfig(allow_private=tuple(sorted({*listed, *([own] if own else [])})))
    value = reader.scalar(allow[1]) if isinstance(allow[1], ScalarNode) else None
    if not isinstance(value, bool):
        shown = f", not {value!r}" if isinstance(allow[1], ScalarNode) else ""
        reader.problem(allow[1], f"{field}: must be true, false or a list of host:port{shown}")
        return None
    return FullTextConfig(allow_private=(own,) if value and own else ())


def _read_host_ports(reader: _Reader, node: SequenceNode, where: str) -> list[HostPort]:
    """`[intranet.local:8080, "10.0.0.5:80", "[fd00::5]:443"]`: each a host and its port."""
    found: list[HostPort] = []
    for index, item in enumerate(node.value):
        raw = reader.scalar(item) if isinstance(item, ScalarNode) else None
        place = _host_port(raw) if isinstance(raw, str) else None
        if place is None:
            shown = repr(raw) if isinstance(item, ScalarNode) else "a nested value"
            reader.problem(
                item, f"{where}[{index}]: {shown} must be host:port (such as intranet.local:8080)"
            )
            continue
        found.append(place)
    return found


def _host_port(text: str) -> HostPort | None:
    """`host:port` as an editor writes it (no scheme, no path), or None."""
    text = text.strip()
    parts = urlsplit(f"http://{text}")
    try:
        port = parts.port
    except ValueError:
        return None
    if not port or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return HostPort.of(f"http://{text}")


def _read_tags(reader: _Reader, entry: tuple[Node, Node], where: str) -> tuple[str, ...]:
    node = entry[1]
    if not isinstance(node, SequenceNode) or not all(isinstance(n, ScalarNode) for n in node.value):
        reader.problem(node, f"{where}: must be a list of words")
        return ()
    tags = [str(reader.scalar(n)).strip() for n in node.value]
    if any(not t for t in tags):
        reader.problem(node, f"{where}: tags must not be empty")
    return tuple(t for t in tags if t)


def _read_site_filters(reader: _Reader, entry: tuple[Node, Node] | None) -> FilterRules:
    if entry is None:
        return FilterRules()
    return _read_filters(reader, reader.mapping(entry[1], "filters", FILTER_KEYS), "filters")


def _read_filters(reader: _Reader, fields: dict[str, tuple[Node, Node]], where: str) -> FilterRules:
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
    reader: _Reader, entry: tuple[Node, Node], where: str, strip: bool
) -> tuple[TextPattern, ...]:
    """A list of keywords and `/regular expressions/`; a single one may go without brackets."""
    node = _as_list(entry[1])
    if not isinstance(node, SequenceNode):
        reader.problem(node, f"{where}: must be a list of keywords or /regular expressions/")
        return ()
    patterns: list[TextPattern] = []
    for index, item in enumerate(node.value):
        text = reader.value((item, item), f"{where}[{index}]", "str")
        if text is None:
            continue
        try:
            regex = compile_pattern(text, strip=strip)
        except re.error as exc:
            reader.problem(item, f"{where}[{index}]: bad regular expression {text!r}: {exc}")
            continue
        if regex.search("") is not None:
            reader.problem(item, f"{where}[{index}]: {text!r} matches an empty text (every item)")
            continue
        patterns.append(TextPattern(text, regex, f"{where}[{index}]", _line(item)))
    return tuple(patterns)


def _read_languages(reader: _Reader, entry: tuple[Node, Node], where: str) -> tuple[str, ...]:
    node = _as_list(entry[1])
    if not isinstance(node, SequenceNode):
        reader.problem(node, f"{where}: must be a list of language codes such as [en, fr]")
        return ()
    languages: list[str] = []
    for index, item in enumerate(node.value):
        text = reader.value((item, item), f"{where}[{index}]", "str")
        if text is None:
            continue
        tag = language_tag(text)
        if not LANGUAGE_RANGE.match(tag):
            reader.problem(item, f"{where}[{index}]: {text!r} is not a language code (en, pt-BR)")
            continue
        languages.append(tag)
    return tuple(languages)


def _read_section_map(reader: _Reader, entry: tuple[Node, Node], where: str) -> dict[str, str]:
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
