"""WAL checkpoints for SQLite, off the request path.

In WAL mode SQLite copies the log back into the database file ("checkpoint", with an fsync) when the log passes
``wal_autocheckpoint`` pages, and it does so inside whichever commit crossed the line. That commit, and every
request queued behind the single writer, then waits for the disk: with 50 chat lines/s the REST p99 went from
~20 ms to 60-380 ms in bursts (docs/benchmarks.md). Here a background task checkpoints every second with
``PASSIVE`` (never waits for readers or writers; writers keep appending meanwhile) on aiosqlite's thread, and
the per-commit automatic checkpoint is moved far out (``SAFETY_NET_PAGES``), where it only acts if this task is
not running. PostgreSQL does its own checkpoints; nothing to do there.

The task runs only after a commit on this node's engine (at most once per ``INTERVAL_SECONDS`` while writes go
on): an idle node then does not wake every second to checkpoint an empty log. Commits of other processes (the
``retake admin`` command line) are checkpointed by the next one here, or by ``SAFETY_INTERVAL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from retake.store.nudges import wait_set
from retake.store.writer import writer_of

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0
SAFETY_INTERVAL_SECONDS = 300.0
# ~40 MB of 4 KiB pages: the log cannot grow without bound even if the task below stops.
SAFETY_NET_PAGES = 10_000


async def checkpoint_once(engine: AsyncEngine) -> tuple[int, int, int]:
    """``(busy, log_pages, checkpointed_pages)`` as SQLite reports them."""
    async with engine.connect() as conn:
        row = (await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")).one()
    return int(row[0]), int(row[1]), int(row[2])


async def run_checkpoints(engine: AsyncEngine, committed: asyncio.Event, interval: float = INTERVAL_SECONDS) -> None:
    """Until cancelled. A failed checkpoint is logged and retried on the next round: the safety net still holds."""
    while True:
        await wait_set(committed, SAFETY_INTERVAL_SECONDS)
        await asyncio.sleep(interval)  # the commits of this second go into the same checkpoint
        committed.clear()  # before it: a commit during the checkpoint calls for another one
        try:
            await checkpoint_once(engine)
        except Exception:
            log.warning("SQLite WAL checkpoint failed; retrying after the next commit", exc_info=True)
            committed.set()


def start(engine: AsyncEngine) -> asyncio.Task[None] | None:
    """A running checkpoint task for a file-backed SQLite engine, else ``None``."""
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    committed = asyncio.Event()
    committed.set()  # the migrations and start-up writes: one checkpoint after the start
    # The engine's commit hook runs on the event loop's thread (SQLAlchemy's asyncio layer drives the sync
    # engine in a greenlet there), so setting the asyncio event from it is safe.
    event.listen(engine.sync_engine, "commit", lambda _conn: committed.set())
    writer = writer_of(engine)
    if writer is not None:  # the hot writes commit on the writer's thread (store/writer.py): hand the flag over
        loop = asyncio.get_running_loop()

        def from_writer() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody checkpoints any more anyway
                loop.call_soon_threadsafe(committed.set)

        writer.on_commit(from_writer)
    return asyncio.create_task(run_checkpoints(engine, committed), name="sqlite-wal-checkpoint")


async def stop(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
