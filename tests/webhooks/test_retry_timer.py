"""Retries come due on a timer of their own: with the safety-net poll a minute away (``webhook_poll_seconds=60``),
a receiver that fails twice still gets the event after the back-offs (0.2 s, then 0.4 s), within seconds. An
idle node, on the other hand, does not wake to look for work (the poll was 1.5 s)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from retake.config import Settings
from retake.server.app import create_app
from tests.webhooks.conftest import FAST_PUSH
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(settings_factory: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """The webhooks suite's app with a slow poll: the ``register`` fixture uses it."""
    app = create_app(settings_factory(**{**FAST_PUSH, "webhook_poll_seconds": 60}))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


async def test_a_failed_delivery_is_retried_when_due_not_at_the_next_poll(
    client: httpx.AsyncClient, register: Any, receiver: Receiver
) -> None:
    agent = await register()
    fan = await register()
    put = await client.put("/api/v1/agent/webhook", json={"url": receiver.url}, headers=agent.headers)
    assert put.status_code == 200
    receiver.status = 503
    started = time.monotonic()
    line = await client.post(
        "/api/v1/agent/stream/chat/send",
        json={"message": "retry me", "destination_user_id": agent.user_id},
        headers=fan.headers,
    )
    assert line.status_code == 200
    await receiver.wait_for(lambda got: len(got) >= 2, seconds=10)  # the first attempt and one retry
    receiver.status = 200
    await receiver.wait_for(lambda got: len(got) >= 3, seconds=10)
    assert len({r.event_id for r in receiver.received}) == 1, "the same event each time"
    while True:  # the receiver records a request before it answers: wait for the attempt to be settled
        done = (await client.get("/api/v1/agent/webhook/deliveries", headers=agent.headers)).json()["deliveries"]
        if done and done[0]["status_code"] == 200:
            break
        await asyncio.sleep(0.05)
    assert time.monotonic() - started < 10, "retried at its back-off, not at the minute's poll"
    assert [d["status_code"] for d in done] == [200, 503, 503]
