"""``RETAKE_MAX_INFLIGHT_PER_IP``: one client address cannot take every request slot of the node; past its
share it is answered 429 ``rate_limited`` with Retry-After at once, while other addresses are still served.
Before, one address could hold all ``RETAKE_MAX_INFLIGHT_REQUESTS`` (256)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from retake.server.app import create_app
from tests.security.conftest import sqlite_settings

NEEDS_DB = "/api/v1/users/newest/"


async def test_one_address_gets_its_share_and_no_more(tmp_path: Path) -> None:
    settings = sqlite_settings(
        tmp_path,
        max_inflight_per_ip=2,
        max_inflight_requests=100,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout_seconds=30,
        operator_poll_seconds=60,
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:

        def client(ip: str) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=manager.app, client=(ip, 40000))
            return httpx.AsyncClient(transport=transport, base_url="http://testserver")

        async with client("10.0.0.1") as greedy, client("10.0.0.2") as other:
            held = await app.state.platform.engine.connect()  # the one connection: requests wait inside
            await held.execute(text("SELECT 1"))
            waiting = [asyncio.create_task(greedy.get(NEEDS_DB)) for _ in range(2)]
            await asyncio.sleep(0.3)
            third = await asyncio.wait_for(greedy.get(NEEDS_DB), 5)
            assert third.status_code == 429, third.text
            assert third.json() == {"error": third.json()["error"], "code": "rate_limited"}
            assert int(third.headers["Retry-After"]) >= 1
            elsewhere = asyncio.create_task(other.get(NEEDS_DB))
            await asyncio.sleep(0.3)
            assert not elsewhere.done(), "another address is admitted (and waits for the database like the rest)"
            await held.close()
            answers = await asyncio.gather(*waiting, elsewhere)
            assert [r.status_code for r in answers] == [200, 200, 200]
            assert (await greedy.get(NEEDS_DB)).status_code == 200, "the share is given back"
