"""What "nothing executable" means, checked the way a browser would read the HTML."""

from __future__ import annotations

import random
import re
from html.parser import HTMLParser

DANGEROUS_TAGS = {"script", "iframe", "object", "embed", "style", "form", "input", "button",
                  "meta", "link", "base", "svg", "math", "frame", "frameset", "applet",
                  "textarea", "select", "template", "noscript"}  # fmt: skip
URL_ATTRIBUTES = {"href", "src", "cite", "action", "background", "poster", "srcset", "data"}
# Markup in what must be plain text (titles, ledes, names): "<" opening a tag, as HTML reads it.
MARKUP = re.compile(r"<[a-zA-Z!/?]")
# Markup in a headline, which is text and may hold literal brackets ("Nice <gorilla>"): a tag of
# an element that formats or runs (`<b>`, `</i>`, `<script`), or any tag with attributes.
HEADLINE_MARKUP = re.compile(
    r"</?(?:a|b|i|u|p|br|em|strong|span|div|font|img|script|style|iframe|svg|body|meta|link|"
    r"object|embed|table|input|frame)\b|<[a-zA-Z][\w:-]*\s+[^\s>/]",
    re.IGNORECASE,
)


class ExecutableFinder(HTMLParser):
    """Tags, event handlers, styles and non-web URLs: everything a browser could run."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in DANGEROUS_TAGS:
            self.found.append(f"<{tag}>")
        for name, value in attrs:
            url = (value or "").strip().lower()
            if name.startswith("on") or name in ("style", "srcdoc", "formaction"):
                self.found.append(f"{tag}[{name}]")
            elif name in URL_ATTRIBUTES and url and not url.startswith(URL_SCHEMES):
                self.found.append(f"{tag}[{name}={url[:40]}]")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)


URL_SCHEMES = ("http://", "https://", "mailto:")


def executable(fragment: str) -> list[str]:
    """What in `fragment` a browser would execute or load as code; empty when it is safe."""
    finder = ExecutableFinder()
    finder.feed(fragment)
    finder.close()
    return finder.found


def mutate_feed(body: bytes, rng: random.Random, edits: int = 20) -> bytes:
    """A feed as a broken server or a flipped bit would send it: bytes replaced, cut, repeated."""
    data = bytearray(body)
    for _ in range(rng.randint(1, edits)):
        if not data:
            break
        position = rng.randrange(len(data))
        action = rng.randint(0, 2)
        if action == 0:
            data[position] = rng.randrange(256)
        elif action == 1:
            del data[position : position + rng.randint(1, 500)]
        else:
            data[position:position] = data[position : position + rng.randint(1, 100)]
    return bytes(data)
