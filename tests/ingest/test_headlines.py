"""Wire headline styles cleaned, on plain values: agency, section prefix, capitals."""

from __future__ import annotations

from aggregator.ingest.headlines import SECTION_NAMES, clean_headline, is_shouting, sentence_case
from aggregator.types import HeadlineStyle

STYLE = HeadlineStyle(agency="Vesper Dispatch", sections=SECTION_NAMES | {"metro"})
TEXT = (
    "Leaders of thirty countries met in Geneva on Monday. NATO officials drafted the plan, "
    "which the leaders agreed after talks with the EU."
)


def test_the_sources_own_agency_is_removed_as_suffix_or_prefix() -> None:
    assert clean_headline("Storm hits the coast - Vesper Dispatch", STYLE, "") == (
        "Storm hits the coast"
    )
    assert clean_headline("Storm hits the coast | VESPER DISPATCH", STYLE, "") == (
        "Storm hits the coast"
    )
    assert clean_headline("Vesper Dispatch: Storm hits the coast", STYLE, "") == (
        "Storm hits the coast"
    )
    # Another agency's name is part of the news.
    assert clean_headline("Storm hits the coast - Reuters", STYLE, "") == (
        "Storm hits the coast - Reuters"
    )


def test_a_section_prefix_is_removed_but_a_speaker_is_not() -> None:
    assert clean_headline("Politics: Senate passes bill", STYLE, "") == "Senate passes bill"
    assert clean_headline("Metro: Trams run late", STYLE, "") == "Trams run late"
    assert clean_headline("Minister: We will not resign", STYLE, "") == (
        "Minister: We will not resign"
    )


def test_all_caps_is_put_in_sentence_case_keeping_what_the_text_spells() -> None:
    assert is_shouting("WORLD LEADERS AGREE PLAN")
    assert not is_shouting("NATO and EU agree")
    assert sentence_case("WORLD LEADERS AGREE NATO PLAN IN GENEVA WITH EU", TEXT) == (
        "World leaders agree NATO plan in Geneva with EU"
    )


def test_nothing_left_keeps_the_headline_as_given() -> None:
    assert clean_headline("Politics - Vesper Dispatch", STYLE, "") == "Politics - Vesper Dispatch"
