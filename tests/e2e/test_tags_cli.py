"""Tags and related posts through the real commands: fetch computes them, export shows them,
retag recomputes them after an editor's change. Real articles served over loopback HTTP."""

from __future__ import annotations

import csv
import html
import json

from tests.conftest import Caulbart, FeedServer, corpus_path, write_feeds_yaml


def articles(categories: dict[str, int]) -> list[dict[str, str]]:
    """The first N articles of each BBC category."""
    chosen: list[dict[str, str]] = []
    with corpus_path("news", "articles.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if categories.get(row["category"], 0) > 0:
                categories[row["category"]] -= 1
                chosen.append(row)
    return chosen


def feed(rows: list[dict[str, str]]) -> str:
    items = "".join(
        f"<item><guid>{r['category']}-{r['doc']}</guid><title>{html.escape(r['title'])}</title>"
        f"<link>https://news.example/{r['category']}/{r['doc']}</link>"
        f"<pubDate>Tue, {1 + int(r['doc']) % 28:02d} {r.get('month', 'Sep 2026')} 10:00:00 GMT"
        "</pubDate>"
        f"<description>{html.escape(''.join(f'<p>{p}</p>' for p in r['body'].split(chr(10))))}"
        "</description></item>"
        for r in rows
    )
    channel = f"<channel><title>BBC</title>{items}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


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

    from aggregator.db import open_database
    from web import create_app

    rows = articles({"business": 8, "sport": 8})
    url = feed_server.add("/bbc.rss", feed(rows))
    write_feeds_yaml(caulbart.config, [{"id": "bbc", "url": url}])
    assert caulbart("fetch", "--all").returncode == 0
    stories = list(export(caulbart).values())
    by_id = {story["id"]: story for story in stories}
    engine = open_database(caulbart.database_url)
    client = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)}).test_client()
    # The earliest stories only get related posts that later stories offer them: most, not all.
    assert sum(bool(story["related"]) for story in stories) >= 0.8 * len(stories)
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
