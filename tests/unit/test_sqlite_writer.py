"""Hop-free write transactions (store/writer.py) on a real SQLite file and on the real PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from retake.store.engine import create_engine, dispose_engine
from retake.store.writer import run_write, writer_of

POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT, thread TEXT)"))
    yield engine
    await dispose_engine(engine)


def insert(who: str, pause: float = 0.0) -> Callable[[Connection], int]:
    def write(conn: Connection) -> int:
        if pause:
            time.sleep(pause)  # the transaction is under way (on the writer's thread, never the loop's)
        row = conn.execute(
            text("INSERT INTO t (who, thread) VALUES (:who, :thread) RETURNING id"),
            {"who": who, "thread": threading.current_thread().name},
        )
        return int(row.scalar_one())

    return write


async def rows(engine: AsyncEngine) -> list[tuple[str, str]]:
    async with engine.connect() as conn:
        return [(r.who, r.thread) for r in await conn.execute(text("SELECT who, thread FROM t ORDER BY id"))]


async def test_sqlite_writes_run_whole_on_the_writer_thread(sqlite: AsyncEngine) -> None:
    ids = await asyncio.gather(*(run_write(sqlite, insert(f"w{n}")) for n in range(40)))
    assert ids == list(range(1, 41))  # queued in call order, one transaction after the other
    stored = await rows(sqlite)
    assert [who for who, _ in stored] == [f"w{n}" for n in range(40)]
    assert {thread for _, thread in stored} == {"sqlite-writer_0"}


async def test_a_failing_transaction_changes_nothing(sqlite: AsyncEngine) -> None:
    def half(conn: Connection) -> None:
        conn.execute(text("INSERT INTO t (who) VALUES ('half')"))
        raise ValueError("second statement failed")

    with pytest.raises(ValueError, match="second statement failed"):
        await run_write(sqlite, half)
    assert await rows(sqlite) == []
    await run_write(sqlite, insert("after"))
    assert [who for who, _ in await rows(sqlite)] == ["after"]


async def test_a_cancelled_caller_does_not_cut_its_transaction_short(sqlite: AsyncEngine) -> None:
    call = asyncio.create_task(run_write(sqlite, insert("slow", pause=0.3)))
    await asyncio.sleep(0.05)
    call.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await call
    await run_write(sqlite, insert("next"))  # queued behind it: the slow one is done
    assert [who for who, _ in await rows(sqlite)] == ["slow", "next"]


async def test_the_writer_waits_for_an_async_transaction_holding_the_lock(sqlite: AsyncEngine) -> None:
    async with sqlite.begin() as conn:
        await conn.execute(text("INSERT INTO t (who) VALUES ('async')"))
        waiting = asyncio.create_task(run_write(sqlite, insert("writer")))
        await asyncio.sleep(0.2)
        assert not waiting.done()  # BEGIN IMMEDIATE meets the lock and SQLite's busy handler waits
    await waiting
    assert [who for who, _ in await rows(sqlite)] == ["async", "writer"]


async def test_a_closed_writer_refuses_work(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    writer = writer_of(engine)
    assert writer is not None
    await dispose_engine(engine)
    with pytest.raises(RuntimeError, match="closed"):
        await run_write(engine, insert("late"))


async def test_postgres_and_memory_run_the_function_on_their_async_connection() -> None:
    def where(conn: Connection) -> tuple[int, str]:
        return int(conn.execute(text("SELECT 41 + 1")).scalar_one()), threading.current_thread().name

    for url in (POSTGRES, "sqlite+aiosqlite://"):
        engine = create_engine(url)
        try:
            assert writer_of(engine) is None
            # AsyncConnection.run_sync inside engine.begin(): the loop's own thread, each statement awaited
            assert await run_write(engine, where) == (42, threading.current_thread().name)
        finally:
            await dispose_engine(engine)
