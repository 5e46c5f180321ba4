"""Garbage-collector settings for a serving process.

CPython runs a generation-0 collection after 700 net allocations. Fanning one chat line out to 1,000 sockets or
answering a page of 50 comments allocates far more than that, so with the defaults the collector ran many times
per request and took about half of the fan-out CPU (docs/benchmarks.md, "Realtime fan-out"). Raising the first
threshold makes collections rarer (each one a little longer); ``gc.freeze()`` moves everything allocated while
importing and building the app (modules, routes, models: hundreds of thousands of long-lived objects) out of
the collector's sight, so older-generation collections stop re-scanning them. Reference counting still frees
almost everything at once; only reference cycles wait longer, a few MB at most.
"""

from __future__ import annotations

import gc
import logging

from retake.config import parse_gc_threshold

log = logging.getLogger(__name__)


def apply(threshold: str, *, freeze: bool) -> None:
    """Called once, after the app is built and before it serves."""
    numbers = parse_gc_threshold(threshold)
    if numbers is not None:
        gc.set_threshold(*numbers)
    if freeze:
        gc.collect()  # what is garbage now should be freed, not frozen
        gc.freeze()
    log.debug("gc thresholds %s, %d objects frozen", gc.get_threshold(), gc.get_freeze_count())
