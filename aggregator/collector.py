"""The cyclic garbage collector's settings for a Caulbart process: the command and the parsing
workers set them at start. Its own module so a command that does not ingest sets them without
importing the pipeline."""

from __future__ import annotations

import gc

# The generation thresholds for an ingesting process (see tune_garbage_collector); Python's
# default is (700, 10, 10).
COLLECTOR_THRESHOLDS = (10_000, 50, 50)


def tune_garbage_collector() -> None:
    """Collect cycles less often. An ingest allocates millions of short-lived objects, nearly all
    freed by reference counting, and the default thresholds made the collector sweep the heap
    (the session's stored rows, the tag index's cache) again and again: a sixth of a first
    ingest's time. Cycles are still collected, after 10,000 allocations rather than 700."""
    gc.set_threshold(*COLLECTOR_THRESHOLDS)
