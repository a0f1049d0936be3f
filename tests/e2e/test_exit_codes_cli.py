"""Every refusal of the `caulbart` command as README's "Exit codes" states it: the exact lines
on stderr and the exit code, run through the installed entry point (no feed server needed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Caulbart, write_feeds_yaml

SOURCES: list[dict[str, object]] = [{"id": "port", "url": "http://port.test/feed.xml"}]
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ [A-Z]+ ", re.MULTILINE)


def said(result: subprocess.CompletedProcess[str]) -> str:
    """stderr without the log lines (`fetch` logs at INFO): what the command says."""
    return "".join(
        line for line in result.stderr.splitlines(keepends=True) if not LOG_LINE.match(line)
    )


@pytest.fixture
def valid(caulbart: Caulbart) -> Caulbart:
    write_feeds_yaml(caulbart.config, SOURCES)
    return caulbart


def test_unknown_source_is_a_usage_error_exit_2(valid: Caulbart) -> None:
    result = valid("fetch", "--source", "nope")
    assert (result.returncode, said(result)) == (
        2,
        "caulbart fetch: unknown or disabled source id(s): nope\n",
    )


def test_unpublish_of_an_unknown_story_says_so_exit_1(valid: Caulbart) -> None:
    result = valid("unpublish", "999", "--reason", "wrong")
    assert (result.returncode, said(result)) == (
        1,
        "caulbart unpublish: no story with id 999\n",
    )


def test_moderating_an_unknown_comment_changes_nothing_exit_1(valid: Caulbart) -> None:
    result = valid("comments", "approve", "424242")
    assert (result.returncode, said(result)) == (
        1,
        "caulbart comments: no comment 424242; nothing was changed\n",
    )


def test_review_of_unknown_stories_lists_each_then_nothing_changed_exit_1(
    valid: Caulbart,
) -> None:
    result = valid("review", "approve", "998", "999")
    assert (result.returncode, said(result)) == (
        1,
        "caulbart review: no story 998\n"
        "caulbart review: no story 999\n"
        "caulbart review: nothing was changed\n",
    )


def test_pinning_an_unknown_story_changes_nothing_exit_1(valid: Caulbart) -> None:
    result = valid("pin", "999")
    assert (result.returncode, said(result)) == (
        1,
        "caulbart: no story 999; nothing was changed\n",
    )


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (("explain", "999"), 1, "no story 999"),
        (("explain",), 2, "give a STORY_ID, a LINK, or --filtered"),
        (
            ("explain", "http://port.test/a"),
            1,
            "no entry or filtered item has the link http://port.test/a",
        ),
    ],
)
def test_explain_of_nothing_says_what_was_missing(
    valid: Caulbart, args: tuple[str, ...], code: int, line: str
) -> None:
    result = valid(*args)
    assert (result.returncode, said(result)) == (code, f"caulbart explain: {line}\n")


def test_prune_without_keep_refuses_exit_1(valid: Caulbart) -> None:
    result = valid("prune")
    assert (result.returncode, said(result)) == (
        1,
        "caulbart prune: defaults.keep is not set in feeds.yaml: nothing to prune\n",
    )


def test_add_of_a_bad_url_is_a_usage_error_exit_2(valid: Caulbart) -> None:
    result = valid("add", "not-a-url")
    assert (result.returncode, said(result)) == (
        2,
        "caulbart add: bad URL 'not-a-url': must be an absolute http(s) URL\n",
    )


def test_add_of_the_sites_own_feed_refuses_and_leaves_the_file_exit_1(valid: Caulbart) -> None:
    before = valid.config.read_bytes()
    result = valid("add", "http://caulbart.test/feed.xml")
    assert (result.returncode, said(result)) == (
        1,
        "caulbart add: http://caulbart.test/feed.xml is on this site (site.base_url "
        "http://caulbart.test): adding its feed would feed the site into itself; "
        f"{valid.config} left unchanged\n",
    )
    assert valid.config.read_bytes() == before


def test_import_of_a_file_that_is_not_opml_names_its_line_exit_1(
    valid: Caulbart, tmp_path: Path
) -> None:
    opml = tmp_path / "list.opml"
    opml.write_text("<html><body/></html>", encoding="utf-8")
    result = valid("import-opml", str(opml))
    assert (result.returncode, said(result)) == (
        1,
        f"{opml}:1: not OPML: the root element is <html>, not <opml>; "
        f"{valid.config} left unchanged\n",
    )


def invalid(caulbart: Caulbart) -> str:
    """An invalid feeds.yaml; the one problem line every command prints for it."""
    write_feeds_yaml(caulbart.config, [{"id": "Port!", "url": "http://port.test/feed.xml"}])
    result = caulbart("check")
    assert result.returncode == 1
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{caulbart.config}:")
    return line


@pytest.mark.parametrize(
    "args",
    [
        ("fetch",),
        ("export",),
        ("retag",),
        ("prune",),
        ("explain", "1"),
        ("unpublish", "1", "--reason", "x"),
    ],
)
def test_an_invalid_feeds_yaml_is_told_as_file_line_problems_exit_1(
    caulbart: Caulbart, args: tuple[str, ...]
) -> None:
    line = invalid(caulbart)
    result = caulbart(*args)
    assert (result.returncode, said(result)) == (1, f"{line}\n")


@pytest.mark.parametrize("args", [("add", "http://port.test/other.xml"), ("import-opml", "x")])
def test_sources_are_not_added_to_an_invalid_feeds_yaml_exit_1(
    caulbart: Caulbart, tmp_path: Path, args: tuple[str, ...]
) -> None:
    line = invalid(caulbart)
    (tmp_path / "x").write_text("<opml/>", encoding="utf-8")
    result = caulbart(*args)
    assert (result.returncode, said(result)) == (
        1,
        f"{line}\ncaulbart: feeds.yaml must be valid before sources are added to it\n",
    )
