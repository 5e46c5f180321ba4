"""LiveStream fan-out: viewer bootstrap, bounded queues for slow viewers, lifecycle, registry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from retake.av import amf0
from retake.av.avc import AvcDecoderConfigurationRecord
from retake.av.headers import AudioHeader, Tracks, VideoHeader
from retake.av.message import MediaMessage
from retake.media.errors import UnsupportedCodecError
from retake.media.flv import FlvHeader, FlvTag, ScriptData, VideoTagBody
from retake.media.stream import LiveStream, StreamLimits, StreamRegistry, Subscriber
from tests.media.test_media_codecs import AVCC_1080P

MessageFactory = Callable[..., list[MediaMessage]]


def parse_tags(data: bytes) -> list[FlvTag]:
    if data.startswith(b"FLV"):
        data = data[13:]
    tags, pos = [], 0
    while pos < len(data):
        tag, used = FlvTag.parse_prefix(data, pos)
        assert tag is not None, "truncated tag in subscriber output"
        tags.append(tag)
        pos += used
    return tags


def metadata_message() -> MediaMessage:
    meta = amf0.EcmaArray(width=320.0, height=240.0, videocodecid=7.0, audiocodecid=10.0)
    return MediaMessage("script", 0, amf0.encode("@setDataFrame", "onMetaData", meta))


def is_key(tag: FlvTag) -> bool:
    return tag.tag_type == 9 and VideoTagBody.parse(tag.payload).is_keyframe


async def next_chunk(sub: Subscriber) -> bytes:
    return await asyncio.wait_for(anext(sub), 1)


async def test_late_viewer_starts_at_latest_keyframe(messages: MessageFactory) -> None:
    stream = LiveStream("s1")
    stream.publish(metadata_message())
    for message in messages(2500, gop_ms=1000):
        stream.publish(message)
    sub = stream.subscribe()
    data = await next_chunk(sub)
    assert FlvHeader.parse(data[:9]) == FlvHeader(has_audio=True, has_video=True)
    assert data[9:13] == b"\x00\x00\x00\x00"
    tags = parse_tags(data)
    script = ScriptData.parse(tags[0].payload)
    assert tags[0].timestamp_ms == 0 and script.name == "onMetaData"
    assert isinstance(script.value, dict)
    assert script.value["hasAudio"] is True and script.value["hasVideo"] is True
    assert script.value["width"] == 320.0
    assert [t.tag_type for t in tags[1:3]] == [9, 8]
    assert all(t.payload[1] == 0 for t in tags[1:3])  # AVC then AAC sequence header
    assert is_key(tags[3]) and tags[3].timestamp_ms == 2000
    assert tags[1].timestamp_ms == tags[2].timestamp_ms == 2000
    assert not any(is_key(t) for t in tags[4:])
    video_ts = [t.timestamp_ms for t in tags[3:] if t.tag_type == 9]
    assert video_ts == sorted(video_ts) and video_ts[-1] >= 2466
    assert stream.codecs == "avc1.64000d,mp4a.40.2"


async def test_early_viewer_waits_for_first_keyframe_then_goes_live(messages: MessageFactory) -> None:
    stream = LiveStream("s1")
    sub = stream.subscribe()
    assert stream.subscriber_count == 1 and not sub.started
    msgs = messages(1500, gop_ms=1000)
    for message in msgs[:4]:
        stream.publish(message)
    assert sub.started
    first = parse_tags(await next_chunk(sub))
    assert is_key(first[2])
    for message in msgs[4:]:
        stream.publish(message)
    rest = parse_tags(await next_chunk(sub))
    assert len(first) + len(rest) == len(msgs)
    per_track: dict[int, list[int]] = {8: [], 9: []}
    for tag in first + rest:
        per_track[tag.tag_type].append(tag.timestamp_ms)
    assert all(ts == sorted(ts) for ts in per_track.values())


async def test_slow_viewer_is_skipped_to_a_keyframe_with_bounded_memory(messages: MessageFactory) -> None:
    limits = StreamLimits(queue_max_bytes=120_000, queue_max_lag_ms=1500, max_skips=1000)
    stream = LiveStream("s1", limits)
    sub = stream.subscribe()
    peak = 0
    for message in messages(20_000, gop_ms=1000, frame_bytes=3000):
        stream.publish(message)
        peak = max(peak, sub.queued_bytes)
    assert peak <= limits.queue_max_bytes
    assert sub.skipped_bytes > 0 and not sub.closed
    for message in messages(1000, gop_ms=1000, frame_bytes=3000, start_ms=20_000, headers=False):
        stream.publish(message)
    tags = parse_tags(await next_chunk(sub))
    # After a skip the viewer gets the current sequence headers, then resumes at a keyframe.
    assert [(t.tag_type, t.payload[1]) for t in tags[:2]] == [(9, 0), (8, 0)]
    assert is_key(next(t for t in tags[2:] if t.tag_type == 9))


async def test_hopeless_viewer_is_dropped(messages: MessageFactory) -> None:
    limits = StreamLimits(queue_max_bytes=60_000, queue_max_lag_ms=1000, max_skips=3)
    stream = LiveStream("s1", limits)
    slow = stream.subscribe()
    fast = stream.subscribe()
    received = 0
    for message in messages(30_000, gop_ms=1000, frame_bytes=2000):
        stream.publish(message)
        assert slow.queued_bytes <= limits.queue_max_bytes
        if fast.queued_bytes:
            received += len(await next_chunk(fast))
    assert slow.closed and slow.close_reason == "too slow"
    assert slow.queued_bytes == 0
    assert not fast.closed and received > 30 * 2000 * 25
    assert stream.subscriber_count == 1
    with pytest.raises(StopAsyncIteration):
        await next_chunk(slow)


async def test_gop_cache_is_bounded(messages: MessageFactory) -> None:
    limits = StreamLimits(gop_max_bytes=100_000, gop_max_duration_ms=10_000)
    stream = LiveStream("s1", limits)
    for message in messages(30_000, gop_ms=60_000, frame_bytes=2000):
        stream.publish(message)
        assert stream.gop_bytes <= limits.gop_max_bytes
    sub = stream.subscribe()
    assert not sub.started  # no usable GOP: the viewer waits for the next keyframe


async def test_close_drains_then_ends(messages: MessageFactory) -> None:
    stream = LiveStream("s1")
    sub = stream.subscribe()
    received = bytearray()

    async def viewer() -> None:
        async for chunk in sub:
            received.extend(chunk)

    task = asyncio.create_task(viewer())
    for message in messages(1000):
        stream.publish(message)
    stream.close()
    await asyncio.wait_for(task, 1)
    assert sub.close_reason == "stream ended"
    assert received.startswith(b"FLV")
    late = stream.subscribe()
    assert late.closed
    with pytest.raises(StopAsyncIteration):
        await next_chunk(late)


async def test_viewer_close_unregisters_and_wakes_reader() -> None:
    stream = LiveStream("s1")
    async with stream.subscribe() as sub:
        assert stream.subscriber_count == 1
        waiter = asyncio.create_task(next_chunk(sub))
        await asyncio.sleep(0)
        sub.close()
        with pytest.raises(StopAsyncIteration):
            await waiter
    assert stream.subscriber_count == 0


async def test_audio_only_stream(messages: MessageFactory) -> None:
    stream = LiveStream("s1")
    for message in messages(1000, video=False):
        stream.publish(message)
    sub = stream.subscribe()
    data = await next_chunk(sub)
    assert FlvHeader.parse(data[:9]) == FlvHeader(has_audio=True, has_video=False)
    tags = parse_tags(data)
    assert tags[0].tag_type == 8 and tags[0].payload[1] == 0
    assert stream.codecs == "mp4a.40.2"


async def test_publisher_takeover_keeps_viewers_monotonic(messages: MessageFactory) -> None:
    stream = LiveStream("s1")
    sub = stream.subscribe()
    received = bytearray()
    for _publisher in range(2):
        stream.begin_publish()
        for message in messages(2000):  # each publisher starts at 0
            stream.publish(message)
            if sub.queued_bytes:
                received += await next_chunk(sub)
    tags = parse_tags(bytes(received))
    for tag_type in (8, 9):
        media = [t.timestamp_ms for t in tags if t.tag_type == tag_type and t.payload[1] == 1]
        assert media == sorted(media) and media[-1] > 3900


class RecordingSink:
    def __init__(self) -> None:
        self.messages: list[MediaMessage] = []
        self.ended = False
        self.tracks: Tracks | None = None

    def share_tracks(self, tracks: Tracks) -> None:
        self.tracks = tracks

    def push(self, message: MediaMessage) -> None:
        self.messages.append(message)

    def end(self) -> None:
        self.ended = True


async def test_sinks_get_repaired_messages(messages: MessageFactory) -> None:
    stream = LiveStream("s1")
    sink = RecordingSink()
    remove = stream.add_sink(sink)
    assert sink.tracks is stream.tracks
    stream.publish(MediaMessage("video", 100, b"\x17\x01\x00\x00\x00\x00\x00\x00\x01\x65"))
    stream.publish(MediaMessage("video", 90, b"\x27\x01\x00\x00\x00\x00\x00\x00\x01\x41"))
    assert [m.timestamp_ms for m in sink.messages] == [100, 101]
    remove()
    stream.publish(MediaMessage("video", 133, b"\x27\x01\x00\x00\x00\x00\x00\x00\x01\x41"))
    assert len(sink.messages) == 2
    stream.add_sink(sink)
    stream.close()
    assert sink.ended


async def test_unsupported_codec_is_refused() -> None:
    stream = LiveStream("s1")
    with pytest.raises(UnsupportedCodecError):
        stream.publish(MediaMessage("video", 0, b"\x90\x00\x00\x00\x00hvc1"))
    with pytest.raises(UnsupportedCodecError):
        stream.publish(MediaMessage("audio", 0, b"\x2f\xff\xfb"))


async def test_broken_metadata_is_ignored() -> None:
    stream = LiveStream("s1")
    stream.publish(MediaMessage("script", 0, b"\x02\x00\xffbroken"))
    assert stream.metadata == {}


def test_registry() -> None:
    registry = StreamRegistry()
    stream = registry.open("a")
    assert registry.open("a") is stream
    assert "a" in registry and len(registry) == 1 and list(registry) == ["a"]
    assert registry.get("b") is None
    registry.close("a")
    assert stream.closed and "a" not in registry
    registry.close("a")  # idempotent
    assert registry.open("a") is not stream


async def test_stream_with_hls_packager(messages: MessageFactory) -> None:
    from retake.media.hls import HlsPackager

    registry = StreamRegistry(lambda stream_id: LiveStream(stream_id, hls=HlsPackager()))
    stream = registry.open("user-1")
    assert stream.hls is not None
    for message in messages(3000):
        stream.publish(message)
    assert stream.hls.ready and stream.hls.get("seg0.m4s") is not None
    registry.close("user-1")
    assert stream.hls.ended and stream.hls.render_playlist().endswith("#EXT-X-ENDLIST\n")


async def test_each_sequence_header_is_parsed_once_for_fan_out_and_hls(
    messages: MessageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retake.media.hls import HlsPackager

    parsed: list[bytes] = []
    for cls in (VideoHeader, AudioHeader):
        original = cls.parse.__func__  # type: ignore[attr-defined]

        def counting(klass: type, payload: bytes, original: Callable[..., object] = original) -> object:
            parsed.append(payload)
            return original(klass, payload)

        monkeypatch.setattr(cls, "parse", classmethod(counting))
    stream = LiveStream("s1", hls=HlsPackager())
    batch = messages(1000)
    for message in batch + [m.with_timestamp(m.timestamp_ms + 1000) for m in batch]:  # headers sent twice
        stream.publish(message)
    assert len(parsed) == 2  # one AVC, one AAC header, for the FLV fan-out and the CMAF segmenter together
    assert stream.tracks.video is not None and stream.tracks.audio is not None
    assert stream.hls is not None and stream.hls.get("init0.mp4") is not None
    assert stream.codecs == "avc1.64000d,mp4a.40.2"
    # A different configuration is parsed and replaces the old one.
    before = stream.tracks.video
    other = VideoHeader.of(AvcDecoderConfigurationRecord.parse(AVCC_1080P))
    stream.publish(MediaMessage("video", 2500, other.payload))
    assert len(parsed) == 4  # VideoHeader.of parses too
    assert stream.tracks.video is not before and stream.tracks.video.sps.width == 1920
