"""Faithful to the feed: every item a feed carries is kept as its own entry, and only the same
news becomes one story.

Each case is an invented feed served on loopback, ingested with `caulbart fetch` on SQLite and
PostgreSQL and read back with `caulbart export`, `caulbart explain` and the web pages.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import lxml.etree
import lxml.html
from sqlalchemy import Engine

from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import rss
from web import create_app

NOW = datetime.now(UTC).replace(microsecond=0)


def item(
    title: str,
    text: str,
    *,
    guid: str | None = None,
    link: str | None = None,
    when: datetime | None = None,
    enclosure: str | None = None,
) -> str:
    """An RSS <item>; guid, link, date and enclosure only when given."""
    parts = [f"<title>{html.escape(title)}</title>"]
    if guid is not None:
        parts.append(f"<guid isPermaLink='false'>{html.escape(guid)}</guid>")
    if link is not None:
        parts.append(f"<link>{html.escape(link)}</link>")
    if when is not None:
        parts.append(f"<pubDate>{format_datetime(when, usegmt=True)}</pubDate>")
    if enclosure is not None:
        parts.append(f"<enclosure url='{html.escape(enclosure)}' type='audio/mpeg' length='1'/>")
    parts.append(f"<description>{html.escape(text)}</description>")
    return f"<item>{''.join(parts)}</item>"


def home_feed(*items: str, title: str = "feed") -> str:
    return rss(*items, title=title, link="https://home.example/")


def serve(caulbart: Caulbart, feed_server: FeedServer, feeds: dict[str, str]) -> dict[str, str]:
    """Serve each feed and write a feeds.yaml naming one source (and agency) per feed."""
    sources = []
    for source_id, document in feeds.items():
        url = feed_server.add(f"/{source_id}.rss", document)
        sources.append({"id": source_id, "url": url, "agency": source_id, "section": "news"})
    write_feeds_yaml(caulbart.config, sources)
    return {str(s["id"]): str(s["url"]) for s in sources}


def fetch(caulbart: Caulbart) -> str:
    result = caulbart("fetch", "--all")
    assert result.returncode == 0, result.stderr
    return result.stdout


def export(caulbart: Caulbart) -> list[dict[str, Any]]:
    result = caulbart("export")
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def entries(caulbart: Caulbart) -> list[dict[str, Any]]:
    return [entry | {"story": s["id"]} for s in export(caulbart) for entry in s["entries"]]


def explain(caulbart: Caulbart, story_id: int) -> dict[str, Any]:
    result = caulbart("explain", str(story_id), "--json")
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


# --- identity: every item of a feed is an entry, distinct guids distinct stories ---------


GUESTS = (
    ("Ada Brandt", "rebuilding a wooden ketch with hand tools"),
    ("Oskar Lind", "the winter the harbour froze solid"),
    ("Mira Castell", "tide tables and why they are sometimes wrong"),
    ("Jonas Perl", "running the ferry for forty years"),
    ("Lena Voss", "her book on lighthouse keepers' diaries"),
    ("Tomas Ekberg", "salvaging a sunken fishing boat"),
    ("Hana Ruiz", "oyster farming in cold water"),
    ("Piet Janssen", "charting sandbanks with a borrowed sonar"),
    ("Noor Haddad", "teaching children to sail in a storm season"),
    ("Ivo Marek", "the smugglers' tunnels under the old quay"),
    ("Sara Holm", "recording the sounds of the fish market"),
    ("Ben Okafor", "building a harbour museum from donations"),
    ("Eva Lund", "rescue swimmers and their training"),
    ("Karl Berg", "restoring the harbour master's clock"),
    ("Rita Moss", "the last rope maker on the coast"),
)


def episode(number: int) -> str:
    """A podcast episode as some hosts publish it: no guid, the show's home page as link."""
    guest, topic = GUESTS[number - 1]
    return item(
        f"Episode {number}: {guest}",
        f"{guest} joins us to talk about {topic}.",
        link="https://harbour.example/podcast",
        when=NOW - timedelta(days=20 - number),
        enclosure=f"https://cdn.harbour.example/episode-{number}.mp3",
    )


