"""feeds.yaml editing: new sources appended in the file's own layout, ids valid and unique."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config.feeds_file import NewSource, append_sources, source_id_for
from aggregator.config.load import SOURCE_ID, ConfigError, load_config
from aggregator.types import SourceDraft

NEW = (NewSource("planet", "http://planet.example/rss", "Planet", "world"),)


@pytest.mark.parametrize(
    "text",
    [
        "# indented lists\nsite:\n  title: X  # name\nsources:\n  - id: a\n    url: http://a.example/f\n",
        "# flush lists, wide maps\nsite:\n    title: X\nsources:\n- id: a\n  url: http://a.example/f\n",
        "---\nsources:\n    - id: a\n      url: http://a.example/f\n      tags: [A, 'B c']\n",
        "sources:\n  - id: a\n    url: http://a.example/f\n\n# --- science ---\n",
        "sources:\n  - id: a\n    url: http://a.example/f",
    ],
    ids=["indented", "flush", "doc-start", "trailing-comment", "no-final-newline"],
)
def test_appending_keeps_every_line_the_editor_wrote(tmp_path: Path, text: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    config = append_sources(path, NEW)
    written = path.read_text(encoding="utf-8")
    assert written.startswith(text)
    assert [s.id for s in config.sources] == ["a", "planet"]
    assert load_config(path).sources[1].section == "world"


def test_a_result_that_does_not_validate_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    text = "sources:\n  - id: a\n    url: http://a.example/f\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match="'Planet!' must be lower-case"):
        append_sources(path, (NewSource("Planet!", "http://p.example/f", None, None),))
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["feeds.yaml"]  # no temporary file left


@pytest.mark.parametrize(
    ("draft", "expected"),
    [
        (SourceDraft("http://a.example/f", "Le Monde — À la une"), "le-monde-a-la-une"),
        (SourceDraft("http://www.tass.ru/rss/v2.xml", "Новости"), "tass-ru-rss-v2-xml"),
        (SourceDraft("http://b.example/", None), "b-example"),
        (SourceDraft("http://c.example/f", "Taken"), "taken-3"),
        (
            SourceDraft("http://d.example/f", "word " * 40),
            "word-word-word-word-word-word-word-word",
        ),
    ],
)
def test_generated_ids_are_valid_and_unique(draft: SourceDraft, expected: str) -> None:
    source_id = source_id_for(draft, {"taken", "taken-2"})
    assert source_id == expected
    assert SOURCE_ID.match(source_id)
