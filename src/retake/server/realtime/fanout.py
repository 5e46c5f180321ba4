"""Room broadcasts that cost one encode per message and one ``transport.write`` per viewer.

python-socketio's ``AsyncManager.emit`` encodes a room broadcast once, then creates an ``asyncio.Task`` per
recipient; each puts the packet on that client's Engine.IO queue, whose writer task wakes (through an
``asyncio.wait_for``, one more task on Python 3.11), encodes it again and hands it to the ASGI server, which
frames it. At 1,000 viewers that was ~60-110 µs of CPU per delivered frame and capped one node at ~15 chat
lines/s (docs/benchmarks.md). Here a broadcast builds the WebSocket frame once and writes it to every viewer
whose connection offers a ``FrameSink`` (frames.py); other viewers (long-polling, compression negotiated, another
ASGI server) get the packet on their Engine.IO queue as before.

Order. A client must see its packets in the order they were sent, whichever path each took. Two things make
that hold:

* A frame is written directly only to a client whose Engine.IO queue is empty; a client with packets still
  queued gets the broadcast queued behind them. (Taking its packets off the queue to write them here would
  work for order, but the engine's writer must see its pings: it gives up on a connection after
  ping interval + timeout without a packet, which dropped a few clients per thousand under load.)
* A packet the writer task already took off the queue must be on the wire before a direct write can happen.
  The library's ``poll`` waits through ``asyncio.wait_for``, which on Python 3.11 runs ``queue.get()`` in a task
  of its own: the packet leaves the queue in one step and the writer resumes in a later one, leaving a gap.
  ``_poll_in_place`` waits with ``asyncio.timeout`` in the writer's own task, and ``DirectWebSocket.send``
  writes without waiting, so taking packets and writing them happen in one step with no gap.

This leans on python-engineio internals (``AsyncSocket.queue``, ``poll``, ``upgraded``, ``upgrading``,
``closed``, the ``_async`` driver table). ``supported()`` checks them at start-up: if a future release moves
them, the fast path switches itself off (a warning in the log) and everything goes through the library as is.
tests/realtime/test_fanout.py pins the behaviour (order, fallback, slow readers) against real clients.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Iterator
from typing import Any

import socketio
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import asgi as eio_asgi
from engineio.async_socket import AsyncSocket
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from socketio import packet as sio_packet

from retake.server.realtime.frames import FrameSink, binary_frame, sink_of, text_frame

log = logging.getLogger(__name__)

_SOCKET_ATTRIBUTES = ("queue", "poll", "upgraded", "upgrading", "closed", "server", "sid")


def supported(eio: Any) -> bool:
    """Whether this python-engineio still has the internals the fast path relies on."""
    probe = AsyncSocket.__new__(AsyncSocket)
    try:
        AsyncSocket.__init__(probe, eio, "probe")
    except Exception:
        return False
    return (
        all(hasattr(probe, name) for name in _SOCKET_ATTRIBUTES)
        and isinstance(getattr(eio, "_async", None), dict)
        and "websocket" in eio._async
        and hasattr(eio, "sockets")
    )


async def _poll_in_place(self: AsyncSocket) -> list[eio_packet.Packet]:
    """``AsyncSocket.poll`` without the extra task: the packet leaves the queue in the step the writer runs."""
    queue = self.queue
    try:
        async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
            first = await queue.get()
    except (TimeoutError, asyncio.CancelledError):
        raise eio_exceptions.QueueEmpty() from None
    queue.task_done()
    if first is None:
        return []
    packets = [first]
    while not queue.empty():
        pkt = queue.get_nowait()
        queue.task_done()
        if pkt is None:
            queue.put_nowait(None)  # the close sentinel stays for the next poll, as in the library
            break
        packets.append(pkt)
    return packets


class DirectWebSocket(eio_asgi.WebSocket):  # type: ignore[misc]
    """Engine.IO's ASGI WebSocket wrapper; writes ready-made frames through the connection's sink if it has one."""

    max_buffered = 4 * 1024 * 1024  # each server gets a subclass with its own limit (``install``)

    def __init__(self, handler: Any, server: Any) -> None:
        super().__init__(handler, server)
        self.sink: FrameSink | None = None

    async def __call__(self, environ: dict[str, Any]) -> str:
        sink = sink_of(environ.get("asgi.scope"))
        socket = getattr(self.handler, "__self__", None)
        if sink is not None and isinstance(socket, AsyncSocket):
            self.sink = sink
            socket.poll = types.MethodType(_poll_in_place, socket)
            socket.retake_ws = self
        result: str = await super().__call__(environ)
        return result

    async def send(self, message: str | bytes) -> None:
        sink = self.sink
        if sink is None or not sink.usable:
            await super().send(message)
            return
        frame = text_frame(message.encode()) if isinstance(message, str) else binary_frame(message)
        if not sink.write(frame, self.max_buffered):
            raise OSError("WebSocket closed")  # the Engine.IO writer ends on any error, as for a dropped socket


def _direct_sink(socket: Any) -> FrameSink | None:
    """The sink to write to now, or ``None`` when this client must be reached through its queue."""
    ws = getattr(socket, "retake_ws", None)
    if ws is None or not socket.upgraded or socket.upgrading:
        return None
    sink: FrameSink | None = ws.sink
    return sink if sink is not None and sink.usable else None


class FanoutStats:
    __slots__ = ("direct", "queued")

    def __init__(self) -> None:
        self.direct = 0
        self.queued = 0


class DirectFanout(socketio.AsyncManager):  # type: ignore[misc]
    """The local part of a room broadcast. A subclass of ``AsyncManager`` so that in ``DirectRedisManager`` it
    sits between the pub/sub manager and ``AsyncManager``: the pub/sub ``_handle_emit`` calls ``super().emit``,
    which must land here."""

    stats: FanoutStats
    max_buffered: int

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> None:
        room = to or room
        encoded = None
        if callback is None:
            args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
            encoded = self.server.packet_class(sio_packet.EVENT, namespace=namespace, data=[event, *args]).encode()
        if not isinstance(encoded, str):  # an ack callback, or binary attachments: the library's way
            await super().emit(event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs)
            return
        skip = skip_sid if isinstance(skip_sid, list) else [skip_sid]
        pkt = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = text_frame(pkt.encode().encode())
        sockets = self.server.eio.sockets
        max_buffered = self.max_buffered
        stats = self.stats
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            socket = sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            sink = _direct_sink(socket)
            if sink is None or not socket.queue.empty():
                socket.queue.put_nowait(pkt)
                stats.queued += 1
            elif sink.write(frame, max_buffered):
                stats.direct += 1


class DirectManager(DirectFanout):
    def __init__(self, max_buffered: int) -> None:
        super().__init__()
        self.stats = FanoutStats()
        self.max_buffered = max_buffered


class DirectRedisManager(socketio.AsyncRedisManager, DirectFanout):  # type: ignore[misc]
    """``AsyncRedisManager.emit`` publishes to Redis; each node's listener then calls ``AsyncManager.emit`` via
    ``super()``, which this class's order (pub/sub first, then ``DirectFanout``) routes to the direct fan-out."""

    def __init__(self, url: str, channel: str, max_buffered: int) -> None:
        super().__init__(url, channel=channel)
        self.stats = FanoutStats()
        self.max_buffered = max_buffered


def install(sio: socketio.AsyncServer, max_buffered: int) -> bool:
    """Route this server's WebSockets through ``DirectWebSocket``; ``False`` (and the library as is) if the
    installed python-engineio no longer looks like the one this was written against."""
    eio = sio.eio
    if not supported(eio):
        log.warning("python-engineio internals changed: Socket.IO broadcasts use the library's slower path")
        return False
    # A subclass per server, not a class attribute changed in place: two servers in one process (tests, an
    # embedding app) keep their own limits.
    bound = type("DirectWebSocket", (DirectWebSocket,), {"max_buffered": max_buffered})
    eio._async = {**eio._async, "websocket": bound}
    return True


class FanoutCollector(Collector):
    """``retake_socketio_broadcast_frames_total{path="direct|queued"}``: how room broadcasts reached viewers on
    this node. ``queued`` growing alone means the fast path is off (long-polling clients, compression, or an
    engine release the adapter no longer recognises)."""

    def __init__(self, stats: FanoutStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "retake_socketio_broadcast_frames", "room broadcast frames delivered by path", labels=["path"]
        )
        family.add_metric(["direct"], self._stats.direct)
        family.add_metric(["queued"], self._stats.queued)
        yield family
