"""RTMP message bodies: protocol control [RTMP §5.4], user control [RTMP §7.1.7] and AMF0 commands
[RTMP §7.1.1, §7.2]. Each structure has ``parse(payload)`` and ``serialize()``; ``to_message()`` wraps it
in an :class:`~retake.ingest.rtmp.chunk.RtmpMessage` on the chunk stream the spec assigns."""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field
from typing import ClassVar, Final

from retake.av import amf0
from retake.av.errors import AmfError
from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp.chunk import RtmpMessage


class MessageType(enum.IntEnum):
    SET_CHUNK_SIZE = 1
    ABORT = 2
    ACKNOWLEDGEMENT = 3
    USER_CONTROL = 4
    WINDOW_ACK_SIZE = 5
    SET_PEER_BANDWIDTH = 6
    AUDIO = 8
    VIDEO = 9
    DATA_AMF3 = 15
    SHARED_OBJECT_AMF3 = 16
    COMMAND_AMF3 = 17
    DATA_AMF0 = 18
    SHARED_OBJECT_AMF0 = 19
    COMMAND_AMF0 = 20
    AGGREGATE = 22


class UserControlEvent(enum.IntEnum):
    STREAM_BEGIN = 0
    STREAM_EOF = 1
    STREAM_DRY = 2
    SET_BUFFER_LENGTH = 3
    STREAM_IS_RECORDED = 4
    PING_REQUEST = 6
    PING_RESPONSE = 7


class PeerBandwidthLimit(enum.IntEnum):
    HARD = 0
    SOFT = 1
    DYNAMIC = 2


# Chunk streams for what we send: control on 2 [RTMP §5.4, §6.2]; NetConnection commands on 3 and
# NetStream status on 5 (the csids ffmpeg's own listener uses).
CSID_CONTROL: Final = 2
CSID_COMMAND: Final = 3
CSID_STREAM: Final = 5


def _u32(payload: bytes, what: str) -> int:
    if len(payload) < 4:
        raise RtmpProtocolError(f"{what} message too short")
    value: int = struct.unpack_from(">I", payload)[0]
    return value


def _control(type_id: int, payload: bytes) -> RtmpMessage:
    return RtmpMessage(type_id, 0, 0, payload, CSID_CONTROL)


@dataclass(frozen=True, slots=True)
class SetChunkSize:
    size: int

    @classmethod
    def parse(cls, payload: bytes) -> SetChunkSize:
        return cls(_u32(payload, "Set Chunk Size") & 0x7FFFFFFF)

    def serialize(self) -> bytes:
        return struct.pack(">I", self.size & 0x7FFFFFFF)

    def to_message(self) -> RtmpMessage:
        return _control(MessageType.SET_CHUNK_SIZE, self.serialize())


@dataclass(frozen=True, slots=True)
class Abort:
    csid: int

    @classmethod
    def parse(cls, payload: bytes) -> Abort:
        return cls(_u32(payload, "Abort"))

    def serialize(self) -> bytes:
        return struct.pack(">I", self.csid)

    def to_message(self) -> RtmpMessage:
        return _control(MessageType.ABORT, self.serialize())


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    sequence_number: int  # bytes received so far, mod 2^32 [RTMP §5.4.3]

    @classmethod
    def parse(cls, payload: bytes) -> Acknowledgement:
        return cls(_u32(payload, "Acknowledgement"))

    def serialize(self) -> bytes:
        return struct.pack(">I", self.sequence_number & 0xFFFFFFFF)

    def to_message(self) -> RtmpMessage:
        return _control(MessageType.ACKNOWLEDGEMENT, self.serialize())


@dataclass(frozen=True, slots=True)
class WindowAckSize:
    size: int

    @classmethod
    def parse(cls, payload: bytes) -> WindowAckSize:
        return cls(_u32(payload, "Window Acknowledgement Size"))

    def serialize(self) -> bytes:
        return struct.pack(">I", self.size)

    def to_message(self) -> RtmpMessage:
        return _control(MessageType.WINDOW_ACK_SIZE, self.serialize())


@dataclass(frozen=True, slots=True)
class SetPeerBandwidth:
    size: int
    limit_type: int = PeerBandwidthLimit.DYNAMIC

    @classmethod
    def parse(cls, payload: bytes) -> SetPeerBandwidth:
        if len(payload) < 5:
            raise RtmpProtocolError("Set Peer Bandwidth message too short")
        size, limit = struct.unpack_from(">IB", payload)
        return cls(size, limit)

    def serialize(self) -> bytes:
        return struct.pack(">IB", self.size, self.limit_type)

    def to_message(self) -> RtmpMessage:
        return _control(MessageType.SET_PEER_BANDWIDTH, self.serialize())


@dataclass(frozen=True, slots=True)
class UserControl:
    """User Control message [RTMP §7.1.7]: UI16 event type + event data (UI32 for every event we use)."""

    event: int
    data: bytes = field(default=b"")

    @classmethod
    def parse(cls, payload: bytes) -> UserControl:
        if len(payload) < 2:
            raise RtmpProtocolError("User Control message too short")
        event: int = struct.unpack_from(">H", payload)[0]
        return cls(event, bytes(payload[2:]))

    @classmethod
    def stream_begin(cls, stream_id: int) -> UserControl:
        return cls(UserControlEvent.STREAM_BEGIN, struct.pack(">I", stream_id))

    @property
    def value(self) -> int:
        """The first UI32 of the event data (stream id or ping timestamp)."""
        return _u32(self.data, "User Control event")

    def serialize(self) -> bytes:
        return struct.pack(">H", self.event) + self.data

    def to_message(self) -> RtmpMessage:
        return _control(MessageType.USER_CONTROL, self.serialize())


@dataclass(frozen=True, slots=True)
class Command:
    """An AMF0 command [RTMP §7.1.1]: name, transaction id, command object, optional arguments."""

    name: str
    transaction_id: float
    command_object: amf0.AmfValue = None
    args: tuple[amf0.AmfValue, ...] = ()

    type_id: ClassVar[int] = MessageType.COMMAND_AMF0

    @classmethod
    def parse(cls, payload: bytes, *, amf3: bool = False) -> Command:
        if amf3:
            # AMF3 command messages start with a format byte; with 0 the body is plain AMF0.
            if not payload or payload[0] != 0:
                raise RtmpProtocolError("AMF3-encoded commands are not supported")
            payload = payload[1:]
        try:
            values = amf0.decode(payload)
        except AmfError as exc:
            raise RtmpProtocolError(str(exc)) from exc
        if not values or not isinstance(values[0], str):
            raise RtmpProtocolError("command message without a command name")
        name = values[0]
        transaction_id = values[1] if len(values) > 1 else 0.0
        if isinstance(transaction_id, bool) or not isinstance(transaction_id, int | float):
            raise RtmpProtocolError("command transaction id is not a number")
        command_object = values[2] if len(values) > 2 else None
        return cls(name, float(transaction_id), command_object, tuple(values[3:]))

    def serialize(self) -> bytes:
        return amf0.encode(self.name, self.transaction_id, self.command_object, *self.args)

    def to_message(self, stream_id: int = 0, csid: int | None = None) -> RtmpMessage:
        if csid is None:
            csid = CSID_STREAM if stream_id else CSID_COMMAND
        return RtmpMessage(MessageType.COMMAND_AMF0, stream_id, 0, self.serialize(), csid)


def status(level: str, code: str, description: str) -> dict[str, amf0.AmfValue]:
    """The info object of an ``onStatus``/``_result`` [RTMP §7.2.2]."""
    return {"level": level, "code": code, "description": description}
