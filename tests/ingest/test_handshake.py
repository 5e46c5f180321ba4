from __future__ import annotations

import hashlib
import hmac
import os
import struct

import pytest

from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp.handshake import (
    PACKET_SIZE,
    HandshakePacket,
    HandshakeState,
    ServerHandshake,
    c1_digest_offset,
)

RANDOM = bytes(range(256)) * 6  # deterministic "random" source for S1


def make_handshake() -> ServerHandshake:
    return ServerHandshake(now_ms=lambda: 1234, random_bytes=lambda n: RANDOM[:n])


def plain_c1() -> bytes:
    return HandshakePacket(0, 0, os.urandom(PACKET_SIZE - 8)).serialize()


def digest_c1(scheme_base: int) -> bytes:
    """A C1 as ffmpeg builds it: version 09 00 7c 02 and an HMAC-SHA256 digest at the scheme's offset."""
    c1 = bytearray(struct.pack(">I", 0) + bytes.fromhex("09007c02") + os.urandom(PACKET_SIZE - 8))
    offset = (sum(c1[scheme_base : scheme_base + 4]) % 728) + scheme_base + 4
    key = b"Genuine Adobe Flash Player 001"
    digest = hmac.new(key, bytes(c1[:offset] + c1[offset + 32 :]), hashlib.sha256).digest()
    c1[offset : offset + 32] = digest
    return bytes(c1)


def test_simple_handshake() -> None:
    handshake = make_handshake()
    c1 = plain_c1()
    assert handshake.receive(b"\x03" + c1) == b""
    reply = handshake.data_to_send()
    assert len(reply) == 1 + 2 * PACKET_SIZE
    assert reply[0] == 3  # S0
    s1 = HandshakePacket.parse(reply[1 : 1 + PACKET_SIZE])
    assert (s1.time, s1.version, s1.random) == (1234, 0, RANDOM[: PACKET_SIZE - 8])
    assert reply[1 + PACKET_SIZE :] == c1  # S2 echoes C1
    assert handshake.state.value == "await_c2"
    c2 = reply[1:5] + b"\x00\x00\x00\x07" + reply[9 : 1 + PACKET_SIZE]
    assert handshake.receive(c2 + b"chunks") == b"chunks"
    assert handshake.state is HandshakeState.DONE
    assert handshake.c2_echoed_s1 is True
    assert handshake.client_digest is False
    assert handshake.receive(b"more") == b"more"


def test_byte_at_a_time_and_non_echoing_c2_tolerated() -> None:
    handshake = make_handshake()
    data = b"\x03" + plain_c1() + bytes(PACKET_SIZE) + b"\x02"
    leftover = b""
    for byte in data:
        leftover += handshake.receive(bytes((byte,)))
    assert leftover == b"\x02"
    assert handshake.state is HandshakeState.DONE
    assert handshake.c2_echoed_s1 is False
    assert len(handshake.data_to_send()) == 1 + 2 * PACKET_SIZE


@pytest.mark.parametrize("scheme_base", [8, 772])
def test_digest_c1_is_detected_and_echoed(scheme_base: int) -> None:
    c1 = digest_c1(scheme_base)
    assert c1_digest_offset(c1) is not None
    handshake = make_handshake()
    handshake.receive(b"\x03" + c1)
    assert handshake.client_digest is True
    assert handshake.data_to_send()[1 + PACKET_SIZE :] == c1


def test_non_digest_c1_with_version_bytes() -> None:
    c1 = struct.pack(">I", 0) + bytes.fromhex("09007c02") + bytes(PACKET_SIZE - 8)
    assert c1_digest_offset(c1) is None
    assert c1_digest_offset(b"short") is None


@pytest.mark.parametrize("first", [b"\x06", b"G", b"\x00"])
def test_unsupported_versions_are_refused(first: bytes) -> None:
    with pytest.raises(RtmpProtocolError, match="version"):
        make_handshake().receive(first + b"ET / HTTP/1.1\r\n")


def test_packet_round_trip_and_validation() -> None:
    packet = HandshakePacket(5, 0x09007C02, bytes(range(8, 256)) * 6 + bytes(40))
    assert HandshakePacket.parse(packet.serialize()) == packet
    with pytest.raises(RtmpProtocolError):
        HandshakePacket.parse(b"short")
    with pytest.raises(ValueError):
        HandshakePacket(0, 0, b"x").serialize()
