"""Plain text as every stage compares and shows it: control and invisible characters out,
whitespace collapsed, case and accents folded, cut at a word.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
WORD = re.compile(r"\w+")
# Bidirectional controls (U+202A-202E, U+2066-2069, U+200E/F, U+061C) and zero-width characters
# (U+200B-200D, U+2060, U+FEFF): invisible, yet they make text read otherwise than it is
# ("fdp.exe" behind U+202E shows as "exe.pdf") or two equal-looking links differ.
INVISIBLE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u200b-\u200d\u2060\ufeff]")
NON_ASCII = re.compile(r"[^\x00-\x7f]")


def collapse(text: str) -> str:
    """Control characters removed, whitespace runs made one space, ends stripped.

    str.split() and regex "\\s" agree on what is whitespace (str.isspace); split is the faster.
    """
    return " ".join(CONTROL_CHARS.sub("", text).split())


def visible(text: str) -> str:
    """One line of text (a headline, a name, a tag) without invisible characters; whitespace
    they separated is made one space again."""
    if text.isascii():
        return text
    return " ".join(INVISIBLE.sub("", text).split())


def truncate(text: str, limit: int) -> str:
    """Cut at a word boundary with an ellipsis; short text is returned unchanged."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:.-") + "…"


def fold(text: str) -> str:
    """Lower case without accents ("Café" -> "cafe"): the form texts are compared in."""
    folded = text.casefold()
    if folded.isascii():  # most copy is: nothing to take off
        return folded
    # Only the non-ASCII characters are looked at: in English copy, a few quotes and dashes.
    return NON_ASCII.sub(_without_accent, unicodedata.normalize("NFKD", folded))


def _without_accent(match: re.Match[str]) -> str:
    return "" if unicodedata.combining(match.group()) else match.group()


def text_fingerprint(*parts: str) -> str:
    """Hash of case-, accent- and punctuation-insensitive text: equal for the same wording."""
    words = WORD.findall(fold(" ".join(parts)))  # what splitting at every non-word run leaves
    return hashlib.sha256(" ".join(words).encode()).hexdigest()
