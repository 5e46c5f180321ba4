from __future__ import annotations

from typing import Any

import pytest

from retake.av import amf0
from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp.messages import (
    CSID_COMMAND,
    CSID_CONTROL,
    CSID_STREAM,
    Abort,
    Acknowledgement,
    Command,
    MessageType,
    PeerBandwidthLimit,
    SetChunkSize,
    SetPeerBandwidth,
    UserControl,
    UserControlEvent,
    WindowAckSize,
)

CONTROL = [
    (SetChunkSize(4096), MessageType.SET_CHUNK_SIZE, b"\x00\x00\x10\x00"),
    (Abort(6), MessageType.ABORT, b"\x00\x00\x00\x06"),
    (Acknowledgement(2_500_000), MessageType.ACKNOWLEDGEMENT, b"\x00\x26\x25\xa0"),
    (WindowAckSize(2_500_000), MessageType.WINDOW_ACK_SIZE, b"\x00\x26\x25\xa0"),
    (
        SetPeerBandwidth(2_500_000, PeerBandwidthLimit.DYNAMIC),
        MessageType.SET_PEER_BANDWIDTH,
        b"\x00\x26\x25\xa0\x02",
    ),
    (UserControl.stream_begin(1), MessageType.USER_CONTROL, b"\x00\x00\x00\x00\x00\x01"),
]


@pytest.mark.parametrize(("structure", "type_id", "payload"), CONTROL)
def test_control_messages_round_trip(structure: object, type_id: int, payload: bytes) -> None:
    assert structure.serialize() == payload  # type: ignore[attr-defined]
    assert type(structure).parse(payload) == structure  # type: ignore[attr-defined]
    message = structure.to_message()  # type: ignore[attr-defined]
    assert (message.type_id, message.stream_id, message.csid, message.payload) == (
        type_id,
        0,
        CSID_CONTROL,
        payload,
    )


@pytest.mark.parametrize("cls", [SetChunkSize, Abort, Acknowledgement, WindowAckSize, SetPeerBandwidth, UserControl])
def test_short_control_messages_are_protocol_errors(cls: Any) -> None:
    with pytest.raises(RtmpProtocolError):
        cls.parse(b"\x00")


def test_user_control_value_and_ping() -> None:
    ping = UserControl.parse(b"\x00\x06\x00\x00\x01\x00")
    assert ping.event == UserControlEvent.PING_REQUEST
    assert ping.value == 256
    with pytest.raises(RtmpProtocolError):
        _ = UserControl(UserControlEvent.STREAM_EOF).value


def test_set_chunk_size_ignores_the_reserved_top_bit() -> None:
    assert SetChunkSize.parse(b"\x80\x00\x10\x00") == SetChunkSize(4096)


def test_command_round_trip_and_csids() -> None:
    command = Command("publish", 5.0, None, ("key", "live"))
    assert Command.parse(command.serialize()) == command
    assert command.to_message().csid == CSID_COMMAND
    on_stream = command.to_message(stream_id=1)
    assert (on_stream.stream_id, on_stream.csid) == (1, CSID_STREAM)


def test_command_parsing_edge_cases() -> None:
    assert Command.parse(amf0.encode("onBWDone")) == Command("onBWDone", 0.0)
    assert Command.parse(b"\x00" + amf0.encode("x", 1), amf3=True) == Command("x", 1.0)
    for bad in (b"", amf0.encode(1.0), amf0.encode("x", "not a number"), amf0.encode("x", True)):
        with pytest.raises(RtmpProtocolError):
            Command.parse(bad)
    with pytest.raises(RtmpProtocolError):
        Command.parse(b"\x11\x06", amf3=True)
