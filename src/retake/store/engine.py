"""Engine creation and start-up migration for both backends."""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from retake.store import write_turns
from retake.store.checkpoint import SAFETY_NET_PAGES
from retake.store.writer import SqliteWriter, writer_of

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# pg_advisory_xact_lock key that every retake node migrating the same PostgreSQL database takes (any constant
# works as long as all nodes agree; this one spells "retake" in ASCII).
MIGRATION_LOCK_KEY = 0x726574616B65
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def private_dir(path: Path) -> Path:
    """The data folder holds the database, keys and recordings: owner-only, also when it already existed."""
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
    os.chmod(path, PRIVATE_DIR)
    return path


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL; None for other backends and in-memory databases."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or database is None or database in ("", ":memory:"):
        return None
    return Path(database)


def _private_database_files(db_file: Path) -> None:
    """Create the database file owner-only before SQLite opens it: SQLite gives the -wal and -shm files the
    database file's permissions, so all three stay 0600. Files of an older start are tightened too."""
    if db_file.parent.is_dir():
        os.close(os.open(db_file, os.O_RDWR | os.O_CREAT, PRIVATE_FILE))
    for path in (db_file, db_file.with_name(db_file.name + "-wal"), db_file.with_name(db_file.name + "-shm")):
        try:
            os.chmod(path, PRIVATE_FILE)
        except FileNotFoundError:
            pass
        except PermissionError:  # another user's file: SQLite decides whether it opens; say what we could not do
            log.warning("cannot make %s owner-only (not its owner)", path)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Checkpoints run in the background (store/checkpoint.py); this is only the safety net.
    cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_PAGES}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


async def dispose_engine(engine: AsyncEngine) -> None:
    """Close the pool and, on SQLite, the writer thread's connection (store/writer.py)."""
    writer = writer_of(engine)
    if writer is not None:
        await asyncio.to_thread(writer.close)  # waits for a transaction in flight, off the loop
    await engine.dispose()


def create_engine(
    url: str, *, pool_size: int | None = None, max_overflow: int | None = None, pool_timeout: float = 30.0
) -> AsyncEngine:
    """``pool_timeout``: seconds a caller waits for a pooled connection before ``sqlalchemy.exc.TimeoutError``
    (the server passes ``Settings.db_pool_timeout_seconds`` and answers that error 503)."""
    pool: dict[str, Any] = {"pool_timeout": pool_timeout}
    if pool_size is not None:
        pool["pool_size"] = pool_size
    if max_overflow is not None:
        pool["max_overflow"] = max_overflow
    if url.startswith("sqlite"):
        if url.endswith(("://", ":memory:")):  # an in-memory database gets a StaticPool, which takes no pool options
            pool = {}
        db_file = sqlite_file(url)
        if db_file is not None:
            _private_database_files(db_file)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)

        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        if db_file is not None:  # one writer at a time, woken in order, instead of SQLite's busy-handler race
            write_turns.install(engine)
            engine.sync_engine.sqlite_writer = SqliteWriter(str(db_file), _sqlite_pragmas)  # type: ignore[attr-defined]
        return engine
    pool.setdefault("pool_size", 10)
    pool.setdefault("max_overflow", 20)
    return create_async_engine(url, pool_pre_ping=True, **pool)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


@dataclass(frozen=True)
class Migration:
    before: str | None  # the revision found (None: an empty database)
    after: str | None  # the revision now current


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _upgrade(connection: Connection) -> Migration:
    before = _current(connection)
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")
    return Migration(before, _current(connection))


@asynccontextmanager
async def _sqlite_migration_lock(db_file: Path | None) -> AsyncIterator[None]:
    """An exclusive flock on ``<database>.migrate-lock`` next to the database: processes sharing the file
    migrate one after the other (SQLite DDL outside a transaction would race to create the same tables)."""
    if db_file is None or not db_file.parent.is_dir():
        yield
        return
    fd = os.open(db_file.with_name(db_file.name + ".migrate-lock"), os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    try:
        await asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX)  # blocking wait, off the event loop
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


async def migrate(engine: AsyncEngine) -> Migration:
    """Bring the schema to the newest revision (run at every start; a no-op when current).

    Any number of nodes may start at once on one database: they migrate one at a time under a database-wide
    lock, and the ones that come after the first find the schema current. On PostgreSQL that is a
    transaction-level advisory lock taken on the connection that then runs the whole upgrade in the same
    transaction (DDL is transactional there), so it is released at commit, on error, or if the node dies,
    and never left behind on a pooled connection."""
    db_file = sqlite_file(engine.url)
    async with _sqlite_migration_lock(db_file), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        result: Migration = await conn.run_sync(_upgrade)
    if result.before != result.after:
        log.info("database schema migrated from %s to %s", result.before or "empty", result.after)
    else:
        log.info("database schema is current (%s)", result.after)
    return result


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
