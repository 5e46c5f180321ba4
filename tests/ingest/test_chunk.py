from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp.chunk import ChunkReader, ChunkWriter, RtmpMessage, encode_basic_header
from retake.ingest.rtmp.messages import Abort, SetChunkSize


def read_all(reader: ChunkReader) -> list[RtmpMessage]:
    messages = []
    while (message := reader.next_message()) is not None:
        messages.append(message)
    return messages


def parse(data: bytes, **limits: int) -> list[RtmpMessage]:
    reader = ChunkReader(**limits)
    reader.feed(data)
    return read_all(reader)


def parse_byte_at_a_time(data: bytes) -> list[RtmpMessage]:
    reader = ChunkReader()
    messages = []
    for byte in data:
        reader.feed(bytes((byte,)))
        messages.extend(read_all(reader))
    return messages


def fmt0(csid: int, timestamp: int, length: int, type_id: int, msid: int) -> bytes:
    return (
        encode_basic_header(0, csid)
        + min(timestamp, 0xFFFFFF).to_bytes(3, "big")
        + length.to_bytes(3, "big")
        + bytes((type_id,))
        + msid.to_bytes(4, "little")
        + (timestamp.to_bytes(4, "big") if timestamp >= 0xFFFFFF else b"")
    )


def fmt1(csid: int, delta: int, length: int, type_id: int) -> bytes:
    return (
        encode_basic_header(1, csid)
        + min(delta, 0xFFFFFF).to_bytes(3, "big")
        + length.to_bytes(3, "big")
        + bytes((type_id,))
        + (delta.to_bytes(4, "big") if delta >= 0xFFFFFF else b"")
    )


def fmt2(csid: int, delta: int) -> bytes:
    return (
        encode_basic_header(2, csid)
        + min(delta, 0xFFFFFF).to_bytes(3, "big")
        + (delta.to_bytes(4, "big") if delta >= 0xFFFFFF else b"")
    )


def fmt3(csid: int, extended: int | None = None) -> bytes:
    return encode_basic_header(3, csid) + (extended.to_bytes(4, "big") if extended is not None else b"")


@pytest.mark.parametrize(
    ("csid", "encoded"),
    [
        (2, b"\x02"),
        (63, b"\x3f"),
        (64, b"\x00\x00"),
        (319, b"\x00\xff"),
        (320, b"\x01\x00\x01"),
        (65599, b"\x01\xff\xff"),
    ],
)
def test_basic_header_forms(csid: int, encoded: bytes) -> None:
    assert encode_basic_header(0, csid) == encoded
    data = fmt0(csid, 5, 1, 9, 1)[len(encoded) :]
    (message,) = parse(encoded + data + b"x")
    assert message.csid == csid


def test_basic_header_range_checked() -> None:
    with pytest.raises(ValueError):
        encode_basic_header(0, 1)
    with pytest.raises(ValueError):
        encode_basic_header(4, 3)


def test_all_four_header_types() -> None:
    # The spec's audio example [RTMP §5.3.2.1] extended: fmt 0, fmt 3 (same delta), fmt 2, fmt 1, fmt 3.
    stream = (
        fmt0(4, 1000, 2, 8, 1)
        + b"a0"
        + fmt3(4)  # new message: repeats the previous "delta" = the type-0 timestamp -> 2000
        + b"a1"
        + fmt2(4, 23)  # delta 23, length/type inherited -> 2023
        + b"a2"
        + fmt1(4, 10, 3, 9)  # delta 10, new length and type -> 2033
        + b"v03"
        + fmt3(4)  # repeats delta 10 -> 2043
        + b"v04"
    )
    messages = parse(stream)
    assert [(m.type_id, m.stream_id, m.timestamp, m.payload) for m in messages] == [
        (8, 1, 1000, b"a0"),
        (8, 1, 2000, b"a1"),
        (8, 1, 2023, b"a2"),
        (9, 1, 2033, b"v03"),
        (9, 1, 2043, b"v04"),
    ]
    assert parse_byte_at_a_time(stream) == messages


def test_message_split_across_chunks_and_interleaved_streams() -> None:
    video = bytes(range(200))
    stream = (
        fmt0(6, 40, 200, 9, 1)
        + video[:128]
        + fmt0(4, 41, 3, 8, 1)
        + b"aud"
        + fmt3(6)  # continuation of the video message, not a new one
        + video[128:]
    )
    messages = parse(stream)
    assert [(m.csid, m.timestamp, m.payload) for m in messages] == [(4, 41, b"aud"), (6, 40, video)]
    assert parse_byte_at_a_time(stream) == messages


