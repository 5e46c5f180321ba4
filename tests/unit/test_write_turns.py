"""One SQLite writer at a time per node, in arrival order (store/write_turns.py), on a real database file."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from retake.store.engine import create_engine
from retake.store.write_turns import WriteTurns


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)"))
    yield engine
    await engine.dispose()


def turns_of(engine: AsyncEngine) -> WriteTurns:
    turns = engine.sync_engine.write_turns  # type: ignore[attr-defined]
    assert isinstance(turns, WriteTurns)
    return turns


def waited(turns: WriteTurns, count: int) -> bool:
    return turns.waits == count


async def until(condition: Callable[[], bool]) -> None:
    """Polls: the turns have no event to wait on, and a test may poll what it watches (up to 5 s)."""
    async with asyncio.timeout(5.0):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


async def hold_turn(engine: AsyncEngine, release: asyncio.Event, committed: list[str]) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (who) VALUES ('first')"))
        await release.wait()
    committed.append("first")


async def write(engine: AsyncEngine, who: str, committed: list[str]) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO t (who) VALUES (:who)"), {"who": who})
    committed.append(who)


async def test_writers_take_turns_in_arrival_order(engine: AsyncEngine) -> None:
    turns, release, committed = turns_of(engine), asyncio.Event(), list[str]()
    holder = asyncio.create_task(hold_turn(engine, release, committed))
    await until(lambda: turns.held)
    writers = []
    for n in range(6):  # each one queued before the next starts
        writers.append(asyncio.create_task(write(engine, f"w{n}", committed)))
        await until(functools.partial(waited, turns, n + 1))
    release.set()
    await asyncio.gather(holder, *writers)
    assert not turns.held and turns.timeouts == 0 and len(committed) == 7
    # Rows get their ids in the order their writers had the lock. SQLite's busy handler gives it to whichever
    # sleeper retries first (without turns this came out w4, w5, w3, w2, w1, w0, the first waiting longest,
    # 134 ms); the turns hand it on in arrival order.
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT who FROM t ORDER BY id"))).scalars().all()
    assert rows == ["first", "w0", "w1", "w2", "w3", "w4", "w5"]


async def test_reads_do_not_wait_for_the_turn(engine: AsyncEngine) -> None:
    turns, release, committed = turns_of(engine), asyncio.Event(), list[str]()
    holder = asyncio.create_task(hold_turn(engine, release, committed))
    await until(lambda: turns.held)
    async with asyncio.timeout(2), engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0  # WAL: the commit is not in
    assert turns.waits == 0
    release.set()
    await holder


async def test_a_cancelled_waiter_passes_the_turn_on(engine: AsyncEngine) -> None:
    turns, release, committed = turns_of(engine), asyncio.Event(), list[str]()
    holder = asyncio.create_task(hold_turn(engine, release, committed))
    await until(lambda: turns.held)
    gone = asyncio.create_task(write(engine, "gone", committed))
    await until(lambda: turns.waits == 1)
    after = asyncio.create_task(write(engine, "after", committed))
    await until(lambda: turns.waits == 2)
    release.set()  # the turn is on its way to `gone` when `gone` is cancelled
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.gather(holder, after)
    with contextlib.suppress(asyncio.CancelledError):
        await gone
    assert committed == ["first", "after"] and not turns.held


async def test_a_cancelled_holder_gives_the_turn_back(engine: AsyncEngine) -> None:
    turns, committed = turns_of(engine), list[str]()
    stuck = asyncio.create_task(hold_turn(engine, asyncio.Event(), committed))  # never released
    await until(lambda: turns.held)
    stuck.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await stuck
    assert not turns.held  # the pool's reset-on-return rolled back, and the turn went with it
    async with asyncio.timeout(2):
        await write(engine, "next", committed)
    assert committed == ["next"]


async def test_a_turn_not_had_in_time_writes_without_one(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    turns = turns_of(engine)
    turns.wait_limit = 0.2
    try:
        async with engine.begin() as outer:
            await outer.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)"))
        # A nested write transaction on a second connection of the same task: it cannot have the turn, waits
        # `wait_limit`, and then meets SQLite's own lock, whose busy handler decides as without turns.
        async with engine.connect() as outer:
            await outer.execute(text("INSERT INTO t (who) VALUES ('outer')"))
            await outer.commit()
            assert not turns.held
        await write(engine, "plain", [])
        assert turns.timeouts == 0
        async with engine.begin() as outer:
            await outer.execute(text("INSERT INTO t (who) VALUES ('outer2')"))
            inner = asyncio.create_task(write(engine, "inner", []))
            await until(lambda: turns.timeouts == 1)
        await inner  # the outer committed, so SQLite let the inner one write
        assert not turns.held
    finally:
        await engine.dispose()


async def test_memory_and_postgres_engines_have_no_turns() -> None:
    memory = create_engine("sqlite+aiosqlite://")
    postgres = create_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    try:
        assert not hasattr(memory.sync_engine, "write_turns")
        assert not hasattr(postgres.sync_engine, "write_turns")
    finally:
        await memory.dispose()
        await postgres.dispose()
