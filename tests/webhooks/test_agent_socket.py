"""The agent socket: ``auth: {token}`` joins ``agent_<userDbId>`` and receives ``agent_event`` bodies; nobody
else can join that room; a bad token is refused; the SDK's ``client.events()`` reads the same stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import socketio

from retake.agent import AsyncRetakeClient
from retake.agent.events import _poll
from tests.e2e.conftest import Server, start_server, stop_server
from tests.support import FakeOEmbed
from tests.webhooks import nodes
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    fake = FakeOEmbed()
    with fake.running():
        server = start_server(tmp_path_factory.mktemp("push-node"), fake.url, **nodes.PUSH_ENV)
        yield server
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()[-4000:]


class Listener:
    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.arrived = asyncio.Event()

        @self.sio.on("*")
        async def record(event: str, data: Any = None) -> None:
            self.events.append((event, data))
            self.arrived.set()

    async def connect(self, base: str, auth: dict[str, Any] | None = None) -> Listener:
        await self.sio.connect(base, transports=["websocket"], auth=auth, wait_timeout=10)
        return self

    async def wait_for(self, name: str, count: int = 1, seconds: float = 10.0) -> list[Any]:
        async with asyncio.timeout(seconds):
            while len(found := [d for n, d in self.events if n == name]) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return found


_names = iter(range(1000))


async def _agent(http: httpx.AsyncClient, node: Server) -> nodes.Agent:
    return await nodes.register(http, node.base, f"Sock{next(_names)}_{id(http) % 10000}")


async def test_agent_socket_receives_its_events(node: Server, receiver: Receiver) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        agent, fan = await _agent(http, node), await _agent(http, node)
        mine = await Listener().connect(node.base, {"token": agent.token})
        theirs = await Listener().connect(node.base, {"token": fan.token})
        try:
            await http.put(f"{node.base}/api/v1/agent/webhook", json={"url": receiver.url}, headers=agent.headers)
            chat_id = await nodes.say(http, node.base, fan, agent, "hello agent")
            [event] = await mine.wait_for("agent_event")
            assert set(event) == {"id", "type", "created_at", "data"}
            assert event["type"] == "chat.message" and event["data"]["_id"] == chat_id
            await receiver.wait_for(lambda got: len(got) == 1)
            assert receiver.received[0].body == event  # the webhook and the socket carry the same body
            follow = await http.put(f"{node.base}/api/v1/users/me/following/{agent.user_id}", headers=fan.headers)
            assert follow.status_code == 200
            second = (await mine.wait_for("agent_event", 2))[1]
            assert second["type"] == "follower.new" and second["data"]["follower_id"] == fan.user_id
            await asyncio.sleep(0.3)
            assert not [d for n, d in theirs.events if n == "agent_event"]  # the fan's room got none of it
        finally:
            await mine.sio.disconnect()
            await theirs.sio.disconnect()


async def test_nobody_else_joins_an_agent_room(node: Server) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        agent, fan = await _agent(http, node), await _agent(http, node)
        stranger = await Listener().connect(node.base)
        try:
            await stranger.sio.emit("joinRoom", {"roomId": f"agent_{agent.user_id}"})
            [error] = await stranger.wait_for("error")
            assert error["code"] == "private_room"
            await nodes.say(http, node.base, fan, agent, "private?")
            await asyncio.sleep(0.5)
            assert not [d for n, d in stranger.events if n in ("agent_event", "joinedRoom")]
        finally:
            await stranger.sio.disconnect()
        refused = socketio.AsyncClient(reconnection=False)
        reasons: list[Any] = []
        refused.on("connect_error", reasons.append)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(node.base, transports=["websocket"], auth={"token": "rtk_nope"}, wait_timeout=5)
        assert reasons[0]["data"] == {"error": reasons[0]["message"], "code": "invalid_token"}


async def test_sdk_event_stream_and_its_polling_fallback(node: Server) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        agent, fan = await _agent(http, node), await _agent(http, node)
        async with AsyncRetakeClient(node.base, agent.token) as client:
            stream = client.events()
            reader = asyncio.ensure_future(anext(stream))
            await asyncio.sleep(1.0)  # connected by now
            chat_id = await nodes.say(http, node.base, fan, agent, "over the socket")
            event = await asyncio.wait_for(reader, 10)
            assert event["type"] == "chat.message" and event["data"]["_id"] == chat_id
            await stream.aclose()
            polled = _poll(client, 0.2)
            reader = asyncio.ensure_future(anext(polled))
            await asyncio.sleep(1.0)  # the first page (history) has been read
            chat_id = await nodes.say(http, node.base, fan, agent, "by polling")
            event = await asyncio.wait_for(reader, 10)
            assert event == {
                "id": f"poll_{chat_id}",
                "type": "chat.message",
                "created_at": event["data"]["timestamp"],
                "data": event["data"],
            }
            assert event["data"]["text"] == "by polling"
            await polled.aclose()
