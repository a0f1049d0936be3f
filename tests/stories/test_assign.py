"""Which story each arriving entry joins, decided from plain values: no database here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aggregator.stories import dedupe
from aggregator.stories.assign import (
    Assignment,
    BatchSource,
    Candidates,
    Earlier,
    ExistingStory,
    KnownEntry,
    Match,
    NearCandidate,
    NewStory,
    StoredEntry,
    Update,
    Voice,
    assign,
    exact_match,
    match_stored,
    story_text,
)
from aggregator.stories.dedupe import Rule, Telling, Verdict
from aggregator.stories.review import Review
from aggregator.types import Item
from tests.stories.test_dedupe import article, call_out

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=2)
WINDOW = timedelta(hours=72)
WIRE = BatchSource("wire", "auto", "world", "en", has_tags=False)


def item(
    guid: str,
    title: str,
    paragraphs: Sequence[str],
    *,
    published: datetime = EARLIER,
    link: str | None = None,
    text_hash: str | None = None,
    content_hash: str | None = None,
    categories: tuple[str, ...] = (),
) -> Item:
    return Item(
        guid=guid,
        link=link,
        title=title,
        lede=paragraphs[0],
        body_html="",
        published=published,
        updated=published,
        author=None,
        categories=categories,
        image_url=None,
        image_credit=None,
        language=None,
        text_hash=text_hash,
        content_hash=content_hash or guid,
        has_full_text=True,
        body_text=" ".join(paragraphs),
    )


def news(guid: str, doc: str = "095", **fields: object) -> Item:
    title, paragraphs = article("politics", doc)
    return item(guid, title, paragraphs, **fields)  # type: ignore[arg-type]


def decide(
    items: Sequence[Item],
    *,
    source: BatchSource = WIRE,
    known: Mapping[str, KnownEntry] | None = None,
    matches: Mapping[str, Match | None] | None = None,
    reviews: Mapping[int, str | None] | None = None,
) -> Assignment:
    prints = {i.guid: dedupe.fingerprint(i) for i in items if i.guid not in (known or {})}
    return assign(
        items,
        source,
        NOW,
        known=known or {},
        prints=prints,
        matches=matches or {},
        reviews=reviews or {},
        window=WINDOW,
    )


def stored(entry_id: int, story_id: int, source_id: str = "agency") -> StoredEntry:
    return StoredEntry(entry_id, story_id, source_id, EARLIER - timedelta(hours=1))


def near_candidate(of: Item, entry: StoredEntry) -> NearCandidate:
    print_ = dedupe.fingerprint(of)
    assert print_ is not None
    told = Telling(entry.id, entry.story_id, entry.source_id, of.title, print_.shingles, of.lede)
    return NearCandidate(told, entry.published)


def test_an_item_that_matches_nothing_founds_a_story_in_its_sources_section() -> None:
    plan = decide([news("a")])
    (story,) = plan.new_stories
    assert story == NewStory(0, "world", "en", EARLIER, EARLIER, None)
    (entry,) = plan.new_entries
    assert (entry.story, entry.rule, entry.matched) == (story, Rule.NEW, None)
    assert entry.print_ is not None  # indexed, to be found by the next copy
    assert plan.touched == (story,)
    assert (plan.updates, plan.unchanged, plan.labelled) == ((), 0, frozenset())


def test_a_story_founded_by_a_review_source_is_held() -> None:
    plan = decide([news("a")], source=replace(WIRE, publish="review"))
    assert plan.new_stories[0].review == Review.HELD


def test_the_same_link_in_another_source_joins_that_entrys_story() -> None:
    agency = stored(7, 70)
    matches = match_stored([news("a")], {}, {"a": Candidates(by_link=agency)}, "wire")
    assert matches == {"a": Match(agency, Verdict(Rule.LINK, 1.0), False)}
    plan = decide([news("a")], matches=matches, reviews={70: None})
    (entry,) = plan.new_entries
    assert (entry.story, entry.rule, entry.matched) == (ExistingStory(70), Rule.LINK, agency)
    assert entry.print_ is not None  # a text of its own: its band keys are indexed
    assert plan.new_stories == () and plan.touched == (ExistingStory(70),)
    assert plan.reviews == {70: None}


def test_the_same_text_joins_and_is_not_indexed_again() -> None:
    agency = stored(7, 70)
    matches = match_stored([news("a")], {}, {"a": Candidates(by_text=agency)}, "wire")
    plan = decide([news("a")], matches=matches, reviews={70: None})
    (entry,) = plan.new_entries
    assert (entry.story, entry.rule, entry.print_) == (ExistingStory(70), Rule.TEXT, None)


def test_of_a_link_and_a_text_match_the_older_entry_wins() -> None:
    link, text = stored(9, 90), stored(4, 40)
    assert exact_match(Candidates(by_link=link, by_text=text)) == Match(
        text, Verdict(Rule.TEXT, 1.0), True
    )
    # A link match into the story that holds the text repeats that text.
    same_story = stored(5, 90)
    found = exact_match(Candidates(by_link=stored(3, 90), by_text=same_story))
    assert found is not None and found.verdict.rule is Rule.LINK and found.repeats_text


def test_a_confirmed_near_duplicate_among_band_candidates_joins_its_story() -> None:
    title, paragraphs = article("politics", "095")
    copy = item("a", "Chancellor hits back", paragraphs[: max(3, 2 * len(paragraphs) // 3)])
    unrelated = news("x", "251")
    agency, other = stored(7, 70), stored(8, 80)
    candidates = Candidates(
        near=(
            near_candidate(unrelated, other),
            near_candidate(item("o", title, paragraphs), agency),
        )
    )
    prints = {"a": dedupe.fingerprint(copy)}
    matches = match_stored([copy], prints, {"a": candidates}, "wire")
    found = matches["a"]
    assert found is not None and found.entry == agency
    assert found.verdict.rule in (Rule.NEAR, Rule.CONTAINED)
    plan = decide([copy], matches=matches, reviews={70: None})
    assert plan.new_entries[0].story == ExistingStory(70)
    assert plan.new_entries[0].rule is found.verdict.rule


def test_a_template_whose_number_only_one_side_holds_founds_news_of_its_own() -> None:
    first, second = call_out(417, 1, "12 High Street"), call_out(418, 2, "12 High Street")
    candidates = {second.guid: Candidates(near=(near_candidate(first, stored(7, 70)),))}
    prints = {second.guid: dedupe.fingerprint(second)}
    assert match_stored([second], prints, candidates, "gazette") == {second.guid: None}
    plan = decide([second], matches={second.guid: None})
    assert plan.new_entries[0].rule is Rule.NEW and len(plan.new_stories) == 1


def test_an_item_without_a_fingerprint_is_matched_only_exactly() -> None:
    short = item("a", "Live: latest updates", ["Follow us."])
    assert dedupe.fingerprint(short) is None
    near = Candidates(near=(near_candidate(news("o"), stored(7, 70)),))
    assert match_stored([short], {"a": None}, {"a": near}, "wire") == {"a": None}


def test_an_entry_from_an_auto_source_releases_a_held_story_and_a_decision_stands() -> None:
    held, rejected = stored(7, 70), stored(8, 80)
    items = [news("a"), news("b", "251")]
    matches = {
        "a": Match(held, Verdict(Rule.LINK, 1.0)),
        "b": Match(rejected, Verdict(Rule.LINK, 1.0)),
    }
    reviews = {70: Review.HELD.value, 80: Review.REJECTED.value}
    assert decide(items, matches=matches, reviews=reviews).reviews == {70: None, 80: "rejected"}
    from_review = decide(
        items, source=replace(WIRE, publish="review"), matches=matches, reviews=reviews
    )
    assert from_review.reviews == {70: "held", 80: "rejected"}


def test_a_newer_telling_from_the_same_source_is_an_update_and_an_older_one_is_not() -> None:
    own = StoredEntry(7, 70, "wire", EARLIER - timedelta(hours=1))
    match = {"a": Match(own, Verdict(Rule.NEAR, 0.8))}
    assert decide([news("a")], matches=match, reviews={70: None}).new_entries[0].rule is (
        Rule.UPDATE
    )
    older = news("a", published=EARLIER - timedelta(hours=3))
    assert decide([older], matches=match, reviews={70: None}).new_entries[0].rule is Rule.NEAR


def test_two_items_of_one_batch_with_one_text_are_one_new_story() -> None:
    first = news("a", text_hash="t1")
    resend = news("b", text_hash="t1", published=EARLIER + timedelta(hours=1))
    plan = decide([first, resend])
    (story,) = plan.new_stories
    one, two = plan.new_entries
    assert one.story == two.story == story
    assert two.matched == Earlier(0, story, "wire", EARLIER)
    assert (two.rule, two.print_) == (Rule.UPDATE, None)  # its own source's newer telling
    assert plan.touched == (story,)


def test_an_item_of_a_batch_joins_the_stored_story_an_earlier_one_joined() -> None:
    first = news("a", text_hash="t1")
    again = news("b", text_hash="t1")
    agency = stored(7, 70)
    matches = {"a": Match(agency, Verdict(Rule.LINK, 1.0)), "b": None}
    plan = decide([first, again], matches=matches, reviews={70: None})
    assert [entry.story for entry in plan.new_entries] == [ExistingStory(70)] * 2
    assert plan.new_stories == () and plan.touched == (ExistingStory(70),)


def test_near_duplicates_of_one_batch_beyond_the_window_found_two_stories() -> None:
    title, paragraphs = article("politics", "095")
    first = item("a", title, paragraphs, published=EARLIER - timedelta(days=10))
    late = item("b", title, paragraphs[:-1], published=EARLIER)
    assert len(decide([first, late]).new_stories) == 2
    soon = item("b", title, paragraphs[:-1], published=EARLIER - timedelta(days=9))
    assert len(decide([first, soon]).new_stories) == 1


def test_an_edited_entry_is_updated_in_place_and_hands_on_its_former_text() -> None:
    known = {"a": KnownEntry(3, 30, "old", "t-old", True, EARLIER)}
    edit = news("a", text_hash="t-new", content_hash="new")
    plan = decide([edit], known=known)
    assert plan.updates == (Update(3, 30, edit, "t-old"),)
    assert plan.new_entries == () and plan.touched == (ExistingStory(30),)
    # Its former categories may have been the story's labels.
    assert plan.labelled == frozenset({ExistingStory(30)})


def test_an_undated_edit_keeps_its_first_seen_date() -> None:
    known = {"a": KnownEntry(3, 30, "old", None, False, EARLIER)}
    (update,) = decide([news("a", content_hash="new", published=NOW)], known=known).updates
    assert update.item.published == EARLIER and update.retold is None


def test_unchanged_entries_and_a_guid_seen_twice_count_as_unchanged() -> None:
    known = {"a": KnownEntry(3, 30, "a", None, False, EARLIER)}
    plan = decide([news("a"), news("b", "251"), news("b", "001")], known=known)
    assert plan.unchanged == 2 and len(plan.new_entries) == 1 and plan.updates == ()
    assert plan.new_entries[0].item.title == article("politics", "251")[0]  # the first telling


def test_an_edit_sent_twice_in_one_batch_is_compared_with_the_first_edit() -> None:
    known = {"a": KnownEntry(3, 30, "old", None, False, EARLIER)}
    edit = news("a", content_hash="new")
    assert len(decide([edit, edit], known=known).updates) == 1


def test_categories_or_the_sources_tags_label_the_stories_they_reach() -> None:
    labelled = decide([news("a", categories=("Politics",))])
    assert labelled.labelled == frozenset(labelled.new_stories)
    tagged = decide([news("a")], source=replace(WIRE, has_tags=True))
    assert tagged.labelled == frozenset(tagged.new_stories)


def voice(entry_id: int, source_id: str, title: str, published: datetime) -> Voice:
    return Voice(entry_id, source_id, published, True, title, "", "", None, None, None)


def test_a_story_takes_its_text_from_its_sources_latest_telling() -> None:
    first = voice(1, "wire", "Oil rises", EARLIER)
    resend = voice(2, "wire", "UPDATE 1-Oil rises sharply", NOW)
    told = story_text([(first, 0), (resend, 0)], previous_best=1)
    assert (told.best_entry_id, told.title, told.published) == (2, "Oil rises sharply", EARLIER)
    assert told.told_again  # its own source told it again
    copy = voice(3, "agency", "Oil rises", NOW)
    taken_over = story_text([(first, 0), (copy, 5)], previous_best=1)
    assert taken_over.best_entry_id == 3 and not taken_over.told_again
