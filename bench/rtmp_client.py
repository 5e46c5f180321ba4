"""A small blocking RTMP client for the benchmarks: publish FLV tags with known send times, or play a stream
and stamp each tag's arrival. Built on retake's sans-IO chunk stream and AMF0 code [RTMP §5.2, §5.3, §7.2].

Not a product client: no TLS, no reconnects, one stream per connection.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from retake.av import amf0
from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp.chunk import ChunkReader, ChunkWriter, RtmpMessage
from retake.ingest.rtmp.messages import Command, MessageType, SetChunkSize, UserControlEvent

CHUNK_SIZE = 4096
CSID_AUDIO = 4
CSID_VIDEO = 6
CSID_DATA = 4


class RtmpRefused(Exception):
    """The server answered with an error status (bad key, stream already publishing, ...)."""


@dataclass(frozen=True)
class Tag:
    """One FLV tag to send: kind 8 audio, 9 video, 18 script data."""

    kind: int
    timestamp_ms: int
    payload: bytes


def split_url(url: str) -> tuple[str, int, str, str]:
    """``rtmp://host:port/app/name`` → (host, port, app, name); the name may hold a query string."""
    parts = urlsplit(url)
    if parts.scheme != "rtmp" or not parts.hostname:
        raise ValueError(f"not an rtmp:// URL: {url}")
    path = parts.path.lstrip("/")
    if parts.query:
        path += "?" + parts.query
    app, _, name = path.partition("/")
    return parts.hostname, parts.port or 1935, app, name


