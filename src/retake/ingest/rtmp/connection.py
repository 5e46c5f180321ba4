"""Server side of one RTMP publishing connection, sans-IO (the h11 shape).

Feed the socket's bytes to :meth:`RtmpConnection.receive_data`, take events with :meth:`next_event` (the
accepted publish's media arrive as :class:`retake.av.message.MediaMessage`, everything else as
:mod:`~retake.ingest.rtmp.events`), write whatever :meth:`data_to_send` returns. The owner decides on a
``PublishRequested`` with :meth:`accept_publish` (NetStream.Publish.Start) or :meth:`reject_publish`
(NetStream.Publish.BadName, level error, then closed) — the key is checked *before* Publish.Start
(ossrs/srs#4038). Until that decision the connection parses nothing further, so no media can slip in
unauthorized.

Any malformed or out-of-sequence input raises :class:`~retake.ingest.errors.RtmpProtocolError`; the
connection is then dead and every later ``receive_data`` raises again.
"""

from __future__ import annotations

import enum
import os
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from retake.av import amf0
from retake.av.errors import AmfError
from retake.av.message import MediaKind, MediaMessage
from retake.ingest.errors import IngestError, RtmpProtocolError
from retake.ingest.rtmp.chunk import ChunkReader, ChunkWriter, RtmpMessage
from retake.ingest.rtmp.events import (
    Connected,
    ConnectionClosed,
    Event,
    HandshakeCompleted,
    PublishEnded,
    PublishRequested,
    strip_query,
)
from retake.ingest.rtmp.handshake import HandshakeState, ServerHandshake
from retake.ingest.rtmp.messages import (
    Acknowledgement,
    Command,
    MessageType,
    PeerBandwidthLimit,
    SetChunkSize,
    SetPeerBandwidth,
    UserControl,
    UserControlEvent,
    WindowAckSize,
    status,
)


class RtmpStateError(IngestError):
    """The *owner* called a method that the connection's state does not allow (a bug, not bad input)."""


@dataclass(frozen=True, slots=True)
class RtmpConfig:
    """Per-connection settings. Defaults follow the media notes §7 and bound memory per connection."""

    chunk_size: int = 4096  # we announce it; ffmpeg mirrors it, otherwise it keeps 128-byte chunks
    window_ack_size: int = 2_500_000
    peer_bandwidth: int = 2_500_000
    max_message_size: int = 8 * 1024 * 1024
    max_chunk_streams: int = 64
    max_buffered: int = 16 * 1024 * 1024  # all partial messages together
    max_paused_input: int = 1024 * 1024  # unparsed bytes held while a publish decision is pending
    # Until a publish is accepted the peer is a stranger: each message, all partial messages together and the
    # input held while its key is checked stay under this (a connect command is a few hundred bytes), so
    # unauthenticated connections cannot make the server hold megabytes each.
    preauth_max_bytes: int = 64 * 1024
    # Work done per receive_data()/continue_parsing() call before it returns with input left (input_pending):
    # the unit is one chunk; a message costs message_cost more. ~0.5 ms of parsing at chunk size 1.
    parse_budget: int = 256
    message_cost: int = 4


class ConnState(enum.Enum):
    HANDSHAKE = "handshake"
    AWAIT_CONNECT = "await_connect"
    CONNECTED = "connected"
    PUBLISH_PENDING = "publish_pending"
    PUBLISHING = "publishing"
    CLOSED = "closed"


class Trigger(enum.Enum):
    HANDSHAKE_DONE = "handshake_done"
    CONNECT = "connect"
    PUBLISH = "publish"
    ACCEPT = "accept"
    REJECT = "reject"
    UNPUBLISH = "unpublish"


S = ConnState
_TRANSITIONS: Final[Mapping[tuple[ConnState, Trigger], ConnState]] = {
    (S.HANDSHAKE, Trigger.HANDSHAKE_DONE): S.AWAIT_CONNECT,
    (S.AWAIT_CONNECT, Trigger.CONNECT): S.CONNECTED,
    (S.CONNECTED, Trigger.PUBLISH): S.PUBLISH_PENDING,
    (S.PUBLISH_PENDING, Trigger.ACCEPT): S.PUBLISHING,
    (S.PUBLISH_PENDING, Trigger.REJECT): S.CLOSED,
    (S.PUBLISHING, Trigger.UNPUBLISH): S.CONNECTED,
}

