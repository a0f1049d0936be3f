"""aggregator.stories.withdrawals: which wire headlines are KILL/WITHDRAWN advisories."""

from __future__ import annotations

import pytest

from aggregator.stories.withdrawals import advisory_headline


@pytest.mark.parametrize(
    ("title", "headline"),
    [
        ("KILL - Bank raises rates", "Bank raises rates"),
        ("KILL: “Bank raises rates”", "Bank raises rates"),
        ("WITHDRAWN — Minister resigns", "Minister resigns"),
        ("  WITHDRAWAL - Minister resigns", "Minister resigns"),
        ("KILL", ""),
    ],
)
def test_advisory_headline_reads_the_story_it_withdraws(title: str, headline: str) -> None:
    assert advisory_headline(title) == headline


@pytest.mark.parametrize(
    "title",
    ["Kill switch fitted to cars", "KILLER whale spotted", "KILL BILL actor dies", "Skill - gap"],
)
def test_ordinary_headlines_are_not_advisories(title: str) -> None:
    assert advisory_headline(title) is None
