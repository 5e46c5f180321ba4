"""Client side of an RTMP publish, sans-IO (the mirror of :mod:`~retake.ingest.rtmp.connection`).

Bytes in (:meth:`RtmpPublisher.receive_data`), bytes out (:meth:`RtmpPublisher.data_to_send`), events out
(:meth:`RtmpPublisher.next_event`). The sequence is the one ffmpeg's ``rtmp_proto`` and OBS use to publish
[RTMP §7.2.1.1, §7.2.2.6]:

    C0 C1 → (S0 S1 S2) → C2, Set Chunk Size, connect(1) → _result(1) → releaseStream(2), FCPublish(3),
    createStream(4) → _result(4, stream id) → publish(5, key, "live") → onStatus NetStream.Publish.Start

after which :meth:`RtmpPublisher.send_media` chunks FLV tag bodies onto the publish stream. An error status
from the peer (a bad key: NetStream.Publish.BadName, a refused connect) becomes :class:`PublishRefused`; bytes
that are not RTMP raise :class:`~retake.ingest.errors.RtmpProtocolError`.

The stream key is the publish name: it is never part of an event's ``repr`` nor of an error message.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from retake.av import amf0
from retake.av.message import MediaKind
from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp.chunk import ChunkReader, ChunkWriter, RtmpMessage
from retake.ingest.rtmp.handshake import PACKET_SIZE, RTMP_VERSION, HandshakePacket
from retake.ingest.rtmp.messages import (
    Acknowledgement,
    Command,
    MessageType,
    SetChunkSize,
    UserControl,
    UserControlEvent,
    WindowAckSize,
)

# Chunk streams of what a publisher sends, as ffmpeg numbers them (rtmppkt.h): commands on 3, the publish
# command on 8, audio and metadata on 4, video on 6.
CSID_COMMAND: Final = 3
CSID_PUBLISH: Final = 8
CSID_AUDIO: Final = 4
CSID_VIDEO: Final = 6

_TX_CONNECT: Final = 1.0
_TX_CREATE_STREAM: Final = 4.0
_TX_PUBLISH: Final = 5.0
_MEDIA_TYPES: Final[dict[MediaKind, tuple[int, int]]] = {
    "audio": (MessageType.AUDIO, CSID_AUDIO),
    "video": (MessageType.VIDEO, CSID_VIDEO),
    "script": (MessageType.DATA_AMF0, CSID_AUDIO),
}
_SET_DATA_FRAME: Final = amf0.encode("@setDataFrame")


class ClientState(enum.Enum):
    HANDSHAKE = "handshake"  # C0/C1 sent, waiting for S0/S1/S2
    CONNECTING = "connecting"  # connect sent
    CREATING_STREAM = "creating_stream"
    PUBLISHING_REQUESTED = "publish_requested"
    PUBLISHING = "publishing"  # NetStream.Publish.Start received: media may flow
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class ClientEvent:
    """Base class of what the publisher reports."""


@dataclass(frozen=True, slots=True)
class ServerConnected(ClientEvent):
    """``connect`` was answered with NetConnection.Connect.Success."""


@dataclass(frozen=True, slots=True)
class PublishStarted(ClientEvent):
    """NetStream.Publish.Start: the destination takes media on ``stream_id``."""

    stream_id: int


@dataclass(frozen=True, slots=True)
class PublishRefused(ClientEvent):
    """The peer answered with an error (``_error`` or an ``onStatus`` of level error). Permanent for this
    connection: it is closed afterwards."""

    code: str
    description: str


@dataclass(frozen=True, slots=True)
class PublisherConfig:
    chunk_size: int = 4096  # what we announce and chunk with (ffmpeg's default for publishing)
    flash_ver: str = "FMLE/3.0 (compatible; retake)"
    max_message_size: int = 1024 * 1024  # a publisher only receives small control/command messages


class RtmpPublisher:
    """One outgoing RTMP connection that publishes ``key`` to the application ``app`` of ``tc_url``."""

    def __init__(
        self,
        *,
        app: str,
        key: str,
        tc_url: str,
        now_ms: Callable[[], int] = lambda: 0,
        config: PublisherConfig | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.config = config or PublisherConfig()
        self._app = app
        self._key = key
        self._tc_url = tc_url
        self.state = ClientState.HANDSHAKE
        self._reader = ChunkReader(
            max_message_size=self.config.max_message_size, max_buffered=self.config.max_message_size
        )
        self._writer = ChunkWriter()
        self._out = bytearray()
        self._events: deque[ClientEvent] = deque()
        self._hs_buf = bytearray()
        self._c1 = HandshakePacket(now_ms() & 0xFFFFFFFF, 0, random_bytes(PACKET_SIZE - 8)).serialize()
        self._out += bytes((RTMP_VERSION,)) + self._c1
        self.stream_id = 0
        self.bytes_received = 0
        self.bytes_sent = 0  # bytes handed out by data_to_send()
        self._ack_window = 0  # the peer's Window Acknowledgement Size; 0 until it announces one
        self._last_ack = 0

    # -- public API ---------------------------------------------------------------------------------------

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        self.bytes_sent += len(out)
        return out

    def next_event(self) -> ClientEvent | None:
        return self._events.popleft() if self._events else None

    @property
    def closed(self) -> bool:
        return self.state is ClientState.CLOSED

    @property
    def publishing(self) -> bool:
        return self.state is ClientState.PUBLISHING

    def receive_data(self, data: bytes) -> None:
        """Feed bytes read from the socket (``b""`` is ignored: EOF is the owner's to handle)."""
        if self.state is ClientState.CLOSED or not data:
            return
        self.bytes_received += len(data)
        if self.state is ClientState.HANDSHAKE:
            data = self._handshake(data)
            if self.state is ClientState.HANDSHAKE:
                return
        self._reader.feed(data)
        self._maybe_acknowledge()
        while not self.closed:
            message = self._reader.next_message()
            if message is None:
                break
            self._handle(message)

    def send_media(self, kind: MediaKind, timestamp_ms: int, payload: bytes) -> None:
        """Chunk one FLV tag body (audio, video or ``onMetaData``) onto the publish stream."""
        if self.state is not ClientState.PUBLISHING:
            raise RtmpProtocolError(f"cannot send media in state {self.state.value}")
        type_id, csid = _MEDIA_TYPES[kind]
        if kind == "script":
            payload = _SET_DATA_FRAME + payload  # over RTMP, metadata travels wrapped [media notes §1.4]
        self._out += self._writer.write(RtmpMessage(type_id, self.stream_id, timestamp_ms, payload, csid))

    def close(self) -> None:
        """End the publish politely (FCUnpublish, deleteStream); the owner sends what follows and closes."""
        if self.state is ClientState.PUBLISHING:
            self._command("FCUnpublish", 6.0, self._key)
            self._command("deleteStream", 7.0, float(self.stream_id))
        self.state = ClientState.CLOSED

    # -- input --------------------------------------------------------------------------------------------

    def _handshake(self, data: bytes) -> bytes:
        self._hs_buf += data
        if self._hs_buf[0] != RTMP_VERSION:
            raise RtmpProtocolError(f"server answered RTMP version {self._hs_buf[0]}")
        if len(self._hs_buf) < 1 + 2 * PACKET_SIZE:
            return b""
        s1 = bytes(self._hs_buf[1 : 1 + PACKET_SIZE])
        # S2 should echo our C1; like ffmpeg's non-digest path, a server that does not is tolerated.
        rest = bytes(self._hs_buf[1 + 2 * PACKET_SIZE :])
        self._hs_buf.clear()
        self._out += s1  # C2 = echo of S1 [RTMP §5.2.4]
        self._send(SetChunkSize(self.config.chunk_size).to_message())
        self._writer.chunk_size = self.config.chunk_size
        connect: dict[str, amf0.AmfValue] = {
            "app": self._app,
            "type": "nonprivate",
            "flashVer": self.config.flash_ver,
            "tcUrl": self._tc_url,
        }
        self._command("connect", _TX_CONNECT, None, command_object=connect)
        self.state = ClientState.CONNECTING
        return rest

    def _maybe_acknowledge(self) -> None:
        if self._ack_window and self.bytes_received - self._last_ack >= self._ack_window:
            self._last_ack = self.bytes_received
            self._send(Acknowledgement(self.bytes_received & 0xFFFFFFFF).to_message())

    def _handle(self, message: RtmpMessage) -> None:
        kind = message.type_id
        if kind == MessageType.WINDOW_ACK_SIZE:
            self._ack_window = WindowAckSize.parse(message.payload).size
        elif kind == MessageType.USER_CONTROL:
            control = UserControl.parse(message.payload)
            if control.event == UserControlEvent.PING_REQUEST:
                self._send(UserControl(UserControlEvent.PING_RESPONSE, control.data[:4]).to_message())
        elif kind in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            self._on_command(Command.parse(message.payload, amf3=kind == MessageType.COMMAND_AMF3))
        # Set Chunk Size and Abort are applied by the reader; acknowledgements, bandwidth, data: nothing to do.

    def _on_command(self, command: Command) -> None:
        info = _info(command)
        if command.name == "_error" or (info is not None and info.get("level") == "error"):
            code = info.get("code") if info is not None else None
            description = info.get("description") if info is not None else None
            self._events.append(
                PublishRefused(code if isinstance(code, str) else command.name, _safe(description, self._key))
            )
            self.state = ClientState.CLOSED
            return
        if command.name == "_result":
            if command.transaction_id == _TX_CONNECT and self.state is ClientState.CONNECTING:
                self._events.append(ServerConnected())
                self._command("releaseStream", 2.0, self._key)
                self._command("FCPublish", 3.0, self._key)
                self._command("createStream", _TX_CREATE_STREAM)
                self.state = ClientState.CREATING_STREAM
            elif command.transaction_id == _TX_CREATE_STREAM and self.state is ClientState.CREATING_STREAM:
                stream_id = command.args[0] if command.args else None
                if isinstance(stream_id, bool) or not isinstance(stream_id, int | float):
                    raise RtmpProtocolError("createStream answered without a stream id")
                self.stream_id = int(stream_id)
                self._command("publish", _TX_PUBLISH, self._key, "live", stream_id=self.stream_id, csid=CSID_PUBLISH)
                self.state = ClientState.PUBLISHING_REQUESTED
        elif (
            command.name == "onStatus"
            and info is not None
            and self.state is ClientState.PUBLISHING_REQUESTED
            and info.get("code") == "NetStream.Publish.Start"
        ):
            self.state = ClientState.PUBLISHING
            self._events.append(PublishStarted(self.stream_id))
        # onBWDone, onFCPublish, _result of releaseStream/FCPublish and other calls: nothing to do.

    # -- output -------------------------------------------------------------------------------------------

    def _send(self, message: RtmpMessage) -> None:
        self._out += self._writer.write(message)

    def _command(
        self,
        name: str,
        transaction_id: float,
        *args: amf0.AmfValue,
        command_object: amf0.AmfValue = None,
        stream_id: int = 0,
        csid: int = CSID_COMMAND,
    ) -> None:
        self._send(Command(name, transaction_id, command_object, args).to_message(stream_id, csid))


def _info(command: Command) -> dict[str, amf0.AmfValue] | None:
    """The info object of a status or result (the first argument that is an object)."""
    for value in command.args:
        if isinstance(value, dict):
            return value
    return None


def _safe(text: object, key: str) -> str:
    """A peer's description, bounded, with the stream key masked (servers echo the publish name)."""
    value = text if isinstance(text, str) else ""
    if key:
        value = value.replace(key, "***")
    return value[:200]