def test_extended_timestamp_on_type0_and_type3_continuations() -> None:
    timestamp = 0x01234567  # > 2^24: needs the extended field
    payload = bytes(300)
    stream = fmt0(6, timestamp, 300, 9, 1) + payload[:128] + fmt3(6, timestamp) + payload[128:256]
    stream += fmt3(6, timestamp) + payload[256:]
    (message,) = parse(stream)
    assert message.timestamp == timestamp
    assert message.payload == payload
    assert parse_byte_at_a_time(stream) == [message]


def test_extended_timestamp_is_a_delta_on_type1_and_type2() -> None:
    # ossrs/srs#4356: an extended field on fmt 1/2 is a delta, not an absolute time.
    stream = fmt0(6, 100, 1, 9, 1) + b"a" + fmt1(6, 0x1000000, 1, 9) + b"b" + fmt2(6, 0x1000001) + b"c"
    stream += fmt3(6, 0x1000001) + b"d"  # a new message via type 3 repeats the extended delta
    messages = parse(stream)
    assert [m.timestamp for m in messages] == [
        100,
        100 + 0x1000000,
        100 + 0x1000000 + 0x1000001,
        100 + 0x1000000 + 2 * 0x1000001,
    ]


def test_type3_without_extended_field_from_old_librtmp_is_tolerated() -> None:
    # OBS's librtmp left the extended timestamp out of type-3 chunks (fixed in obs-studio#10097).
    timestamp = 0x02000000
    payload = bytes(range(256))
    stream = fmt0(6, timestamp, 256, 9, 1) + payload[:128] + fmt3(6) + payload[128:]
    (message,) = parse(stream)
    assert message.payload == payload
    assert message.timestamp == timestamp


def test_timestamps_wrap_modulo_2_32() -> None:
    stream = fmt0(4, 0xFFFFFFF0, 1, 8, 1) + b"a" + fmt2(4, 0x20) + b"b"
    assert [m.timestamp for m in parse(stream)] == [0xFFFFFFF0, 0x10]


def test_set_chunk_size_applies_to_following_chunks() -> None:
    writer = ChunkWriter()
    big = bytes(range(256)) * 4
    stream = writer.write(SetChunkSize(1000).to_message())
    writer.chunk_size = 1000
    stream += writer.write(RtmpMessage(9, 1, 0, big, 6))
    reader = ChunkReader()
    reader.feed(stream)
    messages = read_all(reader)
    assert [m.type_id for m in messages] == [1, 9]
    assert messages[1].payload == big
    assert reader.chunk_size == 1000


def test_set_chunk_size_zero_is_refused() -> None:
    with pytest.raises(RtmpProtocolError):
        parse(ChunkWriter().write(SetChunkSize(0).to_message()))


def test_abort_drops_the_partial_message() -> None:
    stream = fmt0(6, 0, 200, 9, 1) + bytes(128)  # first chunk of a 200-byte message
    stream += ChunkWriter().write(Abort(6).to_message())
    stream += fmt0(6, 5, 2, 9, 1) + b"ok"  # a fresh message on the same csid
    reader = ChunkReader()
    reader.feed(stream)
    messages = read_all(reader)
    assert [(m.type_id, m.payload) for m in messages] == [(2, b"\x00\x00\x00\x06"), (9, b"ok")]
    assert reader.buffered_bytes == 0


def test_zero_length_message() -> None:
    (message,) = parse(fmt0(3, 0, 0, 20, 0))
    assert message.payload == b""


def test_first_chunk_on_a_stream_must_be_type0() -> None:
    with pytest.raises(RtmpProtocolError, match="starts with a type-1"):
        parse(fmt1(5, 0, 1, 8) + b"x")


def test_length_change_in_mid_message_is_refused() -> None:
    with pytest.raises(RtmpProtocolError, match="length changed"):
        parse(fmt0(6, 0, 200, 9, 1) + bytes(128) + fmt1(6, 0, 300, 9) + bytes(10))


def test_full_header_mid_message_with_same_length_is_tolerated() -> None:
    payload = bytes(range(200))
    (message,) = parse(fmt0(6, 7, 200, 9, 1) + payload[:128] + fmt1(6, 0, 200, 9) + payload[128:])
    assert message.payload == payload
    assert message.timestamp == 7


def test_message_size_limit_is_checked_on_the_header() -> None:
    with pytest.raises(RtmpProtocolError, match="exceeds the limit"):
        parse(fmt0(6, 0, 1001, 9, 1), max_message_size=1000)


