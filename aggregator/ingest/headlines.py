"""Wire headline styles made readable: pure functions, no I/O.

Wires write headlines for other editors: "WORLD LEADERS MEET - Reuters", "Politics: Senate
passes bill". On our pages and feeds a headline is shown cleaned: the source's own agency name as
a suffix or prefix removed, a section-name prefix removed, an all-caps headline put in sentence
case with the acronyms and names its text spells (NATO, Geneva) kept. The headline as the feed
gave it is kept on the entry (`Item.raw_title`) and shown by `caulbart explain`. A source opts
out with `clean_headlines: false` in feeds.yaml.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace

from aggregator.types import Config, HeadlineStyle, Item, SourceConfig

# Section names wires put before a colon, besides the site's own sections.
SECTION_NAMES = frozenset(
    {
        "africa", "americas", "analysis", "arts", "asia", "business", "culture", "economy",
        "education", "entertainment", "environment", "europe", "health", "lifestyle", "local",
        "markets", "media", "middle east", "national", "politics", "science", "sport", "sports",
        "tech", "technology", "travel", "uk", "us", "u.s.", "world", "world news",
    }
)  # fmt: skip
SEPARATOR = r"\s*[-–—|:·]\s*"
SECTION_PREFIX = re.compile(r"^([^\W\d_][\w .&'/-]{0,30}?)\s*:\s+(?=\S)")
WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
SENTENCE_END = re.compile(r"[.!?]['\"”’)]*\s")
# A headline is shouting when at least this share of its cased letters are capitals...
SHOUTING_SHARE = 0.9
# ... and it has this many letters at least ("UK" or "NATO" alone is an acronym, not a style).
SHOUTING_LETTERS = 8


def style_for(config: Config, source: SourceConfig | None) -> HeadlineStyle | None:
    """How a source's headlines are cleaned; None when it opted out (or is no longer listed)."""
    if source is None or not source.clean_headlines:
        return None
    sections = {s.section.casefold() for s in config.sources}
    sections |= {name.casefold() for name in config.rules_for(source).section_map.values()}
    return HeadlineStyle(agency=source.agency, sections=frozenset(sections) | SECTION_NAMES)


def restyle(item: Item, style: HeadlineStyle | None) -> Item:
    """The item with its headline cleaned, the feed's own kept in `raw_title` when it differs."""
    if style is None or item.title_derived:
        return item
    cleaned = clean_headline(item.title, style, item.body_text or item.lede)
    if cleaned == item.title:
        return item
    return replace(item, title=cleaned, raw_title=item.title)


def clean_headline(title: str, style: HeadlineStyle, text: str) -> str:
    """The headline without the agency's name, a section prefix or all capitals; the title as
    given when cleaning would leave (next to) nothing."""
    cleaned = _without_agency(title, style.agency)
    match = SECTION_PREFIX.match(cleaned)
    if match and match.group(1).casefold() in style.sections:
        cleaned = cleaned[match.end() :]
    cleaned = _without_agency(cleaned, style.agency)
    if is_shouting(cleaned):
        cleaned = sentence_case(cleaned, text)
    return cleaned if len(WORD.findall(cleaned)) >= 2 else title


def _without_agency(title: str, agency: str) -> str:
    names = {agency.strip()}
    if agency.lower().startswith("the "):
        names.add(agency[4:].strip())
    for name in sorted(filter(None, names), key=len, reverse=True):
        quoted = re.escape(name)
        title = re.sub(rf"(?:{SEPARATOR}|\s+)\(?{quoted}\)?\s*$", "", title, flags=re.IGNORECASE)
        title = re.sub(rf"^\(?{quoted}\)?{SEPARATOR}(?=\S)", "", title, flags=re.IGNORECASE)
    return title.strip()


def is_shouting(title: str) -> bool:
    cased = [c for c in title if c.isupper() or c.islower()]
    if len(cased) < SHOUTING_LETTERS:
        return False
    return sum(c.isupper() for c in cased) >= SHOUTING_SHARE * len(cased)


def sentence_case(title: str, text: str) -> str:
    """ "WORLD LEADERS MEET IN GENEVA" -> "World leaders meet in Geneva" when the text writes
    "Geneva": each word as the text spells it inside a sentence, else in lower case; the first
    word capitalised."""
    forms = _spellings(text)
    first = True

    def recase(match: re.Match[str]) -> str:
        nonlocal first
        word = match.group()
        form = forms.get(word.casefold()) or ("I" if word == "I" else word.lower())
        if first:
            first = False
            return form[:1].upper() + form[1:]
        return form

    return WORD.sub(recase, title)


def _spellings(text: str) -> dict[str, str]:
    """How the text spells each word that is not lower case, where no sentence starts: its most
    frequent form; a word the text also writes in lower case is a common word."""
    seen: dict[str, Counter[str]] = {}
    lower: set[str] = set()
    previous_end = 0
    for match in WORD.finditer(text):
        word = match.group()
        key = word.casefold()
        # A capital that starts a sentence says nothing about the word; an acronym's do.
        opens = previous_end == 0 or bool(SENTENCE_END.search(text[previous_end : match.start()]))
        previous_end = match.end()
        if word == word.lower():
            lower.add(key)
        elif not opens or (word.isupper() and len(word) > 1):
            seen.setdefault(key, Counter())[word] += 1
    return {
        key: forms.most_common(1)[0][0]
        for key, forms in seen.items()
        if key not in lower or any(f.isupper() and len(f) > 1 for f in forms)
    }
