"""A small newsroom for the web tests: hand-written RSS from three agencies, served by the
loopback FeedServer, with images and credits, categories (tags), a story two agencies both
reported, and a headline full of characters that must be escaped."""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from tests import feeds
from tests.conftest import FeedServer


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A plain-colour PNG, written by hand (the image the stories show)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


PNG = _png(800, 450, (70, 110, 140))
SHARED_TITLE = "Glaciers retreat faster than forecast, survey of the Alps finds"
ESCAPED_TITLE = 'Markets & "models": why <small> banks </small> fear AI'
TOPICS = [
    ("Climate", "glaciers ice meltwater rivers summer heat records scientists survey"),
    ("Energy", "grid batteries solar wind storage prices utilities winter demand"),
    ("Elections", "voters ballots turnout campaign polls candidates debate coalition"),
    ("Artificial intelligence", "models chips training data labs regulation safety compute"),
]


@dataclass(frozen=True)
class Item:
    title: str
    text: str
    link: str
    category: str
    published: datetime
    image: str | None = None
    credit: str | None = None


_WORDS = (
    "harbour council tunnel orchard festival museum bridge ferry library stadium airport "
    "vineyard quarry bakery factory hospital railway canal observatory market theatre school "
    "cathedral lighthouse reservoir garden prison embassy laboratory university forest desert "
    "island valley mountain river coast border village capital province district harbourmaster "
    "mayor minister engineer farmer teacher nurse pilot judge captain athlete composer painter "
    "announced delayed approved rejected opened closed expanded repaired flooded restored "
    "celebrated questioned funded audited relocated discovered measured predicted"
)
VOCABULARY = tuple(_WORDS.split())


def _items(agency: str, section: str, start: datetime, count: int, seed: int) -> list[Item]:
    """Stories whose words differ enough that no dedupe rule can take two for one."""
    rng = random.Random(seed)
    items = []
    for n in range(count):
        topic, words = TOPICS[(n + seed) % len(TOPICS)]
        picked = rng.sample(list(VOCABULARY), 30)
        title = (
            f"{picked[0].title()} {picked[1]} {picked[2]}: {topic.lower()} {words.split()[n % 8]}"
        )
        text = (
            f"{' '.join(picked[3:18])} {words} {' '.join(picked[18:])} "
            f"in the {section} report {seed}-{n} from {agency}."
        )
        items.append(
            Item(
                title=title,
                text=text,
                link=f"https://{agency.lower()}.example/{section}/{n + 1}",
                category=topic,
                published=start - timedelta(hours=3 * n + seed + 2),
            )
        )
    return items


def agency_feed(agency: str, items: list[Item]) -> str:
    entries = []
    for item in items:
        media = ""
        if item.image:
            media = f'<media:content url="{escape(item.image)}" medium="image" width="800"/>'
            if item.credit:
                media += f"<media:credit>{escape(item.credit)}</media:credit>"
        entries.append(
            feeds.Item(
                title=item.title,
                link=item.link,
                guid=item.link,
                categories=(item.category,),
                published=item.published,
                description="<p>" + escape(item.text) + "</p>",
                extra=media,
            )
        )
    return feeds.rss(
        *entries,
        title=agency,
        link=f"https://{agency.lower()}.example/",
        description=f"{agency} news",
    )


def serve_newsroom(server: FeedServer, now: datetime | None = None) -> list[dict[str, object]]:
    """Register the feeds and the image on `server`; returns feeds.yaml sources for them."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    image = server.add("/img/glacier.png", PNG, content_type="image/png")
    shared_text = (
        "A survey of forty Alpine glaciers found the ice retreating faster than any forecast "
        "made a decade ago, with meltwater feeding rivers earlier every summer."
    )
    shared = [
        Item(SHARED_TITLE, shared_text, f"https://{a}.example/world/glaciers", "Climate",
             now - timedelta(hours=1), image, "Photo: A. Climber / Northwire")
        for a in ("northwire", "southwire")
    ]  # fmt: skip
    escaped = Item(
        ESCAPED_TITLE,
        "Banks & lenders say models < people now decide credit for millions, and regulators want "
        "to know how those decisions are made before the next downturn arrives.",
        "https://bytepost.example/tech/ai-banks",
        "Artificial intelligence",
        now - timedelta(hours=2),
        image,
        None,
    )
    feeds = {
        "northwire": ("Northwire", "world", [shared[0], *_items("Northwire", "world", now, 8, 1)]),
        "southwire": ("Southwire", "world", [shared[1], *_items("Southwire", "world", now, 6, 2)]),
        "bytepost": ("Bytepost", "tech", [escaped, *_items("Bytepost", "tech", now, 8, 3)]),
    }
    sources: list[dict[str, object]] = []
    for source_id, (agency, section, items) in feeds.items():
        url = server.add(f"/{source_id}.rss", agency_feed(agency, items))
        sources.append(
            {"id": source_id, "name": f"{agency} {section}", "url": url, "agency": agency,
             "section": section, "priority": 2 if source_id == "northwire" else 1}
        )  # fmt: skip
    return sources
