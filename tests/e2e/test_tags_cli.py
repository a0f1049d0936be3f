"""Tags and related posts through the real commands: fetch computes them, export shows them,
retag recomputes them after an editor's change. Real articles served over loopback HTTP."""

from __future__ import annotations

import csv
import json

from tests.conftest import Caulbart, FeedServer, corpus_path, write_feeds_yaml
from tests.e2e.test_worker import Process, processes, wait_until
from tests.feeds import Item, rss

__all__ = ["processes"]  # the fixture, shared with the worker tests


def articles(categories: dict[str, int]) -> list[dict[str, str]]:
    """The first N articles of each BBC category."""
    chosen: list[dict[str, str]] = []
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if categories.get(row["category"], 0) > 0:
                categories[row["category"]] -= 1
                chosen.append(row)
    return chosen


def day(row: dict[str, str]) -> str:
    return f"{1 + int(row['doc']) % 28:02d}"


def feed(rows: list[dict[str, str]]) -> str:
    items = [
        Item(
            guid=f"{r['category']}-{r['doc']}",
            title=r["title"],
            link=f"https://news.example/{r['category']}/{r['doc']}",
            published=f"Tue, {day(r)} {r.get('month', 'Sep 2026')} 10:00:00 GMT",
            description="".join(f"<p>{p}</p>" for p in r["body"].split(chr(10))),
        )
        for r in rows
    ]
    return rss(*items, title="BBC")


def export(caulbart: Caulbart) -> dict[str, dict[str, object]]:
    result = caulbart("export")
    assert result.returncode == 0, result.stderr
    stories = [json.loads(line) for line in result.stdout.splitlines()]
    return {str(s["entries"][0]["guid"]): s for s in stories}  # type: ignore[index]


def test_fetch_tags_stories_and_relates_them_by_subject(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    rows = articles({"sport": 12, "tech": 12})
    url = feed_server.add("/bbc.rss", feed(rows))
    write_feeds_yaml(caulbart.config, [{"id": "bbc", "url": url, "tags": ["BBC archive"]}])
    assert caulbart("fetch", "--all").returncode == 0
    stories = export(caulbart)
    assert len(stories) == 24
    by_id = {s["id"]: guid for guid, s in stories.items()}
    same_subject = total = 0
    for guid, story in stories.items():
        tags = story["tags"]
        assert isinstance(tags, list) and 3 <= len(tags) <= 10, (story["title"], tags)
        assert tags[0] == "BBC archive"  # the source's own tag from feeds.yaml comes first
        related = story["related"]
        assert isinstance(related, list) and len(related) <= 5
        assert story["id"] not in related
        for other in related:
            total += 1
            same_subject += by_id[other].split("-")[0] == guid.split("-")[0]
    assert total >= 24 * 3
    assert same_subject / total >= 0.8  # sport relates to sport, tech to tech


def test_retag_applies_an_editors_new_ignore_rule(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    rows = articles({"politics": 6})
    url = feed_server.add("/bbc.rss", feed(rows))
    write_feeds_yaml(caulbart.config, [{"id": "bbc", "url": url}])
    assert caulbart("fetch", "--all").returncode == 0
    before = export(caulbart)
    common = max(
        {tag for s in before.values() for tag in s["tags"]},  # type: ignore[union-attr]
        key=lambda tag: sum(tag in s["tags"] for s in before.values()),  # type: ignore[operator]
    )
    write_feeds_yaml(caulbart.config, [{"id": "bbc", "url": url}], tags={"ignore": [common]})
    result = caulbart("retag")
    assert result.returncode == 0, result.stderr
    assert "retagged 6 stories" in result.stdout
    after = export(caulbart)
    assert all(common not in s["tags"] for s in after.values())  # type: ignore[operator]
    assert all(len(s["tags"]) >= 3 for s in after.values())  # type: ignore[arg-type]


def test_story_pages_show_their_tags_and_related_posts(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    from urllib.parse import urlsplit

    from markupsafe import escape

    from aggregator.storage.db import open_database
    from web import create_app

    rows = articles({"business": 8, "sport": 8})
    url = feed_server.add("/bbc.rss", feed(rows))
    write_feeds_yaml(caulbart.config, [{"id": "bbc", "url": url}])
    assert caulbart("fetch", "--all").returncode == 0
    stories = list(export(caulbart).values())
    by_id = {story["id"]: story for story in stories}
    engine = open_database(caulbart.database_url)
    client = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)}).test_client()
    # Related at the pass's end, the earliest stories too have the later ones to relate to.
    assert all(story["related"] for story in stories)
    for story in stories:
        page = client.get(urlsplit(str(story["url"])).path)
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        for tag in story["tags"]:  # type: ignore[union-attr]
            assert str(escape(str(tag))) in text  # escaped as the template escapes it
        related = story["related"]
        if not related:
            assert "Related Posts" not in text
            continue
        assert "Related Posts" in text
        positions = [text.index(str(by_id[other]["url"])) for other in related]  # type: ignore[union-attr]
        assert positions == sorted(positions)  # most related first, as kept
    engine.dispose()


