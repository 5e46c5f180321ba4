"""Operator actions reach running nodes at once, by a nudge (store/nudges.py), not by the safety-net poll.

Every node here polls operator actions once a minute (``operator_poll_seconds=60``), so an action that takes
effect within a few seconds came by a nudge: from the ``retake admin`` command line's own store connection
(PostgreSQL ``NOTIFY``, or a datagram to the SQLite store's server socket), and from one PostgreSQL node to
another."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from retake.config import Settings
from retake.events import PlatformEvent
from retake.server import admin as store_only
from retake.server.app import create_app
from retake.server.realtime.wire import wire_payload
from tests.api.test_streams import FakePublisher  # records which sessions a node closed
from tests.support import FakeOEmbed, new_db_name, pg_available, pg_create, pg_drop

QUIET = {"operator_poll_seconds": 60}
PROMPTLY = 5.0  # seconds; the safety-net poll is 60


@asynccontextmanager
async def node(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(settings)
    # A fresh PostgreSQL database is migrated at the first start: more than the default 5 s on a busy machine.
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http, app.state.platform


async def live_agent(http: httpx.AsyncClient, name: str) -> tuple[dict[str, str], str]:
    body = {"agent_name": name, "wallet_address": "11111111111111111111111111111111", "ticker": "N"}
    reg = (await http.post("/api/v1/agent/register", json=body)).json()
    headers = {"Authorization": f"Bearer {reg['access_token']}"}
    session_id = (await http.post("/api/v1/agent/stream/start", headers=headers)).json()["session_id"]
    return headers, session_id


async def until(check: Callable[[], bool], seconds: float = PROMPTLY) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not check():
        assert loop.time() < deadline, f"not within {seconds} s (the safety-net poll is 60 s away)"
        await asyncio.sleep(0.02)


async def test_the_command_lines_actions_reach_the_running_node_at_once(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(**QUIET)
    async with node(settings) as (http, platform):
        headers, session_id = await live_agent(http, "NudgedBot")
        publishers = platform.streams.publishers = FakePublisher()
        messages: list[PlatformEvent] = []

        async def listen(event: PlatformEvent) -> None:
            if event.name == "message":
                messages.append(event)

        platform.events.subscribe(listen)
        # What `retake admin warn|shutdown` builds: its own engine and desk on the store, no node.
        async with store_only.store(settings) as sessions:
            desk = store_only.operator_desk(settings, sessions)
            await desk.warn("nudgedbot", "mind the language")
            await until(lambda: len(messages) == 1)
            assert wire_payload(messages[0])["text"] == "Operator warning: mind the language"

            action = await desk.shutdown("NudgedBot", "done for today")
            await until(lambda: publishers.closed == [session_id])
            assert await desk.wait_noticed(action.id, within_seconds=PROMPTLY), "the node claimed it"
        await until(lambda: len(messages) == 2)
        status = (await http.get("/api/v1/agent/stream/status", headers=headers)).json()
        assert status["session_id"] is None and [w["kind"] for w in status["warnings"]] == ["shutdown", "warn"]


@pytest.fixture
def shared_postgres() -> Iterator[str]:
    if not pg_available():
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); run `make services`")
    name = new_db_name("retake_nudges")
    url = pg_create(name)
    try:
        yield url
    finally:
        pg_drop(name)


def node_settings(database_url: str, data_dir: Path, oembed: FakeOEmbed) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        public_url="http://testserver",
        oembed_url=oembed.url,
        register_rate="1000/minute",
        rtmp_enabled=False,
        **QUIET,
    )


@pytest.mark.postgres
async def test_a_shutdown_on_node_a_closes_the_publisher_on_node_b_at_once(
    shared_postgres: str, oembed: FakeOEmbed, tmp_path: Path
) -> None:
    a_settings = node_settings(shared_postgres, tmp_path / "a", oembed)
    b_settings = node_settings(shared_postgres, tmp_path / "b", oembed)
    async with node(a_settings) as (http_a, a), node(b_settings) as (_http_b, b):
        _headers, session_id = await live_agent(http_a, "TwoNodeBot")
        on_a, on_b = FakePublisher(), FakePublisher()
        a.streams.publishers, b.streams.publishers = on_a, on_b
        await a.operator.shutdown("TwoNodeBot", "from the console on A")  # what the console on A does
        await until(lambda: on_b.closed == [session_id])  # B may hold the encoder: it let go of it
        await until(lambda: on_a.closed == [session_id])


async def listen_backends(platform: Any) -> set[int]:
    async with platform.sessions() as db:
        rows = await db.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'")
        )
        return {int(pid) for (pid,) in rows}


@pytest.mark.postgres
async def test_a_dropped_listen_connection_is_made_again(
    shared_postgres: str, oembed: FakeOEmbed, tmp_path: Path
) -> None:
    settings = node_settings(shared_postgres, tmp_path / "a", oembed)
    async with node(settings) as (http, platform):
        _headers, session_id = await live_agent(http, "ReconnectBot")
        publishers = platform.streams.publishers = FakePublisher()
        [first] = await listen_backends(platform)
        async with platform.sessions() as db:  # what a PostgreSQL restart or failover does to the connection
            await db.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PROMPTLY
        while (again := await listen_backends(platform)) in (set(), {first}):
            assert loop.time() < deadline, "the LISTEN connection was not made again"
            await asyncio.sleep(0.1)
        assert first not in again
        async with store_only.store(settings) as sessions:
            await store_only.operator_desk(settings, sessions).shutdown("ReconnectBot")
        await until(lambda: publishers.closed == [session_id])
