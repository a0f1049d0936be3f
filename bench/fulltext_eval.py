"""Full-text extraction quality: the share of an article's paragraphs recovered from real page
layouts, and how much of the page around it leaks in.

Each layout of tests/fixtures/article_layouts (a WordPress blog, a broadsheet, a table-layout
legacy CMS, a wire agency's CMS with <br>-separated paragraphs, a JS-era magazine; navigation,
ads, share buttons, related links, comments and footers around the article) is filled with
BBC News texts from ../shared/corpus and read by aggregator.ingest.fulltext.extract, the function
the
pipeline uses. Prints, per layout: paragraphs recovered; pages with boilerplate leaked
(navigation, ads, related links, comments, footer around the article); pages where something
in the article's own column (an inline ad or "read more" box, a trailer after the text) was
kept ("inside"); and the median extraction time.

    .venv/bin/python bench/fulltext_eval.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aggregator.ingest.fulltext import extract  # noqa: E402
from aggregator.ingest.markup import plain_text  # noqa: E402
from aggregator.types import FetchResult, FetchStatus  # noqa: E402
from tests.article_pages import (  # noqa: E402
    LAYOUT_LIST,
    kept_inside,
    leaked,
    load_articles,
    recovered,
    render,
)

CORPUS = ROOT.parent / "shared" / "corpus"
URL = "https://news.example.org/2005/02/14/story.html"


def main() -> None:
    articles = load_articles(CORPUS)
    started = time.perf_counter()
    import trafilatura  # noqa: F401

    print(f"trafilatura import: {time.perf_counter() - started:.2f}s")
    print(f"{len(articles)} BBC articles x {len(LAYOUT_LIST)} layouts")
    print(f"{'layout':<12} {'paragraphs':>14} {'share':>7} {'leaks':>6} {'inside':>6} {'ms':>6}")
    total_found = total = 0
    for layout in LAYOUT_LIST:
        found = wanted = leaks = asides = 0
        times: list[float] = []
        for article in articles:
            body = render(layout, article, "/img/lead.jpg").encode()
            result = FetchResult(
                "bench", URL, FetchStatus.OK, 200, body, (("Content-Type", "text/html"),), URL
            )
            begun = time.perf_counter()
            text = plain_text(extract(result).body_html)
            times.append(time.perf_counter() - begun)
            found += recovered(article.paragraphs, text)
            wanted += len(article.paragraphs)
            leaks += bool(leaked(layout, text))
            asides += bool(kept_inside(layout, text))
        total_found += found
        total += wanted
        print(
            f"{layout.name:<12} {found:>6} of {wanted:<5} {found / wanted:>7.1%} "
            f"{leaks:>6} {asides:>6} {statistics.median(times) * 1000:>6.1f}"
        )
    print(f"{'all':<12} {total_found:>6} of {total:<5} {total_found / total:>7.1%}")


if __name__ == "__main__":
    main()
