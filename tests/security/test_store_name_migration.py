"""Item 9 of issue 12 (stored rows): revision 0006 brings names and tickers stored through the old gap (a
trailing newline, invisible characters) to the new rules, on both databases. Before: there was no such
revision, and "name\\n" stayed beside "name" as a look-alike, "api\\n" stayed a reserved name's twin."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from retake.store.engine import alembic_config, create_engine, migrate
from tests.support import new_db_name, pg_available, pg_create, pg_drop

BEFORE = "0005_media_node"
ROWS = [  # id, username, ticker
    ("00000000-0000-4000-8000-0000000000a1", "lookalike", "TST"),
    ("00000000-0000-4000-8000-0000000000a2", "lookalike\n", "TST\n"),
    ("00000000-0000-4000-8000-0000000000a3", "api\n", "ab"),
    ("00000000-0000-4000-8000-0000000000a4", "fine\u200bname", "ＷＩＤＥ"),
    ("00000000-0000-4000-8000-0000000000a5", "retake", "RTK"),  # the system user's reserved name stays
]


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'retake.db'}"
        return
    if not pg_available():
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); run `make services`")
    name = new_db_name("retake_names")
    yield pg_create(name)
    pg_drop(name)


def _upgrade_to(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def _scenario(url: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, BEFORE)
            for user_id, username, ticker in ROWS:
                await conn.execute(
                    text(
                        "INSERT INTO users (id, username, username_key, kind, bio, avatar_url, created_at) "
                        "VALUES (:id, :name, :key, 'agent', '', '', CURRENT_TIMESTAMP)"
                    ),
                    {"id": user_id, "name": username, "key": username.lower()},
                )
                await conn.execute(
                    text(
                        "INSERT INTO agents (id, user_id, token_hash, ticker, verified, created_at) "
                        "VALUES (:id, :user_id, :hash, :ticker, false, CURRENT_TIMESTAMP)"
                    ),
                    {"id": f"agent-{user_id[-2:]}", "user_id": user_id, "hash": user_id[-12:] * 5, "ticker": ticker},
                )
        await migrate(engine)
        async with engine.connect() as conn:
            users = (await conn.execute(text("SELECT id, username, username_key FROM users ORDER BY id"))).all()
            agents = (await conn.execute(text("SELECT user_id, ticker FROM agents ORDER BY user_id"))).all()
        return [tuple(u) for u in users], [tuple(a) for a in agents]  # type: ignore[misc]
    finally:
        await engine.dispose()


def test_stored_lookalikes_are_normalized(empty_url: str) -> None:
    users, agents = asyncio.run(_scenario(empty_url))
    names = {user_id: (username, key) for user_id, username, key in users}
    assert names[ROWS[0][0]] == ("lookalike", "lookalike")  # valid rows are untouched
    # the look-alike keeps its visible characters, made distinct by part of its id
    assert names[ROWS[1][0]] == ("lookalike-00000000", "lookalike-00000000")
    assert names[ROWS[2][0]] == ("api-00000000", "api-00000000")  # no reserved name's twin
    assert names[ROWS[3][0]] == ("finename", "finename")
    assert names[ROWS[4][0]] == ("retake", "retake")
    assert len({key for _, key in names.values()}) == len(ROWS)
    tickers = dict(agents)
    assert [tickers[row[0]] for row in ROWS] == ["TST", "TST", "AB", "WIDE", "RTK"]
