"""`caulbart backup FILE` and `caulbart restore FILE` (the archive: aggregator.storage.backup)."""

from __future__ import annotations

import os
from pathlib import Path

import click


@click.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(file: Path) -> None:
    """Write the whole database (stories, entries, comments, sources' state...) to FILE."""
    from aggregator.storage.backup import write_backup
    from aggregator.storage.db import open_database

    engine = open_database()
    # Written beside FILE and renamed into place: a failed backup never poses as a good one.
    partial = file.with_name(file.name + ".partial")
    try:
        with partial.open("wb") as out:
            archive = write_backup(engine, out)
            out.flush()
            os.fsync(out.fileno())
        partial.replace(file)
    finally:
        partial.unlink(missing_ok=True)
        engine.dispose()
    total = sum(archive.rows.values())
    click.echo(
        f"backed up {total} rows of {len(archive.rows)} tables to {file} (schema {archive.schema})"
    )


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def restore(file: Path) -> None:
    """Load a backup made by `caulbart backup` into a new, empty database (ids kept)."""
    from sqlalchemy import make_url

    from aggregator.storage.backup import restore_backup
    from aggregator.storage.db import database_url, open_database

    engine = open_database()
    try:
        with file.open("rb") as source:
            archive = restore_backup(engine, source, str(file))
    finally:
        engine.dispose()
    url = make_url(database_url()).render_as_string(hide_password=True)
    click.echo(
        f"restored {sum(archive.rows.values())} rows of {len(archive.rows)} tables from {file} "
        f"(made {archive.created}, schema {archive.schema}) into {url}"
    )


COMMANDS = (backup, restore)
