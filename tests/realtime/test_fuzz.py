"""Malformed Socket.IO traffic never takes a node down: hypothesis-generated events and raw Engine.IO frames.

After the examples, the same node still answers a well-formed round trip and its log holds no traceback (the
module's ``node`` fixture checks the log when it stops the server)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect as ws_connect

from tests.e2e.conftest import Server
from tests.realtime.support import Probe

pytestmark = pytest.mark.e2e

EXAMPLES = 25
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "tip", "trade", "delete", ""]) | json_values,
        "streamer_id": st.text(max_size=70) | json_values,
        "sender_token": st.sampled_from(["rtk_" + "a" * 40, "", "Bearer x"]) | json_values,
        "sender_user_id": json_values,
        "text": st.text(max_size=600) | json_values,
        "tip_data": json_values,
        "trade_data": json_values,
        "timestamp": json_values,
    },
)
room_like = st.fixed_dictionaries({}, optional={"roomId": st.text(max_size=250) | json_values})
events = st.one_of(
    st.tuples(st.just("message"), message_like | json_values),
    st.tuples(st.sampled_from(["joinRoom", "leaveRoom"]), room_like | json_values),
    st.tuples(st.text(min_size=1, max_size=20).filter(lambda s: s not in {"connect", "disconnect"}), json_values),
)


async def send_all(base: str, batch: list[tuple[str, Any]]) -> None:
    probe = await Probe().connect(base)
    try:
        for name, payload in batch:
            await probe.sio.emit(name, payload)
        # The connection still works after the batch: a valid request is still answered.
        assert await probe.sio.call("joinRoom", {"roomId": "after-fuzz"}, timeout=10) == {"roomId": "after-fuzz"}
    finally:
        await probe.close()


def test_fuzzed_events_never_crash_the_node(node: Server) -> None:
    @FUZZ_SETTINGS
    @given(batch=st.lists(events, min_size=1, max_size=6))
    def run(batch: list[tuple[str, Any]]) -> None:
        asyncio.run(send_all(node.base, batch))

    run()
    assert node.process.poll() is None
    assert httpx.get(f"{node.base}/health", timeout=10).status_code == 200


# Engine.IO v4 text packets: 4 = message, then a Socket.IO packet type (0 connect .. 6 binary ack).
frame_prefixes = st.sampled_from(["42", "43", "40", "41", "44", "45", "46", "4", "2", "3", "6", "", "42/x,", "421"])
raw_frames = st.one_of(
    st.tuples(frame_prefixes, st.text(max_size=200)).map("".join),
    st.tuples(frame_prefixes, json_values.map(json.dumps)).map("".join),
    st.binary(max_size=200),
)


def test_raw_engineio_garbage_never_crashes_the_node(node: Server) -> None:
    url = node.base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"

    @FUZZ_SETTINGS
    @given(frames=st.lists(raw_frames, min_size=1, max_size=5))
    def run(frames: list[str | bytes]) -> None:
        try:
            with ws_connect(url, open_timeout=10, close_timeout=2) as ws:
                assert str(ws.recv(timeout=10)).startswith("0{")  # Engine.IO open packet
                ws.send("40")  # connect the default namespace, then misbehave
                for frame in frames:
                    ws.send(frame)
        except WebSocketException:
            pass  # the server may close a connection that sends garbage; what matters is the node

    run()
    assert node.process.poll() is None
    asyncio.run(send_all(node.base, []))
