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

log = logging.getLogger(__name__)


def parse_threshold(text: str) -> tuple[int, ...] | None:
    """``"50000,20,100"`` → ``(50000, 20, 100)``; ``"default"`` → ``None`` (leave the interpreter's values)."""
    value = text.strip().lower()
    if value in {"", "default"}:
        return None
    parts = [p.strip() for p in value.split(",")]
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"gc_threshold must be 'default' or 1-3 whole numbers like 50000,20,100, not {text!r}")
    numbers = tuple(int(p) for p in parts)
    if numbers[0] == 0:
        raise ValueError("gc_threshold's first value must be > 0 (0 would switch the collector off)")
    return numbers


def apply(threshold: str, *, freeze: bool) -> None:
    """Called once, after the app is built and before it serves."""
    numbers = parse_threshold(threshold)
    if numbers is not None:
        gc.set_threshold(*numbers)
    if freeze:
        gc.collect()  # what is garbage now should be freed, not frozen
        gc.freeze()
    log.debug("gc thresholds %s, %d objects frozen", gc.get_threshold(), gc.get_freeze_count())
