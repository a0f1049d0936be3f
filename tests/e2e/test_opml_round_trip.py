"""Our own /sources.opml read back by `caulbart import-opml`: the same feeds in the same sections.

The site writes each section as a folder outline (what feed readers import best) and also as
each feed's `category`; import reads either form, so an OPML of an older Caulbart (category
only) and a reader's export (folders only) both keep their sections."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from aggregator.config.load import load_config
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.e2e.test_onboard_cli import channel
from web import create_app

SECTIONS = {"wire-one": "world", "wire-two": "world", "lab": "science-tech", "desk": None}


def test_sources_opml_imported_into_an_empty_feeds_yaml_keeps_every_section(
    caulbart: Caulbart, feed_server: FeedServer, engine: Engine, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    sources: list[dict[str, object]] = []
    for source_id, section in SECTIONS.items():
        url = feed_server.add(
            f"/{source_id}.rss", channel(f"The {source_id}", [{"published": now}])
        )
        sources.append({"id": source_id, "url": url} | ({"section": section} if section else {}))
    write_feeds_yaml(caulbart.config, sources)
    assert caulbart("fetch", "--all").returncode == 0
    app = create_app(engine, {"CAULBART_CONFIG": str(caulbart.config)})
    opml = app.test_client().get("/sources.opml")
    assert opml.status_code == 200
    exported = tmp_path / "ours.opml"
    exported.write_bytes(opml.data)

    fresh = Caulbart(tmp_path / "new" / "feeds.yaml", caulbart.database_url, tmp_path)
    fresh.config.parent.mkdir()
    imported = fresh("import-opml", str(exported))

    assert imported.returncode == 0, imported.stderr
    assert "4 added, 0 already present, 0 not taken" in imported.stdout
    before = {s.url: s.section for s in load_config(caulbart.config).sources}
    after = {s.url: s.section for s in load_config(fresh.config).sources}
    assert after == before
    assert sorted(set(after.values())) == ["news", "science-tech", "world"]


def test_import_opml_reads_sections_from_category_attributes(tmp_path: Path) -> None:
    """The form /sources.opml had before (and some readers write): a flat list with
    `category="/section"`; a folder, where there is one, names the section first."""
    opml = tmp_path / "flat.opml"
    opml.write_text(
        '<?xml version="1.0" encoding="utf-8"?><opml version="2.0"><head><title>s</title></head>'
        "<body>"
        '<outline type="rss" text="a" xmlUrl="http://a.example/f" category="/news"/>'
        '<outline type="rss" text="b" xmlUrl="http://b.example/f" category="/World/Europe,/x"/>'
        '<outline type="rss" text="c" xmlUrl="http://c.example/f" category="business"/>'
        '<outline type="rss" text="d" xmlUrl="http://d.example/f" category="/"/>'
        '<outline text="Science"><outline type="rss" text="e" xmlUrl="http://e.example/f" '
        'category="/lab"/></outline>'
        "</body></opml>",
        encoding="utf-8",
    )
    editor = Caulbart(tmp_path / "feeds.yaml", f"sqlite:///{tmp_path}/unused.db", tmp_path)

    result = editor("import-opml", str(opml), "--section", "misc")

    assert result.returncode == 0, result.stderr
    sections = {s.url: s.section for s in load_config(editor.config).sources}
    assert sections == {
        "http://a.example/f": "news",
        "http://b.example/f": "world",
        "http://c.example/f": "business",
        "http://d.example/f": "misc",  # an empty category names nothing
        "http://e.example/f": "science",
    }
