"""Caulbart's ingest pipeline: feeds.yaml -> fetch -> parse -> normalise -> dedupe -> store."""

__version__ = "0.1.0"
