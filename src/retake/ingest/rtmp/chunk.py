"""The RTMP chunk stream [RTMP §5.3]: messages split into chunks, reassembled per chunk stream id (csid).

:class:`ChunkReader` parses incoming bytes incrementally (any split of the input gives the same messages),
streaming payload bytes into per-csid partial buffers as they arrive, so memory tracks bytes *received*,
never the length a header *claims*. :class:`ChunkWriter` chunks outgoing messages with header compression
(fmt 0–3) the way ffmpeg's ``ff_rtmp_packet_write`` does, so the two round-trip.

Timestamps are absolute 32-bit values (arithmetic mod 2^32); unwrapping past 49.7 days is the consumer's job.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from retake.ingest.errors import RtmpProtocolError

DEFAULT_CHUNK_SIZE: Final = 128  # [RTMP §5.4.1]
MAX_CHUNK_SIZE: Final = 0xFFFFFF  # a chunk never exceeds a message, whose length is a UI24 [RTMP §5.4.1]
TIMESTAMP_MASK: Final = 0xFFFFFFFF
_EXTENDED: Final = 0xFFFFFF  # 24-bit timestamp field value announcing a 4-byte extended timestamp [§5.3.1.3]
_MESSAGE_HEADER_SIZE: Final = (11, 7, 3, 0)  # by fmt [RTMP §5.3.1.2]
_COMPACT_THRESHOLD: Final = 64 * 1024
_UNLIMITED: Final = 1 << 62

MSG_SET_CHUNK_SIZE: Final = 1
MSG_ABORT: Final = 2

# Message header fields [RTMP §5.3.1.2]: the UI24s are read as a byte and a UI16 (struct has no 3-byte type).
_FMT01: Final = struct.Struct(">BHBHB")  # timestamp (delta), message length, message type id
_FMT2: Final = struct.Struct(">BH")  # timestamp delta
_U32: Final = struct.Struct(">I")
_U32LE: Final = struct.Struct("<I")  # the message stream id is little-endian [RTMP §5.3.1.2.1]

# (type id, message stream id, timestamp, payload, csid): what RtmpMessage holds, without the object, for
# RtmpConnection's per-message path.
RawMessage = tuple[int, int, int, bytes, int]


@dataclass(frozen=True, slots=True)
class RtmpMessage:
    """One reassembled RTMP message."""

    type_id: int
    stream_id: int  # message stream id (0 for protocol control and NetConnection commands)
    timestamp: int  # absolute, mod 2^32, extended-timestamp aware
    payload: bytes = field(repr=False)
    csid: int = 3  # the chunk stream it travels on

    def __repr__(self) -> str:
        return (
            f"RtmpMessage(type_id={self.type_id}, stream_id={self.stream_id}, timestamp={self.timestamp}, "
            f"csid={self.csid}, len={len(self.payload)})"
        )


def encode_basic_header(fmt: int, csid: int) -> bytes:
    """Basic header [RTMP §5.3.1.1]: 1, 2 or 3 bytes depending on the csid range."""
    if not 0 <= fmt <= 3:
        raise ValueError("fmt must be 0..3")
    if 2 <= csid <= 63:
        return bytes(((fmt << 6) | csid,))
    if 64 <= csid <= 319:
        return bytes((fmt << 6, csid - 64))
    if 320 <= csid <= 65599:
        rest = csid - 64
        return bytes(((fmt << 6) | 1, rest & 0xFF, rest >> 8))
    raise ValueError(f"chunk stream id {csid} out of range 2..65599")


class _InStream:
    """Per-csid header state kept by the reader [RTMP §5.3.1.2].

    A plain class with ``__slots__`` (not a dataclass) so that ``chunk.pxd`` can make it a typed extension
    type when compiled."""

    __slots__ = (
        "active",
        "delta",
        "extended",
        "extended_value",
        "length",
        "partial",
        "received",
        "stream_id",
        "timestamp",
        "type_id",
    )

    def __init__(self) -> None:
        self.timestamp = 0  # absolute timestamp of the last message started on this csid
        self.delta = 0  # what a type-3 header that starts a message adds (after fmt 0: that timestamp)
        self.length = 0
        self.type_id = 0
        self.stream_id = 0
        self.extended = False  # the last fmt 0/1/2 header used an extended timestamp
        self.extended_value = 0
        self.active = False  # a message is being reassembled on this csid
        self.received = 0  # its payload bytes so far
        # Its payload once it spans more than one piece of input; a message that arrives whole (every message
        # shorter than a chunk, most audio) is sliced out of the input in one copy and never lands here.
        self.partial: bytearray | None = None


class ChunkReader:
    """Incremental chunk-stream parser: ``feed()`` bytes, then call ``next_message()`` until ``None``.

    Applies Set Chunk Size and Abort itself (they change how the following chunks are read), and still
    returns them so the caller can see them. Limits: ``max_message_size`` per message (checked against the
    header's claim before anything is buffered), ``max_chunk_streams`` distinct csids, and
    ``max_buffered`` bytes across all partial messages; the owner may change them between calls (a
    connection raises them once its publish is authorized).

    ``budget`` bounds the work of the calls that follow: every chunk costs 1 and the owner may charge more
    for what it does with a message (:meth:`spend`). Once it is spent, ``next_message()`` returns ``None``
    with the rest of the input left unparsed (``exhausted`` is then true) until the owner refills it; so
    chunk size 1, where every byte or two is a chunk, cannot keep one caller busy for long.
    """

    def __init__(
        self,
        *,
        max_message_size: int = 8 * 1024 * 1024,
        max_chunk_streams: int = 64,
        max_buffered: int | None = None,
    ) -> None:
        self.max_message_size = max_message_size
        self.max_chunk_streams = max_chunk_streams
        self.max_buffered = max_buffered if max_buffered is not None else 2 * max_message_size
        self._chunk_size = DEFAULT_CHUNK_SIZE
        # Input not parsed yet, from self._pos on. The bytes given to feed() are parsed where they are when
        # everything before them was parsed (the usual case: no copy); a bytearray only holds leftovers.
        self._buf: bytes | bytearray = b""
        self._pos = 0
        self._streams: dict[int, _InStream] = {}
        self._current: _InStream | None = None  # csid whose chunk payload is being read
        self._current_csid = 0
        self._continuation = -1
        self._chunk_left = 0
        self._buffered = 0
        self.budget = _UNLIMITED
        # Diagnostics: chunks seen per header type, and type-3 chunks that repeated an extended timestamp.
        self.header_counts = [0, 0, 0, 0]
        self.extended_type3_chunks = 0

    @property
    def chunk_size(self) -> int:
        """The peer's current chunk size (128 until it sends Set Chunk Size)."""
        return self._chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int) -> None:
        if not 1 <= value <= 0x7FFFFFFF:
            raise RtmpProtocolError(f"invalid chunk size {value}")
        # Larger values are legal but no chunk can exceed a message [RTMP §5.4.1].
        self._chunk_size = min(value, MAX_CHUNK_SIZE)

    @property
    def buffered_bytes(self) -> int:
        """Bytes held: unparsed input plus partial messages."""
        return len(self._buf) - self._pos + self._buffered

    @property
    def exhausted(self) -> bool:
        """The work budget is spent while input may be left to parse."""
        return self.budget <= 0

    def spend(self, units: int) -> None:
        self.budget -= units

    def release(self) -> None:
        """Drop every buffer (the connection is gone): nothing it received outlives it."""
        self._buf = b""
        self._pos = 0
        self._streams.clear()
        self._current = None
        self._buffered = 0

    @property
    def unparsed_bytes(self) -> int:
        """Bytes fed but not parsed yet."""
        return len(self._buf) - self._pos

    def feed(self, data: bytes) -> None:
        if self._pos >= len(self._buf):
            self._buf = data if type(data) is bytes else bytes(data)
            self._pos = 0
            return
        buf = self._buf
        if not isinstance(buf, bytearray):
            buf = self._buf = bytearray(memoryview(buf)[self._pos :])
            self._pos = 0
        buf += data

    def next_message(self) -> RtmpMessage | None:
        """Return the next complete message, or ``None`` when more bytes are needed."""
        raw = self.next_raw()
        return None if raw is None else RtmpMessage(*raw)

    def next_raw(self) -> RawMessage | None:
        """:meth:`next_message` as a plain tuple (type id, message stream id, timestamp, payload, csid)."""
        while True:
            if self.budget <= 0:
                break
            if self._current is None and not self._read_chunk_header():
                break
            message = self._read_payload()
            if message is not None:
                if self._pos > _COMPACT_THRESHOLD:
                    self._compact()
                return message
            if self._current is not None:
                break  # in the middle of a chunk payload: wait for bytes
        self._compact()
        return None

    def _compact(self) -> None:
        pos = self._pos
        if not pos:
            return
        if pos >= len(self._buf):
            self._buf = b""
            self._pos = 0
        elif isinstance(self._buf, bytearray):
            del self._buf[:pos]
            self._pos = 0
        # else: unparsed bytes left in a bytes object; feed() copies them out when more arrive

    def _read_chunk_header(self) -> bool:
        buf = self._buf
        pos = self._pos
        end = len(buf)
        if pos >= end:
            return False
        first = buf[pos]
        fmt = first >> 6
        csid = first & 0x3F
        p = pos + 1
        if csid == 0:
            if end - pos < 2:
                return False
            csid = 64 + buf[pos + 1]
            p = pos + 2
        elif csid == 1:
            if end - pos < 3:
                return False
            csid = 64 + buf[pos + 1] + (buf[pos + 2] << 8)
            p = pos + 3
        header_end = p + _MESSAGE_HEADER_SIZE[fmt]
        if end < header_end:
            return False

        stream = self._streams.get(csid)
        if stream is None:
            # Every chunk stream starts with a type-0 header [RTMP §5.3.1.2.1].
            if fmt != 0:
                raise RtmpProtocolError(f"chunk stream {csid} starts with a type-{fmt} header")
            if len(self._streams) >= self.max_chunk_streams:
                raise RtmpProtocolError("too many chunk streams")
        if fmt < 3:
            read = self._full_header(fmt, csid, stream, p, header_end)
        else:
            assert stream is not None
            read = self._type3_header(stream, header_end)
        if read is None:
            return False
        stream, header_end = read

        self.header_counts[fmt] += 1
        self.budget -= 1
        self._pos = header_end
        self._current = stream
        self._current_csid = csid
        # The basic header of this csid's type-3 chunks when it fits in one byte [RTMP §5.3.1.1].
        self._continuation = 0xC0 | csid if csid < 64 else -1
        left = stream.length - stream.received
        self._chunk_left = left if left < self._chunk_size else self._chunk_size
        return True

    def _full_header(
        self, fmt: int, csid: int, stream: _InStream | None, p: int, header_end: int
    ) -> tuple[_InStream, int] | None:
        """A type 0, 1 or 2 message header at ``p``; ``None`` until its extended timestamp arrived."""
        buf = self._buf
        type_id = length = 0
        if fmt <= 1:
            ts_high, ts_low, length_high, length_low, type_id = _FMT01.unpack_from(buf, p)
            length = (length_high << 16) | length_low
        else:
            ts_high, ts_low = _FMT2.unpack_from(buf, p)
        ts_value = (ts_high << 16) | ts_low
        extended = ts_value == _EXTENDED
        if extended:
            if len(buf) < header_end + 4:
                return None
            ts_value = _U32.unpack_from(buf, header_end)[0]
            header_end += 4
        if stream is None:
            stream = self._streams[csid] = _InStream()
        if fmt == 2:
            length = stream.length
        if stream.active:
            # A full header in the middle of a message: tolerated as long as it does not change the
            # message it continues (SRS behaves the same); the message keeps its first timestamp.
            if length != stream.length:
                raise RtmpProtocolError("message length changed in the middle of a message")
        else:
            if fmt == 0:
                stream.timestamp = ts_value
                stream.stream_id = _U32LE.unpack_from(buf, p + 7)[0]
            else:
                # fmt 1/2 carry a delta, extended or not (ossrs/srs#4356) [RTMP §5.3.1.2.2-3].
                stream.timestamp = (stream.timestamp + ts_value) & TIMESTAMP_MASK
            stream.delta = ts_value
            if fmt <= 1:
                stream.length = length
                stream.type_id = type_id
            self._start_message(stream)
        stream.extended = extended
        stream.extended_value = ts_value
        return stream, header_end

    def _type3_header(self, stream: _InStream, header_end: int) -> tuple[_InStream, int] | None:
        if stream.extended:
            # The extended timestamp repeats on type-3 chunks [RTMP §5.3.1.3], but librtmp (OBS before
            # obs-studio#10097) left it out. Peek, and consume only a matching value (as SRS does).
            if len(self._buf) < header_end + 4:
                return None
            if _U32.unpack_from(self._buf, header_end)[0] == stream.extended_value:
                header_end += 4
                self.extended_type3_chunks += 1
        if not stream.active:
            # A type-3 chunk that begins a message repeats the previous delta [RTMP §5.3.1.2.4].
            stream.timestamp = (stream.timestamp + stream.delta) & TIMESTAMP_MASK
            self._start_message(stream)
        return stream, header_end

    def _start_message(self, stream: _InStream) -> None:
        if stream.length > self.max_message_size:
            raise RtmpProtocolError(f"message of {stream.length} bytes exceeds the limit of {self.max_message_size}")
        stream.active = True
        stream.received = 0
        stream.partial = None

    def _read_payload(self) -> RawMessage | None:
        stream = self._current
        assert stream is not None
        buf = self._buf
        pos = self._pos
        end = len(buf)
        chunk_left = self._chunk_left
        payload: bytes | None = None
        while True:
            take = chunk_left if chunk_left <= end - pos else end - pos
            if take:
                if self._buffered + take > self.max_buffered:
                    raise RtmpProtocolError("too many bytes buffered in partial messages")
                received = stream.received + take
                if received == stream.length and stream.partial is None:
                    piece = buf[pos : pos + take]  # the whole message at once: its only copy
                    payload = piece if type(piece) is bytes else bytes(piece)
                else:
                    if stream.partial is None:
                        stream.partial = bytearray()
                    stream.partial += memoryview(buf)[pos : pos + take]
                    self._buffered += take
                stream.received = received
                pos += take
                chunk_left -= take
            if chunk_left:
                self._pos = pos
                self._chunk_left = chunk_left
                return None  # in the middle of a chunk: wait for bytes
            if stream.received >= stream.length:
                break
            # The chunk is done, the message is not. The usual next chunk is its type-3 continuation (a frame
            # spans several chunks): a 1-byte basic header with nothing to parse, taken here without a round
            # through _read_chunk_header. Anything else (another csid, an extended timestamp to peek at) goes
            # the general way.
            if pos < end and buf[pos] == self._continuation and not stream.extended and self.budget > 0:
                pos += 1
                self.budget -= 1
                self.header_counts[3] += 1
                left = stream.length - stream.received
                chunk_left = left if left < self._chunk_size else self._chunk_size
                continue
            self._pos = pos
            self._chunk_left = 0
            self._current = None
            return None
        self._pos = pos
        self._chunk_left = 0
        self._current = None
        stream.active = False
        if payload is None:
            partial = stream.partial
            if partial is None:
                payload = b""  # a zero-length message
            else:
                payload = bytes(partial)
                self._buffered -= len(payload)
                stream.partial = None
        type_id = stream.type_id
        if type_id <= MSG_ABORT:
            self._apply_control(type_id, payload)
        return type_id, stream.stream_id, stream.timestamp, payload, self._current_csid

    def _apply_control(self, type_id: int, payload: bytes) -> None:
        if type_id == MSG_SET_CHUNK_SIZE:
            if len(payload) < 4:
                raise RtmpProtocolError("Set Chunk Size message too short")
            # The top bit must be 0 [RTMP §5.4.1]; ignore it rather than fail on a sloppy encoder.
            self.chunk_size = _U32.unpack_from(payload)[0] & 0x7FFFFFFF
        elif type_id == MSG_ABORT:
            if len(payload) < 4:
                raise RtmpProtocolError("Abort message too short")
            aborted = self._streams.get(_U32.unpack_from(payload)[0])
            if aborted is not None and aborted.active:
                if aborted.partial is not None:
                    self._buffered -= len(aborted.partial)
                aborted.partial = None
                aborted.active = False
                aborted.received = 0


