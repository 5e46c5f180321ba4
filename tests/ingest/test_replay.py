"""Replay what a real ffmpeg 5.1 sent (``capture_ffmpeg.py``) into the sans-IO core.

The same ffmpeg run also wrote a plain FLV file through an identical FLV muxer, so the messages the core
reassembles must equal that file's tags: kind, timestamp and body, byte for byte.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retake.av.message import MediaMessage
from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp import PublishEnded, PublishRequested, RtmpConnection
from retake.ingest.rtmp.chunk import ChunkReader
from tests.ingest.support import HANDSHAKE_REPLY_SIZE, flv_tags

HANDSHAKE_SIZE = HANDSHAKE_REPLY_SIZE  # C0+C1+C2 is as long as S0+S1+S2

DATA = Path(__file__).parent / "data"
CAPTURES = ["ffmpeg_publish", "ffmpeg_publish_extts"]


def replay(pieces: Iterable[bytes]) -> tuple[list[tuple[str, int, bytes]], list[object]]:
    conn = RtmpConnection(clock=lambda: 0.0)
    media: list[tuple[str, int, bytes]] = []
    others: list[object] = []
    for piece in pieces:
        conn.receive_data(piece)
        while True:
            while (event := conn.next_event()) is not None:
                if isinstance(event, MediaMessage):
                    media.append((event.kind, event.timestamp_ms, event.payload))
                else:
                    others.append(event)
                    if isinstance(event, PublishRequested):
                        conn.accept_publish()
            if not conn.input_pending:  # the work budget ran out with input left (as at chunk size 1)
                break
            conn.continue_parsing()
    return media, others


def split_randomly(data: bytes, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    pieces = []
    position = 0
    while position < len(data):
        step = rng.randint(1, 3000)
        pieces.append(data[position : position + step])
        position += step
    return pieces


@pytest.mark.parametrize("name", CAPTURES)
def test_replay_equals_the_flv_file(name: str) -> None:
    raw = (DATA / f"{name}.bin").read_bytes()
    expected = flv_tags((DATA / f"{name}.flv").read_bytes())
    media, others = replay([raw])
    assert media == expected
    assert [type(e).__name__ for e in others] == [
        "HandshakeCompleted",
        "Connected",
        "PublishRequested",
        "PublishEnded",
    ]
    assert isinstance(others[-1], PublishEnded)
    request = others[2]
    assert isinstance(request, PublishRequested)
    assert (request.app, request.key) == ("live", "capturekey")

    kinds = [(kind, body[:2]) for kind, _ts, body in media]
    assert ("video", b"\x17\x00") in kinds  # AVC sequence header
    assert ("audio", b"\xaf\x00") in kinds  # AAC sequence header
    assert ("video", b"\x17\x01") in kinds  # keyframe NALUs
    assert media[0][0] == "script"
    assert media[0][2].startswith(b"\x02\x00\x0aonMetaData")


@pytest.mark.parametrize("name", CAPTURES)
def test_replay_byte_at_a_time_and_random_splits(name: str) -> None:
    raw = (DATA / f"{name}.bin").read_bytes()
    whole = replay([raw])
    assert replay(raw[i : i + 1] for i in range(len(raw))) == whole
    for seed in range(3):
        assert replay(split_randomly(raw, seed)) == whole


def test_extended_timestamp_capture_uses_every_header_type() -> None:
    raw = (DATA / "ffmpeg_publish_extts.bin").read_bytes()
    reader = ChunkReader()
    reader.feed(raw[HANDSHAKE_SIZE:])
    while reader.next_message() is not None:
        pass
    assert all(count > 0 for count in reader.header_counts)
    assert reader.extended_type3_chunks > 0
    assert reader.chunk_size == 128
    timestamps = [timestamp for _kind, timestamp, _body in replay([raw])[0]]
    assert max(timestamps) > 0xFFFFFF


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_mutated_capture_raises_only_protocol_error(data: st.DataObject) -> None:
    raw = bytearray((DATA / "ffmpeg_publish.bin").read_bytes())
    start = HANDSHAKE_SIZE
    for _ in range(data.draw(st.integers(1, 8))):
        index = data.draw(st.integers(start, len(raw) - 1))
        raw[index] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RtmpProtocolError):
        replay(split_randomly(bytes(raw), data.draw(st.integers(0, 100))))