class RtmpClient:
    """One connection: handshake, connect, createStream, then publish or play."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.host, self.port, self.app, self.name = split_url(url)
        self.sock = socket.create_connection((self.host, self.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.reader = ChunkReader(max_message_size=16 * 1024 * 1024)
        self.writer = ChunkWriter()
        self.stream_id = 0
        self.received = 0
        self._acked = 0
        self._window = 0
        self._send_lock = threading.Lock()
        self._tid = 0.0
        self._handshake()

    # -- plumbing ---------------------------------------------------------------------------------------

    def _recv_exact(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        return bytes(data)

    def _handshake(self) -> None:
        # C0 + C1 (time, four zero bytes, random), S0 + S1 + S2, then C2 = S1 [RTMP §5.2.2-5.2.4].
        c1 = struct.pack(">I", 0) + bytes(4) + os.urandom(1528)
        self.sock.sendall(b"\x03" + c1)
        s0s1 = self._recv_exact(1 + 1536)
        self._recv_exact(1536)  # S2
        self.sock.sendall(s0s1[1:])

    def send(self, message: RtmpMessage) -> None:
        with self._send_lock:
            self.sock.sendall(self.writer.write(message))

    def read_message(self) -> RtmpMessage:
        while True:
            message = self.reader.next_message()
            if message is not None:
                self._on_control(message)
                return message
            data = self.sock.recv(256 * 1024)
            if not data:
                raise ConnectionError("server closed the connection")
            self.received += len(data)
            self.reader.feed(data)

    def _on_control(self, message: RtmpMessage) -> None:
        if message.type_id == MessageType.WINDOW_ACK_SIZE:
            self._window = struct.unpack(">I", message.payload[:4])[0]
        elif message.type_id == MessageType.USER_CONTROL and len(message.payload) >= 6:
            event, value = struct.unpack(">HI", message.payload[:6])
            if event == UserControlEvent.PING_REQUEST:
                pong = struct.pack(">HI", UserControlEvent.PING_RESPONSE, value)
                self.send(RtmpMessage(MessageType.USER_CONTROL, 0, 0, pong, 2))
        if self._window and self.received - self._acked >= self._window // 2:
            self._acked = self.received  # Acknowledgement [RTMP §5.4.3]
            ack = struct.pack(">I", self.received & 0xFFFFFFFF)
            self.send(RtmpMessage(MessageType.ACKNOWLEDGEMENT, 0, 0, ack, 2))

    def _command(self, name: str, obj: amf0.AmfValue, *args: amf0.AmfValue, stream_id: int = 0) -> float:
        self._tid += 1
        self.send(Command(name, self._tid, obj, args).to_message(stream_id=stream_id))
        return self._tid

    def _wait_result(self, tid: float) -> Command:
        while True:
            message = self.read_message()
            if message.type_id != MessageType.COMMAND_AMF0:
                continue
            command = Command.parse(message.payload)
            if command.transaction_id == tid and command.name in ("_result", "_error"):
                if command.name == "_error":
                    raise RtmpRefused(repr(command.args))
                return command

    def _wait_status(self, wanted: str) -> None:
        while True:
            message = self.read_message()
            if message.type_id != MessageType.COMMAND_AMF0:
                continue
            command = Command.parse(message.payload)
            if command.name != "onStatus":
                continue
            info = command.args[0] if command.args else None
            code = info.get("code") if isinstance(info, dict) else None
            level = info.get("level") if isinstance(info, dict) else None
            if code == wanted:
                return
            if level == "error":
                raise RtmpRefused(str(code))

    def _connect_and_create(self) -> None:
        self.send(SetChunkSize(CHUNK_SIZE).to_message())
        self.writer.chunk_size = CHUNK_SIZE
        tc_url = f"rtmp://{self.host}:{self.port}/{self.app}"
        tid = self._command(
            "connect", {"app": self.app, "type": "nonprivate", "flashVer": "FMLE/3.0 (bench)", "tcUrl": tc_url}
        )
        self._wait_result(tid)
        tid = self._command("createStream", None)
        result = self._wait_result(tid)
        stream_id = result.args[0] if result.args else None
        if not isinstance(stream_id, int | float):
            raise RtmpProtocolError("createStream answered without a stream id")
        self.stream_id = int(stream_id)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Publisher(RtmpClient):
    """Publishes tags in real time (like ``ffmpeg -re``) and records when each video tag was sent."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__(url, timeout)
        self._connect_and_create()
        self._command("publish", None, self.name, "live", stream_id=self.stream_id)
        self._wait_status("NetStream.Publish.Start")
        self.sock.settimeout(None)  # media flows one way; the drain thread may wait long for a byte
        self.sent: dict[bytes, float] = {}  # video payload key -> monotonic send time
        self.stopped = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        # Answer pings and acknowledge; notice a server that closes us (e.g. a takeover).
        try:
            while True:
                self.read_message()
        except (OSError, ConnectionError, RtmpProtocolError):
            self.stopped.set()

    def run(self, tags: Iterable[Tag], *, until: Callable[[], bool] = lambda: False) -> None:
        start = time.monotonic()
        first_ts: int | None = None
        try:
            for tag in tags:
                if self.stopped.is_set() or until():
                    return
                if first_ts is None:
                    first_ts = tag.timestamp_ms
                delay = start + (tag.timestamp_ms - first_ts) / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                payload = tag.payload
                if tag.kind == MessageType.DATA_AMF0:
                    payload = amf0.encode("@setDataFrame") + payload
                csid = CSID_VIDEO if tag.kind == MessageType.VIDEO else CSID_AUDIO
                message = RtmpMessage(tag.kind, self.stream_id, tag.timestamp_ms, payload, csid)
                if tag.kind == MessageType.VIDEO and len(payload) > 5 and payload[1] == 1:
                    self.sent.setdefault(payload_key(payload), time.monotonic())
                self.send(message)
        except OSError:
            self.stopped.set()


class Player(RtmpClient):
    """Plays a live stream and stamps the arrival of each coded video tag."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        super().__init__(url, timeout)
        self._connect_and_create()
        self._command("play", None, self.name, -1000.0, stream_id=self.stream_id)

    def run(self, on_video: Callable[[bytes, float], None], stop: threading.Event) -> None:
        self.sock.settimeout(0.5)
        while not stop.is_set():
            try:
                message = self.read_message()
            except TimeoutError:
                continue
            except (OSError, ConnectionError):
                return
            if message.type_id == MessageType.VIDEO and len(message.payload) > 5 and message.payload[1] == 1:
                on_video(payload_key(message.payload), time.monotonic())


def payload_key(video_payload: bytes) -> bytes:
    """Identifies a video frame across servers: its NAL units (the 5-byte FLV video header may be rewritten)."""
    body = video_payload[5:]
    return len(body).to_bytes(4, "big") + body[:48] + body[-16:]


@dataclass
class Arrivals:
    """Arrival times of video frames at one viewer (thread-safe enough: one writer)."""

    times: dict[bytes, float] = field(default_factory=dict)
    first_at: float | None = None

    def add(self, key: bytes, at: float) -> None:
        if self.first_at is None:
            self.first_at = at
        self.times.setdefault(key, at)
