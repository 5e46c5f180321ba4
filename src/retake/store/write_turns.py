"""One writer at a time per node on SQLite, first come first served, woken at once instead of polled.

SQLite has one write lock per database. A connection whose ``INSERT`` finds it taken sleeps in SQLite's busy
handler (1, 2, 5, 10 … 50, 100 ms between tries) and retries; whoever retries at the right moment wins. With chat
lines, the webhook outbox and its delivery lanes all writing, unlucky writers lost for seconds (docs/benchmarks.md,
"what stalls the tail": ``INSERT`` p99 570-640 ms, event → agent socket p99 734 ms on a quiet machine).

Here the first data-changing statement of a transaction first waits for this node's *turn* (an ``asyncio.Lock``:
FIFO, and the next writer is woken the moment the turn passes). The turn passes on when the transaction ends in the
dialect: ``do_commit``, ``do_rollback`` (the pool's reset-on-return included), ``do_close``, ``do_terminate`` (the
last is what the pool calls for a connection the garbage collector finds still checked out). Reads never wait.

Cancellation: the wait uses ``Lock.acquire`` under ``asyncio.timeout``, both of which hand the lock on when the
waiter is cancelled after being woken. (``asyncio.wait_for`` is not used: on Python 3.11 it can lose an acquired
lock when the timeout and the acquisition race, gh-86296, which left a turn held for ever.)

The node's hot write paths (chat lines, the webhook outbox and its lanes) do not come here: they run whole on the
writer thread (store/writer.py), which holds the lock for the statements' own time and meets these turns' holders
through SQLite's busy handler, as other processes (``retake admin``, a second node on the same file) do. A turn not
had within ``wait_limit`` seconds (a write nested in another open write transaction of the same task) goes on
without one, as without this module, and is logged.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only
from sqlalchemy.util.concurrency import in_greenlet

log = logging.getLogger(__name__)

# Statements that take SQLite's write lock. SELECT, PRAGMA, BEGIN/COMMIT/ROLLBACK and SAVEPOINT do not; a
# SAVEPOINT's writes come as their own INSERT/UPDATE/DELETE statements.
_WRITES = re.compile(r"^\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|UPSERT)\b", re.IGNORECASE)


def _dbapi(connection: Any) -> Any:
    """The driver-level connection, whether SQLAlchemy passes the pool's proxy (the fairy) or the connection."""
    return getattr(connection, "dbapi_connection", None) or connection


class WriteTurns:
    def __init__(self, wait_limit: float = 5.0) -> None:
        self.wait_limit = wait_limit
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._holder: int | None = None  # id() of the driver connection that has the turn
        self.waits = 0  # turns that had to wait (for tests and logs)
        self.timeouts = 0

    @property
    def held(self) -> bool:
        return self._holder is not None

    def _lock_for_loop(self) -> asyncio.Lock:
        # An engine can outlive an event loop (tests, `retake` commands that call asyncio.run twice): a turn
        # belongs to the loop that runs the writers, so a new loop gets a fresh lock (and no stale holder).
        loop = asyncio.get_running_loop()
        if self._lock is None or self._loop is not loop:
            self._lock, self._loop, self._holder = asyncio.Lock(), loop, None
        return self._lock

    async def _acquire(self, key: int) -> bool:
        lock = self._lock_for_loop()
        if lock.locked():
            self.waits += 1
        try:
            async with asyncio.timeout(self.wait_limit):
                await lock.acquire()
        except TimeoutError:
            self.timeouts += 1
            log.warning("no SQLite write turn within %.0f s; writing without one", self.wait_limit)
            return False
        self._holder = key
        return True

    def before_write(self, connection: Any) -> None:
        """Called (synchronously, inside SQLAlchemy's greenlet) before a statement that writes."""
        key = id(_dbapi(connection))
        if self._holder == key or not in_greenlet():
            return
        await_only(self._acquire(key))

    def release(self, connection: Any) -> None:
        if self._holder is not None and self._holder == id(_dbapi(connection)):
            self._holder = None
            assert self._lock is not None
            self._lock.release()


def _after(original: Callable[[Any], None], turns: WriteTurns) -> Callable[[Any], None]:
    def wrapped(dbapi_connection: Any) -> None:
        try:
            original(dbapi_connection)
        finally:  # the transaction is over (or the connection gone) either way
            turns.release(dbapi_connection)

    return wrapped


def install(engine: AsyncEngine, wait_limit: float = 5.0) -> WriteTurns:
    """Give ``engine`` (file-backed SQLite) write turns; returns them (``engine.sync_engine.write_turns``)."""
    turns = WriteTurns(wait_limit)
    dialect: Dialect = engine.sync_engine.dialect
    # The dialect instance is this engine's own: wrapping its methods touches no other engine.
    for name in ("do_commit", "do_rollback", "do_close", "do_terminate"):
        setattr(dialect, name, _after(getattr(dialect, name), turns))

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _wait_for_turn(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if _WRITES.match(statement):
            turns.before_write(conn.connection)

    engine.sync_engine.write_turns = turns  # type: ignore[attr-defined]
    return turns
