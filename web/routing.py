"""Ids in addresses and forms: only numbers both databases can hold reach a query.

A story id beyond 64 bits made SQLite's driver raise OverflowError, and one beyond 32 bits
PostgreSQL's "integer out of range" (a 500 for any visitor); here it is simply not a match
(404), and in an editor's form a bad request (400).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import abort, request
from werkzeug.routing import BaseConverter, IntegerConverter, Map, ValidationError

# The largest id the id columns hold on both databases: they are INTEGER, 32 bits signed on
# PostgreSQL (SQLite's are wider, but no id beyond this is ever issued there either).
ID_MAX = 2**31 - 1
# ASCII digits only: int() would also read "١٢" (Arabic-Indic) as 12.
DIGITS = re.compile(r"[0-9]{1,10}")


def parse_id(text: str) -> int | None:
    """The id `text` spells in ASCII digits, if a database can hold it; else None."""
    if not DIGITS.fullmatch(text):
        return None
    number = int(text)
    return number if number <= ID_MAX else None


@dataclass(frozen=True)
class StoryRef:
    """The last part of a story's address: "<slug>-<id>". Only the id finds the story; a
    stale or mistyped slug is redirected to the current one by the page."""

    slug: str
    id: int


class StoryRefConverter(BaseConverter):
    """`<story:ref>`: "anything-<id>" with an id in range, else no match (404). The regex
    bounds the digits, so that no rule of another method matches (which would make it 405)."""

    regex = r"[^/]*-[0-9]{1,10}"

    def to_python(self, value: str) -> StoryRef:
        slug, _, digits = value.rpartition("-")
        story_id = parse_id(digits)
        if story_id is None:
            raise ValidationError()
        return StoryRef(slug, story_id)

    def to_url(self, value: Any) -> str:
        return f"{value.slug}-{value.id}" if isinstance(value, StoryRef) else str(value)


class IdConverter(IntegerConverter):
    """`<id:name>`: a non-negative integer a database can hold, else no match (404)."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(map, max=ID_MAX)


def form_ids(field: str = "id") -> list[int]:
    """Every `field` of the posted form as an id; any that is not one is a bad request (400)."""
    ids = [parse_id(value) for value in request.form.getlist(field)]
    if not ids or None in ids:
        abort(400)
    return [number for number in ids if number is not None]


def register_converters(url_map: Map) -> None:
    """Before any blueprint registers its rules: they name these converters."""
    url_map.converters["story"] = StoryRefConverter
    url_map.converters["id"] = IdConverter
