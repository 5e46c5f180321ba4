"""Room broadcasts through pre-built frames (server/realtime/fanout.py, frames.py).

Against a real ``retake serve``: clients on every transport (WebSocket from the start, long-polling, polling
upgraded to WebSocket, a bare WebSocket speaking Engine.IO) see the same messages in the same order while
broadcasts and per-client packets interleave; ``/metrics`` shows which path carried them; with compression
negotiated the frames go through the ASGI path instead. The frame encoder is checked against the ``websockets``
library's, and the slow-reader cut-off against a transport that reports a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
import websockets
from engineio import packet as eio_packet
from engineio.async_socket import AsyncSocket
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from retake.server.realtime.fanout import DirectManager, DirectWebSocket, install
from retake.server.realtime.frames import FrameSink, binary_frame, text_frame
from retake.server.realtime.gateway import Realtime
from tests.e2e.conftest import Server, start_server, stop_server
from tests.realtime.support import Agent, Probe, register
from tests.support import FakeOEmbed

SEND = "/api/v1/agent/stream/chat/send"


# -- frames ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_frames_are_what_the_websockets_library_would_send(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    assert binary_frame(payload) == Frame(Opcode.BINARY, payload).serialize(mask=False)
    text = ("é" * size)[: max(0, size // 2)].encode()
    assert text_frame(text) == Frame(Opcode.TEXT, text).serialize(mask=False)


class _Transport:
    def __init__(self, backlog: int) -> None:
        self.backlog = backlog
        self.written: list[bytes] = []
        self.aborted = False

    def is_closing(self) -> bool:
        return self.aborted

    def get_write_buffer_size(self) -> int:
        return self.backlog

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def abort(self) -> None:
        self.aborted = True


class _Conn:
    def __init__(self) -> None:
        self.state = State.OPEN
        self.extensions: list[object] = []


class _Protocol:
    """The attributes of uvicorn's protocol that a sink reads."""

    def __init__(self, backlog: int) -> None:
        self.transport = _Transport(backlog)
        self.conn = _Conn()
        self.handshake_complete = True
        self.close_sent = False
        self.disconnected = False
        self.client = ("127.0.0.1", 5555)


def test_a_reader_too_far_behind_is_cut_off_instead_of_buffered_for() -> None:
    keeping_up, behind = _Protocol(backlog=1000), _Protocol(backlog=70_000)
    assert FrameSink(keeping_up).write(b"frame", max_buffered=65536)  # type: ignore[arg-type]
    assert keeping_up.transport.written == [b"frame"] and not keeping_up.transport.aborted
    sink = FrameSink(behind)  # type: ignore[arg-type]
    assert not sink.write(b"frame", max_buffered=65536)
    assert behind.transport.written == [] and behind.transport.aborted
    assert not sink.usable and not sink.write(b"again", max_buffered=65536)


def test_a_sink_never_writes_to_a_compressed_or_closing_connection() -> None:
    compressed = _Protocol(backlog=0)
    compressed.conn.extensions = [object()]
    closing = _Protocol(backlog=0)
    closing.close_sent = True
    for protocol in (compressed, closing):
        assert not FrameSink(protocol).write(b"frame", max_buffered=65536)  # type: ignore[arg-type]
        assert protocol.transport.written == []


def _payloads(frames: list[bytes]) -> list[str]:
    """Text frames of under 126 bytes back to their payloads."""
    assert all(f[0] == 0x81 and f[1] < 126 for f in frames)
    return [f[2:].decode() for f in frames]


