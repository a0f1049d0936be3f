"""The `caulbart` command (also `python -m aggregator`).

Each parsing worker (forked from multiprocessing's fork server) first imports its parent's main
module: the `caulbart` script, which imports this one. So the CLI (click, rich and every command's
modules, ~0.3 s of CPU a process) is imported only when the command runs, never in a worker.
"""

from __future__ import annotations


def main() -> None:
    from aggregator.cli import main as command

    command()


if __name__ == "__main__":
    main()
