"""Article pages for the full-text tests and bench: real layouts around known paragraphs.

Each layout in tests/fixtures/article_layouts is a publisher's page (navigation, ads, share
buttons, related links, comments, footer) with the article left as a slot. The article itself
is a BBC News text from ../shared/corpus (not copied into this repository), so the paragraphs
an extractor should recover are known exactly, and so is the boilerplate it must leave out.
"""

from __future__ import annotations

import csv
import html
from dataclasses import dataclass
from pathlib import Path

LAYOUTS = Path(__file__).resolve().parent / "fixtures" / "article_layouts"


@dataclass(frozen=True)
class Layout:
    name: str
    # How the layout writes one paragraph (`{}` is the escaped text).
    paragraph: str
    # Inserted after the second paragraph, inside the article (an ad, a "read more" box).
    inline: str
    # Text in the article's own column (that inline box, a trailer after the text): harder to
    # tell from the article, so measured by bench/fulltext_eval.py, not required.
    inside: tuple[str, ...]
    # Text of the page around the article (navigation, ads, share buttons, related links,
    # comments, footer) that must never be taken for it.
    boilerplate: tuple[str, ...]


LAYOUT_LIST = (
    Layout(
        "wordpress",
        "<p>{}</p>",
        '<div class="wp-block-image"><figure><img src="/wp-content/uploads/2005/02/chart.png"'
        ' alt=""></figure></div>',
        (),
        (
            "Local news, weather and sport since 1887",
            "What's on in the valley this weekend",
            "Share this story with your friends and family",
            "Previous: Old paper mill reopens",
            "I have lived in this town for forty years",
            "Great article, thanks for sharing",
            "Your email address will not be published",
            "Reach more than forty thousand readers every week",
            "Flood defences on the lower valley",
            "Registered in England and Wales",
        ),
    ),
    Layout(
        "broadsheet",
        '<p class="story-body__paragraph">{}</p>',
        '<div class="ad-slot ad-inread"><span class="ad-label">Advertisement</span>'
        "<p>Compare mortgage deals from over ninety lenders in under two minutes with our"
        " free comparison service.</p></div>",
        ("Compare mortgage deals from over ninety lenders",),
        (
            "We use cookies to give you the best online experience",
            "Companies in the news this week",
            "Switch your energy supplier today",
            "Shares tumble as the central bank leaves interest rates",
            "Five pension mistakes that could cost you thousands",
            "Volcano erupts on remote island",
            "Hospital waiting lists shorter than at any time",
            "not responsible for the content of external sites",
        ),
    ),
    Layout(
        "legacy",
        "<p>{}</p>",
        '<table align="right" class="inline-ad"><tr><td><b>Related:</b> <a href="/news/2005/01/'
        'patents.asp">Software patents debate returns to the European parliament in the'
        " spring</a></td></tr></table>",
        ("Software patents debate returns",),
        (
            "Register for free e-mail alerts",
            "Chip maker unveils its fastest processor",
            "Subscribe to our free weekly newsletter",
            "Reprints and permissions for this article",
            "Talkback: what our readers say",
            "it took eighteen months to recover from the mess",
            "The vendors have been promising the same improvements",
            "Cheap web hosting from only one pound",
            "Reproduction in whole or in part in any form",
        ),
    ),
    Layout(
        "wire",
        # A wire agency's old CMS: paragraphs as text runs between <br><br>, not <p>.
        "{}<br><br>",
        '<div class="factbox"><b>FACTBOX</b> - Key figures: revenue, profit and share price'
        " over five years, compiled by the data desk</div><br>",
        ("Key figures: revenue, profit and share price", "Trust Principles guarantee the"),
        (
            "More from the wire services",
            "OIL $47.54 a barrel on the New York exchange",
            "Discuss this story with other readers",
            "Oil prices climb to a four-month high",
            "Open a trading account today",
            "subject to an Editorial Handbook",
            "All quotes delayed a minimum of 15 minutes",
        ),
    ),
    Layout(
        "magazine",
        '<p data-component="paragraph" class="Paragraph_text">{}</p>',
        '<aside class="Article_readMore"><h3>Read more</h3><a href="/culture/2005/01/20/oscars">'
        "How the small studios learned to campaign for the big awards</a></aside>",
        ("How the small studios learned to campaign",),
        (
            "Get unlimited access for just one pound a week",
            "Podcasts and audio stories",
            "Enjoy more audio and podcasts on iOS or Android",
            "This article appeared in the Culture section",
            "Why the opera house is selling out",
            "the most moving thing I have watched in years",
            "Overrated in my opinion",
            "Give a gift subscription to someone special",
            "an unworthy, timid ignorance obstructing our progress",
        ),
    ),
)

# BBC News articles (category, document) with five to eleven paragraphs, one per layout
# and a few more for the bench.
ARTICLES = (
    ("business", "020"),
    ("politics", "040"),
    ("tech", "010"),
    ("entertainment", "010"),
    ("sport", "040"),
    ("tech", "040"),
    ("politics", "020"),
    ("business", "030"),
)


@dataclass(frozen=True)
class Article:
    title: str
    paragraphs: tuple[str, ...]


def load_articles(corpus: Path) -> list[Article]:
    """The ARTICLES from the corpus's news/articles.csv, split into their paragraphs."""
    wanted = set(ARTICLES)
    found: dict[tuple[str, str], Article] = {}
    with (corpus / "news" / "articles.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["category"], row["doc"])
            if key in wanted:
                paragraphs = tuple(p.strip() for p in row["body"].split("\n\n") if p.strip())
                found[key] = Article(row["title"].strip(), paragraphs)
    return [found[key] for key in ARTICLES]


def render(layout: Layout, article: Article, image_url: str = "/img/lead.jpg") -> str:
    """The article as this layout's page would publish it."""
    body = [layout.paragraph.format(html.escape(p)) for p in article.paragraphs]
    body.insert(min(2, len(body)), layout.inline)
    page = (LAYOUTS / f"{layout.name}.html").read_text(encoding="utf-8")
    return (
        page.replace("{{TITLE}}", html.escape(article.title))
        .replace("{{LEDE}}", html.escape(article.paragraphs[0][:160]))
        .replace("{{IMAGE}}", html.escape(image_url))
        .replace("{{BODY}}", "\n".join(body))
    )


def render_odd(article: Article) -> str:
    """A page that trafilatura's own extractor reads as nearly empty (a one-line teaser in the
    <article>, the text as bare <div>s in a side column), so only its fallback, jusText, finds
    the article: the path that needs lxml's html_clean extra."""
    body = "\n".join(f"<div>{html.escape(p)}</div>" for p in article.paragraphs)
    title = html.escape(article.title)
    return (
        f"<!DOCTYPE html><html><head><title>{title}</title></head><body>"
        f"<article><h1>{title}</h1><p>Read the full story.</p></article>"
        f'<div class="sidebar">{body}</div></body></html>'
    )


def recovered(paragraphs: tuple[str, ...], text: str) -> int:
    """How many of the article's paragraphs are in the extracted text, whitespace aside."""
    flat = " ".join(text.split())
    return sum(" ".join(p.split()) in flat for p in paragraphs)


def kept_inside(layout: Layout, text: str) -> list[str]:
    """The layout's in-column extras found in the extracted text (measured, not required)."""
    flat = " ".join(html.unescape(text).split())
    return [phrase for phrase in layout.inside if phrase in flat]


def leaked(layout: Layout, text: str) -> list[str]:
    """The layout's boilerplate found in the extracted text (should be none)."""
    flat = " ".join(html.unescape(text).split())
    return [phrase for phrase in layout.boilerplate if phrase in flat]
