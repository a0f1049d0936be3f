"""Property-based tests (hypothesis): whatever a feed sends, the normaliser and sanitiser never
raise, never let anything executable through, and are idempotent. Plus a short fuzz of parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from aggregator import dates, limits
from aggregator.errors import ParseError
from aggregator.ingest.links import canonical_url
from aggregator.ingest.markup import plain_text, sanitise_html
from aggregator.ingest.normalise import normalise_entry
from aggregator.ingest.parse import parse_feed
from aggregator.types import FetchResult, FetchStatus, RawEntry
from tests.conftest import corpus_path
from tests.safety import HEADLINE_MARKUP, MARKUP, executable, mutate_feed

NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
TAGS = ["p", "a", "img", "script", "iframe", "svg", "style", "form", "b", "div", "object",
        "math", "meta", "base", "input", "table", "td", "noscript", "template", "br"]  # fmt: skip
ATTRIBUTES = ["href", "src", "onerror", "onclick", "style", "srcdoc", "class", "title",
              "formaction", "xlink:href", "data", "width", "height", "alt"]  # fmt: skip
VALUES = ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "java\tscript:x", "data:text/html,x",
          "vbscript:x", "http://ok.test/a", "/relative", "x\" onmouseover=\"alert(1)",
          "expression(alert(1))", "&#106;avascript:x", "1", ""]  # fmt: skip


ODD_SYNTAX = ["&lt;script&gt;", "&amp;lt;b&amp;gt;", "<!--", "-->", "<![CDATA[", "]]>", "<", ">",
              "&#0;", "\x00"]  # fmt: skip


@st.composite
def html_fragments(draw: st.DrawFn, depth: int = 0) -> str:
    """Nested tags with dangerous attributes and raw text, entities and broken syntax."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 3))
        if kind == 0 or depth > 2:
            parts.append(draw(st.text(max_size=20)))
        elif kind == 1:
            parts.append(draw(st.sampled_from(ODD_SYNTAX)))
        else:
            tag = draw(st.sampled_from(TAGS))
            attrs = " ".join(
                f'{draw(st.sampled_from(ATTRIBUTES))}="{draw(st.sampled_from(VALUES))}"'
                for _ in range(draw(st.integers(0, 3)))
            )
            inner = draw(html_fragments(depth + 1))
            closing = draw(st.sampled_from([f"</{tag}>", "", f"</{tag} >"]))
            parts.append(f"<{tag} {attrs}>{inner}{closing}")
    return "".join(parts)


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(html_fragments(), st.sampled_from([None, "http://base.test/dir/", "javascript:x"]))
# Found by this test: the parser moved the inner link out of the outer one on a second pass.
@example("<a ><table ><p ><p ></p><a ></p></table>", None)
def test_sanitised_html_runs_nothing_and_is_stable(fragment: str, base: str | None) -> None:
    once = sanitise_html(fragment, base)
    assert executable(once) == []
    assert sanitise_html(once, base) == once


@FAST
@given(st.one_of(html_fragments(), st.text()))
def test_plain_text_has_no_markup_and_is_stable(text: str) -> None:
    once = plain_text(text)
    assert not MARKUP.search(once)
    assert "\x00" not in once
    assert plain_text(once) == once


@FAST
@given(st.one_of(st.text(), st.sampled_from(VALUES)), st.sampled_from([None, "http://b.test/x/"]))
def test_canonical_urls_are_web_urls_and_stable(url: str, base: str | None) -> None:
    result = canonical_url(url, base)
    if result is not None:
        assert result.startswith(("http://", "https://"))
        assert canonical_url(result) == result


optional_text = st.one_of(st.none(), st.text(max_size=200), html_fragments())


