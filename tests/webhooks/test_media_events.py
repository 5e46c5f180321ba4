"""``stream.live``, ``encoder.disconnected`` and ``stream.offline`` from real media: a real ``retake serve`` with its
RTMP listener, a real ffmpeg publisher that is then killed (SIGKILL: the encoder drops, it does not stop), and the
reconnect grace running out. A real local receiver gets each event once, in order, signed, with the documented
data (API.md "Push to agents": the matching Socket.IO payload), and the agent socket gets the same events."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.media_support import lavfi_publisher, running
from tests.support import FakeOEmbed
from tests.webhooks import nodes
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_agent_socket import Listener

pytestmark = pytest.mark.timeout(120)

GRACE_SECONDS = 2.0
MEDIA_ENV = {
    **nodes.PUSH_ENV,
    "RETAKE_RTMP_ENABLED": "true",
    "RETAKE_RECONNECT_GRACE_SECONDS": str(GRACE_SECONDS),
    "RETAKE_PREVIEW_INTERVAL_SECONDS": "0",  # no preview decoding competing for the two cores
}
MEDIA_EVENTS = ["stream.live", "encoder.disconnected", "stream.offline"]


@pytest.fixture
def media_node(tmp_path: Path) -> Iterator[Server]:
    fake = FakeOEmbed()
    with fake.running():
        server = start_server(tmp_path, fake.url, **MEDIA_ENV)
        yield server
        stop_server(server)
    assert "Traceback" not in server.log(), server.log()[-4000:]


async def test_live_dropped_and_offline_from_a_real_publisher(media_node: Server, receiver: Receiver) -> None:
    async with httpx.AsyncClient(base_url=media_node.base, timeout=15) as http:
        agent = await nodes.register(http, media_node.base, "MediaPush")
        hook = await http.put(
            "/api/v1/agent/webhook", json={"url": receiver.url, "events": MEDIA_EVENTS}, headers=agent.headers
        )
        assert hook.status_code == 200, hook.text
        socket = await Listener().connect(media_node.base, {"token": agent.token})
        try:
            rtmp = (await http.post("/api/v1/agent/rtmp", headers=agent.headers)).json()
            started = await http.post("/api/v1/agent/stream/start", headers=agent.headers)
            assert started.status_code == 200, started.text
            session_id = started.json()["session_id"]
            with running(lavfi_publisher(f"{rtmp['url']}/{rtmp['key']}")) as ffmpeg:
                await receiver.wait_for(lambda got: bool(receiver.of_type("stream.live")), seconds=30)
                assert not receiver.of_type("encoder.disconnected")
                ffmpeg.kill()  # the encoder drops: no clean end of stream
                ffmpeg.wait(timeout=10)
                await receiver.wait_for(lambda got: bool(receiver.of_type("encoder.disconnected")), seconds=20)
            await receiver.wait_for(lambda got: bool(receiver.of_type("stream.offline")), seconds=GRACE_SECONDS + 20)
            pushed = await socket.wait_for("agent_event", 3, seconds=10)
        finally:
            await socket.sio.disconnect()
        status = (await http.get("/api/v1/agent/stream/status", headers=agent.headers)).json()

    await asyncio.sleep(0.5)  # nothing more arrives
    assert [r.body["type"] for r in receiver.received] == MEDIA_EVENTS
    live, dropped, offline = (r.body["data"] for r in receiver.received)
    assert live == {"streamer_id": agent.user_id, "session_id": session_id, "started_at": live["started_at"]}
    assert live["started_at"].endswith("Z")
    assert set(dropped) == {"streamer_id", "session_id", "reason", "disconnected_at", "reconnect_grace_seconds"}
    assert (dropped["streamer_id"], dropped["session_id"]) == (agent.user_id, session_id)
    assert dropped["reason"] and dropped["reason"] != "stopped"
    assert dropped["reconnect_grace_seconds"] == GRACE_SECONDS and dropped["disconnected_at"].endswith("Z")
    assert set(offline) == {"streamer_id", "session_id", "ended_at", "duration_seconds", "viewers"}
    assert (offline["streamer_id"], offline["session_id"]) == (agent.user_id, session_id)
    assert offline["duration_seconds"] >= 0 and offline["viewers"] >= 0 and offline["ended_at"].endswith("Z")
    assert status["is_live"] is False  # the grace ran out: the session ended
    # The socket got the same envelopes (same ids, types and data) as the webhook.
    assert [(e["id"], e["type"], e["data"]) for e in pushed] == [
        (r.event_id, r.body["type"], r.body["data"]) for r in receiver.received
    ]
    assert all(r.signature.startswith("t=") and ",v1=" in r.signature for r in receiver.received)
