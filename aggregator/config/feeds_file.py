"""Add sources to feeds.yaml the way an editor would: comments, order and layout kept.

ruamel.yaml round-trips the file, so only the new sources' lines are new. The result is
validated with config.py before it replaces the file, and it replaces it atomically (a reader
such as a running worker sees the old file or the new one, never half of one).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from aggregator.config.load import (
    SOURCE_ID,
    ConfigError,
    ConfigProblem,
    parse_config,
    same_feed_key,
)
from aggregator.storage.stories import slugify
from aggregator.types import Config, SourceDraft

# A new file: what an editor would write first.
NEW_FILE = "# Caulbart's sources; every key is documented in docs/feeds.md.\nsources: []\n"
# Generated ids stay well inside SOURCE_ID's 64 characters, leaving room for a "-2" suffix.
ID_LENGTH = 40
FIRST_SEQUENCE_ITEM = re.compile(r"^( *)- ", re.MULTILINE)
NESTED_KEY = re.compile(
    r"^[A-Za-z_][\w-]*:[ \t]*(?:#.*)?\n(?:[ \t]*(?:#.*)?\n)*( +)[A-Za-z_]", re.M
)


@dataclass(frozen=True)
class NewSource:
    """A source as it is written into feeds.yaml."""

    id: str
    url: str
    name: str | None
    section: str | None


@dataclass(frozen=True)
class Plan:
    """What adding drafts to a feeds.yaml would do: the sources to write, the URLs skipped."""

    added: tuple[NewSource, ...]
    # (url, why): already present under an id, or repeated in the input.
    skipped: tuple[tuple[str, str], ...]


def source_id_for(draft: SourceDraft, taken: set[str]) -> str:
    """An id matching config.SOURCE_ID, from the feed's title (else its host and path), unique
    among `taken` by a -2, -3... suffix."""
    parts = urlsplit(draft.url)
    base = slugify(draft.title or "", ID_LENGTH) if draft.title else ""
    if base in ("", "story"):
        base = slugify(f"{(parts.hostname or '').removeprefix('www.')} {parts.path}", ID_LENGTH)
    base = base.strip("-_") or "source"
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    assert SOURCE_ID.match(candidate), candidate
    return candidate


def plan_additions(config: Config, drafts: list[SourceDraft]) -> Plan:
    """Which drafts are new (with generated ids) and which are already in `config`."""
    known = {same_feed_key(s.url): s.id for s in config.sources}
    taken = {s.id for s in config.sources}
    repeated: dict[str, str] = {}
    added: list[NewSource] = []
    skipped: list[tuple[str, str]] = []
    for draft in drafts:
        key = same_feed_key(draft.url)
        if key in known:
            skipped.append((draft.url, f"already in feeds.yaml as {known[key]}"))
            continue
        if key in repeated:
            skipped.append((draft.url, f"listed twice; added once as {repeated[key]}"))
            continue
        source_id = source_id_for(draft, taken)
        taken.add(source_id)
        repeated[key] = source_id
        title = draft.title.strip() if draft.title and draft.title.strip() else None
        added.append(NewSource(source_id, draft.url, title, draft.section))
    return Plan(tuple(added), tuple(skipped))


def read_config(path: Path) -> Config:
    """The current feeds.yaml (an empty one if there is no file yet); ConfigError if invalid."""
    text = path.read_text(encoding="utf-8") if path.exists() else NEW_FILE
    return parse_config(text, str(path))


def append_sources(path: Path, sources: tuple[NewSource, ...]) -> Config:
    """Append `sources` to feeds.yaml's `sources` list, validate, and replace the file atomically.

    Raises ConfigError (and leaves the file untouched) if the result would not validate.
    """
    text = path.read_text(encoding="utf-8") if path.exists() else NEW_FILE
    new_text = _appended(text, sources, str(path))
    config = parse_config(new_text, str(path))
    _replace(path, new_text)
    return config


def _appended(text: str, sources: tuple[NewSource, ...], name: str) -> str:
    yaml = _round_trip(text)
    try:
        document: Any = yaml.load(text)
    except YAMLError as exc:
        raise ConfigError([ConfigProblem(name, 1, f"YAML syntax: {exc}")]) from None
    if document is None:
        document = CommentedMap()
    if not isinstance(document, CommentedMap):
        raise ConfigError([ConfigProblem(name, 1, "top level: must be a mapping")])
    listed = document.get("sources")
    if listed is None:
        listed = document["sources"] = CommentedSeq()
    if not isinstance(listed, CommentedSeq):
        raise ConfigError([ConfigProblem(name, 1, "sources: must be a list of feeds")])
    if not listed:
        listed.fa.set_block_style()  # `sources: []` becomes a block list an editor can extend
    for source in sources:
        item = CommentedMap(id=source.id)
        if source.name:
            item["name"] = source.name
        item["url"] = source.url
        if source.section:
            item["section"] = source.section
        listed.append(item)
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def _round_trip(text: str) -> YAML:
    """A round-trip YAML whose indentation is the file's own, so untouched lines stay as they are
    (ruamel does not keep indentation by itself)."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long URL or name onto a second line
    nested = NESTED_KEY.search(text)
    mapping = len(nested.group(1)) if nested else 2
    item = FIRST_SEQUENCE_ITEM.search(text)
    offset = len(item.group(1)) if item else 2
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    yaml.explicit_start = text.startswith("---")  # ruamel drops a leading "---" otherwise
    return yaml


def _replace(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` (atomic on POSIX)."""
    folder = path.parent if str(path.parent) else Path(".")
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
