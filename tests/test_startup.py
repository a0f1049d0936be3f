"""Commands that do not ingest start quickly: they import neither the pipeline's parsers nor
Alembic. Checked by what a command's process has imported when it ends (not by the clock, which
a busy machine moves; bench/startup_bench.py times them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from aggregator import limits
from aggregator.ingest import scheduler
from aggregator.stories import dedupe
from aggregator.stories.explain import RULE_TEXT
from tests.conftest import Caulbart, FeedServer, write_feeds_yaml
from tests.feeds import Item, rss

# Runs the `caulbart` entry point (aggregator.__main__) with the given arguments, then writes the
# names of every module the process imported to a file.
PROBE = """
import json, sys
arguments, out = json.loads(sys.argv[1]), sys.argv[2]
sys.argv = ["caulbart", *arguments]
from aggregator.__main__ import main
try:
    main()
except SystemExit as exit:
    code = exit.code
else:
    code = 0
with open(out, "w") as file:
    json.dump({"code": code, "modules": sorted(sys.modules)}, file)
"""

# What an ingest needs (parsing, fetching, sanitising, fingerprints), the migrations and the web.
PIPELINE = ("feedparser", "httpx", "nh3", "lxml", "numpy", "datasketch", "trafilatura")
OTHERS = ("alembic", "flask", "werkzeug", "apscheduler")
# The slowest imports of a command that reads the database; `--help` and `check` never need them.
DATABASE_AND_TABLES = ("sqlalchemy", "rich")


def imported(
    tmp_path: Path, *arguments: str, env: dict[str, str] | None = None
) -> tuple[int, set[str], str]:
    """The exit code, the top-level packages imported, and stdout of one `caulbart` process."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(arguments), str(out)],
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    probe = json.loads(out.read_text())
    return probe["code"], {name.split(".")[0] for name in probe["modules"]}, done.stdout


def test_help_imports_click_and_the_commands_but_nothing_they_run(tmp_path: Path) -> None:
    code, modules, stdout = imported(tmp_path, "--help")
    assert code == 0
    for command in ("check", "explain", "fetch", "status", "backup", "review", "retag"):
        assert f"  {command} " in stdout
    assert "--tick" not in stdout  # a command's own help is its own
    assert modules & {*PIPELINE, *OTHERS, *DATABASE_AND_TABLES} == set()


def test_a_commands_help_shows_its_defaults_without_importing_what_it_runs(
    tmp_path: Path,
) -> None:
    code, modules, stdout = imported(tmp_path, "worker", "--help")
    assert code == 0
    assert "[default: 2.0]" in stdout
    assert modules & {*PIPELINE, *OTHERS, *DATABASE_AND_TABLES} == set()


def test_check_validates_feeds_yaml_without_the_pipeline_or_the_database(tmp_path: Path) -> None:
    config = write_feeds_yaml(tmp_path / "feeds.yaml", [{"id": "a", "url": "http://a.test/f"}])
    env = {"CAULBART_CONFIG": str(config)}
    code, modules, stdout = imported(tmp_path, "check", env=env)
    assert (code, stdout) == (0, f"{config}: OK, 1 sources (1 enabled)\n")
    assert modules & {*PIPELINE, *OTHERS, *DATABASE_AND_TABLES} == set()

    config.write_text("sources:\n  - {id: a}\n")
    code, modules, stdout = imported(tmp_path, "check", env=env)
    assert code == 1 and f"{config}:2:" in stdout
    assert modules & {*PIPELINE, *OTHERS, *DATABASE_AND_TABLES} == set()


def test_status_and_explain_on_a_current_database_import_no_parser_nor_alembic(
    caulbart: Caulbart, feed_server: FeedServer, tmp_path: Path
) -> None:
    item = Item("g1", "Harbour reopens", "https://port.test/1", datetime(2026, 5, 1, tzinfo=UTC))
    url = feed_server.add("/port.rss", rss(item))
    write_feeds_yaml(caulbart.config, [{"id": "port", "url": url}])
    assert caulbart("fetch", "--all").returncode == 0  # migrates the new database
    env = {"CAULBART_DATABASE_URL": caulbart.database_url, "CAULBART_CONFIG": str(caulbart.config)}

    code, modules, stdout = imported(tmp_path, "status", env=env)
    assert code == 0 and "port" in stdout
    assert modules & {*PIPELINE, *OTHERS} == set()

    code, modules, stdout = imported(tmp_path, "explain", "1", env=env)
    assert code == 0 and "story 1: Harbour reopens" in stdout
    assert modules & {*PIPELINE, *OTHERS} == set()

    # A link is canonicalised as entries' links are: that one needs the normalising (nh3).
    code, modules, stdout = imported(
        tmp_path, "explain", "https://port.test/1?utm_source=x", env=env
    )
    assert code == 0 and "story 1: Harbour reopens" in stdout
    assert modules & {*PIPELINE, *OTHERS} - {"nh3"} == set()


def test_a_database_behind_the_migrations_is_upgraded_with_alembic(
    caulbart: Caulbart, tmp_path: Path
) -> None:
    """The other side of the revision check: Alembic is loaded when there is work for it."""
    write_feeds_yaml(caulbart.config, [])
    env = {"CAULBART_DATABASE_URL": caulbart.database_url, "CAULBART_CONFIG": str(caulbart.config)}
    code, modules, _ = imported(tmp_path, "status", env=env)
    assert code == 0 and "alembic" in modules
    code, modules, _ = imported(tmp_path, "status", env=env)
    assert code == 0 and "alembic" not in modules


def test_explain_has_words_for_every_rule_dedupe_stores() -> None:
    assert set(RULE_TEXT) == {rule.value for rule in dedupe.Rule}


def test_the_tick_that_help_shows_is_the_schedulers() -> None:
    assert limits.DEFAULT_TICK == scheduler.DEFAULT_TICK
