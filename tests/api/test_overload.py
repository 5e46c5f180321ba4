"""Overload is answered 503 ``overloaded`` with Retry-After (never 500), and the node keeps answering after it.

A one-connection pool held by the test stands in for a database that is busy: requests that need a
connection wait for it, up to the pool timeout; the in-flight limit refuses the ones beyond it at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import text

from retake.config import Settings
from retake.server.app import create_app
from retake.server.overload import InflightLimitMiddleware

# Public, uncached, one query each: whatever caching the comment endpoints gain, this one needs the pool.
NEEDS_DB = "/api/v1/users/newest/"


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


def tiny_pool(settings_factory: Callable[..., Settings], **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_pool_size": 1,
        "db_max_overflow": 0,
        "operator_poll_seconds": 60,  # no background query competes for the one connection
        **overrides,
    }
    return settings_factory(**values)


def limiter_of(app: FastAPI) -> InflightLimitMiddleware:
    node: Any = app.middleware_stack
    while node is not None and not isinstance(node, InflightLimitMiddleware):
        node = getattr(node, "app", None)
    assert node is not None, "the in-flight limit is installed"
    return node


def assert_overloaded(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {"error": response.json()["error"], "code": "overloaded"}
    assert int(response.headers["Retry-After"]) >= 1


async def test_pool_timeout_is_503_with_retry_after_and_one_warning(
    settings_factory: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = tiny_pool(settings_factory, db_pool_timeout_seconds=0.2, max_inflight_requests=0)
    async with serving(settings) as (app, http):
        assert (await http.get(NEEDS_DB)).status_code == 200
        held = await app.state.platform.engine.connect()  # the only connection: the database is "busy"
        await held.execute(text("SELECT 1"))
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            answers = await asyncio.gather(*(http.get(NEEDS_DB) for _ in range(3)))
        for response in answers:
            assert_overloaded(response)
        problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert problems and all(r.levelno == logging.WARNING and r.exc_info is None for r in problems)
        assert "overloaded" in problems[0].getMessage()
        await held.close()
        after = await http.get(NEEDS_DB)
        assert after.status_code == 200, "the node answers again once a connection is free"


async def test_inflight_limit_sheds_at_once_and_recovers(settings_factory: Callable[..., Settings]) -> None:
    settings = tiny_pool(settings_factory, db_pool_timeout_seconds=30, max_inflight_requests=2)
    async with serving(settings) as (app, http):
        limiter = limiter_of(app)
        held = await app.state.platform.engine.connect()
        await held.execute(text("SELECT 1"))
        waiting = [asyncio.create_task(http.get(NEEDS_DB)) for _ in range(2)]
        for _ in range(200):  # until both requests are inside, waiting for the connection
            if limiter.in_flight == 2:
                break
            await asyncio.sleep(0.01)
        assert limiter.in_flight == 2
        shed = await asyncio.wait_for(http.get(NEEDS_DB), 5)  # answered at once, not after the pool timeout
        assert_overloaded(shed)
        metrics = await http.get("/metrics")  # monitoring is never shed
        assert metrics.status_code == 200
        assert "retake_http_shed_total 1.0" in metrics.text
        assert "retake_http_in_flight 2.0" in metrics.text
        assert not any(task.done() for task in waiting)
        await held.close()
        assert [r.status_code for r in await asyncio.gather(*waiting)] == [200, 200]
        assert limiter.in_flight == 0
        assert (await http.get(NEEDS_DB)).status_code == 200


async def test_inflight_limit_lets_websockets_and_exempt_paths_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(f"{scope['type']} {scope['path']}")

    limiter = InflightLimitMiddleware(app, limit=1)
    limiter.in_flight = 1  # full
    sent: list[Any] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def receive() -> Any:
        return {"type": "http.request"}

    for kind, path in [
        ("websocket", "/api/v1/anything"),
        ("http", "/socket.io/"),
        ("http", "/live/u.flv"),
        ("http", "/health"),
        ("http", "/metrics"),
        ("lifespan", ""),
    ]:
        await limiter({"type": kind, "path": path}, receive, send)
    assert len(seen) == 6 and sent == []
    await limiter({"type": "http", "path": "/api/v1/users/newest/"}, receive, send)
    assert len(seen) == 6 and sent[0]["status"] == 503
    assert (b"retry-after", b"1") in sent[0]["headers"]


async def test_other_database_errors_stay_500_with_their_traceback(
    settings_factory: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy.exc import IntegrityError

    app = create_app(settings_factory())

    async def broken() -> None:
        raise IntegrityError("INSERT INTO x", {}, Exception("duplicate key"))

    app.add_api_route("/api/v1/test-broken", broken)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            with caplog.at_level(logging.ERROR):
                response = await http.get("/api/v1/test-broken")
    assert (response.status_code, response.json()["code"]) == (500, "internal_error")
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.ERROR)
