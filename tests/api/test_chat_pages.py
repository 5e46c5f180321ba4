"""Comment pages: the pre-built JSON equals the response models' JSON byte for byte, cached pages follow every
change of the chat (on this node and, through Redis, on another), and ETags answer 304."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import TypeAdapter
from sqlalchemy import insert, select

from retake.chat.service import comment_record
from retake.config import Settings
from retake.server.api.schemas import ChatPage, CommentsOut
from retake.server.app import create_app
from retake.server.realtime.wire import comment
from retake.store.tables import ChatEvent, User
from tests.api.test_moderation import platform_of
from tests.support import VALID_WALLET

COMMENTS = "/api/v1/agent/stream/comments"
CHAT = "/api/v1/chat/"
SEND = "/api/v1/agent/stream/chat/send"
REDIS_URL = "redis://127.0.0.1:6379/0"


async def expected_json(
    client: httpx.AsyncClient, shape: str, *, limit: int = 50, before: int | None = None, **where: str
) -> bytes:
    """What the endpoints answered before the fast path: ORM rows, the broadcast comment of each, the response model."""
    query = select(ChatEvent, User).join(User, User.id == ChatEvent.sender_user_id).where(ChatEvent.deleted.is_(False))
    for column, value in where.items():
        query = query.where(getattr(ChatEvent, column) == value)
    if before is not None:
        query = query.where(ChatEvent.id < before)
    async with platform_of(client).sessions() as db:
        rows = (await db.execute(query.order_by(ChatEvent.id.desc()).limit(limit + 1))).all()
    items = [comment(comment_record(event, sender)) for event, sender in rows[:limit]]
    cursor = items[-1]["_id"] if len(rows) > limit else None
    model: TypeAdapter[Any] = TypeAdapter(CommentsOut if shape == "comments" else ChatPage)
    return model.dump_json(model.validate_python({shape: items, "next_cursor": cursor}), by_alias=True)


async def test_pages_are_the_response_models_json_byte_for_byte(client: httpx.AsyncClient, register: Any) -> None:
    streamer = await register(image_url="https://example.com/ä.png")
    plain = await register(image_url="")
    guest = (await client.post("/api/v1/auth/guest", json={"username": "guest_pages"})).json()["user"]
    session_id = (await client.post("/api/v1/agent/stream/start", headers=streamer.headers)).json()["session_id"]
    senders = [streamer.user_id, plain.user_id, guest.get("user_id") or guest["id"]]
    base = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    rows = [
        {
            "streamer_id": streamer.user_id,
            "session_id": session_id if k % 2 else None,
            "sender_user_id": senders[k % 3],
            "type": ["message", "tip", "trade", "system"][k % 4],
            "text": f'héllo "wörld" <{k}> \u2603 \U0001f600 \\ / \t',
            "tip_data": {"amount": 0.1 * k, "lamports": 10**15 + k, "tiny": 1e-7, "big": 1.5e300, "neg": -0.0}
            if k % 4 == 1
            else None,
            "trade_data": {"amount": k, "type": "buy", "nested": {"a": [True, None, 2.5]}} if k % 4 == 2 else None,
            "created_at": base + timedelta(seconds=k, microseconds=k * 999),
            "deleted": k == 5,
        }
        for k in range(9)
    ]
    async with platform_of(client).engine.begin() as conn:
        await conn.execute(insert(ChatEvent), rows)
    sent = await client.post(
        SEND, json={"message": "via REST", "destination_user_id": streamer.user_id}, headers=plain.headers
    )
    assert sent.status_code == 200
    newest = int(sent.json()["chat_event_id"])
    mine = streamer.user_id
    cases: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        (COMMENTS, {"userDbId": mine}, {"streamer_id": mine}),
        (COMMENTS, {"userDbId": mine, "limit": 3}, {"streamer_id": mine, "limit": 3}),
        (COMMENTS, {"limit": 2, "beforeId": str(newest - 3)}, {"streamer_id": mine, "limit": 2, "before": newest - 3}),
        (COMMENTS, {"userDbId": plain.user_id}, {"streamer_id": plain.user_id}),
        (CHAT, {"streamer_id": mine}, {"streamer_id": mine}),
        (CHAT, {"streamer_id": mine, "limit": 4, "before_chat_event_id": str(newest)},
         {"streamer_id": mine, "limit": 4, "before": newest}),
        (CHAT, {"session_id": session_id}, {"session_id": session_id}),
        (CHAT, {"session_id": "no-such-session"}, {"session_id": "no-such-session"}),
    ]  # fmt: skip
    for path, params, where in cases:
        shape = "comments" if path == COMMENTS else "chats"
        for _ in range(2):  # read, then cached
            response = await client.get(path, params=params, headers=streamer.headers)
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.content == await expected_json(client, shape, **where), (path, params)


async def test_unknown_streamer_is_404_and_an_empty_chat_is_not(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    assert (await client.get(COMMENTS, headers=agent.headers)).json() == {"comments": [], "next_cursor": None}
    for _ in range(2):  # not cached either way
        missing = await client.get(COMMENTS, params={"userDbId": "nope"}, headers=agent.headers)
        assert (missing.status_code, missing.json()["code"]) == (404, "streamer_not_found")
        assert (await client.get(CHAT, params={"streamer_id": "nope"})).status_code == 404


async def test_cached_pages_follow_every_change_of_the_chat(client: httpx.AsyncClient, register: Any) -> None:
    streamer, viewer = await register(), await register()
    cache = platform_of(client).chat_pages.cache
    assert cache is not None

    async def texts() -> list[str]:
        page = (await client.get(COMMENTS, headers=streamer.headers)).json()["comments"]
        public = (await client.get(CHAT, params={"streamer_id": streamer.user_id})).json()["chats"]
        assert [c["chat_event_id"] for c in page] == [c["chat_event_id"] for c in public]
        return [f"{c['sender_username']}: {c['text']}" for c in page]

    async def send(text: str, who: Any = viewer) -> str:
        response = await client.post(
            SEND, json={"message": text, "destination_user_id": streamer.user_id}, headers=who.headers
        )
        assert response.status_code == 200
        return str(response.json()["chat_event_id"])

    assert await texts() == []
    first = await send("one")
    await send("two")
    assert await texts() == [f"{viewer.name}: two", f"{viewer.name}: one"]
    hits = cache.hits
    assert await texts() == [f"{viewer.name}: two", f"{viewer.name}: one"]
    assert cache.hits == hits + 2, "unchanged: both pages came from memory"

    assert (await client.delete(f"/api/v1/chat/{first}", headers=streamer.headers)).status_code == 200
    assert await texts() == [f"{viewer.name}: two"]
    renamed = await client.patch(
        "/api/v1/users/me/username", json={"username": "viewer_renamed"}, headers=viewer.headers
    )
    assert renamed.status_code == 200
    assert await texts() == ["viewer_renamed: two"]
    bio = await client.patch("/api/v1/users/me/bio", json={"bio": "not on any page"}, headers=viewer.headers)
    assert bio.status_code == 200
    hits = cache.hits
    assert await texts() == ["viewer_renamed: two"]
    assert cache.hits == hits + 2, "a bio is in no page: the pages stay"
    assert (await client.post("/api/v1/chat/delete-all", json={}, headers=streamer.headers)).status_code == 200
    assert await texts() == []

    platform = platform_of(client)
    cursor = await platform.operator.newest_id()
    await platform.operator.warn(streamer.name, "keep it friendly")  # written by `retake admin warn`
    # What every node's operator watcher does. This node's own watcher, nudged by the action, may be announcing
    # it at the same moment (the first to mark it announced writes the message), so wait for the page.
    await platform.operator.apply_since(cursor)
    expected = ["retake: Operator warning: keep it friendly"]
    for _ in range(250):  # up to ~5 s
        if (got := await texts()) == expected:
            break
        await asyncio.sleep(0.02)
    assert got == expected


async def test_etag_answers_304_until_the_page_changes(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    await client.post(SEND, json={"message": "hi", "destination_user_id": agent.user_id}, headers=agent.headers)
    first = await client.get(COMMENTS, headers=agent.headers)
    etag = first.headers["ETag"]
    assert etag.startswith('"') and first.headers["Cache-Control"] == "private, no-cache"
    again = await client.get(COMMENTS, headers={**agent.headers, "If-None-Match": f'W/"x", {etag}'})
    assert again.status_code == 304 and again.content == b"" and again.headers["ETag"] == etag
    public = await client.get(CHAT, params={"streamer_id": agent.user_id})
    assert (
        await client.get(CHAT, params={"streamer_id": agent.user_id}, headers={"If-None-Match": public.headers["ETag"]})
    ).status_code == 304
    await client.post(SEND, json={"message": "news", "destination_user_id": agent.user_id}, headers=agent.headers)
    changed = await client.get(COMMENTS, headers={**agent.headers, "If-None-Match": etag})
    assert changed.status_code == 200 and changed.json()["comments"][0]["text"] == "news"
    assert changed.headers["ETag"] != etag


@asynccontextmanager
async def nodes(settings: list[Settings]) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with AsyncExitStack() as stack:
        clients = []
        for node in settings:
            app = create_app(node)
            manager = await stack.enter_async_context(LifespanManager(app))
            transport = httpx.ASGITransport(app=manager.app)
            http = await stack.enter_async_context(httpx.AsyncClient(transport=transport, base_url="http://testserver"))
            http.app = app  # type: ignore[attr-defined]
            clients.append(http)
        yield clients


@pytest.mark.parametrize("with_redis", [True, False])
async def test_two_nodes_on_one_database(
    settings_factory: Callable[..., Settings], tmp_path: Any, with_redis: bool
) -> None:
    """With Redis a write on node B is in node A's next page; without Redis (one node per database) each node
    caches, and only its own writes and the max age refresh it, which is why scale-out requires Redis."""
    shared: dict[str, Any] = {"redis_channel": f"retake-test-{uuid.uuid4().hex}"}
    if with_redis:
        shared["redis_url"] = REDIS_URL
    node_a = settings_factory(data_dir=tmp_path / "a", **shared)
    node_b = settings_factory(data_dir=tmp_path / "b", **shared)
    async with nodes([node_a, node_b]) as (a, b):
        body = {"agent_name": "two_node_bot", "wallet_address": VALID_WALLET, "ticker": "TWO"}
        reg = (await a.post("/api/v1/agent/register", json=body)).json()
        headers = {"Authorization": f"Bearer {reg['access_token']}"}
        message = {"message": "via A", "destination_user_id": reg["userDbId"]}
        assert (await a.post(SEND, json=message, headers=headers)).status_code == 200

        async def seen_on_a() -> list[str]:
            page = (await a.get(COMMENTS, headers=headers)).json()["comments"]
            return [f"{c['sender_username']}: {c['text']}" for c in page]

        assert await seen_on_a() == ["two_node_bot: via A"]
        assert await seen_on_a() == ["two_node_bot: via A"]  # cached on A now
        assert (await b.post(SEND, json={**message, "message": "via B"}, headers=headers)).status_code == 200
        rename = await b.patch("/api/v1/users/me/username", json={"username": "renamed_on_b"}, headers=headers)
        assert rename.status_code == 200
        if with_redis:
            assert await seen_on_a() == ["renamed_on_b: via B", "renamed_on_b: via A"]
        else:
            assert await seen_on_a() == ["two_node_bot: via A"], "documented: several nodes need Redis"
