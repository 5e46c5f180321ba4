"""Pre-framed WebSocket writes: one encoded frame, written as is to many connections.

A chat line to 1,000 viewers is the same bytes 1,000 times. Through ASGI each copy is a ``websocket.send``
message that uvicorn turns into a frame again (a ``Frame`` object, its header, a ``b"".join``) before
``transport.write``. Frames from a server are not masked (RFC 6455 §5.1), so a text frame can be built once and
its bytes handed to every transport. ``FrameWriterProtocol`` is uvicorn's sans-I/O WebSocket protocol plus an
ASGI scope extension, ``retake.websocket.frames``, holding a ``FrameSink`` for the connection; the Socket.IO
layer (``fanout.py``) uses it when it is there and falls back to plain ASGI sends when it is not (another ASGI
server, or a connection that negotiated compression, whose frames must be deflated one by one).

A sink never waits: uvicorn's ``send`` waits while the transport is paused (its buffer above the high-water
mark), which would let a slow viewer hold up a broadcast. The sink instead writes, and when a connection has more
than ``max_buffered`` bytes it cannot get rid of, that viewer is disconnected (close code 1008); its client
reconnects and reads the chat history, and the node never buffers without bound. WebSocket-FLV viewers use the
same sink through :class:`BinaryFrames`, which leaves a lagging viewer to its owner (the FLV fan-out skips it to
the next keyframe) instead of disconnecting it.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from retake.server.http_protocol import cap_send_buffer

log = logging.getLogger(__name__)

SCOPE_EXTENSION = "retake.websocket.frames"
CLOSE_POLICY_VIOLATION = 1008


def text_frame(payload: bytes) -> bytes:
    """One final, unmasked text frame (opcode 0x1) carrying ``payload`` (already UTF-8)."""
    return _frame(0x81, payload)


def binary_frame(payload: bytes) -> bytes:
    """One final, unmasked binary frame (opcode 0x2)."""
    return _frame(0x82, payload)


def _frame(first_byte: int, payload: bytes) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes((first_byte, length))
    elif length < 1 << 16:
        header = struct.pack("!BBH", first_byte, 126, length)
    else:
        header = struct.pack("!BBQ", first_byte, 127, length)
    return header + payload


class FrameSink:
    """Writes ready-made frames to one uvicorn WebSocket connection, or says it cannot (returns ``False``)."""

    __slots__ = ("_protocol", "written")

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol
        self.written = 0  # frames, for tests and metrics

    @property
    def usable(self) -> bool:
        """Open, handshake done, nothing negotiated that changes the frames (permessage-deflate)."""
        p = self._protocol
        return (
            p.handshake_complete
            and not p.close_sent
            and not p.disconnected
            and p.conn.state is State.OPEN
            and not p.conn.extensions
            and not p.transport.is_closing()
        )

    def write(self, frame: bytes, max_buffered: int) -> bool:
        if not self.usable:
            return False
        transport = self._protocol.transport
        if transport.get_write_buffer_size() > max_buffered:
            self.disconnect_slow_reader(max_buffered)
            return False
        transport.write(frame)
        self.written += 1
        return True

    def buffered(self) -> int:
        """Bytes written to the connection that the kernel has not taken yet."""
        return self._protocol.transport.get_write_buffer_size()

    def cap_kernel_buffer(self, size: int) -> None:
        cap_send_buffer(self._protocol.transport, size)

    def send(self, frame: bytes) -> bool:
        """Write ``frame`` whatever is buffered (the caller bounds that); False once the connection closes."""
        p = self._protocol
        if p.close_sent or p.transport.is_closing():
            return False
        p.transport.write(frame)
        self.written += 1
        return True

    def disconnect_slow_reader(self, max_buffered: int) -> None:
        p = self._protocol
        log.warning(
            "disconnecting a WebSocket client %s that is %d bytes behind (limit %d)",
            p.client[0] if p.client else "?",
            p.transport.get_write_buffer_size(),
            max_buffered,
        )
        # The close frame would queue behind the backlog the reader is not taking, so the TCP connection ends
        # now; uvicorn tells the app (websocket.disconnect) and Socket.IO cleans the session up as for any drop.
        p.transport.abort()


class BinaryFrames:
    """A sink as a direct writer of binary messages (``retake.media.viewer_io.DirectWriter``)."""

    __slots__ = ("_sink", "buffered")
    framing = staticmethod(binary_frame)

    def __init__(self, sink: FrameSink) -> None:
        self._sink = sink
        self.buffered: Callable[[], int] = sink._protocol.transport.get_write_buffer_size  # per viewer per tag

    def write(self, framed: bytes) -> bool:
        return self._sink.send(framed)


class FrameWriterProtocol(WebSocketsSansIOProtocol):
    """uvicorn's ``websockets-sansio`` protocol that offers a ``FrameSink`` in the ASGI scope."""

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:
            scope["extensions"][SCOPE_EXTENSION] = FrameSink(self)


def sink_of(scope: Any) -> FrameSink | None:
    extensions = scope.get("extensions") if isinstance(scope, dict) else None
    sink = extensions.get(SCOPE_EXTENSION) if isinstance(extensions, dict) else None
    return sink if isinstance(sink, FrameSink) else None
