"""``GET /ready``: 200 when the node should get new traffic, 503 ``{error, code}`` with the reason when it
should not (``starting``, ``overloaded``, ``database_unavailable``). ``/health`` stays the liveness check.
Before, there was no readiness route (404)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from retake.server.app import create_app
from tests.security.conftest import in_process, sqlite_settings
from tests.support import new_db_name, pg_create, pg_drop


def assert_not_ready(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {"error": response.json()["error"], "code": reason}
    assert int(response.headers["Retry-After"]) >= 1


async def test_ready_when_serving_and_starting_before_the_lifespan(tmp_path: Path) -> None:
    app = create_app(sqlite_settings(tmp_path))
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # no lifespan yet: still starting
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        assert_not_ready(await http.get("/ready"), "starting")
    async with in_process(sqlite_settings(tmp_path / "b")) as http:
        response = await http.get("/ready")
        assert (response.status_code, response.json()) == (200, {"status": "ready"})


async def test_overloaded_while_every_slot_is_taken(tmp_path: Path) -> None:
    settings = sqlite_settings(
        tmp_path, max_inflight_requests=2, db_pool_size=1, db_max_overflow=0, operator_poll_seconds=60
    )
    async with in_process(settings) as http:
        app = http.app  # type: ignore[attr-defined]
        held = await app.state.platform.engine.connect()
        await held.execute(text("SELECT 1"))
        waiting = [asyncio.create_task(http.get("/api/v1/users/newest/")) for _ in range(2)]
        await asyncio.sleep(0.3)
        assert_not_ready(await asyncio.wait_for(http.get("/ready"), 5), "overloaded")
        await held.close()
        assert [r.status_code for r in await asyncio.gather(*waiting)] == [200, 200]
        assert (await http.get("/ready")).status_code == 200


async def test_database_unavailable_when_the_database_is_gone(tmp_path: Path) -> None:
    name = new_db_name()
    url = pg_create(name)
    try:
        app = create_app(sqlite_settings(tmp_path, database_url=url, operator_poll_seconds=60))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                assert (await http.get("/ready")).status_code == 200
                pg_drop(name)  # terminates the node's connections too
                assert_not_ready(await asyncio.wait_for(http.get("/ready"), 10), "database_unavailable")
                health = await http.get("/health")
                assert health.json()["database"] == "unavailable"
    finally:
        pg_drop(name)
