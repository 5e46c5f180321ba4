"""The one media message type."""

from __future__ import annotations

from retake.av.message import MediaMessage


def test_value_semantics() -> None:
    message = MediaMessage("video", 33, b"\x17\x01\x00\x00\x00data")
    assert message == MediaMessage("video", 33, b"\x17\x01\x00\x00\x00data")
    assert message != MediaMessage("video", 34, b"\x17\x01\x00\x00\x00data")
    assert message != MediaMessage("audio", 33, b"\x17\x01\x00\x00\x00data")
    assert message != MediaMessage("video", 33, b"other")
    assert message != ("video", 33, b"\x17\x01\x00\x00\x00data")
    assert len({message, MediaMessage("video", 33, b"\x17\x01\x00\x00\x00data")}) == 1


def test_with_timestamp_keeps_kind_and_payload() -> None:
    message = MediaMessage("audio", 10, b"\xaf\x01aac")
    moved = message.with_timestamp(20)
    assert (moved.kind, moved.timestamp_ms, moved.payload) == ("audio", 20, b"\xaf\x01aac")
    assert moved.payload is message.payload
    assert message.timestamp_ms == 10


def test_repr_leaves_the_payload_out() -> None:
    assert repr(MediaMessage("script", 0, b"secret-looking bytes")) == "MediaMessage('script', 0, <20 bytes>)"
