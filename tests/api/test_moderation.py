"""Owner moderation over REST (pins, deletion, jail) and operator actions, on SQLite and PostgreSQL.

Broadcasts are observed on the platform's event bus, which is what the Socket.IO bridge relays; the socket side
itself is covered against a real server in tests/realtime."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from retake.events import PlatformEvent
from retake.server.app import create_app
from retake.server.realtime.wire import wire_payload

SEND = "/api/v1/agent/stream/chat/send"
COMMENTS = "/api/v1/agent/stream/comments"


def platform_of(client: httpx.AsyncClient) -> Any:
    return client.app.state.platform  # type: ignore[attr-defined]


def record_events(client: httpx.AsyncClient) -> list[PlatformEvent]:
    events: list[PlatformEvent] = []

    async def listen(event: PlatformEvent) -> None:
        if event.name != "agent_event":  # push to agents re-publishes what concerns an agent
            events.append(event)

    platform_of(client).events.subscribe(listen)
    return events


async def say(client: httpx.AsyncClient, who: Any, streamer: Any, text: str) -> httpx.Response:
    return await client.post(SEND, json={"message": text, "destination_user_id": streamer.user_id}, headers=who.headers)


async def test_pin_replace_unpin_and_read_back(client: httpx.AsyncClient, register: Any) -> None:
    streamer, viewer = await register(), await register()
    session_id = (await client.post("/api/v1/agent/stream/start", headers=streamer.headers)).json()["session_id"]
    first = (await say(client, viewer, streamer, "pin me")).json()["chat_event_id"]
    second = (await say(client, viewer, streamer, "no, me")).json()["chat_event_id"]
    events = record_events(client)

    pinned = await client.post(f"/api/v1/chat/{first}/pin", headers=streamer.headers)
    assert pinned.status_code == 200, pinned.text
    body = pinned.json()
    assert body["pinned"] is True and body["session_id"] == session_id and body["chat_event_id"] == first
    assert body["message"]["_id"] == first and body["message"]["author"]["fusername"] == viewer.name
    assert [(e.name, e.room) for e in events] == [("pinned", f"{streamer.user_id}/{session_id}")]
    assert wire_payload(events[0]) == body, "the broadcast and the REST answer are the same object"

    replaced = (await client.post(f"/api/v1/chat/{second}/pin", headers=streamer.headers)).json()
    assert replaced["chat_event_id"] == second
    read = (await client.get(f"/api/v1/sessions/{session_id}/pinned")).json()
    assert read["message"]["_id"] == second and read["pinned"] is True

    unpinned = (await client.delete(f"/api/v1/chat/{second}/pin", headers=streamer.headers)).json()
    assert unpinned["pinned"] is False and unpinned["message"] is None
    assert events[-1].name == "pinned" and wire_payload(events[-1])["pinned"] is False
    count = len(events)
    again = await client.delete(f"/api/v1/chat/{second}/pin", headers=streamer.headers)
    assert again.status_code == 200 and len(events) == count, "unpinning twice is a no-op, not re-broadcast"
    assert (await client.get(f"/api/v1/sessions/{session_id}/pinned")).json()["message"] is None


async def test_pin_refusals(client: httpx.AsyncClient, register: Any) -> None:
    streamer, viewer = await register(), await register()
    outside = (await say(client, viewer, streamer, "before any session")).json()["chat_event_id"]
    refused = await client.post(f"/api/v1/chat/{outside}/pin", headers=streamer.headers)
    assert refused.status_code == 409 and refused.json()["code"] == "not_in_session"
    await client.post("/api/v1/agent/stream/start", headers=streamer.headers)
    inside = (await say(client, viewer, streamer, "during")).json()["chat_event_id"]
    for path, headers, status, code in [
        (f"/api/v1/chat/{inside}/pin", viewer.headers, 403, "not_owner"),
        (f"/api/v1/chat/{inside}/pin", {}, 401, "missing_token"),
        ("/api/v1/chat/abc/pin", streamer.headers, 400, "invalid_chat_event_id"),
        ("/api/v1/chat/999999999/pin", streamer.headers, 404, "chat_event_not_found"),
    ]:
        response = await client.post(path, headers=headers)
        assert (response.status_code, response.json()["code"]) == (status, code), path
    assert (await client.get("/api/v1/sessions/nope/pinned")).status_code == 404


async def test_delete_one_then_all(client: httpx.AsyncClient, register: Any) -> None:
    streamer, viewer = await register(), await register()
    session_id = (await client.post("/api/v1/agent/stream/start", headers=streamer.headers)).json()["session_id"]
    ids = [(await say(client, viewer, streamer, f"m{i}")).json()["chat_event_id"] for i in range(4)]
    await client.post(f"/api/v1/chat/{ids[0]}/pin", headers=streamer.headers)
    events = record_events(client)

    assert (await client.delete(f"/api/v1/chat/{ids[1]}", headers=viewer.headers)).status_code == 403
    deleted = await client.delete(f"/api/v1/chat/{ids[0]}", headers=streamer.headers)
    assert deleted.json() == {"deleted": 1, "chat_event_id": ids[0]}
    assert [(e.name, wire_payload(e).get("type"), wire_payload(e).get("pinned")) for e in events] == [
        ("message", "delete", None),
        ("pinned", None, False),  # a deleted message cannot stay pinned
    ]
    assert events[0].room == streamer.user_id and wire_payload(events[0])["_id"] == ids[0]
    assert (await client.delete(f"/api/v1/chat/{ids[0]}", headers=streamer.headers)).status_code == 404
    left = (await client.get(COMMENTS, params={"userDbId": streamer.user_id}, headers=viewer.headers)).json()
    assert [c["_id"] for c in left["comments"]] == ids[:0:-1]

    # An empty body with a JSON content type (as agents send) means "my own chat".
    everything = await client.post(
        "/api/v1/chat/delete-all", headers={**streamer.headers, "Content-Type": "application/json"}
    )
    assert everything.json() == {"deleted": 3, "streamer_id": streamer.user_id, "session_id": None}
    assert wire_payload(events[-1])["type"] == "delete_all" and wire_payload(events[-1])["count"] == 3
    assert (await client.get("/api/v1/chat/", params={"session_id": session_id})).json()["chats"] == []
    other = await client.post("/api/v1/chat/delete-all", json={"streamer_id": streamer.user_id}, headers=viewer.headers)
    assert other.status_code == 403 and other.json()["code"] == "not_owner"
    wrong_session = await client.post("/api/v1/chat/delete-all", json={"session_id": "x"}, headers=streamer.headers)
    assert wrong_session.status_code == 404


async def test_jail_refuses_rest_chat_until_unjailed(client: httpx.AsyncClient, register: Any) -> None:
    streamer, viewer, bystander = await register(), await register(), await register()
    session_id = (await client.post("/api/v1/agent/stream/start", headers=streamer.headers)).json()["session_id"]
    events = record_events(client)
    jail = f"/api/v1/sessions/{session_id}/jail"

    assert (await client.post(jail, json={"user_id": viewer.user_id}, headers=bystander.headers)).status_code == 403
    jailed = await client.post(jail, json={"user_id": viewer.user_id}, headers=streamer.headers)
    assert jailed.status_code == 200, jailed.text
    assert jailed.json()["muted"] is True and jailed.json()["username"] == viewer.name
    assert [(e.name, e.room, wire_payload(e)["type"]) for e in events] == [("message", streamer.user_id, "jail")]
    await client.post(jail, json={"user_id": viewer.user_id}, headers=streamer.headers)
    assert len(events) == 1, "jailing twice changes nothing and is not broadcast again"

    refused = await say(client, viewer, streamer, "let me out")
    assert refused.status_code == 403 and refused.json() == {"error": "you are muted in this chat", "code": "muted"}
    assert (await say(client, viewer, bystander, "elsewhere is fine")).status_code == 200, "a mute is per streamer"
    assert (await say(client, streamer, streamer, "the owner still talks")).status_code == 200

    muted = await client.get(f"/api/v1/sessions/{session_id}/muted-users", headers=streamer.headers)
    assert [u["user_id"] for u in muted.json()["muted_users"]] == [viewer.user_id]
    assert (await client.get(f"/api/v1/sessions/{session_id}/muted-users", headers=viewer.headers)).status_code == 403
    own = await client.post(jail, json={"user_id": streamer.user_id}, headers=streamer.headers)
    assert own.status_code == 400 and own.json()["code"] == "cannot_jail_owner"
    missing = await client.post(jail, json={"user_id": "nobody"}, headers=streamer.headers)
    assert missing.status_code == 404
    assert (await client.post(jail, json={}, headers=streamer.headers)).status_code == 400

    unjailed = await client.post(
        f"/api/v1/sessions/{session_id}/unjail", json={"user_id": viewer.user_id}, headers=streamer.headers
    )
    assert unjailed.json()["muted"] is False and wire_payload(events[-1])["type"] == "unjail"
    assert (await say(client, viewer, streamer, "thanks")).status_code == 200
    chats = (await client.get("/api/v1/chat/", params={"streamer_id": streamer.user_id})).json()["chats"]
    assert [c["text"] for c in chats] == ["thanks", "the owner still talks"], "the refused message was not stored"


async def test_openapi_documents_moderation(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    for path, method in [
        ("/api/v1/chat/{chat_event_id}/pin", "post"),
        ("/api/v1/chat/{chat_event_id}/pin", "delete"),
        ("/api/v1/chat/{chat_event_id}", "delete"),
        ("/api/v1/chat/delete-all", "post"),
        ("/api/v1/sessions/{session_id}/jail", "post"),
        ("/api/v1/sessions/{session_id}/unjail", "post"),
        ("/api/v1/sessions/{session_id}/muted-users", "get"),
        ("/api/v1/sessions/{session_id}/pinned", "get"),
    ]:
        responses = paths[path][method]["responses"]
        assert "$ref" in str(responses["200"]), (path, method)
        assert "403" in responses or (method == "get" and path.endswith("pinned")), (path, method)
    assert "403" in paths["/api/v1/agent/stream/chat/send"]["post"]["responses"]


@pytest.fixture
async def quiet_client(settings_factory: Any) -> Any:
    """The operator watcher's safety-net poll is a minute here: what reaches it within seconds came by a nudge."""
    app = create_app(settings_factory(operator_poll_seconds=60))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


