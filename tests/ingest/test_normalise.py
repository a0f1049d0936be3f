"""normalise.py: untrusted `RawEntry` -> clean `Item`, with real feed snippets and the
feedparser sanitiser suite (745 hostile HTML cases written by others)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from html import escape
from pathlib import Path

import pytest

from aggregator import limits
from aggregator.ingest.links import canonical_url
from aggregator.ingest.markup import (
    cap_nesting,
    first_paragraph,
    plain_text,
    sanitise_html,
    search_text,
)
from aggregator.ingest.normalise import clean_person, normalise_entry
from aggregator.ingest.parse import parse_feed
from aggregator.ingest.text import truncate, visible
from aggregator.types import FetchResult, FetchStatus, Item, RawEntry
from tests.conftest import CORPUS, corpus_path
from tests.safety import executable

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
BASE = "http://news.test/world/story.html"


def raw(**fields: object) -> RawEntry:
    entry = RawEntry(
        id=None,
        link=None,
        title=None,
        title_is_html=False,
        summary=None,
        content=None,
        published=None,
        updated=None,
        author=None,
        categories=(),
        image_url=None,
        image_credit=None,
        language=None,
        base=BASE,
    )
    return replace(entry, **fields)  # type: ignore[arg-type]


def item(**fields: object) -> Item:
    result = normalise_entry(raw(**fields), now=NOW)
    assert result is not None
    return result


def parsed_entries(*parts: str) -> list[Item]:
    body = corpus_path("feeds", "real", *parts).read_bytes()
    feed = parse_feed(
        FetchResult("src", "http://feeds.test/feed.xml", FetchStatus.OK, body=body), 1000
    )
    return [i for e in feed.entries if (i := normalise_entry(e, now=NOW)) is not None]


# --- titles ---------------------------------------------------------------------------------


def test_title_entities_are_decoded_tags_stripped_and_whitespace_collapsed() -> None:
    title = "  Tom &amp; Jerry:\n\t<b>the &lt;i&gt;return&lt;/i&gt;</b> &#8217;24&nbsp;&hellip; "
    assert item(title=title, title_is_html=True).title == "Tom & Jerry: the return ’24 …"


def test_title_never_carries_a_tag_however_often_it_was_escaped() -> None:
    title = "Alert &amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt; ends"
    result = item(title=title).title
    assert "<" not in result and "script>" not in result
    assert result.startswith("Alert") and result.endswith("ends")


def test_long_title_is_truncated_at_a_word_with_an_ellipsis() -> None:
    title = "Minister " * 100
    result = item(title=title).title
    assert len(result) <= limits.MAX_TITLE_CHARS
    assert result.endswith("Minister…")


def test_missing_title_falls_back_to_the_lede() -> None:
    result = item(summary="<p>Polls opened at dawn across the country.</p>")
    assert result.title == "Polls opened at dawn across the country."


def test_entry_with_nothing_in_it_is_dropped() -> None:
    assert normalise_entry(raw(summary="<p> </p>", link="javascript:alert(1)"), now=NOW) is None


def test_truncate_keeps_short_text() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("one two three four five", 12) == "one two…"


# --- links ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        (
            "http://EXAMPLE.com:80/a?utm_source=rss&id=3&fbclid=xyz#comments",
            "http://example.com/a?id=3#comments",
        ),
        # A fragment may tell items apart and is kept; one that only tracks the click is not.
        (
            "http://example.com/2002/09/29#When:6:56:02PM",
            "http://example.com/2002/09/29#When:6:56:02PM",
        ),
        ("http://example.com/a#xtor=RSS-3", "http://example.com/a"),
        ("http://example.com/a#ref=rss", "http://example.com/a"),
        ("http://example.com/a#utm_source=feed&utm_medium=rss", "http://example.com/a"),
        ("http://example.com/a#", "http://example.com/a"),
        ("https://Example.COM:443/path", "https://example.com/path"),
        ("http://example.com:8080/x", "http://example.com:8080/x"),
        ("http://example.com/a?gclid=1&utm_medium=feed&UTM_CAMPAIGN=x", "http://example.com/a"),
        ("http://example.com/a?b=1&b=2&utm_x=1", "http://example.com/a?b=1&b=2"),
        ("http://example.com", "http://example.com/"),
        ("../europe/next.html?gclid=1", "http://news.test/europe/next.html"),
        ("/about", "http://news.test/about"),
        ("//cdn.test/pic.jpg", "http://cdn.test/pic.jpg"),
        ("http://[::1]:80/feed", "http://[::1]/feed"),
        ("  http://example.com/x\n", "http://example.com/x"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url, BASE) == canonical


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "mailto:desk@news.test",
        "ftp://news.test/file",
        "http://",
        "http:",
        "http:page.html",  # urljoin would have made these the base URL
        "http://[broken/",
        "",
        None,
        "http://example.com/" + "a" * limits.MAX_URL_CHARS,
    ],
)
def test_canonical_url_refuses_what_is_not_a_web_link(url: str | None) -> None:
    assert canonical_url(url, BASE) is None


def test_item_link_is_canonical_and_relative_links_use_the_base() -> None:
    result = item(title="t", link="/world/2024/story?utm_source=feed#top")
    assert result.link == "http://news.test/world/2024/story#top"


def test_item_with_a_javascript_link_has_no_link() -> None:
    assert item(title="t", link="javascript:alert(document.cookie)").link is None


def test_broken_links_never_become_the_base_url() -> None:
    # Two entries with an empty "http:" link must not share a canonical link (and so a story).
    assert item(title="a", link="http://").link is None
    assert (
        sanitise_html('<a href="http:">x</a>', BASE)
        == '<a rel="noopener noreferrer nofollow">x</a>'
    )


# --- HTML -----------------------------------------------------------------------------------

HOSTILE = (
    '<p onclick="steal()" style="x:expression(alert(1))">Hello <a href="javascript:alert(1)">'
    "j</a></p><script>alert(1)</script><style>p{color:red}</style>"
    '<iframe src="http://evil.test/"></iframe><object data="x.swf"></object>'
    '<embed src="x.swf"><form action="/steal"><input name="pw"><button>go</button></form>'
    '<svg onload="alert(1)"><circle/></svg><img src="data:image/png;base64,AAAA" alt="d">'
    '<img src="javascript:alert(1)"><a href="data:text/html,x">d</a>'
    '<p><img src="x.png" onerror="alert(1)" alt="pic"></p>'
)


def test_sanitise_removes_everything_executable() -> None:
    cleaned = sanitise_html(HOSTILE, BASE)
    for banned in (
        "<script", "alert", "<style", "color:red", "<iframe", "<object", "<embed", "<form",
        "<input", "<button", "<svg", "onclick", "onerror", "onload", "javascript:", "data:",
        "expression", "style=",
    ):  # fmt: skip
        assert banned not in cleaned.lower(), banned
    assert "Hello" in cleaned
    assert '<img src="http://news.test/world/x.png" alt="pic">' in cleaned


def test_sanitise_keeps_safe_markup_and_makes_urls_absolute() -> None:
    markup = (
        '<h2>Sub</h2><p>A <strong>bold</strong> <em>claim</em> <a href="../a.html#p2" '
        'title="more">link</a>.</p><blockquote cite="/q">quote</blockquote>'
        '<ul><li>one</li></ul><figure><img src="/img/x.jpg" alt="X" width="640" height="360">'
        "<figcaption>Caption</figcaption></figure>"
        '<table><tr><td colspan="2">cell</td></tr></table><a href="mailto:desk@news.test">m</a>'
    )
    assert sanitise_html(markup, BASE) == (
        '<h2>Sub</h2><p>A <strong>bold</strong> <em>claim</em> <a href="http://news.test/a.html#p2"'
        ' title="more" rel="noopener noreferrer nofollow">link</a>.</p>'
        '<blockquote cite="http://news.test/q">quote</blockquote><ul><li>one</li></ul><figure>'
        '<img src="http://news.test/img/x.jpg" alt="X" width="640" height="360">'
        "<figcaption>Caption</figcaption></figure>"
        '<table><tbody><tr><td colspan="2">cell</td></tr></tbody></table>'
        '<a href="mailto:desk@news.test" rel="noopener noreferrer nofollow">m</a>'
    )


@pytest.mark.parametrize(
    "pixel",
    [
        '<img src="http://t.test/open.gif" width="1" height="1">',
        "<img src='http://t.test/open.gif' height='1' width='1' alt=''>",
        '<img src="http://t.test/open.gif" width="0" height="0">',
        '<img src="http://feeds.feedburner.com/~r/Reuters/worldNews/~4/c3wXZD4kLB8" alt="">',
        '<a href="http://feeds.reuters.com/~ff/x?a=1"><img src="http://feeds.feedburner.com/~ff/x?d=2"></a>',
        '<img src="http://pixel.wp.com/g.gif?blog=1">',
    ],
)
def test_tracking_pixels_are_dropped(pixel: str) -> None:
    assert sanitise_html(f"<p>Story{pixel}</p>", BASE) == "<p>Story</p>"


def test_real_feedburner_pixels_and_feedflare_are_dropped_from_a_wire_story() -> None:
    first = parsed_entries("wire", "reuters-worldnews-2018-01-30.rss")[0]
    assert "feedburner" not in first.body_html
    assert "~ff" not in first.body_html
    assert "<img" not in first.body_html
    assert first.body_html.startswith("WASHINGTON (Reuters) - North Korea's nuclear program")


def nesting_depth(sanitised: str) -> int:
    """How deep the elements of well-formed (sanitised) HTML nest."""
    depth = deepest = 0
    for closing, name in re.findall(r"<(/?)([a-z][a-z0-9]*)", sanitised):
        if name in {"br", "hr", "img"}:
            continue
        depth += -1 if closing else 1
        deepest = max(deepest, depth)
    return deepest


DEEP = 3 * limits.MAX_MARKUP_DEPTH
WORDS = [f"word{n}" for n in range(DEEP)]
# One word at each level: nested <div>s, and alternating <b><i>, each closed in order.
NESTED = {
    "div": "".join(f"<div>{w} " for w in WORDS) + "</div>" * DEEP,
    "b/i": "".join(f"<b><i>{w} " for w in WORDS) + "</i></b>" * DEEP,
}


@pytest.mark.parametrize("shape", sorted(NESTED))
def test_deep_nesting_is_capped_and_keeps_every_word(shape: str) -> None:
    body = sanitise_html(NESTED[shape], BASE)
    assert limits.MAX_MARKUP_DEPTH <= nesting_depth(body) <= limits.MAX_MARKUP_DEPTH + 1
    assert plain_text(body) == plain_text(f"<p>{' '.join(WORDS)}</p>") == " ".join(WORDS)
    assert sanitise_html(body, BASE) == body  # stored bodies sanitise to themselves


@pytest.mark.parametrize("shape", sorted(NESTED))
def test_deep_nesting_reads_as_the_same_text_and_lede(shape: str) -> None:
    assert plain_text(NESTED[shape]) == " ".join(WORDS)
    assert first_paragraph(NESTED[shape]) == " ".join(WORDS)
    escaped = escape(NESTED[shape])  # markup a feed escaped once more
    assert plain_text(escaped) == " ".join(WORDS)


def test_many_sibling_blocks_read_as_their_words() -> None:
    """Block end tags become spaces before the text is read: the starts are capped after."""
    siblings = "".join(f"<div>{w}</div>" for w in WORDS)
    assert plain_text(siblings) == first_paragraph(siblings) == " ".join(WORDS)


def test_deeply_nested_markup_is_still_sanitised() -> None:
    hostile = (
        '<script>alert("outer")</script><a href="javascript:alert(1)">link</a>'
        '<img src="x" onerror="alert(2)"><iframe src="http://evil.test/">framed</iframe>'
    )
    markup = "<div><span>" * DEEP + "Text " + hostile + "</span></div>" * DEEP
    body = sanitise_html(markup, BASE)
    assert executable(body) == []
    assert "alert" not in body and "framed" not in body and "evil" not in body
    assert nesting_depth(body) <= limits.MAX_MARKUP_DEPTH + 1
    assert plain_text(body) == "Text link"


def test_nesting_under_the_cap_and_unclosed_siblings_are_left_as_they_are() -> None:
    under = "<div>" * limits.MAX_MARKUP_DEPTH + "text" + "</div>" * limits.MAX_MARKUP_DEPTH
    unclosed = "<ul>" + "<li>item" * DEEP + "</ul>" + "<p>para" * DEEP
    assert cap_nesting(under) is under
    assert cap_nesting(unclosed) is unclosed
    assert sanitise_html(under, BASE).count("<div>") == limits.MAX_MARKUP_DEPTH


# --- dates ----------------------------------------------------------------------------------


def test_dates_become_utc() -> None:
    first = parsed_entries("wire", "reuters-worldnews-2018-01-30.rss")[0]
    # <pubDate>Tue, 30 Jan 2018 12:29:57 -0500</pubDate>
    assert first.published == datetime(2018, 1, 30, 17, 29, 57, tzinfo=UTC)
    assert first.published.utcoffset() == timedelta(0)
    assert first.updated == first.published


def test_missing_dates_are_the_time_first_seen() -> None:
    result = item(title="t")
    assert result.published == result.updated == NOW


def test_updated_alone_is_also_the_published_date() -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    result = item(title="t", updated=when)
    assert result.published == result.updated == when


def test_future_dates_are_clamped_to_now() -> None:
    result = item(title="t", published=NOW + timedelta(days=3), updated=NOW + timedelta(days=4))
    assert result.published == result.updated == NOW


@pytest.mark.parametrize(
    "published",
    [
        datetime(1, 1, 1, tzinfo=UTC),  # <pubDate>Sat, 01 Jan 0001 00:00:00 +0000</pubDate>
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14))),  # before year 1 in UTC
        datetime(1989, 12, 31, 23, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))),  # after 9999
    ],
)
def test_dates_out_of_range_are_the_time_first_seen_with_a_note(published: datetime) -> None:
    result = item(title="t", published=published)
    assert result.published == result.updated == NOW
    assert result.date_note is not None
    assert result.date_note.startswith(f"published {published.isoformat()} is ")
    assert result.date_note.endswith(": dated when fetched")


def test_an_out_of_range_published_date_gives_way_to_a_plausible_updated_one() -> None:
    updated = datetime(2024, 5, 1, tzinfo=UTC)
    result = item(title="t", published=datetime(1, 1, 1, tzinfo=UTC), updated=updated)
    assert result.published == result.updated == updated
    assert result.date_note == (
        "published 0001-01-01T00:00:00+00:00 is before 1990-01-01: dated when fetched"
    )


def test_plausible_dates_carry_no_note() -> None:
    assert item(title="t").date_note is None
    assert item(title="t", published=limits.EARLIEST_DATE).date_note is None


def test_dates_within_the_clock_tolerance_are_kept() -> None:
    soon = NOW + timedelta(seconds=limits.FUTURE_TOLERANCE_SECONDS - 60)
    assert item(title="t", published=soon).published == soon


def test_updated_is_never_before_published() -> None:
    published = datetime(2024, 5, 2, tzinfo=UTC)
    result = item(title="t", published=published, updated=published - timedelta(days=1))
    assert result.updated == published


def test_offset_dates_compare_in_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    # 13:00+02:00 is 11:00 UTC: not in the future, so kept as the same instant.
    when = datetime(2024, 6, 1, 13, 0, tzinfo=plus_two)
    assert item(title="t", published=when).published == NOW - timedelta(hours=1)


# --- guid -----------------------------------------------------------------------------------


def test_guid_is_the_feed_id_first() -> None:
    result = item(id="  urn:wire:12345 ", link="http://news.test/a", title="t")
    assert result.guid == "urn:wire:12345"


def test_guid_falls_back_to_the_canonical_link() -> None:
    result = item(link="HTTP://News.test/a?utm_source=x#frag", title="t")
    assert result.guid == "http://news.test/a#frag"


def test_guid_falls_back_to_a_content_hash() -> None:
    first = item(title="Quake hits", summary="<p>A strong quake hit.</p>")
    again = item(title="Quake hits", summary="<p>A strong quake hit.</p>")
    other = item(title="Quake hits", summary="<p>A weak quake hit.</p>")
    assert first.guid.startswith("sha256:")
    assert first.guid == again.guid != other.guid


def test_long_guid_is_hashed() -> None:
    long_id = "urn:x:" + "9" * limits.MAX_GUID_CHARS
    result = item(id=long_id, title="t")
    assert result.guid == "sha256:" + hashlib.sha256(long_id.encode()).hexdigest()
    assert len(result.guid) < limits.MAX_GUID_CHARS


# --- lede, author, image --------------------------------------------------------------------


def test_lede_is_the_first_paragraph_as_plain_text() -> None:
    body = "<p></p><p>First <b>para</b> &amp; more.</p><p>Second para.</p>"
    assert item(title="t", content=body).lede == "First para & more."


def test_lede_comes_from_the_summary_when_there_is_full_content() -> None:
    result = item(
        title="t",
        summary="Short teaser.",
        content="<p>The long article starts here.</p><p>And goes on.</p>",
    )
    assert result.lede == "Short teaser."
    assert result.has_full_text


def test_first_paragraph_splits_on_double_line_breaks() -> None:
    assert first_paragraph("Line one<br><br>Line two") == "Line one"
    assert first_paragraph("First.\n\nSecond.") == "First."


def test_plain_text_of_html() -> None:
    assert plain_text("<p>One</p><p>Two<br>Three</p>") == "One Two Three"


@pytest.mark.parametrize(
    "text",
    [
        "Fed holds rates",
        "\ufeffByte order mark first, \ufeff inside",
        "NUL\x00 and CR\r\nline\rends",
        "  non\xa0breaking\u2028separators\u3000 and \x1f unit \x85 next line  ",
        "quotes \"'\u201c and > alone",
        "",
    ],
)
def test_plain_text_without_markup_is_what_the_parser_gives(text: str) -> None:
    """Text with no "<" and no "&" skips the HTML parser; the result must not change."""
    parsed = plain_text(f"{text}<b></b>")  # with a tag, it takes the parser's path
    assert plain_text(text) == parsed


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("John Doe (john@example.com)", "John Doe"),
        ("jane.roe@example.co.uk (Jane Roe)", "Jane Roe"),
        ("Desk <desk@news.test>", "Desk"),
        ("only@example.com", None),
        ("<b>Reporter</b>", "Reporter"),
        ("", None),
    ],
)
def test_author_emails_are_removed(name: str, clean: str | None) -> None:
    assert clean_person(name) == clean


def test_item_author_has_no_email() -> None:
    assert item(title="t", author="editor@news.test (Ed Itor)").author == "Ed Itor"


def test_image_comes_from_media_first() -> None:
    result = item(
        title="t",
        image_url="/media/lead.jpg?utm_source=rss",
        image_credit="Photo: <b>AP</b>",
        content='<p><img src="/inline.jpg"></p>',
    )
    assert result.image_url == "http://news.test/media/lead.jpg"
    assert result.image_credit == "Photo: AP"


def test_image_falls_back_to_the_first_img_in_the_body() -> None:
    result = item(
        title="t",
        content=(
            '<p><img src="http://t.test/px.gif" width="1" height="1"><img src="a&amp;b.jpg"></p>'
        ),
    )
    assert result.image_url == "http://news.test/world/a&b.jpg"


def test_real_media_image_and_credit_survive_normalising() -> None:
    first = parsed_entries("feedjira", "HuffPostCanada.xml")[0]
    assert first.image_url == (
        "http://o.aolcdn.com/hss/storage/midas/b1726dd5e5cde1fb967d92d963537957/205775479/"
        "Untitled+design+%2857%29.png"
    )
    assert first.image_credit == "Dakota Collegiate/Twitter"
    assert first.author == "Canadian Press"


def test_categories_are_plain_deduplicated_and_capped() -> None:
    labels = ("<b>Politics</b>", "politics", "Europe", *[f"t{n}" for n in range(50)])
    result = item(title="t", categories=labels)
    assert result.categories[:3] == ("Politics", "Europe", "t0")
    assert len(result.categories) == limits.MAX_CATEGORIES


def test_content_hash_changes_with_an_edit_and_text_hash_ignores_punctuation() -> None:
    words = "The central bank raised its main interest rate by half a point on Thursday"
    first = item(id="x", title="Rates up", content=f"<p>{words}.</p>")
    edited = item(id="x", title="Rates up", content=f"<p>{words}!</p>")
    assert first.content_hash != edited.content_hash
    assert first.text_hash is not None and first.text_hash == edited.text_hash
    assert item(id="y", title="Live", content="<p>Short.</p>").text_hash is None


# --- the feedparser sanitiser suite ---------------------------------------------------------

SANITIZE = CORPUS / "feeds" / "conformance" / "feedparser" / "wellformed" / "sanitize"
SANITIZE_CASES = sorted(p.name for p in SANITIZE.glob("*.xml")) or ["(corpus missing)"]
EXECUTABLE = re.compile(
    r"<\s*(?:script|style|iframe|object|embed|form|svg|math|link|meta|base|frame|applet)\b"
    r"|\son\w+\s*=|javascript:|vbscript:|data:|expression\s*\(|\bstyle\s*=",
    re.IGNORECASE,
)


@pytest.mark.parametrize("name", SANITIZE_CASES)
def test_feedparser_sanitiser_case_leaves_nothing_executable(name: str) -> None:
    path: Path = corpus_path("feeds", "conformance", "feedparser", "wellformed", "sanitize", name)
    body = path.read_bytes()
    feed = parse_feed(FetchResult("src", "http://feeds.test/f.xml", FetchStatus.OK, body=body), 50)

    if not feed.entries:
        # Only the cases about feed-level fields (title, subtitle...) have no entry to publish.
        expect = re.search(rb"Expect:(.*)", body)
        assert expect is not None and b"entries[" not in expect.group(1), name
        return
    for entry in feed.entries:
        for html in (entry.content, entry.summary, entry.title):
            if html:
                cleaned = sanitise_html(html, entry.base)
                assert not EXECUTABLE.search(cleaned), cleaned
        result = normalise_entry(entry, now=NOW)
        if result is None:
            continue
        assert not EXECUTABLE.search(result.body_html), result.body_html
        for text in (result.title, result.lede, result.author, result.image_credit):
            assert text is None or "<" not in text, text
        for url in (result.link, result.image_url):
            assert url is None or url.startswith(("http://", "https://")), url


@pytest.mark.parametrize(
    "fragment",
    [
        '<p title="a > b">Pilots <a href="https://quokka.example/?a=1&b=2">published</a></p>',
        '<img alt="x>y" src="https://img.example/a.png">after the storm',
        "<p>1 &lt; 2 &amp;&amp; 3 &gt; 2</p><br>next",
        "<table><tr><td>left</td><td>right</td></tr></table>",
        '<p onclick="x>1">kept</p><script>dropped()</script><style>p{}</style>',
        # Escaped twice by its feed (AG News): the decoded text is markup again.
        '<p>Colgate &amp;lt;A HREF="http://quokka.example/q?t=CL.N"&amp;gt;CL.N&amp;lt;/A&amp;gt;'
        " will cut jobs</p>",
    ],
)
def test_search_text_has_the_words_of_a_sanitised_body_and_nothing_of_its_tags(
    fragment: str,
) -> None:
    """The cheap reading SQLite's search index takes of a body (tags cut at their quoted ends)
    gives the same words as plain_text's full parse: none from an address, attribute or tag."""
    body = sanitise_html(fragment, "https://base.example/")
    words = re.findall(r"\w+", search_text(body))
    assert words == re.findall(r"\w+", plain_text(body))
    assert not {"quokka", "href", "img", "alt", "onclick", "dropped"} & set(words)


def test_invisible_characters_leave_headlines_and_are_encoded_in_links() -> None:
    assert visible("Invoice \u202efdp.exe\u2066 from\u200b the\u00a0harbour") == (
        "Invoice fdp.exe from the harbour"
    )
    assert visible("plain ascii  stays as given") == "plain ascii  stays as given"
    assert canonical_url("https://example.org/a\u200bb") == "https://example.org/a%E2%80%8Bb"
