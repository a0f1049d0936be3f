"""The `caulbart` command: its group, and every command module registered in one list.

Each module owns one group of commands and lists them in `COMMANDS` (as a Flask blueprint owns
its routes); what they share (feeds.yaml, wording of errors, the console) is in command.py.
A command module's top imports click and light modules only; each command imports what it uses
(SQLAlchemy, rich, the pipeline) when it runs, so `--help`, `check`, `status` and `explain`
start quickly (tests/test_startup.py, bench/startup_bench.py).
"""

from __future__ import annotations

import click

from aggregator import __version__
from aggregator.cli import backup, comments, ingest, review, sources, stories
from aggregator.cli.command import CaulbartGroup
from aggregator.collector import tune_garbage_collector

# Every command module; a new one is one more line here (`caulbart --help` sorts the commands).
COMMAND_MODULES = (
    sources,
    ingest,
    stories,
    review,
    comments,
    backup,
)


@click.group(cls=CaulbartGroup)
@click.option(
    "--config",
    "config_path",
    envvar="CAULBART_CONFIG",
    default="feeds.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="feeds.yaml to read (env CAULBART_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log lines (-vv for debug).")
@click.version_option(__version__, prog_name="caulbart")
@click.pass_context
def main(ctx: click.Context, config_path: str, verbose: int) -> None:
    """Caulbart: news that matter to you."""
    tune_garbage_collector()
    ctx.ensure_object(dict)
    ctx.obj["config_path"] = config_path
    ctx.obj["verbose"] = verbose


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        main.add_command(_command)

if __name__ == "__main__":
    main()
