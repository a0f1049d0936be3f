"""Ingest: fetch, parse, normalise, filter and prepare a source, and the clock."""