# Which commands a client may send in which state; anything else known is a protocol error. Unknown
# commands after connect get ``_error`` (FMLE's ``_checkbw``, a player's ``play``).
_COMMAND_STATES: Final[Mapping[str, frozenset[ConnState]]] = {
    "connect": frozenset({S.AWAIT_CONNECT}),
    "releaseStream": frozenset({S.CONNECTED, S.PUBLISHING}),
    "FCPublish": frozenset({S.CONNECTED, S.PUBLISHING}),
    "createStream": frozenset({S.CONNECTED, S.PUBLISHING}),
    "publish": frozenset({S.CONNECTED}),
    "FCUnpublish": frozenset({S.CONNECTED, S.PUBLISHING}),
    "deleteStream": frozenset({S.CONNECTED, S.PUBLISHING}),
    "closeStream": frozenset({S.CONNECTED, S.PUBLISHING}),
}
_UNKNOWN_COMMAND_STATES: Final = frozenset({S.CONNECTED, S.PUBLISHING})
# Replies the client might send to calls; we never call, so they are ignored.
_IGNORED_COMMANDS: Final = frozenset({"_result", "_error", "onStatus", "onBWDone", "onFCPublish"})

_MEDIA_KINDS: Final[Mapping[int, MediaKind]] = {MessageType.AUDIO: "audio", MessageType.VIDEO: "video"}

# Plain module globals for the per-read path: reading a member off an Enum class goes through EnumType's
# __getattr__ hook in Python 3.11 (~70 ns each, several per read).
_HANDSHAKE: Final = ConnState.HANDSHAKE
_PUBLISH_PENDING: Final = ConnState.PUBLISH_PENDING
_PUBLISHING: Final = ConnState.PUBLISHING
_CLOSED: Final = ConnState.CLOSED


