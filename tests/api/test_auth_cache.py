"""Cached authentication behaves like the store on this node: rotation, renames and verification show at once."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.test_moderation import platform_of

SEND = "/api/v1/agent/stream/chat/send"
COMMENTS = "/api/v1/agent/stream/comments"


async def test_repeated_calls_are_served_from_the_cache_until_rotation(
    client: httpx.AsyncClient, register: Any
) -> None:
    agent = await register()
    cache = platform_of(client).agents.auth_cache
    assert (await client.get(COMMENTS, headers=agent.headers)).status_code == 200
    assert len(cache) == 1
    rotated = (await client.post("/api/v1/agent/rotate-token", headers=agent.headers)).json()["access_token"]
    assert len(cache) == 0
    assert (await client.get(COMMENTS, headers=agent.headers)).status_code == 401
    assert (
        await client.post(SEND, json={"message": "x", "destination_user_id": agent.user_id}, headers=agent.headers)
    ).status_code == 401
    assert (await client.get(COMMENTS, headers={"Authorization": f"Bearer {rotated}"})).status_code == 200


async def test_a_rename_shows_in_the_next_chat_message(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    send = {"message": "before", "destination_user_id": agent.user_id}
    assert (await client.post(SEND, json=send, headers=agent.headers)).status_code == 200  # now cached
    renamed = await client.patch("/api/v1/users/me/username", json={"username": "renamed_bot"}, headers=agent.headers)
    assert renamed.status_code == 200
    sent = await client.post(SEND, json={**send, "message": "after"}, headers=agent.headers)
    assert sent.status_code == 200
    newest = (await client.get(COMMENTS, headers=agent.headers)).json()["comments"][0]
    assert newest["text"] == "after" and newest["sender_username"] == "renamed_bot"


async def test_operator_verification_shows_at_once(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    status = "/api/v1/agent/verification-status"
    assert (await client.get(status, headers=agent.headers)).json() == {"verified": False}  # cached now
    await platform_of(client).agents.operator_verify(agent.name)  # what `retake admin verify` runs
    assert (await client.get(status, headers=agent.headers)).json() == {"verified": True}
