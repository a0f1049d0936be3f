"""What every `caulbart` command shares: its feeds.yaml, its console and log, and the one place
an error is worded and ends it (`CaulbartGroup`).

Light on purpose: `caulbart --help` and `check` import this and click only. rich, SQLAlchemy and
the pipeline are imported by the commands that use them (tests/test_startup.py).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

from aggregator.errors import CaulbartError

if TYPE_CHECKING:
    from rich.console import Console

    from aggregator.types import Config

# Exit codes (README, "Exit codes"); 0 is success, and each CaulbartError carries its own (1 a
# refusal the command explains, 2 a usage error, 3 a second worker on one SQLite file).
EXIT_DATABASE = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C

# The story ids an editor's command acts on (review approve/reject, pin, unpin).
story_ids = click.argument("ids", nargs=-1, required=True, type=int, metavar="ID...")


def stdout_console() -> Console:
    from rich.console import Console

    # Wide when piped, so tables are not folded into unreadable columns in logs.
    return Console(file=sys.stdout, width=None if sys.stdout.isatty() else 200)


def setup_logging(verbose: int, interactive: bool) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO
    if interactive and not verbose:
        level = logging.WARNING  # the progress bar says what INFO lines would
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)


def config_of(ctx: click.Context) -> Config:
    """feeds.yaml, parsed; an invalid one ends the command (its problems, exit 1)."""
    from aggregator.config.load import load_config

    return load_config(ctx.obj["config_path"])


class _Worded(CaulbartError):
    """An error as the command that it ended words it (see `wording`)."""

    def __init__(self, lines: list[str], exit_code: int) -> None:
        super().__init__("\n".join(lines))
        self._lines = lines
        self.exit_code = exit_code

    def lines(self) -> list[str]:
        return self._lines


@contextlib.contextmanager
def wording(prefix: str = "", suffix: str = "", after: tuple[str, ...] = ()) -> Iterator[None]:
    """A CaulbartError raised inside is told as `prefix + line + suffix` for each of its lines,
    then the lines `after`; the innermost wording wins."""
    try:
        yield
    except _Worded:
        raise
    except CaulbartError as exc:
        lines = [f"{prefix}{line}{suffix}" for line in exc.lines()]
        raise _Worded([*lines, *after], exc.exit_code) from exc


class CaulbartGroup(click.Group):
    """The one place a command ends on an error: a CaulbartError prints its lines and exits
    with its code; a database that is unreachable, full, locked or read-only is one clear line
    (exit 4), and Ctrl-C one line (exit 130): never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CaulbartError as exc:
            for line in exc.lines():
                click.echo(line, err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("caulbart: interrupted (what was stored before is kept)", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            if not _is_database_error(exc):
                raise
            click.echo(_database_error_line(exc), err=True)
            ctx.exit(EXIT_DATABASE)


def _is_database_error(exc: Exception) -> bool:
    # A command that never imported SQLAlchemy (check, --help) cannot have failed in it.
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def _database_error_line(exc: Exception) -> str:
    from sqlalchemy import make_url
    from sqlalchemy.exc import DBAPIError

    from aggregator.storage.db import database_url

    url = make_url(database_url()).render_as_string(hide_password=True)
    orig = exc.orig if isinstance(exc, DBAPIError) else None
    reason = str(orig or exc).strip().splitlines()[0]
    return f"caulbart: database error on {url}: {reason}"
