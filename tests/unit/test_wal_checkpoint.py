"""SQLite WAL checkpoints in the background (store/checkpoint.py) on a real database file."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from retake.store import checkpoint
from retake.store.engine import create_engine, dispose_engine
from retake.store.writer import run_write


async def test_commits_leave_checkpointing_to_the_background_task(tmp_path: Path) -> None:
    database = tmp_path / "db.sqlite"
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.begin() as conn:
            assert (await conn.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == checkpoint.SAFETY_NET_PAGES
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)"))
        for i in range(700):  # ~1,400 pages: past SQLite's default of 1,000 between automatic checkpoints
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t (body) VALUES (:b)"), {"b": "x" * 8000 + str(i)})
        # No commit checkpointed (which would have restarted the log at its beginning): it only grew.
        assert os.path.getsize(f"{database}-wal") > 1_100 * 4096  # noqa: ASYNC240 - a test, one stat

        task = checkpoint.start(engine)
        assert task is not None
        await asyncio.sleep(checkpoint.INTERVAL_SECONDS * 1.5)
        # The task checkpointed everything, so the next commit starts the log over: it holds a few pages only.
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t (body) VALUES ('after')"))
        await checkpoint.stop(task)
        assert task.cancelled()
        busy, log_pages, done = await checkpoint.checkpoint_once(engine)
        assert busy == 0 and 0 < log_pages < 10 and done == log_pages
        async with engine.connect() as conn:
            assert (await conn.exec_driver_sql("SELECT count(*) FROM t")).scalar() == 701
    finally:
        await engine.dispose()


async def test_no_task_for_databases_that_checkpoint_themselves() -> None:
    memory = create_engine("sqlite+aiosqlite://")
    postgres = create_engine("postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
    try:
        assert checkpoint.start(memory) is None
        assert checkpoint.start(postgres) is None
    finally:
        await memory.dispose()
        await postgres.dispose()


def watch_checkpoints(engine: AsyncEngine) -> list[str]:
    """The checkpoint statements the engine runs, as they run."""
    checkpoints: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "wal_checkpoint" in statement:
            checkpoints.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", seen)
    return checkpoints


async def test_an_idle_store_is_not_checkpointed_until_something_commits(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    checkpoints = watch_checkpoints(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        task = checkpoint.start(engine)
        await until(lambda: len(checkpoints) == 1)  # one after the start, for what was written before
        await asyncio.sleep(checkpoint.INTERVAL_SECONDS * 3)
        assert len(checkpoints) == 1, "nothing was written since: nothing to checkpoint, no wake-up"
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t DEFAULT VALUES"))
        await until(lambda: len(checkpoints) == 2)  # the commit is checkpointed (after the interval)
        await asyncio.sleep(checkpoint.INTERVAL_SECONDS * 2)
        assert len(checkpoints) == 2, "and only once"
        await checkpoint.stop(task)
    finally:
        await engine.dispose()


async def until(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"not within {seconds} s"
        await asyncio.sleep(0.02)


async def test_commits_on_the_writer_thread_are_checkpointed_too(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    checkpoints = watch_checkpoints(engine)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
        task = checkpoint.start(engine)
        await until(lambda: len(checkpoints) == 1)
        # chat lines and the webhook outbox commit on store/writer.py's thread, not through the async engine
        await run_write(engine, lambda c: c.execute(text("INSERT INTO t DEFAULT VALUES")))
        await until(lambda: len(checkpoints) == 2)
        await checkpoint.stop(task)
    finally:
        await dispose_engine(engine)
