"""Socket.IO against a real ``retake serve``: rooms, REST ↔ socket round trips, refusals, moderation, operators."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RETAKE, Server
from tests.realtime.support import Agent, Probe, register, socket_message

pytestmark = pytest.mark.e2e

SEND = "/api/v1/agent/stream/chat/send"


@pytest.fixture
async def http(node: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node.base, timeout=10) as client:
        yield client


@pytest.fixture
async def probes(node: Server) -> AsyncIterator[list[Probe]]:
    """Connected clients made by the test; all are disconnected at the end."""
    made: list[Probe] = []
    yield made
    for probe in made:
        await probe.close()


async def connect(node: Server, probes: list[Probe], query: str = "") -> Probe:
    probe = await Probe().connect(node.base, query)
    probes.append(probe)
    return probe


async def newest_comment(http: httpx.AsyncClient, streamer: Agent) -> dict[str, Any]:
    page = (await http.get("/api/v1/agent/stream/comments", headers=streamer.headers)).json()
    return dict(page["comments"][0])


async def test_rest_message_reaches_the_room_with_the_same_id_and_fields(
    node: Server, http: httpx.AsyncClient, probes: list[Probe]
) -> None:
    streamer, viewer = await register(http), await register(http)
    # Real clients add these query parameters; they are accepted and ignored.
    watcher = await connect(node, probes, "?Client-ID=web-123&Client-Type=browser")
    await watcher.join(streamer.user_id)
    sent = await http.post(
        SEND, json={"message": "hello room", "destination_user_id": streamer.user_id}, headers=viewer.headers
    )
    _, data = await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("text") == "hello room")
    assert data["_id"] == data["chat_event_id"] == sent.json()["message_id"]
    read_back = (
        await http.get("/api/v1/agent/stream/comments", params={"userDbId": streamer.user_id}, headers=viewer.headers)
    ).json()["comments"][0]
    assert data == read_back, "the broadcast and the REST read are the same object (both field sets)"


async def test_socket_message_is_stored_broadcast_and_acknowledged(
    node: Server, http: httpx.AsyncClient, probes: list[Probe]
) -> None:
    streamer, viewer = await register(http), await register(http)
    await http.post("/api/v1/agent/stream/start", headers=streamer.headers)
    watcher, sender = await connect(node, probes), await connect(node, probes)
    await watcher.join(streamer.user_id)
    ack = await sender.sio.call("message", socket_message(viewer, streamer.user_id, "from the socket"), timeout=10)
    _, broadcast = await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("text") == "from the socket")
    assert ack == broadcast
    stored = await newest_comment(http, streamer)
    assert stored == broadcast and stored["sender_user_id"] == viewer.user_id
    assert stored["session_id"] is not None, "the stored session is the streamer's open one, not the client's"
    assert stored["timestamp"] != "2026-11-27T14:20:00.000Z", "the server's time, not the client's"
    assert "error" not in [name for name, _ in sender.events]


async def test_refused_messages_get_an_error_event_and_store_nothing(
    node: Server, http: httpx.AsyncClient, probes: list[Probe]
) -> None:
    streamer, viewer = await register(http), await register(http)
    sender = await connect(node, probes)
    ok = socket_message(viewer, streamer.user_id, "fine")
    cases: list[tuple[Any, str]] = [
        ("just a string", "invalid_payload"),
        ([1, 2], "invalid_payload"),
        ({k: v for k, v in ok.items() if k != "streamer_id"}, "missing_field"),
        ({**ok, "sender_token": "rtk_" + "x" * 40}, "invalid_token"),
        ({**ok, "sender_token": "not-a-token"}, "invalid_token"),
        ({**ok, "sender_token": None}, "missing_token"),
        ({**ok, "sender_user_id": streamer.user_id}, "sender_mismatch"),
        ({**ok, "text": "   "}, "invalid_message"),
        ({**ok, "text": "x" * 501}, "invalid_message"),
        ({**ok, "text": 42}, "validation_error"),
        ({**ok, "type": "system"}, "validation_error"),
        ({**ok, "streamer_id": "00000000-0000-0000-0000-000000000000"}, "streamer_not_found"),
        # Tips and trades are announced only for a real ledger record of the sender.
        ({**ok, "type": "tip", "tip_data": {"receiver_id": streamer.user_id, "amount": 1}}, "unknown_transaction"),
        ({**ok, "type": "tip", "tip_data": {"amount": 1, "tx_hash": "5" * 88}}, "unknown_transaction"),
        ({**ok, "type": "trade", "trade_data": {"amount": 1, "type": "buy", "tx_hash": "x"}}, "unknown_transaction"),
    ]
    for payload, code in cases:
        answer = await sender.sio.call("message", payload, timeout=10)
        assert answer["code"] == code, (payload, answer)
        assert set(answer) == {"error", "code"}
    errors = [data for name, data in sender.events if name == "error"]
    assert [e["code"] for e in errors] == [code for _, code in cases], "every refusal is also an `error` event"
    assert "sender_token" not in node.log() and viewer.token not in node.log(), "tokens never reach the log"
    chats = (await http.get("/api/v1/chat/", params={"streamer_id": streamer.user_id})).json()["chats"]
    assert chats == []


async def test_leave_room_and_unknown_events(node: Server, http: httpx.AsyncClient, probes: list[Probe]) -> None:
    streamer, viewer = await register(http), await register(http)
    leaver, stayer = await connect(node, probes), await connect(node, probes)
    await leaver.join(streamer.user_id)
    await stayer.join(streamer.user_id)
    assert await leaver.sio.call("leaveRoom", {"roomId": streamer.user_id}, timeout=10) == {"roomId": streamer.user_id}
    await http.post(
        SEND, json={"message": "after leave", "destination_user_id": streamer.user_id}, headers=viewer.headers
    )
    await stayer.wait_for(lambda e: e[0] == "message")
    await asyncio.sleep(0.3)
    assert leaver.messages() == []
    bogus = await leaver.sio.call("noSuchEvent", {"x": 1}, timeout=10)
    assert bogus["code"] == "unknown_event"
    assert (await leaver.sio.call("joinRoom", {"roomId": ""}, timeout=10))["code"] == "invalid_room"
    assert (await leaver.sio.call("joinRoom", streamer.user_id, timeout=10)) == {"roomId": streamer.user_id}


async def test_floods_are_refused_per_connection(node: Server, http: httpx.AsyncClient, probes: list[Probe]) -> None:
    flooder, calm = await connect(node, probes), await connect(node, probes)
    answers = [await flooder.sio.call("joinRoom", {"roomId": f"room{i % 5}"}, timeout=10) for i in range(45)]
    limited = [a for a in answers if a.get("code") == "rate_limited"]
    assert limited and set(limited[0]) == {"error", "code"}, "40 events per 10 s per connection by default"
    assert await calm.sio.call("joinRoom", {"roomId": "room0"}, timeout=10) == {"roomId": "room0"}


async def test_moderation_reaches_the_rooms_and_mutes_the_socket(
    node: Server, http: httpx.AsyncClient, probes: list[Probe]
) -> None:
    streamer, viewer = await register(http), await register(http)
    session_id = (await http.post("/api/v1/agent/stream/start", headers=streamer.headers)).json()["session_id"]
    watcher, sender = await connect(node, probes), await connect(node, probes)
    await watcher.join(streamer.user_id)
    await watcher.join(f"{streamer.user_id}/{session_id}")
    first = await sender.sio.call("message", socket_message(viewer, streamer.user_id, "pin this"), timeout=10)

    await http.post(f"/api/v1/chat/{first['_id']}/pin", headers=streamer.headers)
    _, pinned = await watcher.wait_for(lambda e: e[0] == "pinned")
    assert pinned["pinned"] is True and pinned["message"] == first

    jail = {"user_id": viewer.user_id}
    await http.post(f"/api/v1/sessions/{session_id}/jail", json=jail, headers=streamer.headers)
    await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("type") == "jail")
    muted = await sender.sio.call("message", socket_message(viewer, streamer.user_id, "hey"), timeout=10)
    assert muted == {"error": "you are muted in this chat", "code": "muted"}
    await http.post(f"/api/v1/sessions/{session_id}/unjail", json=jail, headers=streamer.headers)
    await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("type") == "unjail")
    second = await sender.sio.call("message", socket_message(viewer, streamer.user_id, "sorry"), timeout=10)
    assert second["text"] == "sorry"

    await http.delete(f"/api/v1/chat/{second['_id']}", headers=streamer.headers)
    _, deleted = await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("type") == "delete")
    assert deleted["chat_event_id"] == second["_id"]
    await http.post("/api/v1/chat/delete-all", headers=streamer.headers)
    _, cleared = await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("type") == "delete_all")
    assert cleared["streamer_id"] == streamer.user_id and cleared["count"] == 1
    await watcher.wait_for(lambda e: e[0] == "pinned" and e[1]["pinned"] is False)
    assert [m["text"] for m in watcher.messages(type="message")] == ["pin this", "sorry"], "muted text not sent"


async def test_jwt_viewer_chats_and_announces_a_real_trade_once(
    node: Server, http: httpx.AsyncClient, probes: list[Probe]
) -> None:
    streamer = await register(http, "tok")
    verified = await asyncio.to_thread(operator, node, "verify", streamer.name)
    assert verified.returncode == 0, verified.stderr
    start = (await http.post("/api/v1/agent/stream/start", headers=streamer.headers)).json()
    address = start["token"]["tokenAddress"]
    guest = (await http.post("/api/v1/auth/guest", json={})).json()
    jwt, viewer_id = guest["token"], guest["user"]["user_id"]
    auth = {"Authorization": f"Bearer {jwt}"}
    assert (await http.post("/api/v1/wallet/airdrop", json={"lamports": "1000000000"}, headers=auth)).is_success
    swap = await http.post(f"/api/v1/tokens/{address}/swap", json={"side": "buy", "amount": "100000000"}, headers=auth)
    assert swap.status_code == 200, swap.text
    tx_hash = swap.json()["tx_hash"]
    watcher, sender = await connect(node, probes), await connect(node, probes)
    await watcher.join(streamer.user_id)
    base = {
        "type": "message",
        "streamer_id": streamer.user_id,
        "sender_token": jwt,
        "sender_user_id": viewer_id,
        "text": "hi from a viewer",
    }

    said = await sender.sio.call("message", base, timeout=10)
    assert said["sender_user_id"] == viewer_id and said["type"] == "message", said
    announcement = {
        **base,
        "type": "trade",
        "text": "",
        "trade_data": {"type": "buy", "amount": 0.1, "tx_hash": tx_hash},
    }
    announced = await sender.sio.call("message", announcement, timeout=10)
    assert announced["type"] == "trade" and announced["trade_data"]["tx_hash"] == tx_hash, announced
    _, broadcast = await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("type") == "trade")
    assert broadcast == announced
    again = await sender.sio.call("message", announcement, timeout=10)
    assert again["code"] == "unknown_transaction", "a record is announced once"
    assert jwt not in node.log()


def operator(node: Server, *args: str) -> subprocess.CompletedProcess[str]:
    command = [*RETAKE, "admin", *args, "--data-dir", str(node.data_dir)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=node.env)


async def test_operator_warn_and_shutdown_reach_a_running_server(
    node: Server, http: httpx.AsyncClient, probes: list[Probe]
) -> None:
    agent = await register(http, "ops")
    session_id = (await http.post("/api/v1/agent/stream/start", headers=agent.headers)).json()["session_id"]
    watcher = await connect(node, probes)
    await watcher.join(agent.user_id)

    warned = await asyncio.to_thread(operator, node, "warn", agent.name.upper(), "please keep it friendly")
    assert warned.returncode == 0, warned.stderr
    _, notice = await watcher.wait_for(lambda e: e[0] == "message" and e[1].get("type") == "system")
    assert notice["text"] == "Operator warning: please keep it friendly" and notice["session_id"] == session_id
    status = (await http.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert status["warnings"][0]["reason"] == "please keep it friendly"

    shut = await asyncio.to_thread(operator, node, "shutdown", agent.name, "--reason", "off-topic")
    assert shut.returncode == 0, shut.stderr
    assert "by the running server" in " ".join(shut.stderr.split()), "rich wraps long lines"
    await watcher.wait_for(lambda e: e[0] == "message" and "shut down" in str(e[1].get("text")))
    status = (await http.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert status["session_id"] is None and [w["kind"] for w in status["warnings"]] == ["shutdown", "warn"]
    assert len(watcher.messages(type="system")) == 2, "each notice is announced once"

    again = await asyncio.to_thread(operator, node, "shutdown", agent.name)
    assert again.returncode == 1 and "no open session" in " ".join(again.stderr.split())
