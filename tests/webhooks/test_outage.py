"""A receiver that is down for 30 s, then back, gets every event exactly once and in order (SQLite and
PostgreSQL). The back-off is shortened (0.2 s doubling to 1 s, conftest.FAST_PUSH) so the test does not wait
hours; the outage itself is real: nothing listens on the port for OUTAGE_SECONDS."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.webhooks.receiver import Receiver

OUTAGE_SECONDS = 30.0
EVENTS = 20
pytestmark = pytest.mark.timeout(150)


async def test_outage_then_every_event_once_in_order(
    client: httpx.AsyncClient, register: Any, receiver: Receiver
) -> None:
    agent = await register()
    fan = await register()
    put = await client.put("/api/v1/agent/webhook", json={"url": receiver.url}, headers=agent.headers)
    assert put.status_code == 200
    await receiver.stop()
    down_at = time.monotonic()
    sent: list[str] = []
    for i in range(EVENTS):  # spread over the first part of the outage
        answer = await client.post(
            "/api/v1/agent/stream/chat/send",
            json={"message": f"line {i}", "destination_user_id": agent.user_id},
            headers=fan.headers,
        )
        sent.append(answer.json()["chat_event_id"])
        await asyncio.sleep(0.5)
    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - down_at)))
    shown = (await client.get("/api/v1/agent/webhook", headers=agent.headers)).json()
    assert shown["failing_since"] is not None and shown["enabled"] is True
    failed = (await client.get("/api/v1/agent/webhook/deliveries", headers=agent.headers)).json()["deliveries"]
    assert failed and all(d["status_code"] is None and d["error"] for d in failed)
    assert len({d["id"] for d in failed}) == 1  # only the head of the queue is retried while the receiver is down
    assert max(d["attempt"] for d in failed) >= 10  # retried all along the outage, with back-off
    await receiver.start()
    back_at = time.monotonic()
    await receiver.wait_for(lambda got: len(got) >= EVENTS, seconds=30)
    await asyncio.sleep(1.0)  # nothing more may arrive
    assert [r.body["data"]["_id"] for r in receiver.received] == sent  # all, in order
    assert len({r.event_id for r in receiver.received}) == EVENTS == len(receiver.received)  # each exactly once
    assert receiver.received[-1].at - back_at < 10
    shown = (await client.get("/api/v1/agent/webhook", headers=agent.headers)).json()
    assert shown["failing_since"] is None and shown["last_failure_at"] and shown["last_success_at"]