@FAST
@given(
    st.builds(
        RawEntry,
        id=optional_text,
        link=st.one_of(st.none(), st.sampled_from(VALUES), st.text(max_size=50)),
        title=optional_text,
        title_is_html=st.booleans(),
        summary=optional_text,
        content=optional_text,
        published=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
        updated=st.one_of(st.none(), st.datetimes(timezones=st.just(UTC))),
        author=optional_text,
        categories=st.lists(st.text(max_size=30), max_size=5).map(tuple),
        image_url=st.one_of(st.none(), st.sampled_from(VALUES)),
        image_credit=optional_text,
        language=st.one_of(st.none(), st.text(max_size=10)),
        base=st.sampled_from([None, "http://feed.test/"]),
    )
)
def test_normalising_any_entry_never_raises_and_yields_clean_items(raw: RawEntry) -> None:
    item = normalise_entry(raw, now=NOW)
    if item is None:
        return
    assert executable(item.body_html) == []
    # A headline read as markup keeps no tag; a plain-text one is text, literal brackets and all
    # ("Nice <gorilla>"), escaped where it is shown (test_hostile reads the pages and feeds).
    if raw.title_is_html:
        assert not HEADLINE_MARKUP.search(item.title)
    for text in (item.lede, item.author or "", *item.categories):
        assert not MARKUP.search(text)
    for url in (item.link, item.image_url):
        assert url is None or url.startswith(("http://", "https://"))
    assert item.published <= NOW.replace(year=NOW.year) or item.published == NOW
    assert item.guid


def test_parsing_mutated_real_feeds_raises_nothing_but_parse_error() -> None:
    """A short fuzz: real feeds with bytes flipped, cut or repeated (longer: bench/fuzz_parse)."""
    seeds = [
        corpus_path("feeds", "real", "wire", "reuters-worldnews-2018-01-30.rss").read_bytes(),
        corpus_path("feeds", "conformance", "feed-rs", "rss2", "rss_2.0_bbc.xml").read_bytes(),
    ]
    rng = random.Random(7)
    for round_ in range(150):
        body = mutate_feed(rng.choice(seeds), rng)
        result = FetchResult("fuzz", "http://fuzz.test/", FetchStatus.OK, 200, bytes(body))
        try:
            feed = parse_feed(result, max_entries=1000)
        except ParseError:
            continue
        for raw in feed.entries:
            item = normalise_entry(raw, now=NOW)
            assert item is None or executable(item.body_html) == [], round_


# Every fixed offset a date can carry (RFC 3339 allows +/-23:59).
OFFSETS = st.builds(
    timezone,
    st.timedeltas(
        min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59)
    ),
)
ANY_DATE = st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=OFFSETS)
FIRST, LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


@given(published=st.none() | ANY_DATE, updated=st.none() | ANY_DATE)
@example(published=FIRST, updated=LAST)
@example(published=datetime.min.replace(tzinfo=timezone(timedelta(hours=14))), updated=None)
@example(published=datetime.max.replace(tzinfo=timezone(timedelta(hours=-14))), updated=None)
def test_any_feed_date_becomes_a_plausible_utc_date(
    published: datetime | None, updated: datetime | None
) -> None:
    raw = RawEntry(id="g", link=None, title="t", title_is_html=False, summary=None,
                   content=None, published=published, updated=updated, author=None,
                   categories=(), image_url=None, image_credit=None, language=None)  # fmt: skip
    item = normalise_entry(raw, now=NOW)
    assert item is not None
    latest = NOW + timedelta(seconds=limits.FUTURE_TOLERANCE_SECONDS)
    for when in (item.published, item.updated):
        assert when.utcoffset() == timedelta(0)
        assert limits.EARLIEST_DATE <= when <= latest
    assert item.updated >= item.published
    given_dates = [when for when in (published, updated) if when is not None]
    set_aside = [w for w in given_dates if not limits.EARLIEST_DATE <= w <= latest]
    assert (item.date_note is not None) == bool(set_aside)


@given(when=ANY_DATE, seconds=st.integers(0, 10**12))
@example(when=FIRST, seconds=limits.DEDUP_WINDOW)
@example(when=LAST, seconds=limits.DEDUP_WINDOW)
def test_windows_around_any_date_stop_at_the_ends_of_the_calendar(
    when: datetime, seconds: int
) -> None:
    """The dedup window's arithmetic (store._band_candidates) on any date it may be given."""
    delta = timedelta(seconds=seconds)
    earliest, latest = dates.shifted(when, -delta), dates.shifted(when, delta)
    assert FIRST <= earliest <= when <= latest <= LAST
    assert earliest == FIRST or earliest == when - delta
    assert latest == LAST or latest == when + delta
