"""Coverage groups as plain values: which group a story joins, the window, the merge pass."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aggregator.stories.coverage import (
    CoverageIndex,
    CoverageSettings,
    CoverageStory,
    GroupMerge,
    story_keys,
)
from tests.conftest import corpus_path

NOW = datetime(2026, 11, 20, 8, tzinfo=UTC)

# Other news of the same days, so that document frequencies mean something.
BACKGROUND = [
    ("Storm Bert floods homes across Wales", "Rivers burst their banks in Wales as Storm Bert "
     "brought a month of rain in a day, the Met Office said."),
    ("Rail strike called off after pay deal", "Train drivers accepted a pay offer and called off "
     "next week's strike, the RMT union said."),
    ("Apple unveils cheaper iPhone", "Apple unveiled a cheaper iPhone on Tuesday, hoping to win "
     "back buyers in China and India."),
    ("Bank robbery suspect arrested in Leeds", "Police arrested a man after a robbery at a bank "
     "branch in Leeds city centre on Monday."),
    ("Wildfire forces evacuations near Athens", "Firefighters battled a wildfire north of Athens "
     "as thousands of residents were told to leave their homes."),
]  # fmt: skip

ECB_REPORTS = [
    ("ECB cuts rates to record low as Draghi warns on deflation",
     "FRANKFURT (Reuters) - The European Central Bank cut its main interest rate to a record "
     "low of 0.05 percent on Thursday, and Mario Draghi said deflation risks had grown."),
    ("European Central Bank lowers key rate, Draghi signals more help",
     "FRANKFURT (AP) — The European Central Bank lowered its benchmark rate to 0.05 percent, a "
     "record low, and Mario Draghi said the bank stood ready to do more for the economy."),
    ("Draghi's ECB surprises markets with cut to 0.05 percent",
     "Mario Draghi and the European Central Bank surprised markets by cutting the benchmark "
     "interest rate to 0.05 percent, a new record low for the eurozone."),
]  # fmt: skip


def story(story_id: int, headline: str, text: str = "", hours: float = 0.0,
          agency: str = "wire") -> CoverageStory:  # fmt: skip
    return CoverageStory(story_id, headline, text, agency, NOW + timedelta(hours=hours))


def with_background(index: CoverageIndex) -> None:
    for number, (headline, text) in enumerate(BACKGROUND, start=900):
        index.assign(story(number, headline, text, hours=-2))


def test_reports_of_one_event_in_other_words_join_one_group() -> None:
    index = CoverageIndex()
    with_background(index)
    agencies = ("reuters", "ap", "afp")
    assignments = [
        index.assign(story(number, headline, text, hours=number, agency=agency))
        for number, ((headline, text), agency) in enumerate(
            zip(ECB_REPORTS, agencies, strict=True), start=1
        )
    ]
    assert [a.group_id for a in assignments] == [1, 1, 1]
    assert [a.opened for a in assignments] == [True, False, False]
    assert index.groups[1].members == [1, 2, 3]
    assert index.groups[1].agencies == set(agencies)


def test_assignment_says_which_terms_and_names_it_shares() -> None:
    index = CoverageIndex()
    with_background(index)
    index.assign(story(1, *ECB_REPORTS[0]))
    joined = index.assign(story(2, *ECB_REPORTS[1], hours=1))
    assert joined.group_id == 1 and joined.score >= index.settings.threshold
    assert {"draghi", "ecb"} & set(joined.shared_terms)
    assert "mario draghi" in joined.shared_names
    assert "0.05 percent" in joined.shared_names


def test_different_events_sharing_a_word_stay_apart() -> None:
    index = CoverageIndex()
    with_background(index)
    first = index.assign(story(1, *ECB_REPORTS[0]))
    bank_of_japan = (
        "TOKYO (Reuters) - The Bank of Japan kept its asset purchases unchanged on Friday, as "
        "Governor Haruhiko Kuroda saw inflation nearing target."
    )
    other = index.assign(story(2, "Bank of Japan keeps stimulus unchanged", bank_of_japan))
    assert other.opened and other.group_id != first.group_id


def test_story_after_the_window_opens_a_group_and_the_old_group_is_forgotten() -> None:
    index = CoverageIndex()
    with_background(index)
    index.assign(story(1, *ECB_REPORTS[0]))
    window_hours = index.settings.window / 3600
    late = index.assign(story(2, *ECB_REPORTS[1], hours=window_hours + 1))
    assert late.opened and late.group_id == 2
    index.merge_pass()
    assert 1 not in index.groups and 2 in index.groups


def test_a_later_report_scores_lower_than_a_prompt_one() -> None:
    scores = []
    for hours in (1, 20):
        index = CoverageIndex()
        with_background(index)
        index.assign(story(1, *ECB_REPORTS[0]))
        scores.append(index.assign(story(2, *ECB_REPORTS[1], hours=hours)).score)
    assert scores[0] > scores[1] > 0


def test_merge_pass_joins_over_split_groups_into_the_older() -> None:
    # Assignment this strict splits the event; the merge pass, comparing whole groups, joins it.
    settings = replace(CoverageSettings(), threshold=0.9)
    index = CoverageIndex(settings)
    with_background(index)
    for number, (headline, text) in enumerate(ECB_REPORTS[:2], start=1):
        assert index.assign(story(number, headline, text, hours=number)).opened
    index.assign(story(3, "Heatwave closes schools in Madrid", "Schools in Madrid shut early as "
                       "temperatures passed 40C for a third day.", hours=3))  # fmt: skip
    merges = index.merge_pass()
    assert merges == [GroupMerge(kept=1, absorbed=2, score=merges[0].score)]
    assert index.groups[1].members == [1, 2] and 2 not in index.groups
    assert 3 in index.groups  # the unrelated group is left alone
    assert index.merge_pass() == []  # nothing changed since: nothing to do


def test_story_keys_name_numbers_acronyms_and_headline_pairs() -> None:
    keys = story_keys(story(1, "Men's Wearhouse to buy Jos. A. Bank for $1.8B",
                            "NEW YORK (AP) - Men's Wearhouse agreed to buy rival Jos. A. Bank "
                            "for $1.8 billion, ending a six-month takeover battle, the SEC "
                            "filing shows."))  # fmt: skip
    assert {"$1.8b", "$1.8 billion", "sec", "men wearhouse"} <= keys.names
    # Headline words count TITLE_WEIGHT times a lede word; stop words are no terms.
    assert keys.terms["wearhouse"] > keys.terms["rival"] and "for" not in keys.terms


def uci_reports(stories: set[str]) -> list[tuple[int, str, str, str, datetime]]:
    """(id, headline, publisher, story, crawl time) of some stories of the UCI headlines."""
    with corpus_path("news", "uci-stories-dev.csv").open(encoding="utf-8") as handle:
        return [
            (int(row["ID"]), row["TITLE"], row["PUBLISHER"], row["STORY"],
             datetime.fromtimestamp(int(row["TIMESTAMP"]) / 1000, UTC))
            for row in csv.DictReader(handle)
            if row["STORY"][:6] in stories
        ]  # fmt: skip


# Genghis Khan's climate, Honda's Acura, the Jaguars' screens, SAC Capital's new name, Pimco.
UCI_STORIES = {"dYRPyd", "d1F7w-", "djP4U3", "daD7c9", "dAOTJb"}


def group_uci(reports: list[tuple[int, str, str, str, datetime]]) -> dict[int, int]:
    """All reports dated within one hour, in a fixed shuffle: time tells no event apart."""
    index = CoverageIndex()
    groups = {}
    order = sorted(reports, key=lambda r: (r[0] * 7919) % 1009)
    for minute, (report_id, headline, publisher, _, _) in enumerate(order):
        when = NOW + timedelta(minutes=minute % 60)
        groups[report_id] = index.assign(
            CoverageStory(report_id, headline, "", publisher, when)
        ).group_id
    for merge in index.merge_pass():
        groups = {r: merge.kept if g == merge.absorbed else g for r, g in groups.items()}
    return groups


def test_real_headlines_of_one_story_group_and_no_group_mixes_stories() -> None:
    reports = uci_reports(UCI_STORIES)
    truth = {report[0]: report[3] for report in reports}
    groups = group_uci(reports)
    members: dict[int, Counter[str]] = defaultdict(Counter)
    for report_id, group in groups.items():
        members[group][truth[report_id]] += 1
    assert all(len(stories) == 1 for stories in members.values())  # precision first
    for name in set(truth.values()):
        largest = max(count[name] for count in members.values())
        assert largest >= 0.5 * sum(1 for s in truth.values() if s == name), name


def test_the_same_stories_in_the_same_order_give_the_same_groups() -> None:
    reports = uci_reports(UCI_STORIES | {"dMggeO"})
    assert group_uci(reports) == group_uci(reports)
