"""Many cheap viewers of one stream for ``bench.media --viewers N``: the server's cost per viewer, not the load
generator's.

Every viewer is a raw socket that one thread reads and throws away (no demuxing, no decoding): retake's
HTTP-FLV (``GET /live/<id>.flv``) or WebSocket-FLV (the same path, upgraded; only frame headers are parsed, to
answer the server's keep-alive pings [RFC 6455 §5.5.2]), and nginx-rtmp's RTMP play (handshake, connect,
createStream and play by ``bench.rtmp_client``, then read-and-discard with an Acknowledgement every half window
[RTMP §5.4.3], which also keeps nginx from pinging). The per-viewer figure is the server's CPU with N viewers
minus the same server's CPU with none, divided by N, in one run.
"""

from __future__ import annotations

import base64
import contextlib
import os
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bench.rtmp_client import Player
from retake.ingest.rtmp.chunk import RtmpMessage
from retake.ingest.rtmp.messages import MessageType

READ_SIZE = 256 * 1024
NGINX_ACK_WINDOW = 5_000_000  # nginx-rtmp's default ack_window, if it did not say


def http_request(host: str, port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: bench-viewer\r\n\r\n".encode()


def websocket_request(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame (clients must mask [RFC 6455 §5.3]); control payloads are < 126 bytes."""
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x80 | opcode, 0x80 | len(payload))) + mask + body


class WsSkipper:
    """Walks WebSocket frames without keeping their payloads; returns the payloads of pings."""

    def __init__(self) -> None:
        self._head = b""
        self._skip = 0
        self._ping: bytearray | None = None

    def feed(self, data: bytes) -> list[bytes]:
        pings: list[bytes] = []
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                take = min(self._skip, end - pos)
                if self._ping is not None:
                    self._ping += data[pos : pos + take]
                self._skip -= take
                pos += take
                if not self._skip and self._ping is not None:
                    pings.append(bytes(self._ping))
                    self._ping = None
                continue
            buf = self._head + data[pos : pos + 14]
            header = _frame_header(buf)
            if header is None:
                self._head = buf
                pos = end
                continue
            used, opcode, length = header
            pos += used - len(self._head)
            self._head = b""
            self._skip = length
            if opcode == 0x9:
                self._ping = bytearray()
                if not length:
                    pings.append(b"")
                    self._ping = None
        return pings


def _frame_header(buf: bytes) -> tuple[int, int, int] | None:
    """(header size, opcode, payload length) of an unmasked server frame, None if ``buf`` is too short."""
    if len(buf) < 2:
        return None
    opcode, length = buf[0] & 0x0F, buf[1] & 0x7F
    if length == 126:
        return (4, opcode, struct.unpack_from("!H", buf, 2)[0]) if len(buf) >= 4 else None
    if length == 127:
        return (10, opcode, struct.unpack_from("!Q", buf, 2)[0]) if len(buf) >= 10 else None
    return 2, opcode, length


@dataclass
class _Conn:
    sock: socket.socket
    on_data: Callable[[_Conn, bytes], None]
    received: int = 0
    acked: int = 0
    head_done: bool = False
    ws: WsSkipper | None = None
    rtmp: Player | None = None


@dataclass
class Crowd:
    """N viewers served by one thread; ``received`` bytes and ``dropped`` connections for the report."""

    conns: list[_Conn] = field(default_factory=list)
    dropped: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    @property
    def received(self) -> int:
        return sum(c.received for c in self.conns)

    def add_http(self, host: str, port: int, path: str, websocket: bool = False) -> None:
        sock = socket.create_connection((host, port), timeout=10)
        request = websocket_request(host, port, path) if websocket else http_request(host, port, path)
        sock.sendall(request)
        conn = _Conn(sock, _on_http, ws=WsSkipper() if websocket else None)
        self.conns.append(conn)

    def add_rtmp(self, url: str) -> None:
        player = Player(url)
        # Read until media flows (the window size and the play answers are in), then discard from there on.
        while True:
            message = player.read_message()
            if message.type_id in (MessageType.VIDEO, MessageType.AUDIO):
                break
        conn = _Conn(player.sock, _on_rtmp, received=player.received, acked=player.received, rtmp=player)
        self.conns.append(conn)

    def run(self) -> None:
        selector = selectors.DefaultSelector()
        for conn in self.conns:
            conn.sock.setblocking(False)
            selector.register(conn.sock, selectors.EVENT_READ, conn)
        try:
            while not self.stop.is_set():
                for key, _ in selector.select(timeout=0.5):
                    conn = key.data
                    try:
                        data = conn.sock.recv(READ_SIZE)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    if not data:
                        selector.unregister(conn.sock)
                        self.dropped += 1
                        continue
                    conn.received += len(data)
                    try:
                        conn.on_data(conn, data)
                    except (RuntimeError, OSError):
                        selector.unregister(conn.sock)
                        self.dropped += 1
        finally:
            selector.close()

    def close(self) -> None:
        self.stop.set()
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.sock.close()


def _on_http(conn: _Conn, data: bytes) -> None:
    if not conn.head_done:
        if b"\r\n\r\n" not in data:
            return  # the head arrives in one segment on loopback; the rest of it is discarded too
        status = data.split(b"\r\n", 1)[0]
        if b" 200 " not in status and b" 101 " not in status:
            raise RuntimeError(f"viewer refused: {status!r}")
        conn.head_done = True
        data = data.split(b"\r\n\r\n", 1)[1]
    if conn.ws is not None:
        for ping in conn.ws.feed(data):
            _send(conn.sock, masked_frame(0xA, ping))


def _on_rtmp(conn: _Conn, data: bytes) -> None:
    player = conn.rtmp
    assert player is not None
    window = player._window or NGINX_ACK_WINDOW
    if conn.received - conn.acked >= window // 2:
        conn.acked = conn.received
        ack = struct.pack(">I", conn.received & 0xFFFFFFFF)
        _send(conn.sock, player.writer.write(RtmpMessage(MessageType.ACKNOWLEDGEMENT, 0, 0, ack, 2)))


def _send(sock: socket.socket, data: bytes) -> None:
    # Tiny control messages on a socket the server is reading: one try, then a short blocking wait.
    sock.setblocking(True)
    try:
        sock.sendall(data)
    finally:
        sock.setblocking(False)


def start_crowd(adders: Sequence[Callable[[Crowd], None]]) -> tuple[Crowd, threading.Thread]:
    """Connect every viewer (one after the other, as a crowd joins), then serve them all from one thread."""
    crowd = Crowd()
    for add in adders:
        add(crowd)
        time.sleep(0.005)  # a join is a GOP burst for the server: spread them a little
    thread = threading.Thread(target=crowd.run, daemon=True)
    thread.start()
    return crowd, thread