async def test_operator_warn_and_shutdown(quiet_client: httpx.AsyncClient) -> None:
    from retake.errors import Conflict, NotFound

    client = quiet_client
    body = {"agent_name": "WarnedBot", "wallet_address": "11111111111111111111111111111111", "ticker": "W"}
    reg = (await client.post("/api/v1/agent/register", json=body)).json()
    headers = {"Authorization": f"Bearer {reg['access_token']}"}
    session_id = (await client.post("/api/v1/agent/stream/start", headers=headers)).json()["session_id"]
    platform = platform_of(client)
    closed: list[str] = []

    class Publishers:
        async def close_publisher(self, sid: str) -> bool:
            closed.append(sid)
            return True

    platform.streams.publishers = Publishers()
    events = record_events(client)

    async def announced(count: int) -> None:
        """The node's watcher, nudged by the action (its poll is a minute away), announced ``count`` so far."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while len([e for e in events if e.name == "message"]) < count:
            assert loop.time() < deadline, "the watcher was not nudged"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # anything more (a second announcement) would come now

    cursor = (await platform.operator.warn("warnedbot", "keep it friendly")).id
    await announced(1)
    [notice] = [e for e in events if e.name == "message"]  # (push adds operator_action, session_ended)
    assert notice.room == reg["userDbId"]
    sent = wire_payload(notice)
    assert sent["type"] == "system" and sent["text"] == "Operator warning: keep it friendly"
    assert sent["sender_username"] == "retake" and sent["session_id"] == session_id
    comments = (await client.get(COMMENTS, headers=headers)).json()["comments"]
    assert comments[0] == sent, "the system message is stored and reads back the same"
    status = (await client.get("/api/v1/agent/stream/status", headers=headers)).json()
    assert [(w["kind"], w["reason"]) for w in status["warnings"]] == [("warn", "keep it friendly")]
    assert await platform.operator.apply_since(cursor - 1) == cursor, "announced only once"
    assert [e.name for e in events] == ["operator_action", "message"]

    await platform.operator.shutdown("WarnedBot", "off-topic")
    await announced(2)
    assert closed == [session_id], "the publisher is closed on the node that holds it"
    status = (await client.get("/api/v1/agent/stream/status", headers=headers)).json()
    assert status["session_id"] is None and status["is_live"] is False
    assert [w["kind"] for w in status["warnings"]] == ["shutdown", "warn"]
    assert wire_payload(events[-1])["text"] == "This stream was shut down by the operator: off-topic"
    assert [wire_payload(e).get("kind") for e in events if e.name == "operator_action"] == ["warn", "shutdown"]
    assert [wire_payload(e)["session_id"] for e in events if e.name == "session_ended"] == [session_id]

    with pytest.raises(Conflict):
        await platform.operator.shutdown("WarnedBot")
    with pytest.raises(NotFound):
        await platform.operator.warn("nobody_here", "x")
    public = (await client.get("/api/v1/users/newest/")).json()
    assert "retake" not in [u["username"] for u in public], "the system author is not listed as a user"
