"""Caulbart's exceptions, one tree: raised at the edge of a stage, caught once where they are
recorded (a source's health, a web response, the `caulbart` command's exit).

Each class carries the exit code `caulbart` ends with when the error reaches the command line
(README, "Exit codes"); the command prints `lines()` and exits with `exit_code`, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


class CaulbartError(Exception):
    """Base of every error Caulbart raises on purpose."""

    exit_code = 1  # a refusal the command explains

    def lines(self) -> list[str]:
        """What the command line prints for this error, one line each."""
        return [str(self)]


class UsageError(CaulbartError):
    """The command was given something it cannot take, as click's own usage errors."""

    exit_code = 2


# --- configuration --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigProblem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ConfigError(CaulbartError):
    """feeds.yaml is invalid; `problems` lists all of them, in file order."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class OpmlError(ConfigError):
    """The file is not an OPML list Caulbart can read; `line` is where, when known."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__([ConfigProblem(path, line, message)])
        self.line = line


# --- ingest ---------------------------------------------------------------------------------


class FetchError(CaulbartError):
    """A fetch that must stop, with the message recorded as the source's error."""


class AddressRefused(FetchError):
    """The URL's host is, or resolves to, an address an `AddressGuard` does not allow."""


class ParseError(CaulbartError):
    """The fetched bytes are not a feed Caulbart can read."""


# --- not found ------------------------------------------------------------------------------


class NotFound(CaulbartError):
    """What was named does not exist (or no longer does)."""


class NoFeedFound(NotFound):
    """The address is neither a feed nor a page that announces one."""


class UnknownSource(NotFound):
    """`fetch --source` named a source feeds.yaml does not hold enabled: a usage error."""

    exit_code = 2

    def __init__(self, ids: list[str]) -> None:
        super().__init__(f"unknown or disabled source id(s): {', '.join(ids)}")
        self.ids = ids


class UnknownStory(NotFound):
    def __init__(self, story_id: int) -> None:
        super().__init__(f"no story with id {story_id}")
        self.story_id = story_id


class UnknownStories(NotFound):
    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = sorted(ids)
        super().__init__("no story " + ", ".join(str(i) for i in self.ids))


class UnknownComments(NotFound):
    """Moderation named comment ids that do not exist."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = sorted(ids)
        super().__init__("no comment " + ", ".join(str(i) for i in self.ids))


class FeedNotFound(NotFound):
    """No such section, tag or source, or a page or archive beyond the feed's end."""


# --- refused --------------------------------------------------------------------------------


class Refused(CaulbartError):
    """The request is understood and the thing exists, but it may not be done now."""


class ReviewRefused(Refused):
    """Some ids are unknown or not awaiting that decision; nothing was changed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems

    def lines(self) -> list[str]:
        return list(self.problems)


class StoryClosed(Refused):
    """The story does not exist, was withdrawn or is not published (review): no comments."""


class RestoreRefused(Refused):
    """`caulbart restore` into a database that already holds rows: nothing was changed."""


class BackupUnreadable(CaulbartError):
    """The file is not a Caulbart backup this version can restore: damaged, cut short, or of
    a newer format or schema."""


class WorkerAlreadyRunning(Refused):
    """A second worker on one SQLite file: SQLite has one writer, so one worker per file."""

    exit_code = 3