@dataclass(slots=True)
class _OutStream:
    timestamp: int = 0
    delta: int = 0
    length: int = 0
    type_id: int = 0
    stream_id: int = 0
    extended: bool = False
    extended_value: int = 0


class ChunkWriter:
    """Serializes messages into chunks of ``chunk_size`` bytes, compressing headers per csid.

    Header choice follows ffmpeg: fmt 0 for a csid's first message, a different message stream or a
    timestamp going backwards; fmt 1 when only the message stream is shared; fmt 2 when length and type
    repeat; fmt 3 when the delta repeats too. Extended timestamps repeat on every type-3 chunk.
    """

    def __init__(self, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._chunk_size = DEFAULT_CHUNK_SIZE
        self.chunk_size = chunk_size
        self._streams: dict[int, _OutStream] = {}

    @property
    def chunk_size(self) -> int:
        return self._chunk_size

    @chunk_size.setter
    def chunk_size(self, value: int) -> None:
        if not 1 <= value <= MAX_CHUNK_SIZE:
            raise ValueError(f"chunk size {value} out of range")
        self._chunk_size = value

    def write(self, message: RtmpMessage) -> bytes:
        csid = message.csid
        payload = message.payload
        length = len(payload)
        if length > 0xFFFFFF:
            raise ValueError("message longer than 16 MiB - 1 cannot be chunked")
        timestamp = message.timestamp & TIMESTAMP_MASK
        stream = self._streams.get(csid)
        if stream is not None and stream.stream_id == message.stream_id and timestamp >= stream.timestamp:
            value = timestamp - stream.timestamp
            if length == stream.length and message.type_id == stream.type_id:
                fmt = 3 if value == stream.delta else 2
            else:
                fmt = 1
        else:
            fmt = 0
            value = timestamp
            stream = self._streams[csid] = _OutStream()

        out = bytearray(encode_basic_header(fmt, csid))
        if fmt < 3:
            extended = value >= _EXTENDED
            out += min(value, _EXTENDED).to_bytes(3, "big")
            if fmt <= 1:
                out += length.to_bytes(3, "big")
                out.append(message.type_id)
            if fmt == 0:
                out += message.stream_id.to_bytes(4, "little")
            if extended:
                out += value.to_bytes(4, "big")
            stream.extended = extended
            stream.extended_value = value
            stream.delta = value
        elif stream.extended:
            out += stream.extended_value.to_bytes(4, "big")
        stream.timestamp = timestamp
        stream.length = length
        stream.type_id = message.type_id
        stream.stream_id = message.stream_id

        size = self._chunk_size
        out += payload[:size]
        continuation = encode_basic_header(3, csid)
        if stream.extended:
            continuation += stream.extended_value.to_bytes(4, "big")
        for offset in range(size, length, size):
            out += continuation
            out += payload[offset : offset + size]
        return bytes(out)
