"""entries.py: a fetched source's entries made ready to store, what the database holds
already left out of the fingerprinting and drafting."""

from __future__ import annotations

import sqlalchemy

from aggregator.config.load import parse_config
from aggregator.ingest import entries
from aggregator.ingest.pipeline import ingest_source, sync_config
from aggregator.types import FetchResult, FetchStatus
from tests.ingest.test_prepare import CONFIG, NOW, wire_result


def test_entries_already_stored_are_not_fingerprinted_or_drafted_again(
    engine: sqlalchemy.Engine,
) -> None:
    sync_config(engine, CONFIG)
    first = entries.prepare(CONFIG, wire_result(), NOW, engine)
    ingest_source(engine, CONFIG, wire_result(), prepared=first, now=NOW)
    again = entries.prepare(CONFIG, wire_result(), NOW, engine)
    assert len(again.items) == 10
    assert again.prints == {}
    assert again.drafts == {}


COPIER_CONFIG = parse_config(
    "site: {base_url: 'http://caulbart.test'}\n"
    "sources:\n"
    "  - {id: reuters, url: 'https://wire.example/feed', section: world, tags: [Wire]}\n"
    "  - {id: copier, url: 'https://copier.example/feed', section: world}\n"
)


def copier_result() -> FetchResult:
    """The wire's feed as another site republishes it: the same texts under its own links."""
    wire = wire_result("copier")
    body = wire.body.replace(b"reuters.com/", b"copier.example/")
    return FetchResult("copier", "https://copier.example/feed", wire.status, 200, body)


def copier_entries(engine: sqlalchemy.Engine) -> tuple[int, int, set[str], int]:
    """Stories, the copier's stories, its entries' match rules, and its entries' band keys."""
    with engine.connect() as connection:
        return (
            connection.scalar(sqlalchemy.text("SELECT count(*) FROM stories")),
            connection.scalar(
                sqlalchemy.text(
                    "SELECT count(DISTINCT story_id) FROM entries WHERE source_id = 'copier'"
                )
            ),
            set(
                connection.scalars(
                    sqlalchemy.text("SELECT match_rule FROM entries WHERE source_id = 'copier'")
                )
            ),
            connection.scalar(
                sqlalchemy.text(
                    "SELECT count(*) FROM entry_bands b JOIN entries e ON e.id = b.entry_id"
                    " WHERE e.source_id = 'copier'"
                )
            ),
        )


def test_copies_of_stored_texts_are_neither_fingerprinted_nor_drafted(
    engine: sqlalchemy.Engine,
) -> None:
    """Another agency's word-for-word copy of a stored text joins its story: the text's band
    keys are in the index already, and the story has its tags."""
    sync_config(engine, COPIER_CONFIG)
    ingest_source(engine, COPIER_CONFIG, wire_result(), now=NOW)
    copy = entries.prepare(COPIER_CONFIG, copier_result(), NOW, engine)
    assert len(copy.unseen) == 10
    assert copy.prints == {}
    assert copy.drafts == {}
    outcome = ingest_source(engine, COPIER_CONFIG, copier_result(), prepared=copy, now=NOW)
    assert outcome.new == 10
    assert copier_entries(engine) == (10, 10, {"text"}, 0)


def test_a_copy_whose_stored_text_was_edited_before_it_is_stored_is_matched_as_new(
    engine: sqlalchemy.Engine,
) -> None:
    """prepare saw the copy's text stored; by the time it is stored, an edit took it away: it
    is fingerprinted then, joins the edited story as a near duplicate and is indexed."""
    sync_config(engine, COPIER_CONFIG)
    ingest_source(engine, COPIER_CONFIG, wire_result(), now=NOW)
    copy = entries.prepare(COPIER_CONFIG, copier_result(), NOW, engine)
    assert copy.prints == {}
    original = wire_result()
    edited = FetchResult(
        original.source_id,
        original.url,
        original.status,
        original.http_status,
        original.body.replace(b"<description>", b"<description>Corrected: "),
    )
    assert ingest_source(engine, COPIER_CONFIG, edited, now=NOW).updated == 10
    ingest_source(engine, COPIER_CONFIG, copier_result(), prepared=copy, now=NOW)
    stories, joined, rules, bands = copier_entries(engine)
    assert (stories, joined, rules) == (10, 10, {"near"})
    assert bands > 10 * 20


def test_a_parse_error_is_returned_not_raised(engine: sqlalchemy.Engine) -> None:
    broken = FetchResult("reuters", "https://wire.example/feed", FetchStatus.OK, 200, b"<html>")
    assert (entries.prepare(CONFIG, broken, NOW, engine).error or "").startswith("parse error")
