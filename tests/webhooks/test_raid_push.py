"""Raids reach both agents (issue 16): a real ``retake serve`` with two agents live over RTMP (real ffmpeg
publishers), a real local webhook receiver and both agents' sockets (``auth: {token}``). The raider is pushed
``raid.outgoing``, the target ``raid.incoming``, each with the REST answer as ``data``, on the socket and the
webhook alike (signed with each agent's own secret); the SDK's ``raid`` starts it."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from retake.agent import AsyncRetakeClient
from retake.agent.webhooks import verify
from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.media_support import lavfi_publisher, status, wait_until
from tests.support import FakeOEmbed
from tests.web.conftest import end_process
from tests.webhooks import nodes
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_agent_socket import Listener

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    fake = FakeOEmbed()
    with fake.running():
        env = {**nodes.PUSH_ENV, "RETAKE_RTMP_ENABLED": "true", "RETAKE_PREVIEW_INTERVAL_SECONDS": "0"}
        server = start_server(tmp_path_factory.mktemp("raid-push"), fake.url, **env)
        yield server
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()[-4000:]


def go_live(base: str, agent: nodes.Agent) -> subprocess.Popen[bytes]:
    """A real publisher on the agent's key; returns once the platform reports it live."""
    with httpx.Client(base_url=base, timeout=10) as http:
        rtmp = http.post("/api/v1/agent/rtmp", headers=agent.headers).json()
        assert http.post("/api/v1/agent/stream/start", headers=agent.headers).status_code == 200
        publisher = subprocess.Popen(
            lavfi_publisher(f"{rtmp['url']}/{rtmp['key']}", size="320x180"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(lambda: status(http, agent.headers)["is_live"], timeout=20)
        except BaseException:
            end_process(publisher)
            raise
    return publisher


async def hook(http: httpx.AsyncClient, base: str, agent: nodes.Agent, receiver: Receiver, **body: Any) -> str:
    answer = await http.put(f"{base}/api/v1/agent/webhook", json={"url": receiver.url, **body}, headers=agent.headers)
    assert answer.status_code == 200, answer.text
    secret: str = answer.json()["secret"]
    return secret


async def test_both_agents_are_pushed_the_raid(node: Server, receiver: Receiver) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        raider = await nodes.register(http, node.base, "PushRaider")
        target = await nodes.register(http, node.base, "PushTarget")
        publishers = await asyncio.gather(
            asyncio.to_thread(go_live, node.base, raider), asyncio.to_thread(go_live, node.base, target)
        )
        raider_socket = await Listener().connect(node.base, {"token": raider.token})
        target_socket = await Listener().connect(node.base, {"token": target.token})
        try:
            raider_secret = await hook(http, node.base, raider, receiver, events=["raid.outgoing", "raid.incoming"])
            target_secret = await hook(http, node.base, target, receiver)  # every type

            async with AsyncRetakeClient(node.base, raider.token) as client:
                answer = await client.raid("pushtarget")
            assert answer["raider"]["userDbId"] == raider.user_id
            assert answer["target"]["userDbId"] == target.user_id

            mine = {e["type"]: e for e in await raider_socket.wait_for("agent_event", 2)}  # its chat line, the raid
            outgoing = mine["raid.outgoing"]
            assert outgoing["data"] == answer
            assert mine["chat.message"]["data"]["text"] == f"Raiding PushTarget with {answer['viewers']} viewers"
            found = await target_socket.wait_for("agent_event", 2)  # the chat line and the raid, in some order
            by_type = {e["type"]: e for e in found}
            assert by_type["raid.incoming"]["data"] == answer
            assert by_type["chat.message"]["data"]["text"] == f"PushRaider is raiding with {answer['viewers']} viewers!"
            assert not [e for e in raider_socket.events if e[0] == "agent_event" and e[1]["type"] == "raid.incoming"]

            def delivered(kind: str) -> bool:
                return bool(receiver.of_type(kind))

            await receiver.wait_for(lambda _got: delivered("raid.outgoing") and delivered("raid.incoming"))
            [out_hook] = receiver.of_type("raid.outgoing")
            [in_hook] = receiver.of_type("raid.incoming")
            assert out_hook.body == outgoing and in_hook.body == by_type["raid.incoming"]  # same body both ways
            assert verify(raider_secret, out_hook.signature, out_hook.raw)
            assert verify(target_secret, in_hook.signature, in_hook.raw)
            assert not verify(target_secret, out_hook.signature, out_hook.raw)  # each agent's own secret
            # The raider's filter wants raid events only: its own "Raiding …" chat line is not delivered.
            await asyncio.sleep(1.0)
            chat_hooks = receiver.of_type("chat.message")
            assert [h.body["data"]["streamer_id"] for h in chat_hooks] == [target.user_id]
        finally:
            await raider_socket.sio.disconnect()
            await target_socket.sio.disconnect()
            for publisher in publishers:
                end_process(publisher)
