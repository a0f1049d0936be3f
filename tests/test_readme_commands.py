"""The README's command table and the `caulbart` CLI name the same commands: each one the table
names answers `--help`, and each command (and subcommand) of the CLI is in the table."""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.testing import CliRunner

from aggregator.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
CODE = re.compile(r"`([^`]+)`")
NAME = re.compile(r"[a-z][a-z-]*")


def table_commands() -> list[tuple[str, ...]]:
    """Each command path the table's first column names: `caulbart review list [--json]` gives
    ("review", "list"); `review approve\\|reject ID...` beside it gives ("review", "approve") and
    ("review", "reject")."""
    text = README.read_text(encoding="utf-8")
    table = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert rows, "README.md has no command table under ## Commands"
    paths: list[tuple[str, ...]] = []
    for row in rows:
        first_column = re.split(r"(?<!\\)\|", row)[1]
        group: str | None = None
        for span in CODE.findall(first_column):
            words = span.split()
            if words[0] == "caulbart":
                words = words[1:]
            elif group is not None and words[0] != group:  # `approve` beside `caulbart review`
                words = [group, *words]
            names: list[list[str]] = []
            for word in words:
                choices = word.split("\\|")
                if not all(NAME.fullmatch(choice) for choice in choices):
                    break  # an option, a placeholder (ID, FILE, URL): the path has ended
                names.append(choices)
            assert names, f"no command in {span!r}"
            group = names[0][0]
            if len(names) == 1:
                paths.extend((choice,) for choice in names[0])
            else:  # a group's subcommands: `review approve\|reject`
                paths.extend((group, leaf) for leaf in names[1])
    return paths


def cli_commands() -> set[tuple[str, ...]]:
    """Every command of `caulbart`, a group's subcommands each by their own path."""
    found: set[tuple[str, ...]] = set()
    for name, command in main.commands.items():
        if isinstance(command, click.Group):
            found.update((name, sub) for sub in command.commands)
        else:
            found.add((name,))
    return found


def test_every_command_in_the_readme_table_answers_help() -> None:
    runner = CliRunner()
    for path in table_commands():
        result = runner.invoke(main, [*path, "--help"], prog_name="caulbart")
        assert result.exit_code == 0, (path, result.output)
        assert f"Usage: caulbart {' '.join(path)} " in result.output, (path, result.output)


def test_every_command_of_the_cli_is_in_the_readme_table() -> None:
    missing = cli_commands() - set(table_commands())
    assert not missing, f"commands missing from README.md's table: {sorted(missing)}"
