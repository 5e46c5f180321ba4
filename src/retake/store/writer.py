"""Write transactions that run whole, in one hop: ``await run_write(engine, fn)`` with ``fn(conn) -> T`` sync.

Why: SQLite has one write lock, and an async transaction holds it from its first write to its commit across
every statement's round trip through the event loop (aiosqlite runs each statement on its thread and wakes the
loop for the answer). On a node busy with chat, sockets and webhook POSTs each round trip waits for a loop turn,
so a lane's ``finish`` (six statements) held the lock for tens of milliseconds and everything else queued behind it
(docs/benchmarks.md, "Push to agents": event → agent socket p99 734 ms on SQLite, 10 ms on PostgreSQL).

Here a write transaction is a plain function of a synchronous :class:`~sqlalchemy.engine.Connection`:

* on a file-backed SQLite database it runs on this node's one writer thread, on its own connection, between
  ``BEGIN IMMEDIATE`` and ``COMMIT``, without touching the event loop: the lock is held for the statements' own
  time (tens of µs each). Its transactions queue on the thread, one after the other, and need no loop turn to
  pass the lock on. (Writers taking turns through the loop, store/write_turns.py, were tried first: they can
  commit only one transaction per loop iteration, which on a busy node made the chat tail worse, not better.)
  Writes that still go through async sessions take turns among themselves and meet the writer through SQLite's
  busy handler;
* on PostgreSQL (and in-memory SQLite) it runs in ``AsyncConnection.run_sync`` inside ``engine.begin()``: the
  same code, each statement awaited as before (PostgreSQL locks rows, not the database, and needs no hop-free
  path).

``fn`` must not await and must not touch the event loop's objects (it may run on another thread); it may run
selects, ``FOR UPDATE`` included (PostgreSQL honours them; SQLite has nothing to lock beyond the write lock).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


class SqliteWriter:
    """One thread and one connection that run a node's hop-free write transactions back to back."""

    def __init__(self, database: str, pragmas: Callable[[Any, Any], None]) -> None:
        self._engine: Engine = create_engine(f"sqlite:///{database}", pool_size=1, max_overflow=0)
        event.listen(self._engine, "connect", pragmas)
        event.listen(self._engine, "connect", _driver_autocommit)
        event.listen(self._engine, "begin", _begin_immediate)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")
        self._closed = threading.Event()

    def on_commit(self, callback: Callable[[], None]) -> None:
        """``callback()`` at every commit, on the writer's thread (it must be thread-safe)."""
        event.listen(self._engine, "commit", lambda _conn: callback())

    def _transaction(self, fn: Callable[[Connection], T]) -> T:
        with self._engine.begin() as conn:
            return fn(conn)

    async def run(self, fn: Callable[[Connection], T]) -> T:
        if self._closed.is_set():
            raise RuntimeError("the SQLite writer is closed")
        done = asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, fn)
        # A caller cancelled meanwhile does not stop the transaction: it goes on to its commit or rollback.
        return await asyncio.shield(done)

    def close(self) -> None:
        self._closed.set()
        self._thread.shutdown(wait=True)
        self._engine.dispose()


def _driver_autocommit(dbapi_connection: Any, _record: Any) -> None:
    # The sqlite3 module's own implicit BEGIN (before the first INSERT, deferred) is switched off, so that
    # _begin_immediate decides: SQLAlchemy's documented recipe for controlling pysqlite transactions.
    dbapi_connection.isolation_level = None


def _begin_immediate(conn: Connection) -> None:
    # IMMEDIATE takes the write lock at the start: the transaction's selects see the state it then writes on,
    # also against other processes on the same file (whose busy handler waits for this commit).
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def writer_of(engine: AsyncEngine) -> SqliteWriter | None:
    writer: SqliteWriter | None = getattr(engine.sync_engine, "sqlite_writer", None)
    return writer


async def run_write(engine: AsyncEngine, fn: Callable[[Connection], T]) -> T:
    """Run ``fn`` as one write transaction (see the module's docstring for where and how)."""
    writer = writer_of(engine)
    if writer is not None:
        return await writer.run(fn)
    async with engine.begin() as conn:
        return await conn.run_sync(fn)
