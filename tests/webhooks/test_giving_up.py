"""The two ends of the retry policy, with the windows shortened (24 h → 1 s, 3 days → 2.5 s) so the real
paths run in seconds: an event whose receiver keeps failing is given up after the retry window and the next one
goes on; a webhook failing for the whole disable window is disabled, shows in stream status ``warnings``, and is
enabled again by setting it again."""

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

RETRY_SECONDS = 1.0
DISABLE_AFTER_SECONDS = 2.5
pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def client(settings_factory: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_factory(
        **FAST_PUSH, webhook_retry_seconds=RETRY_SECONDS, webhook_disable_after_seconds=DISABLE_AFTER_SECONDS
    )
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def say(client: httpx.AsyncClient, fan: Any, agent: Any, text: str) -> str:
    answer = await client.post(
        "/api/v1/agent/stream/chat/send",
        json={"message": text, "destination_user_id": agent.user_id},
        headers=fan.headers,
    )
    assert answer.status_code == 200, answer.text
    chat_id: str = answer.json()["chat_event_id"]
    return chat_id


async def attempts_of(client: httpx.AsyncClient, agent: Any) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/agent/webhook/deliveries", headers=agent.headers)
    found: list[dict[str, Any]] = answer.json()["deliveries"]
    return found


async def test_an_event_is_given_up_after_the_retry_window(
    client: httpx.AsyncClient, register: Any, receiver: Receiver
) -> None:
    agent, fan = await register(), await register()
    assert (await client.put("/api/v1/agent/webhook", json={"url": receiver.url}, headers=agent.headers)).is_success
    receiver.status = 503
    first = await say(client, fan, agent, "nobody takes this one")
    await asyncio.sleep(RETRY_SECONDS + 1.5)  # back-off 0.2 s doubling to 1 s: several tries, then the window ends
    tried = await attempts_of(client, agent)
    assert len(tried) >= 2 and {a["status_code"] for a in tried} == {503}
    assert {a["event_id"] for a in tried} == {tried[0]["event_id"]}
    await asyncio.sleep(1.5)
    assert len(await attempts_of(client, agent)) == len(tried)  # given up: no more tries
    receiver.status = 200
    failed_posts = len(receiver.received)
    assert {r.body["data"]["_id"] for r in receiver.received} == {first}
    second = await say(client, fan, agent, "this one arrives")
    await receiver.wait_for(lambda got: len(got) > failed_posts, seconds=10)
    await asyncio.sleep(0.5)
    assert [r.body["data"]["_id"] for r in receiver.received[failed_posts:]] == [second]  # the first is not retried
    shown = (await client.get("/api/v1/agent/webhook", headers=agent.headers)).json()
    assert shown["enabled"] is True and shown["failing_since"] is None


async def test_a_webhook_failing_for_the_whole_window_is_disabled_and_warned_about(
    client: httpx.AsyncClient, register: Any, receiver: Receiver
) -> None:
    agent, fan = await register(), await register()
    assert (await client.put("/api/v1/agent/webhook", json={"url": receiver.url}, headers=agent.headers)).is_success
    await receiver.stop()
    started = time.monotonic()
    while time.monotonic() - started < DISABLE_AFTER_SECONDS + 2:  # failures all along the window
        await say(client, fan, agent, "into the void")
        await asyncio.sleep(0.5)
        if not (await client.get("/api/v1/agent/webhook", headers=agent.headers)).json()["enabled"]:
            break
    shown = (await client.get("/api/v1/agent/webhook", headers=agent.headers)).json()
    assert shown["enabled"] is False and shown["failing_since"] is not None
    assert time.monotonic() - started >= DISABLE_AFTER_SECONDS - 0.5
    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    [warning] = [w for w in status["warnings"] if w["kind"] == "webhook_disabled"]
    assert receiver.url in warning["reason"] and warning["created_at"]
    tried = len(await attempts_of(client, agent))
    await say(client, fan, agent, "after the webhook was disabled")
    await asyncio.sleep(1.5)
    assert len(await attempts_of(client, agent)) == tried  # a disabled webhook gets nothing
    test = await client.post("/api/v1/agent/webhook/test", headers=agent.headers)
    assert test.status_code == 400 and test.json()["code"] == "disabled"

    await receiver.start()
    again = await client.put("/api/v1/agent/webhook", json={"url": receiver.url}, headers=agent.headers)
    assert again.status_code == 200
    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert not [w for w in status["warnings"] if w["kind"] == "webhook_disabled"]
    assert (await client.post("/api/v1/agent/webhook/test", headers=agent.headers)).status_code == 200
    await receiver.wait_for(lambda got: any(r.body["type"] == "ping" for r in got), seconds=10)