def test_items_without_guid_sharing_one_link_are_each_kept(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    episodes = [episode(n) for n in range(1, 16)]
    serve(caulbart, feed_server, {"harbour": home_feed(*episodes, episodes[0])})  # the first twice

    output = fetch(caulbart)

    assert "15 new" in output
    assert "1 item repeats another item of the feed" in output  # said, not silently dropped
    stored = entries(caulbart)
    assert len(stored) == 15
    assert len({entry["story"] for entry in stored}) == 15
    assert {entry["link"] for entry in stored} == {"https://harbour.example/podcast"}
    status = [json.loads(line) for line in caulbart("status", "--json").stdout.splitlines()]
    assert [(row["entries"], row["repeated_items"]) for row in status] == [(15, 1)]
    assert "1 repeated item(s) of the feed skipped" in caulbart("status").stdout
    # A second fetch of the same items (in a retitled document: no 304) finds the same entries.
    serve(caulbart, feed_server, {"harbour": home_feed(*episodes, title="Harbour")})
    assert "0 new, 0 updated, 15 unchanged" in fetch(caulbart)


def test_a_link_a_sources_items_share_joins_no_other_sources_story(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    episodes = [episode(n) for n in range(1, 6)]
    # A directory lists the show's first episode; the show's own feed has all five.
    serve(
        caulbart,
        feed_server,
        {"directory": home_feed(episodes[0]), "harbour": home_feed(*episodes)},
    )
    fetch(caulbart)
    stories = export(caulbart)
    assert sorted(len(story["entries"]) for story in stories) == [1, 1, 1, 1, 2]


def test_distinct_guids_with_one_day_page_as_link_stay_distinct_stories(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    day = "http://weblog.example/2002/09/29"
    notes = (
        "Finally switched the outliner to the new server; the old one stays up for a week.",
        "Reading a long essay on why mailing lists outlived every forum that replaced them.",
        "The conference wifi held up until the keynote, then everyone opened a laptop at once.",
        "A reader asks whether the RSS 0.92 spec allows more than one enclosure. It does not.",
        "Lunch with two people building a weblog tool in Python; they ship next month.",
        "Fixed the bug that put yesterday's date on posts written just after midnight.",
        "Somebody mirrored the archive to a second continent, which makes me feel better.",
        "Question of the evening: should a directory of feeds rank them, or just list them?",
        "Going offline for the weekend; the site will keep publishing from the queue.",
    )
    posts = [
        item(
            f"Note at {hour}:56",
            text,
            guid=f"{day}#When:{hour}:56:02PM",
            link=day,
            when=NOW - timedelta(days=3, hours=hour),
        )
        for hour, text in enumerate(notes, start=1)
    ]
    serve(caulbart, feed_server, {"weblog": home_feed(*posts)})

    assert "9 new" in fetch(caulbart)

    stories = export(caulbart)
    assert len(stories) == 9
    for story in stories:
        reasons = [entry["reason"] for entry in explain(caulbart, story["id"])["entries"]]
        assert not any("same canonical link" in reason for reason in reasons)


def test_same_link_in_two_sources_still_joins_one_story(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    text = "The council approved the new bridge over the river after a long debate tonight."
    link = "https://city.example/news/bridge"
    serve(
        caulbart,
        feed_server,
        {
            "city": home_feed(item("Bridge approved", text, guid="c-1", link=link, when=NOW)),
            "city-top": home_feed(
                item("Bridge approved", "Short.", guid="t-1", link=link, when=NOW)
            ),
        },
    )
    fetch(caulbart)
    (story,) = export(caulbart)
    assert len(story["entries"]) == 2


BLOCK_TEXT = (
    "A solid walnut block, hand finished with oil and wax, with a felt base that protects your "
    "desk. Ships in a recycled box within two working days; returns are free for thirty days."
)


def test_one_sources_items_sharing_boilerplate_under_other_names_stay_separate(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    names = ("BondiBlock", "PhonoBlock", "SynthaBlock", "DeckaBlock")
    products = [
        item(
            name, f"{name}. {BLOCK_TEXT}", guid=f"shop-{name}", link=f"https://shop.example/{name}"
        )
        for name in names
    ]
    serve(caulbart, feed_server, {"shop": home_feed(*products)})
    fetch(caulbart)
    assert len(export(caulbart)) == 4


# --- links: fragments ------------------------------------------------------------------------


def test_link_fragments_are_kept_unless_they_track(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    live = "https://live.example/election"
    serve(
        caulbart,
        feed_server,
        {
            "live": home_feed(
                item("First results", "Counting has begun in the north.", link=f"{live}#post-1"),
                item("Turnout up", "Turnout is higher than four years ago.", link=f"{live}#post-2"),
                item(
                    "Polls closed",
                    "Polling stations closed at eight.",
                    link="https://live.example/closed#xtor=RSS-3",
                ),
                item("Map", "Results by district.", link="https://live.example/map#ref=rss"),
            )
        },
    )
    fetch(caulbart)
    links = {entry["title"]: entry["link"] for entry in entries(caulbart)}
    assert links == {
        "First results": f"{live}#post-1",
        "Turnout up": f"{live}#post-2",
        "Polls closed": "https://live.example/closed",
        "Map": "https://live.example/map",
    }


# --- near-duplicates: templated items of one source ------------------------------------------


def callout(number: int, day: int, street: str) -> str:
    """A fire brigade's call-out notice: one template, its numbers, date and street its own."""
    when = NOW - timedelta(days=10 - day)
    return item(
        f"Einsatz {number}: Brandmeldeanlage",
        f"Am {when:%d.%m.%Y} um {8 + day}:15 Uhr wurde die Feuerwehr zu einer ausgelösten "
        f"Brandmeldeanlage in der {street} alarmiert. Vor Ort stellte sich heraus, dass die "
        "Anlage durch Wasserdampf ausgelöst wurde. Die Anlage wurde zurückgestellt und die "
        "Einsatzstelle an den Betreiber übergeben. Im Einsatz waren das Löschfahrzeug und die "
        "Drehleiter der Hauptwache mit insgesamt neun Einsatzkräften.",
        guid=f"fw-{number}",
        link=f"https://feuerwehr.example/einsaetze/2026-{number}",
        when=when,
    )


def test_templated_call_outs_of_one_source_stay_separate_stories(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    calls = [
        callout(417, 1, "Hauptstraße 4"),
        callout(418, 2, "Bahnhofstraße 12"),
        callout(421, 4, "Hauptstraße 4"),
        callout(425, 6, "Lindenweg 9"),
    ]
    serve(caulbart, feed_server, {"feuerwehr": home_feed(*calls)})

    fetch(caulbart)

    assert len(export(caulbart)) == 4


def test_a_copy_of_one_call_out_by_another_source_joins_its_story(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    copy = callout(418, 2, "Bahnhofstraße 12").replace(
        "https://feuerwehr.example/einsaetze/2026-418", "https://zeitung.example/blaulicht/77"
    )
    serve(
        caulbart,
        feed_server,
        {
            "feuerwehr": home_feed(
                callout(417, 1, "Hauptstraße 4"), callout(418, 2, "Bahnhofstraße 12")
            ),
            "zeitung": home_feed(copy.replace("fw-418", "z-77")),
        },
    )
    fetch(caulbart)
    by_guid = {entry["guid"]: entry["story"] for entry in entries(caulbart)}
    assert by_guid["z-77"] == by_guid["fw-418"] != by_guid["fw-417"]


# --- undated copies --------------------------------------------------------------------------

UNDATED_TEXT = (
    "Divers recovered a bronze statue from the harbour floor on Tuesday, ending a search that "
    "began when the statue fell from a barge during a storm three winters ago. The city "
    "museum will restore it before it returns to the square."
)


def test_an_undated_copy_joins_its_dated_twin_outside_the_window(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    dated = item(
        "Bronze statue recovered from harbour",
        UNDATED_TEXT,
        guid="wire-1",
        link="https://wire.example/statue",
        when=NOW - timedelta(days=5),
    )
    # The gazette's copy, undated, with a closing line of its own: not word for word the same.
    undated = item(
        "Bronze statue recovered from harbour",
        UNDATED_TEXT + " Gazette readers can see it there from the spring.",
        guid="gazette-1",
        link="https://gazette.example/statue",
    )
    serve(caulbart, feed_server, {"wire": home_feed(dated), "gazette": home_feed(undated)})

    fetch(caulbart)

    (story,) = export(caulbart)
    assert {entry["source"] for entry in story["entries"]} == {"wire", "gazette"}
    assert story["related"] == []


def test_an_undated_item_keeps_its_published_time_when_edited(
    caulbart: Caulbart, feed_server: FeedServer
) -> None:
    def document(text: str) -> str:
        return home_feed(item("Statue", text, guid="gazette-1", link="https://gazette.example/s"))

    serve(caulbart, feed_server, {"gazette": document(UNDATED_TEXT)})
    fetch(caulbart)
    (first,) = entries(caulbart)

    feed_server.add("/gazette.rss", document(UNDATED_TEXT + " Correction: four winters ago."))
    assert "1 updated" in fetch(caulbart)

    (edited,) = entries(caulbart)
    assert edited["published"] == first["published"]


# --- what "Updated" means --------------------------------------------------------------------


def story_page_dates(engine: Engine, caulbart: Caulbart, url: str) -> str:
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    try:
        response = app.test_client().get(url.removeprefix("http://caulbart.test"))
        assert response.status_code == 200
        page = lxml.html.fromstring(response.get_data(as_text=True))
        (dates,) = page.xpath("//p[contains(@class, 'dates')]")
        return " ".join(dates.text_content().split())
    finally:
        app.extensions["caulbart.feeds"].close()


def atom_updated(engine: Engine, caulbart: Caulbart) -> list[str]:
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    try:
        body = app.test_client().get("/feed.atom").get_data()
    finally:
        app.extensions["caulbart.feeds"].close()
    tree = lxml.etree.fromstring(body)
    atom = "{http://www.w3.org/2005/Atom}"
    return [e.findtext(f"{atom}updated") for e in tree.iter(f"{atom}entry")]


def test_another_agencys_copy_does_not_make_a_story_updated(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine
) -> None:
    when = NOW - timedelta(hours=5)
    wire = item(
        "Statue recovered", UNDATED_TEXT, guid="w-1", link="https://wire.example/s", when=when
    )
    serve(caulbart, feed_server, {"wire": home_feed(wire)})
    fetch(caulbart)
    assert len(export(caulbart)) == 1
    feed_before = atom_updated(engine, caulbart)

    # Another agency's copy of the same text joins the story, an hour later by its date.
    copy = item(
        "Statue recovered", UNDATED_TEXT, guid="g-1", link="https://gazette.example/s",
        when=when + timedelta(hours=1),
    )  # fmt: skip
    serve(caulbart, feed_server, {"wire": home_feed(wire), "gazette": home_feed(copy)})
    fetch(caulbart)

    (joined,) = export(caulbart)
    assert len(joined["entries"]) == 2
    assert "Updated" not in story_page_dates(engine, caulbart, joined["url"])
    assert atom_updated(engine, caulbart) == feed_before

    # The wire's own correction of its text is an update.
    edited = wire.replace("three winters ago", "four winters ago")
    serve(caulbart, feed_server, {"wire": home_feed(edited), "gazette": home_feed(copy)})
    assert "1 updated" in fetch(caulbart)
    assert "Updated" in story_page_dates(engine, caulbart, joined["url"])
    assert atom_updated(engine, caulbart) != feed_before