class RtmpConnection:
    """One server-side RTMP connection that accepts a single publish at a time."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        config: RtmpConfig | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.config = config or RtmpConfig()
        epoch = clock()
        self.state = ConnState.HANDSHAKE
        # A closure over the clock, not a bound method: the handshake must not point back at the connection
        # (a reference cycle keeps everything the connection holds alive until a full GC).
        self._handshake: ServerHandshake | None = ServerHandshake(
            now_ms=lambda: int((clock() - epoch) * 1000) & 0xFFFFFFFF, random_bytes=random_bytes
        )
        preauth = self.config.preauth_max_bytes
        self._reader = ChunkReader(
            max_message_size=min(self.config.max_message_size, preauth),
            max_chunk_streams=self.config.max_chunk_streams,
            max_buffered=min(self.config.max_buffered, preauth),
        )
        self.authorized = False  # a publish was accepted once: the full limits apply from then on
        self._writer = ChunkWriter()
        self._out = bytearray()
        self._events: deque[Event | MediaMessage] = deque()
        self._error: RtmpProtocolError | None = None
        self.app: str | None = None
        self.publish_stream_id: int | None = None
        self._next_stream_id = 1
        self.bytes_received = 0
        self._last_ack = 0
        self._ack_window = self.config.window_ack_size  # until the client announces its own
        self.dropped_messages = 0

    # -- public API ---------------------------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state is ConnState.CLOSED

    @property
    def input_pending(self) -> bool:
        """The last call stopped on its work budget with input left: call :meth:`continue_parsing` (after
        letting other work run) before feeding more."""
        state = self.state
        return self._reader.exhausted and self._error is None and state is not _CLOSED and state is not _PUBLISH_PENDING

    @property
    def buffered_bytes(self) -> int:
        """What this connection holds of the peer's input (unparsed bytes and partial messages)."""
        return self._reader.buffered_bytes

    def continue_parsing(self) -> None:
        """Parse another budget's worth of the input left by the previous call."""
        if self._error is not None or self.state is _CLOSED:
            return
        self._reader.budget = self.config.parse_budget
        try:
            self._pump()
        except RtmpProtocolError as exc:
            self._error = exc
            self.state = ConnState.CLOSED
            raise

    def receive_data(self, data: bytes) -> None:
        """Feed bytes from the peer; ``b""`` means the peer closed its side."""
        if self._error is not None:
            raise RtmpProtocolError("connection already failed") from self._error
        if self.state is _CLOSED:
            return
        if not data:
            self.state = ConnState.CLOSED
            self._events.append(ConnectionClosed())
            return
        self._reader.budget = self.config.parse_budget
        try:
            self._receive(data)
        except RtmpProtocolError as exc:
            self._error = exc
            self.state = ConnState.CLOSED
            raise

    def next_event(self) -> Event | MediaMessage | None:
        return self._events.popleft() if self._events else None

    def events(self) -> list[Event | MediaMessage]:
        """Take every pending event."""
        events = list(self._events)
        self._events.clear()
        return events

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def accept_publish(self, description: str = "Publishing started.") -> None:
        """Answer the pending publish with Stream Begin + NetStream.Publish.Start and resume parsing.

        Bytes that arrived after ``publish`` are processed now, so this may raise RtmpProtocolError.
        """
        self._local_transition(Trigger.ACCEPT)
        if not self.authorized:
            self.authorized = True
            self._reader.max_message_size = self.config.max_message_size
            self._reader.max_buffered = self.config.max_buffered
        self._reader.budget = self.config.parse_budget
        stream_id = self.publish_stream_id or 0
        self._send(UserControl.stream_begin(stream_id).to_message())
        self._send_status(stream_id, "status", "NetStream.Publish.Start", description)
        try:
            self._pump()
        except RtmpProtocolError as exc:
            self._error = exc
            self.state = ConnState.CLOSED
            raise

    def reject_publish(self, description: str = "Stream key refused.", code: str = "NetStream.Publish.BadName") -> None:
        """Answer the pending publish with an error status and close. ffmpeg then exits with "Server
        error"; OBS (since obs-studio#3078) stops instead of retrying."""
        self._local_transition(Trigger.REJECT)
        self._send_status(self.publish_stream_id or 0, "error", code, description)
        self.publish_stream_id = None

    def close(self) -> None:
        """Mark the connection closed from our side (the owner closes the socket) and drop its buffers."""
        self.state = ConnState.CLOSED
        self._handshake = None
        if self._error is not None:
            # Its traceback holds the owner's frames, which hold the owner's connection record and this.
            self._error = self._error.with_traceback(None)
            self._error.__context__ = self._error.__cause__ = None
        self._reader.release()
        self._events.clear()
        self._out.clear()

    # -- state machine ------------------------------------------------------------------------------------

    def _transition(self, trigger: Trigger) -> None:
        new = _TRANSITIONS.get((self.state, trigger))
        if new is None:
            raise RtmpProtocolError(f"{trigger.value} not allowed in state {self.state.value}")
        self.state = new

    def _local_transition(self, trigger: Trigger) -> None:
        new = _TRANSITIONS.get((self.state, trigger))
        if new is None:
            raise RtmpStateError(f"cannot {trigger.value} in state {self.state.value}")
        self.state = new

    # -- input --------------------------------------------------------------------------------------------

    def _receive(self, data: bytes) -> None:
        self.bytes_received += len(data)
        handshake = self._handshake
        if self.state is _HANDSHAKE and handshake is not None:
            data = handshake.receive(data)
            self._out += handshake.data_to_send()
            if handshake.state is not HandshakeState.DONE:
                return
            self._handshake = None
            self._transition(Trigger.HANDSHAKE_DONE)
            self._events.append(HandshakeCompleted(handshake.client_digest, bool(handshake.c2_echoed_s1)))
        self._reader.feed(data)
        self._maybe_acknowledge()
        self._pump()

    def _maybe_acknowledge(self) -> None:
        # The peer wants an Acknowledgement each time a window's worth of bytes arrived [RTMP §5.4.3-4].
        if self._ack_window and self.bytes_received - self._last_ack >= self._ack_window:
            self._last_ack = self.bytes_received
            self._send(Acknowledgement(self.bytes_received & 0xFFFFFFFF).to_message())

    def _pump(self) -> None:
        reader = self._reader
        cost = self.config.message_cost
        while self.state is not _PUBLISH_PENDING and self.state is not _CLOSED:
            raw = reader.next_raw()
            if raw is None:
                return
            type_id, stream_id, timestamp, payload, _csid = raw
            reader.budget -= cost
            # Media first: it is nearly every message of a publish (~73 a second per stream).
            kind = _MEDIA_KINDS.get(type_id)
            if kind is not None:
                if self.state is _PUBLISHING and stream_id == self.publish_stream_id and payload:
                    self._events.append(MediaMessage(kind, timestamp, payload))
                else:
                    self.dropped_messages += 1
            else:
                self._handle(RtmpMessage(*raw))
        paused_limit = self.config.max_paused_input
        if not self.authorized:
            paused_limit = min(paused_limit, self.config.preauth_max_bytes)
        if self.state is _PUBLISH_PENDING and self._reader.unparsed_bytes > paused_limit:
            raise RtmpProtocolError("too much data sent while the publish is being authorized")

    def _handle(self, message: RtmpMessage) -> None:
        kind = message.type_id
        if kind in (MessageType.SET_CHUNK_SIZE, MessageType.ABORT, MessageType.ACKNOWLEDGEMENT):
            return  # the chunk reader applied the first two; we never wait for acknowledgements
        if kind == MessageType.WINDOW_ACK_SIZE:
            self._ack_window = WindowAckSize.parse(message.payload).size
        elif kind == MessageType.SET_PEER_BANDWIDTH:
            SetPeerBandwidth.parse(message.payload)  # validated; we do not throttle our tiny output
        elif kind == MessageType.USER_CONTROL:
            control = UserControl.parse(message.payload)
            if control.event == UserControlEvent.PING_REQUEST:
                self._send(UserControl(UserControlEvent.PING_RESPONSE, control.data[:4]).to_message())
        elif kind in (MessageType.COMMAND_AMF0, MessageType.COMMAND_AMF3):
            command = Command.parse(message.payload, amf3=kind == MessageType.COMMAND_AMF3)
            self._on_command(command, message.stream_id)
        elif kind in (MessageType.DATA_AMF0, MessageType.DATA_AMF3):
            self._on_data(message)
        elif kind in _MEDIA_KINDS:
            self._on_media(_MEDIA_KINDS[kind], message)
        else:
            self.dropped_messages += 1  # shared objects, aggregates: not sent by publishing encoders

    def _publishing_on(self, stream_id: int) -> bool:
        return self.state is ConnState.PUBLISHING and stream_id == self.publish_stream_id

    def _on_media(self, kind: MediaKind, message: RtmpMessage) -> None:
        if not self._publishing_on(message.stream_id) or not message.payload:
            self.dropped_messages += 1
            return
        self._events.append(MediaMessage(kind, message.timestamp, message.payload))

    def _on_data(self, message: RtmpMessage) -> None:
        payload = message.payload
        if message.type_id == MessageType.DATA_AMF3:
            if not payload or payload[0] != 0:
                raise RtmpProtocolError("AMF3-encoded data messages are not supported")
            payload = payload[1:]
        if not payload:
            return
        try:
            name, offset = amf0.decode_one(payload)
        except AmfError as exc:
            raise RtmpProtocolError(str(exc)) from exc
        if name == "@setDataFrame":
            # Over RTMP the metadata is wrapped: "@setDataFrame", "onMetaData", {...}; an FLV script tag
            # carries it without the wrapper (as ffmpeg's handle_notify strips it).
            payload = payload[offset:]
        elif isinstance(name, str) and name.startswith("@"):
            self.dropped_messages += 1  # @clearDataFrame and friends
            return
        if not self._publishing_on(message.stream_id) or not payload:
            self.dropped_messages += 1
            return
        self._events.append(MediaMessage("script", message.timestamp, payload))

    # -- commands -----------------------------------------------------------------------------------------

    def _on_command(self, command: Command, stream_id: int) -> None:
        name = command.name
        if name in _IGNORED_COMMANDS:
            return
        allowed = _COMMAND_STATES.get(name)
        if allowed is None:
            if self.state not in _UNKNOWN_COMMAND_STATES:
                raise RtmpProtocolError("command before connect")
            if command.transaction_id:
                self._send_command(
                    "_error",
                    command.transaction_id,
                    None,
                    status("error", "NetConnection.Call.Failed", f"Method not supported: {name[:64]}"),
                )
            return
        if self.state not in allowed:
            raise RtmpProtocolError(f"{name} not allowed in state {self.state.value}")
        handler = getattr(self, "_cmd_" + name)
        handler(command, stream_id)

    def _cmd_connect(self, command: Command, stream_id: int) -> None:
        params = command.command_object
        if not isinstance(params, dict):
            raise RtmpProtocolError("connect without a command object")
        app = params.get("app", "")
        tc_url = params.get("tcUrl", "")
        flash_ver = params.get("flashVer", "")
        self.app = strip_query(app).strip("/") if isinstance(app, str) else ""
        self._transition(Trigger.CONNECT)
        # The set ffmpeg's own listener sends [media notes §1.4 step 2]; our Set Chunk Size goes out before
        # anything else is chunked with it.
        self._send(WindowAckSize(self.config.window_ack_size).to_message())
        self._send(SetPeerBandwidth(self.config.peer_bandwidth, PeerBandwidthLimit.DYNAMIC).to_message())
        self._send(UserControl.stream_begin(0).to_message())
        self._send(SetChunkSize(self.config.chunk_size).to_message())
        self._writer.chunk_size = self.config.chunk_size
        result = status("status", "NetConnection.Connect.Success", "Connection succeeded.")
        result["objectEncoding"] = 0.0  # we speak AMF0 only
        self._send_command("_result", command.transaction_id, {"fmsVer": "FMS/3,0,1,123", "capabilities": 31.0}, result)
        self._events.append(
            Connected(
                self.app,
                flash_ver if isinstance(flash_ver, str) else "",
                tc_url if isinstance(tc_url, str) else "",
            )
        )

    def _cmd_releaseStream(self, command: Command, stream_id: int) -> None:
        if command.transaction_id:
            self._send_command("_result", command.transaction_id, None, amf0.UNDEFINED)

    def _cmd_FCPublish(self, command: Command, stream_id: int) -> None:
        self._send_command("onFCPublish", 0, None, status("status", "NetStream.Publish.Start", "FCPublish"))

    def _cmd_createStream(self, command: Command, stream_id: int) -> None:
        new_id = self._next_stream_id
        self._next_stream_id += 1
        self._send_command("_result", command.transaction_id, None, float(new_id))

    def _cmd_publish(self, command: Command, stream_id: int) -> None:
        args = command.args
        if not args or not isinstance(args[0], str):
            raise RtmpProtocolError("publish without a stream name")
        publish_type = args[1] if len(args) > 1 and isinstance(args[1], str) else "live"
        self._transition(Trigger.PUBLISH)
        self.publish_stream_id = stream_id
        self._events.append(PublishRequested(stream_id, self.app or "", args[0], publish_type))

    def _end_publish(self, command: str) -> None:
        if self.state is ConnState.PUBLISHING:
            stream_id = self.publish_stream_id or 0
            self._transition(Trigger.UNPUBLISH)
            self.publish_stream_id = None
            self._events.append(PublishEnded(stream_id, command))

    def _cmd_FCUnpublish(self, command: Command, stream_id: int) -> None:
        if self.state is ConnState.PUBLISHING:
            self._send_command("onFCUnpublish", 0, None, status("status", "NetStream.Unpublish.Success", "FCUnpublish"))
        self._end_publish("FCUnpublish")

    def _cmd_deleteStream(self, command: Command, stream_id: int) -> None:
        target = command.args[0] if command.args else None
        if isinstance(target, float) and self.publish_stream_id is not None and target == self.publish_stream_id:
            self._end_publish("deleteStream")

    def _cmd_closeStream(self, command: Command, stream_id: int) -> None:
        if stream_id == self.publish_stream_id:
            self._end_publish("closeStream")

    # -- output -------------------------------------------------------------------------------------------

    def _send(self, message: RtmpMessage) -> None:
        self._out += self._writer.write(message)

    def _send_command(
        self, name: str, transaction_id: float, command_object: amf0.AmfValue, *args: amf0.AmfValue
    ) -> None:
        self._send(Command(name, transaction_id, command_object, args).to_message())

    def _send_status(self, stream_id: int, level: str, code: str, description: str) -> None:
        command = Command("onStatus", 0, None, (status(level, code, description),))
        self._send(command.to_message(stream_id))