def test_chunk_stream_count_is_bounded() -> None:
    stream = b"".join(fmt0(csid, 0, 1, 8, 1) + b"x" for csid in range(2, 12))
    assert len(parse(stream, max_chunk_streams=10)) == 10
    with pytest.raises(RtmpProtocolError, match="too many chunk streams"):
        parse(stream + fmt0(12, 0, 1, 8, 1) + b"x", max_chunk_streams=10)


def test_total_partial_bytes_are_bounded() -> None:
    # Two interleaved 1000-byte messages, neither complete, with 1500 bytes allowed in total.
    stream = fmt0(6, 0, 1000, 9, 1) + bytes(128) + fmt0(4, 0, 1000, 8, 1) + bytes(128)
    for _ in range(6):
        stream += fmt3(6) + bytes(128) + fmt3(4) + bytes(128)
    with pytest.raises(RtmpProtocolError, match="buffered"):
        parse(stream, max_message_size=1000, max_buffered=1500)


def test_16mb_length_claim_does_not_allocate() -> None:
    # A header claiming 16 MiB - 1 with the limit raised so that the claim is accepted: memory follows the
    # bytes received, not the claim.
    reader = ChunkReader(max_message_size=32 * 1024 * 1024)
    tracemalloc.start()
    try:
        reader.feed(fmt0(6, 0, 0xFFFFFF, 9, 1) + bytes(100))
        assert reader.next_message() is None
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 256 * 1024
    assert reader.buffered_bytes == 100
    # With the default 8 MiB limit the same claim is refused outright.
    with pytest.raises(RtmpProtocolError):
        parse(fmt0(6, 0, 0xFFFFFF, 9, 1))


def test_writer_header_compression_matches_ffmpeg_rules() -> None:
    writer = ChunkWriter()
    first = writer.write(RtmpMessage(8, 1, 0, b"ab", 4))
    same_delta_zero = writer.write(RtmpMessage(8, 1, 0, b"cd", 4))
    new_delta = writer.write(RtmpMessage(8, 1, 23, b"ef", 4))
    repeat_delta = writer.write(RtmpMessage(8, 1, 46, b"gh", 4))
    new_length = writer.write(RtmpMessage(8, 1, 69, b"ijk", 4))
    backwards = writer.write(RtmpMessage(8, 1, 10, b"ijk", 4))
    assert [chunk[0] >> 6 for chunk in (first, same_delta_zero, new_delta, repeat_delta, new_length, backwards)] == [
        0,
        3,
        2,
        3,
        1,
        0,
    ]


def test_writer_refuses_oversized_messages() -> None:
    with pytest.raises(ValueError):
        ChunkWriter().write(RtmpMessage(9, 1, 0, bytes(0x1000000), 6))
    with pytest.raises(ValueError):
        ChunkWriter(chunk_size=0)


def test_repr_hides_payload() -> None:
    assert "len=3" in repr(RtmpMessage(9, 1, 0, b"key", 6))


_messages = st.lists(
    st.builds(
        RtmpMessage,
        type_id=st.sampled_from([8, 9, 18, 20, 4]),
        stream_id=st.sampled_from([0, 1, 2]),
        timestamp=st.one_of(st.integers(0, 5000), st.integers(0xFFFF00, 0x1000100), st.integers(0, 0xFFFFFFFF)),
        payload=st.binary(max_size=700),
        csid=st.sampled_from([3, 4, 6, 63, 64, 400]),
    ),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(_messages, st.integers(1, 600), st.data())
def test_writer_reader_round_trip(messages: list[RtmpMessage], chunk_size: int, data: st.DataObject) -> None:
    writer = ChunkWriter(chunk_size)
    stream = b"".join(writer.write(message) for message in messages)
    reader = ChunkReader()
    reader.chunk_size = chunk_size
    received: list[RtmpMessage] = []
    position = 0
    while position < len(stream):  # random splits of the input
        step = data.draw(st.integers(1, 300))
        reader.feed(stream[position : position + step])
        position += step
        received.extend(read_all(reader))
    assert received == messages


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(1, 64))
def test_garbage_raises_only_protocol_error(data: bytes, split: int) -> None:
    reader = ChunkReader(max_message_size=4096, max_chunk_streams=8)
    try:
        for start in range(0, len(data), split):
            reader.feed(data[start : start + split])
            read_all(reader)
    except RtmpProtocolError:
        pass