async def test_a_client_with_packets_queued_gets_broadcasts_queued_behind_them() -> None:
    """What orders the two paths: a frame is written directly only when nothing waits on the client's queue,
    and nothing is taken off that queue but by the engine's own writer (which must see its pings)."""
    sio = socketio.AsyncServer(async_mode="asgi", client_manager=DirectManager(max_buffered=1 << 20))
    assert install(sio, 1 << 20)
    socket = AsyncSocket(sio.eio, "e1")
    socket.connected = socket.upgraded = True
    sio.eio.sockets["e1"] = socket
    sid = await sio.manager.connect("e1", "/")
    protocol = _Protocol(backlog=0)
    ws = DirectWebSocket(socket._websocket_handler, sio.eio)
    ws.sink = FrameSink(protocol)  # type: ignore[arg-type]
    socket.retake_ws = ws

    await sio.emit("message", {"n": 0}, to=sid)
    assert _payloads(protocol.transport.written) == ['42["message",{"n":0}]']

    socket.queue.put_nowait(eio_packet.Packet(eio_packet.PING))
    socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, '31["ack"]'))
    await sio.emit("message", {"n": 1}, to=sid)
    await sio.emit("message", {"n": 2}, room=sid)
    assert len(protocol.transport.written) == 1
    queued = [socket.queue.get_nowait().encode() for _ in range(socket.queue.qsize())]
    assert queued == ["2", '431["ack"]', '42["message",{"n":1}]', '42["message",{"n":2}]']

    # Once the writer has taken everything, frames go directly again.
    await sio.emit("message", {"n": 3}, to=sid)
    assert _payloads(protocol.transport.written)[-1] == '42["message",{"n":3}]'
    assert sio.manager.stats.direct == 2 and sio.manager.stats.queued == 2


# -- a bare Engine.IO client on a WebSocket ----------------------------------------------------------------


class BareClient:
    """Engine.IO v4 / Socket.IO v5 by hand over the ``websockets`` library: what a minimal client sends."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.events: list[tuple[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, base: str, *, compression: str | None = None) -> BareClient:
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        ws = await websockets.connect(url, compression=compression)
        opened = await ws.recv()
        assert isinstance(opened, str) and opened.startswith("0{")
        await ws.send("40")
        client = cls(ws)
        await client.until(lambda: ("connected", None) in client.events)
        return client

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in self.ws:
                assert isinstance(frame, str)
                if frame == "2":
                    await self.ws.send("3")
                elif frame.startswith("40"):
                    self.events.append(("connected", None))
                elif frame.startswith("42"):
                    name, *args = json.loads(frame[2:])
                    self.events.append((name, args[0] if args else None))

    async def emit(self, name: str, data: Any) -> None:
        await self.ws.send("42" + json.dumps([name, data]))

    async def until(self, done: Any, seconds: float = 10.0) -> None:
        async with asyncio.timeout(seconds):
            while not done():  # noqa: ASYNC110 - a condition over what the reader task collects
                await asyncio.sleep(0.01)

    async def join(self, room: str) -> None:
        await self.emit("joinRoom", {"roomId": room})
        await self.until(lambda: ("joinedRoom", {"roomId": room}) in self.events)

    def message_ids(self) -> list[str]:
        return [data["_id"] for name, data in self.events if name == "message"]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


class PollingProbe(Probe):
    """python-socketio's client kept on long-polling: reached through its Engine.IO queue, never a frame."""

    def __init__(self, transports: list[str]) -> None:
        super().__init__()
        self.transports = transports

    async def connect(self, base: str, query: str = "") -> PollingProbe:
        await self.sio.connect(base + query, transports=self.transports, wait_timeout=10)
        return self


def ids(probe: Probe) -> list[str]:
    return [m["_id"] for m in probe.messages()]


async def frames_by_path(http: httpx.AsyncClient) -> dict[str, float]:
    text = (await http.get("/metrics")).text
    found = re.findall(r'^retake_socketio_broadcast_frames_total\{path="(\w+)"\} ([0-9.e+]+)$', text, re.M)
    return {path: float(value) for path, value in found}


async def barrage(http: httpx.AsyncClient, senders: list[Agent], room: str, count: int) -> list[str]:
    """``count`` chat lines from several senders at once (so broadcasts overlap); their ids."""

    async def send(i: int) -> str:
        sender = senders[i % len(senders)]
        body = {"message": f"line {i}", "destination_user_id": room}
        response = await http.post(SEND, json=body, headers=sender.headers)
        assert response.status_code == 200, response.text
        return str(response.json()["message_id"])

    return list(await asyncio.gather(*(send(i) for i in range(count))))


@pytest.fixture
async def http(node: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node.base, timeout=20) as client:
        yield client


