"""Read feeds.yaml into a typed `Config`, reporting every problem as `file:line: message`.

The YAML is composed into nodes (not loaded into dicts) so each value keeps the line it came from.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aggregator.config.filter_rules import FILTER_KEYS, read_filters, read_site_filters
from aggregator.config.values import AUTO, Reader, as_list, field_node, line_of
from aggregator.config.values import check_url as check_url
from aggregator.errors import ConfigError as ConfigError
from aggregator.errors import ConfigProblem as ConfigProblem
from aggregator.types import (
    CommentsConfig,
    Config,
    Defaults,
    FullTextConfig,
    HostPort,
    SiteConfig,
    SourceConfig,
    TagRules,
)

SOURCE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

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
COMMENTS_KEYS = {"keep_ip_days", "auto_approve"}
TAG_KEYS = {"aliases", "ignore"}


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
    reader = Reader(path)
    if root is None:
        raise ConfigError([ConfigProblem(path, 1, "empty file: expected site, defaults, sources")])
    top = reader.mapping(root, "top level", TOP_KEYS)
    site = _read_site(reader, top.get("site"))
    defaults = _read_defaults(reader, top.get("defaults"))
    sources = _read_sources(reader, top.get("sources"), root)
    tags = _read_tag_rules(reader, top.get("tags"))
    comments = _read_comments(reader, top.get("comments"))
    filters = read_site_filters(reader, top.get("filters"))
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


def _read_comments(reader: Reader, entry: tuple[Node, Node] | None) -> CommentsConfig:
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


def _read_tag_rules(reader: Reader, entry: tuple[Node, Node] | None) -> TagRules:
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
                for alias in _read_tags(reader, (key_node, as_list(value_node)), "tags.aliases"):
                    aliases[tag_slug(alias)] = canonical
                aliases[tag_slug(canonical)] = canonical
    ignore = (
        frozenset(tag_slug(label) for label in _read_tags(reader, fields["ignore"], "tags.ignore"))
        if "ignore" in fields
        else frozenset()
    )
    return TagRules(aliases=aliases, ignore=ignore)


def _read_site(reader: Reader, entry: tuple[Node, Node] | None) -> SiteConfig:
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


def _read_urls(reader: Reader, entry: tuple[Node, Node], where: str) -> tuple[str, ...]:
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


def _read_defaults(reader: Reader, entry: tuple[Node, Node] | None) -> Defaults:
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
    reader: Reader, entry: tuple[Node, Node] | None, root: Node
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
        id_node, url_node = field_node(source_node, "id"), field_node(source_node, "url")
        if source.id in seen_ids:
            reader.problem(
                id_node,
                f"sources[{index}].id: {source.id!r} already used on line {seen_ids[source.id]}",
            )
            continue
        key = same_feed_key(source.url)
        if key in seen_urls:
            reader.problem(
                url_node,
                f"sources[{index}].url: {source.url!r} already used on line {seen_urls[key]}",
            )
            continue
        seen_ids[source.id] = line_of(id_node)
        seen_urls[key] = line_of(url_node)
        sources.append(source)
    return sources


def same_feed_key(url: str) -> str:
    """Two URLs name the same feed when they differ only in the case of scheme and host or in a
    trailing slash; the path and query are case-sensitive (RFC 3986 section 6.2.2.1)."""
    parts = urlsplit(url)
    rest = url[len(parts.scheme) + 3 + len(parts.netloc) :]
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{rest}".rstrip("/")


def _read_source(reader: Reader, node: Node, index: int) -> SourceConfig | None:
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
    values: dict[str, Any] = {"filters": read_filters(reader, fields, where)}
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
    reader: Reader, entry: tuple[Node, Node], where: str, url: str | None
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


def _read_host_ports(reader: Reader, node: SequenceNode, where: str) -> list[HostPort]:
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


def _read_tags(reader: Reader, entry: tuple[Node, Node], where: str) -> tuple[str, ...]:
    node = entry[1]
    if not isinstance(node, SequenceNode) or not all(isinstance(n, ScalarNode) for n in node.value):
        reader.problem(node, f"{where}: must be a list of words")
        return ()
    tags = [str(reader.scalar(n)).strip() for n in node.value]
    if any(not t for t in tags):
        reader.problem(node, f"{where}: tags must not be empty")
    return tuple(t for t in tags if t)
