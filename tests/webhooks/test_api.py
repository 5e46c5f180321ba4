"""PUT/GET/DELETE /agent/webhook, test pings, the delivery log, and events delivered to a real local receiver
(SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from retake.agent.webhooks import verify
from retake.webhooks.envelope import EVENT_TYPES
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.timeout(90)
HOOK = "/api/v1/agent/webhook"


async def _set(client: httpx.AsyncClient, agent: Any, receiver: Receiver, **body: Any) -> dict[str, Any]:
    response = await client.put(HOOK, json={"url": receiver.url, **body}, headers=agent.headers)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def test_put_show_rotate_delete(client: httpx.AsyncClient, register: Any, receiver: Receiver) -> None:
    agent = await register()
    assert (await client.get(HOOK, headers=agent.headers)).json()["code"] == "webhook_not_found"
    first = await _set(client, agent, receiver)
    assert first["secret"].startswith("whsec_") and first["events"] == list(EVENT_TYPES)
    shown = (await client.get(HOOK, headers=agent.headers)).json()
    assert shown == {
        "url": receiver.url,
        "events": list(EVENT_TYPES),
        "enabled": True,
        "last_success_at": None,
        "last_failure_at": None,
        "failing_since": None,
    }
    assert "secret" not in shown
    second = await _set(client, agent, receiver, events=["tip.received", "chat.message"])
    assert second["secret"] != first["secret"]
    assert second["events"] == ["chat.message", "tip.received"]
    assert (await client.delete(HOOK, headers=agent.headers)).json() == {"deleted": True}
    assert (await client.delete(HOOK, headers=agent.headers)).status_code == 404
    assert (await client.get(HOOK, headers=agent.headers)).status_code == 404
    assert (await client.post(f"{HOOK}/test", headers=agent.headers)).status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "https://"}, "url"),
        ({"url": 5}, "url"),
        ({"url": "https://example.com/h", "events": ["nope"]}, "events"),
        ({"url": "https://example.com/h", "events": "chat.message"}, "events"),
        ({"url": "https://example.com/h", "events": []}, "events"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    client: httpx.AsyncClient, register: Any, body: dict[str, Any], field: str
) -> None:
    agent = await register()
    response = await client.put(HOOK, json=body, headers=agent.headers)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert set(answer) == {"error", "code"} and field in answer["error"]


async def test_auth_is_required(client: httpx.AsyncClient) -> None:
    for method, path in (("PUT", HOOK), ("GET", HOOK), ("DELETE", HOOK), ("POST", f"{HOOK}/test")):
        response = await client.request(method, path, json={"url": "https://example.com"})
        assert response.status_code == 401
    assert (await client.get(f"{HOOK}/deliveries")).status_code == 401


async def test_ping_is_signed_and_logged(client: httpx.AsyncClient, register: Any, receiver: Receiver) -> None:
    agent = await register()
    secret = (await _set(client, agent, receiver))["secret"]
    queued = (await client.post(f"{HOOK}/test", headers=agent.headers)).json()
    await receiver.wait_for(lambda got: len(got) == 1)
    got = receiver.received[0]
    body = got.body
    assert set(body) == {"id", "type", "created_at", "data"} and body["type"] == "ping"
    assert got.event_id == body["id"] and body["id"].startswith("evt_")
    assert body["data"]["userDbId"] == agent.user_id
    assert verify(secret, got.signature, got.raw)
    assert not verify(secret, got.signature, got.raw + b" ")  # the raw body is what is signed
    assert not verify("whsec_other", got.signature, got.raw)
    assert not verify(secret, got.signature, got.raw, now=time.time() + 301)  # too old
    deadline = time.monotonic() + 10
    while True:
        listed = (await client.get(f"{HOOK}/deliveries", headers=agent.headers)).json()["deliveries"]
        if listed or time.monotonic() > deadline:
            break
    assert listed[0]["id"] == queued["delivery_id"]
    assert listed[0]["event_id"] == body["id"] and listed[0]["type"] == "ping"
    assert listed[0]["attempt"] == 1 and listed[0]["status_code"] == 200 and listed[0]["error"] is None
    assert listed[0]["latency_ms"] >= 0 and listed[0]["at"].endswith("Z")
    shown = (await client.get(HOOK, headers=agent.headers)).json()
    assert shown["last_success_at"] is not None and shown["failing_since"] is None
    assert (await client.get(f"{HOOK}/deliveries?limit=101", headers=agent.headers)).status_code == 400


async def test_chat_mentions_follows_tips_and_stream_events(
    client: httpx.AsyncClient, register: Any, receiver: Receiver
) -> None:
    agent = await register()
    other = await register()
    await _set(client, agent, receiver)
    # In its own room, from someone else, and a mention in another agent's room (any case).
    sent = await client.post(
        "/api/v1/agent/stream/chat/send",
        json={"message": "hi there", "destination_user_id": agent.user_id},
        headers=other.headers,
    )
    assert sent.status_code == 200, sent.text
    await client.post(
        "/api/v1/agent/stream/chat/send",
        json={"message": f"ask @{agent.name.upper()} about it", "destination_user_id": other.user_id},
        headers=other.headers,
    )
    await client.post(  # a message elsewhere without a mention is not the agent's business
        "/api/v1/agent/stream/chat/send",
        json={"message": "nothing for you", "destination_user_id": other.user_id},
        headers=other.headers,
    )
    follow = await client.put(f"/api/v1/users/me/following/{agent.user_id}", headers=other.headers)
    assert follow.status_code == 200, follow.text
    assert (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).status_code == 200
    assert (await client.post("/api/v1/agent/stream/stop", headers=agent.headers)).status_code == 200
    await receiver.wait_for(lambda got: len(got) >= 4)
    kinds = [r.body["type"] for r in receiver.received]
    assert kinds == ["chat.message", "chat.message", "follower.new", "stream.offline"]
    chat = [r.body["data"] for r in receiver.received[:2]]
    assert chat[0]["_id"] == sent.json()["chat_event_id"] and chat[0]["text"] == "hi there"
    assert chat[1]["streamer_id"] == other.user_id and "@" in chat[1]["text"]
    assert receiver.received[2].body["data"]["follower_id"] == other.user_id
    offline = receiver.received[3].body["data"]
    assert offline["streamer_id"] == agent.user_id and offline["session_id"]
    assert len({r.event_id for r in receiver.received}) == 4


async def test_event_filter(client: httpx.AsyncClient, register: Any, receiver: Receiver) -> None:
    agent = await register()
    other = await register()
    await _set(client, agent, receiver, events=["follower.new"])
    await client.post(
        "/api/v1/agent/stream/chat/send",
        json={"message": "not wanted", "destination_user_id": agent.user_id},
        headers=other.headers,
    )
    await client.put(f"/api/v1/users/me/following/{agent.user_id}", headers=other.headers)
    await receiver.wait_for(lambda got: len(got) >= 1)
    assert [r.body["type"] for r in receiver.received] == ["follower.new"]


async def test_private_targets_are_refused(
    settings_factory: Any, register: Any, receiver: Receiver, client: httpx.AsyncClient
) -> None:
    from asgi_lifespan import LifespanManager

    from retake.server.app import create_app

    agent = await register()  # on the permissive app; the same database is served by a strict one below
    strict = create_app(settings_factory(webhook_allow_private=False))
    async with LifespanManager(strict) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            for url in (
                receiver.url,
                "http://localhost:9/x",
                "http://10.1.2.3/x",
                "http://192.168.0.1/x",
                "http://169.254.169.254/latest/meta-data",
                "http://[::1]:80/x",
                "http://[fe80::1]/x",
                "http://[::ffff:127.0.0.1]/x",
                "http://0.0.0.0/x",
            ):
                response = await http.put(HOOK, json={"url": url}, headers=agent.headers)
                assert response.status_code == 400, (url, response.text)
                assert response.json()["code"] == "private_url" and "url" in response.json()["error"]
