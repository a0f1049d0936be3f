"""The values of feeds.yaml one by one: durations, sizes and URLs, and the reader that walks the
composed YAML nodes, so that every problem names the line it is on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from aggregator.errors import ConfigProblem

T = TypeVar("T")

# `interval: auto`: the interval follows the source's posting rate (schedule.adaptive_interval).
AUTO = "auto"
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


class Reader:
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

    def texts(
        self,
        entry: tuple[Node, Node],
        where: str,
        expected: str,
        read: Callable[[str, Node, str], T | None],
    ) -> tuple[T, ...]:
        """A list of texts, each made a value by `read(text, its node, where)`, which reports
        its own problem and returns None to leave the text out; a single text may go without
        brackets."""
        node = as_list(entry[1])
        if not isinstance(node, SequenceNode):
            self.problem(node, f"{where}: must be a list of {expected}")
            return ()
        found: list[T] = []
        for index, item in enumerate(node.value):
            place = f"{where}[{index}]"
            text = self.value((item, item), place, "str")
            if text is None:
                continue
            value = read(text, item, place)
            if value is not None:
                found.append(value)
        return tuple(found)


def as_list(node: Node) -> Node:
    """A single alias may be written without brackets."""
    if isinstance(node, ScalarNode):
        return SequenceNode("tag:yaml.org,2002:seq", [node], node.start_mark, node.end_mark)
    return node


def field_node(mapping: Node, key: str) -> Node:
    """The value node of `key` in a source's mapping, so a problem names the line it is on."""
    assert isinstance(mapping, MappingNode)
    pairs: list[tuple[Node, Node]] = mapping.value
    for key_node, value_node in pairs:
        if isinstance(key_node, ScalarNode) and key_node.value == key:
            return value_node
    return mapping


def line_of(node: Node) -> int:
    return node.start_mark.line + 1