@pytest.mark.e2e
async def test_every_transport_sees_the_same_messages_in_the_same_order(node: Server, http: httpx.AsyncClient) -> None:
    streamer = await register(http, "fan")
    senders = [await register(http, "fan") for _ in range(4)]
    before = await frames_by_path(http)
    websocket = await Probe().connect(node.base)
    polling = await PollingProbe(["polling"]).connect(node.base)
    upgraded = await PollingProbe(["polling", "websocket"]).connect(node.base)
    bare = await BareClient.connect(node.base)
    probes = [websocket, polling, upgraded]
    try:
        for probe in probes:
            await probe.join(streamer.user_id)
        await bare.join(streamer.user_id)

        async def refused_events() -> None:
            # Packets addressed to one client (error answers) interleave with the room's broadcasts.
            for i in range(20):
                await bare.emit("noSuchEvent", {"i": i})
                await asyncio.sleep(0.005)

        sent, _ = await asyncio.gather(barrage(http, senders, streamer.user_id, 80), refused_events())
        expected = set(sent)
        for probe in probes:
            await probe.wait_for(lambda _e, p=probe: set(ids(p)) >= expected, seconds=20)  # type: ignore[misc]
        await bare.until(lambda: set(bare.message_ids()) >= expected, seconds=20)
        await bare.until(lambda: sum(1 for name, _ in bare.events if name == "error") == 20)

        reference = ids(websocket)
        assert sorted(reference) == sorted(sent) and len(reference) == len(sent)  # each once
        for probe in (polling, upgraded):
            assert ids(probe) == reference
        assert bare.message_ids() == reference
        assert upgraded.sio.transport() == "websocket"

        after = await frames_by_path(http)
        # Four clients (joined before the barrage) got 80 frames each: the three on WebSockets directly, the
        # long-polling one through its queue.
        assert after["direct"] - before.get("direct", 0) >= 3 * 80
        assert after["queued"] - before.get("queued", 0) >= 80
    finally:
        for probe in probes:
            await probe.close()
        await bare.close()


@pytest.mark.e2e
async def test_a_client_that_leaves_mid_barrage_does_not_disturb_the_others(
    node: Server, http: httpx.AsyncClient
) -> None:
    streamer = await register(http, "fan")
    senders = [await register(http, "fan") for _ in range(3)]
    stays, leaves = await BareClient.connect(node.base), await BareClient.connect(node.base)
    try:
        for client in (stays, leaves):
            await client.join(streamer.user_id)

        async def drop_mid_barrage() -> None:
            await asyncio.sleep(0.05)
            leaves.ws.transport.abort()

        sent, _ = await asyncio.gather(barrage(http, senders, streamer.user_id, 40), drop_mid_barrage())
        await stays.until(lambda: set(stays.message_ids()) >= set(sent), seconds=20)
        assert len(stays.message_ids()) == len(sent)
        assert (await http.get("/health")).status_code == 200
    finally:
        await stays.close()
        with contextlib.suppress(Exception):
            await leaves.close()


@pytest.mark.e2e
async def test_with_compression_negotiated_frames_take_the_asgi_path(tmp_path: Path) -> None:
    fake = FakeOEmbed()
    with fake.running():
        server = start_server(tmp_path, fake.url, RETAKE_WS_PER_MESSAGE_DEFLATE="true")
        try:
            async with httpx.AsyncClient(base_url=server.base, timeout=20) as http:
                streamer, sender = await register(http, "defl"), await register(http, "defl")
                client = await BareClient.connect(server.base, compression="deflate")
                try:
                    assert client.ws.protocol.extensions, "the server should have accepted permessage-deflate"
                    await client.join(streamer.user_id)
                    sent = await barrage(http, [sender], streamer.user_id, 10)
                    await client.until(lambda: client.message_ids() == sent or set(client.message_ids()) >= set(sent))
                    paths = await frames_by_path(http)
                    assert paths.get("direct", 0) == 0 and paths["queued"] >= 10
                finally:
                    await client.close()
        finally:
            stop_server(server)
    assert "Traceback" not in server.log()


def test_the_fast_path_is_installed_on_this_engine_release() -> None:
    """If python-engineio moves the internals fanout.py relies on, this fails (the server would still work,
    through the library's slower path, with a warning)."""
    from retake.config import Settings

    realtime = Realtime(Settings(data_dir=Path("/nonexistent"), rtmp_enabled=False))
    assert realtime.direct_frames
    assert isinstance(realtime.sio, socketio.AsyncServer)
