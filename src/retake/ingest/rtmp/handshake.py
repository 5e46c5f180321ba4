"""Server side of the RTMP handshake [RTMP §5.2].

C0/S0 are one version byte (3). C1/S1 are 1536 bytes: time UI32, four zero bytes, 1528 random bytes.
C2/S2 echo the peer's C1/S1. We answer with the *simple* handshake that ffmpeg and OBS accept when
publishing: S0 = 3, S1 = time + zeros + random, S2 = C1 verbatim. A client that sent the Flash-Player
"digest" variant of C1 (ffmpeg always does; OBS only with SWF verification) is accepted the same way: the
echo is all it checks when publishing. A C2 that does not echo S1 is tolerated, as ffmpeg's own listener
does. The digest is only detected, for logging.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from retake.ingest.errors import RtmpProtocolError

RTMP_VERSION: Final = 3
PACKET_SIZE: Final = 1536

# The first 30 bytes of the Flash Player key used for the C1 digest (public, in every RTMP implementation).
_FP_KEY: Final = b"Genuine Adobe Flash Player 001"
_DIGEST_SIZE: Final = 32


@dataclass(frozen=True, slots=True)
class HandshakePacket:
    """C1/S1 (and, as their echo, C2/S2): time, version field (zero in the simple handshake), random."""

    time: int
    version: int
    random: bytes

    @classmethod
    def parse(cls, data: bytes) -> HandshakePacket:
        if len(data) != PACKET_SIZE:
            raise RtmpProtocolError(f"handshake packet must be {PACKET_SIZE} bytes")
        time, version = struct.unpack_from(">II", data)
        return cls(time, version, bytes(data[8:]))

    def serialize(self) -> bytes:
        if len(self.random) != PACKET_SIZE - 8:
            raise ValueError("handshake random part must be 1528 bytes")
        return struct.pack(">II", self.time & 0xFFFFFFFF, self.version) + self.random


def c1_digest_offset(c1: bytes) -> int | None:
    """Return where the Flash-Player HMAC digest sits in ``c1`` (scheme 0 or 1), or ``None`` for a
    plain C1. Only used to describe the client; the reply is the same either way."""
    if len(c1) != PACKET_SIZE or c1[4:8] == b"\x00\x00\x00\x00":
        return None
    for base in (8, 772):  # scheme 0 digest block, scheme 1 digest block
        offset = (sum(c1[base : base + 4]) % 728) + base + 4
        expected = hmac.new(_FP_KEY, c1[:offset] + c1[offset + _DIGEST_SIZE :], hashlib.sha256).digest()
        if hmac.compare_digest(expected, c1[offset : offset + _DIGEST_SIZE]):
            return offset
    return None


class HandshakeState(enum.Enum):
    AWAIT_C0_C1 = "await_c0_c1"
    AWAIT_C2 = "await_c2"
    DONE = "done"


class ServerHandshake:
    """Feed bytes with :meth:`receive`; it returns the bytes left over once the handshake is done (the
    first chunks of the chunk stream, if the client sent them in the same segment as C2)."""

    def __init__(self, *, now_ms: Callable[[], int], random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._now_ms = now_ms
        self._random_bytes = random_bytes
        self._buf = bytearray()
        self.state = HandshakeState.AWAIT_C0_C1
        self.client_packet: HandshakePacket | None = None
        self.client_digest = False
        self.c2_echoed_s1: bool | None = None
        self._s1 = b""
        self._out = bytearray()

    def data_to_send(self) -> bytes:
        out = bytes(self._out)
        self._out.clear()
        return out

    def receive(self, data: bytes) -> bytes:
        if self.state is HandshakeState.DONE:
            return data
        self._buf += data
        if self.state is HandshakeState.AWAIT_C0_C1:
            if not self._buf:
                return b""
            # Versions 0-2 are deprecated, 4-31 reserved, 6/8 mean RTMPE, >=32 rules out text protocols (an
            # HTTP request starts with a letter) [RTMP §5.2.2]. Only plain RTMP 3 is served here.
            if self._buf[0] != RTMP_VERSION:
                raise RtmpProtocolError(f"unsupported RTMP version {self._buf[0]}")
            if len(self._buf) < 1 + PACKET_SIZE:
                return b""
            c1 = bytes(self._buf[1 : 1 + PACKET_SIZE])
            del self._buf[: 1 + PACKET_SIZE]
            self.client_packet = HandshakePacket.parse(c1)
            self.client_digest = c1_digest_offset(c1) is not None
            self._s1 = HandshakePacket(self._now_ms(), 0, self._random_bytes(PACKET_SIZE - 8)).serialize()
            self._out += bytes((RTMP_VERSION,)) + self._s1 + c1  # S0, S1, S2 = echo of C1
            self.state = HandshakeState.AWAIT_C2
        if len(self._buf) < PACKET_SIZE:
            return b""
        # C2 = S1's time, the client's read time, S1's random [RTMP §5.2.4]; only the random part must match.
        self.c2_echoed_s1 = bytes(self._buf[8:PACKET_SIZE]) == self._s1[8:]
        rest = bytes(self._buf[PACKET_SIZE:])
        self._buf.clear()
        self.state = HandshakeState.DONE
        return rest
