"""Caulbart's exceptions: raised at the edge of a stage, caught once where they are recorded."""

from __future__ import annotations


class CaulbartError(Exception):
    """Base of every error Caulbart raises on purpose."""


class ParseError(CaulbartError):
    """The fetched bytes are not a feed Caulbart can read."""


class StoreError(CaulbartError):
    """The database refused a write; the source's transaction was rolled back."""
