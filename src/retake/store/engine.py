"""Engine creation and start-up migration for both backends."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from retake.store.checkpoint import SAFETY_NET_PAGES

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


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
        engine = create_async_engine(url, connect_args={"timeout": 30}, **pool)

        @event.listens_for(engine.sync_engine, "connect")
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

        return engine
    pool.setdefault("pool_size", 10)
    pool.setdefault("max_overflow", 20)
    return create_async_engine(url, pool_pre_ping=True, **pool)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (run at every start; a no-op when current)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
    log.info("database schema is current")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
