"""The `caulbart` command (also `python -m aggregator`).

Each parsing worker (forked from multiprocessing's fork server) first imports its parent's main
module: the `caulbart` script, which imports this one. So the CLI (click and every command's
module) is imported only when the command runs, never in a worker; and each command imports what
it runs (SQLAlchemy, rich, the pipeline) only when it runs (tests/test_startup.py).
"""

from __future__ import annotations


def main() -> None:
    from aggregator.cli import main as command

    command()


if __name__ == "__main__":
    main()