def test_a_copy_that_changes_what_tags_come_from_retags_the_story(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    """A second agency's copies join two stories: one brings better text, the other a category.
    Each story's tags must at once be what a full `retag` gives: joining copies that bring
    nothing new are not re-tagged, and these two must not be mistaken for such."""
    first, second = articles({"business": 2})
    url_a = feed_server.add("/a.rss", feed([dict(first, doc="1"), dict(second, doc="2")]))
    better = dict(
        first, doc="1", body=first["body"] + "\nThe Zanzibar Shipping Authority said." * 3
    )
    labelled = feed([dict(second, doc="2")]).replace(
        "</title><link>", "</title><category>Wire exclusives</category><link>"
    )
    url_b = feed_server.add("/b.rss", feed([better]))
    url_c = feed_server.add("/c.rss", labelled)
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": url_a, "priority": 1}])
    assert caulbart("fetch", "--all").returncode == 0
    before = {s["title"]: s["tags"] for s in export(caulbart).values()}
    sources = [
        {"id": "a", "url": url_a, "priority": 1},
        {"id": "b", "url": url_b, "priority": 5},
        {"id": "c", "url": url_c, "priority": 1},
    ]
    write_feeds_yaml(caulbart.config, sources)
    assert caulbart("fetch", "--all").returncode == 0
    joined = {s["title"]: s for s in export(caulbart).values()}
    assert len(joined) == 2 and all(len(s["entries"]) == 2 for s in joined.values())
    assert caulbart("retag").returncode == 0
    retagged = {s["title"]: s["tags"] for s in export(caulbart).values()}
    assert {title: s["tags"] for title, s in joined.items()} == retagged
    assert retagged[first["title"]] != before[first["title"]]  # the better text's tags
    assert "Wire exclusives" in retagged[second["title"]]


def test_a_copy_that_moves_only_the_date_relates_the_story_again(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    """An earlier-dated copy of a story arrives from a second agency: the story's text, and so
    its tags, stay; its date moves, and the date weighs in related posts, so its related list
    must at once be what a full `retag` gives."""
    rows = articles({"business": 12})
    # Half the other stories are as old as the early copy: which of them rank first changes.
    url_a = feed_server.add(
        "/a.rss", feed([*rows[:6], *(dict(r, month="Jan 2025") for r in rows[6:])])
    )
    earlier = feed([dict(rows[0], month="Jan 2025")])
    url_b = feed_server.add("/b.rss", earlier)
    write_feeds_yaml(caulbart.config, [{"id": "a", "url": url_a, "priority": 5}])
    assert caulbart("fetch", "--all").returncode == 0
    guid = f"business-{rows[0]['doc']}"
    before = export(caulbart)[guid]
    sources = [{"id": "a", "url": url_a, "priority": 5}, {"id": "b", "url": url_b, "priority": 1}]
    write_feeds_yaml(caulbart.config, sources)
    assert caulbart("fetch", "--all").returncode == 0
    joined = export(caulbart)[guid]
    assert caulbart("retag").returncode == 0
    retagged = export(caulbart)[guid]
    assert joined["published"] < before["published"]
    assert joined["tags"] == before["tags"] == retagged["tags"]
    assert joined["related"] == retagged["related"]
    assert joined["related"] != before["related"]  # the older stories now rank higher


def four_feeds(feed_server: FeedServer, rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """The rows split over four sources: enough for `caulbart fetch` to parse on its pool."""
    return [
        {"id": f"bbc{n}", "url": feed_server.add(f"/bbc{n}.rss", feed(rows[n::4]))}
        for n in range(4)
    ]


def queue_and_related(caulbart: Caulbart) -> tuple[list[int], int]:
    """The stories waiting to be related, and how many related rows are kept."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(caulbart.database_url)
    with engine.connect() as connection:
        queued = list(connection.scalars(sqlalchemy.text("SELECT story_id FROM stories_to_relate")))
        kept = connection.scalar(sqlalchemy.text("SELECT count(*) FROM related_stories")) or 0
    engine.dispose()
    return queued, kept


def test_a_pass_relates_every_story_it_stored_against_the_whole_pass(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    """Related posts are worked out at the pass's end, on the parsing processes: none is left
    queued, and the first source stored relates to stories the last one brought."""
    rows = articles({"sport": 10, "tech": 10})
    write_feeds_yaml(caulbart.config, four_feeds(feed_server, rows))
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    assert "related=20" in result.stderr  # the pass's closing log line
    assert queue_and_related(caulbart)[0] == []
    stories = export(caulbart)
    source_of = {s["id"]: s["entries"][0]["source"] for s in stories.values()}  # type: ignore[index]
    assert all(story["related"] for story in stories.values())
    for story in stories.values():
        assert story["id"] not in story["related"]  # type: ignore[operator]
    # Each source's stories relate to other sources' too, whichever was stored first.
    for source in ("bbc0", "bbc1", "bbc2", "bbc3"):
        own = [s for s in stories.values() if source_of[s["id"]] == source]
        assert any(source_of[other] != source for s in own for other in s["related"])  # type: ignore[attr-defined]


def leave_as_a_stopped_pass_does(caulbart: Caulbart) -> None:
    """What a pass killed between storing its sources and relating them leaves behind: every
    story queued, none related; and a queued story that retention deleted meanwhile."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(caulbart.database_url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DELETE FROM related_stories"))
        connection.execute(
            sqlalchemy.text(
                "INSERT INTO stories_to_relate (story_id) SELECT id FROM stories"
                " UNION ALL SELECT max(id) + 1000 FROM stories"
            )
        )
    engine.dispose()
    assert not any(story["related"] for story in export(caulbart).values())


def test_stories_a_stopped_pass_left_unrelated_are_related_by_the_next_pass(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    """A stopped pass's stories are related by the next pass, though it stores nothing new
    (every source answers 304), exactly as the stopped pass would have; a queued story deleted
    meanwhile is dropped from the queue."""
    rows = articles({"business": 8, "politics": 8})
    write_feeds_yaml(caulbart.config, four_feeds(feed_server, rows))
    assert caulbart("fetch", "--all").returncode == 0
    related = {guid: story["related"] for guid, story in export(caulbart).items()}
    assert any(related.values())
    leave_as_a_stopped_pass_does(caulbart)

    second = caulbart("fetch", "--all")
    assert second.returncode == 0, second.stderr
    assert "0 new, 0 updated, 0 unchanged, 4 304" in second.stdout
    assert "related=16 " in second.stderr
    assert queue_and_related(caulbart)[0] == []
    assert {guid: story["related"] for guid, story in export(caulbart).items()} == related


def test_a_worker_relates_what_a_stopped_pass_left_queued(
    caulbart: Caulbart, feed_server: FeedServer, processes: list[Process]
) -> None:
    """`caulbart worker` relates them too, between its ticks: a stopped `caulbart fetch` may
    be followed by the scheduler alone."""
    rows = articles({"business": 8, "politics": 8})
    write_feeds_yaml(caulbart.config, four_feeds(feed_server, rows))
    assert caulbart("fetch", "--all").returncode == 0
    related = {guid: story["related"] for guid, story in export(caulbart).items()}
    leave_as_a_stopped_pass_does(caulbart)

    worker = Process(caulbart, "worker", "--tick", "0.25")
    processes.append(worker)
    wait_until(lambda: queue_and_related(caulbart)[0] == [], what="queue emptied")
    assert worker.stop() == 0, worker.log
    assert "related=16 " in worker.log
    assert {guid: story["related"] for guid, story in export(caulbart).items()} == related
