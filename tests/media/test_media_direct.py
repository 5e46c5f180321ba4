"""Viewers attached to a real TCP connection (``Subscriber.attach``): written from ``publish()`` itself, one write
per video frame (audio rides along); one that stops reading skips to the next keyframe once its connection's
buffer holds too much media time, resumes at a keyframe when it reads again, and is dropped only when it stays
stuck."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from retake.av.message import MediaMessage
from retake.media import stream as stream_module
from retake.media.stream import LiveStream, StreamLimits
from tests.media.test_media_stream import is_key, parse_tags

MessageFactory = Callable[..., list[MediaMessage]]


def unframed(data: bytes) -> bytes:
    return data


class TransportWriter:
    """The smallest direct writer: an asyncio transport, no framing."""

    framing = staticmethod(unframed)

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport = transport
        self.writes = 0

    def write(self, framed: bytes) -> bool:
        if self.transport.is_closing():
            return False
        self.transport.write(framed)
        self.writes += 1
        return True

    def buffered(self) -> int:
        return self.transport.get_write_buffer_size()


@asynccontextmanager
async def connection() -> AsyncIterator[tuple[TransportWriter, socket.socket]]:
    """A server-side transport and the client socket at its other end (small kernel buffers, so that a client
    that stops reading shows in the transport's buffer at once)."""
    accepted: asyncio.Future[asyncio.Transport] = asyncio.get_running_loop().create_future()

    class Accept(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            assert isinstance(transport, asyncio.Transport)
            accepted.set_result(transport)

    server = await asyncio.get_running_loop().create_server(Accept, "127.0.0.1", 0)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.setblocking(False)
    try:
        with contextlib.suppress(BlockingIOError):
            client.connect(server.sockets[0].getsockname())
        transport = await asyncio.wait_for(accepted, 5)
        yield TransportWriter(transport), client
        transport.close()
    finally:
        client.close()
        server.close()


async def read_available(client: socket.socket, into: bytearray, rounds: int = 50) -> None:
    """Read what the server sends, letting its loop flush the transport in between."""
    for _ in range(rounds):
        await asyncio.sleep(0.002)
        try:
            while data := client.recv(1 << 20):
                into += data
        except BlockingIOError:
            pass


async def test_attached_viewer_gets_every_tag_once_in_a_write_per_video_frame(
    messages: MessageFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A loop slowed down by a busy machine must not flush a held audio frame by its timer before the next video
    # frame comes (that is one write more, and a right one): hold long enough that only the trailing audio
    # goes by the timer, which the end of the test waits for.
    hold = 0.5
    monkeypatch.setattr(stream_module, "AUDIO_HOLD_SECONDS", hold)
    stream = LiveStream("s1")
    msgs = messages(3000, gop_ms=1000, frame_bytes=500)
    async with connection() as (writer, client):
        for message in msgs[:40]:
            stream.publish(message)
        sub = stream.subscribe()
        sub.attach(writer)
        assert writer.writes == 1  # the bootstrap (header, headers, cached GOP) in one write
        received = bytearray()
        for message in msgs[40:]:
            stream.publish(message)
            await read_available(client, received, rounds=1)
        await asyncio.sleep(hold + 0.1)  # the trailing audio's timer
        await read_available(client, received)
    assert sub.queued_bytes == 0 and not sub.closed
    tags = parse_tags(bytes(received))
    live = [t for t in tags if t.timestamp_ms > msgs[39].timestamp_ms]
    assert len(live) == len([m for m in msgs[40:] if m.timestamp_ms > msgs[39].timestamp_ms])  # each frame once
    # Audio frames ride with the next video frame: a write per video frame (and one for trailing audio).
    videos = len([m for m in msgs[40:] if m.kind == "video"])
    assert 1 + videos <= writer.writes <= 2 + videos
    times = [t.timestamp_ms for t in tags if t.tag_type == 9 and t.payload[1] == 1]
    assert times == sorted(times) and times[-1] == max(m.timestamp_ms for m in msgs if m.kind == "video")


async def test_stalled_viewer_skips_to_a_keyframe_and_resumes(messages: MessageFactory) -> None:
    limits = StreamLimits(queue_max_bytes=4_000_000, queue_max_lag_ms=1500, max_skips=3)
    stream = LiveStream("s1", limits)
    async with connection() as (writer, client):
        sub = stream.subscribe()
        sub.attach(writer)
        received = bytearray()
        for message in messages(6000, gop_ms=1000, frame_bytes=3000):
            stream.publish(message)  # nobody reads: the transport's buffer grows, then the viewer skips
            await asyncio.sleep(0)
        assert sub.skipped_bytes > 0 and not sub.closed
        held = writer.buffered()
        assert 0 < held < 30 * 3100 * 2  # bounded by the lag limit (1.5 s of ~3 KB frames), not by the input
        await read_available(client, received)
        assert writer.buffered() == 0
        for message in messages(2000, gop_ms=1000, frame_bytes=3000, start_ms=6000, headers=False):
            stream.publish(message)
            await read_available(client, received, rounds=1)
        await read_available(client, received)
    assert not sub.closed
    frames = [t for t in parse_tags(bytes(received)) if t.tag_type == 9 and t.payload[1] == 1]
    jumps = [i for i in range(1, len(frames)) if frames[i].timestamp_ms - frames[i - 1].timestamp_ms > 100]
    assert jumps and all(is_key(frames[i]) for i in jumps)
    assert frames[-1].timestamp_ms >= 7900  # caught up with the live edge


async def test_viewer_that_stays_stuck_is_dropped_and_a_fast_one_is_not(messages: MessageFactory) -> None:
    limits = StreamLimits(queue_max_lag_ms=1000, max_skips=3)
    stream = LiveStream("s1", limits)
    async with connection() as (stuck_writer, _stuck), connection() as (fast_writer, fast_client):
        stuck, fast = stream.subscribe(), stream.subscribe()
        stuck.attach(stuck_writer)
        fast.attach(fast_writer)
        received = bytearray()
        msgs = messages(12_000, gop_ms=1000, frame_bytes=3000)
        for message in msgs:
            stream.publish(message)
            await read_available(fast_client, received, rounds=1)
        await read_available(fast_client, received)
    assert stuck.closed and stuck.close_reason == "too slow"
    assert not fast.closed and fast.skipped_bytes == 0 and stream.subscriber_count == 1
    assert len(parse_tags(bytes(received))) == len(msgs)


async def test_frames_of_one_callback_go_out_in_one_write(messages: MessageFactory) -> None:
    stream = LiveStream("s1")
    msgs = messages(2000, gop_ms=1000, frame_bytes=500)
    async with connection() as (writer, client):
        for message in msgs[:10]:
            stream.publish(message)
        stream.subscribe().attach(writer)
        received = bytearray()
        for first in range(10, len(msgs) - 3, 3):  # three frames per ingest read, say an audio and a video frame
            before = writer.writes
            for message in msgs[first : first + 3]:
                stream.publish(message)
            await read_available(client, received, rounds=1)
            assert writer.writes == before + 1
        await read_available(client, received)
    sent = msgs[: 10 + (len(msgs) - 13 + 2) // 3 * 3]
    times = [t.timestamp_ms for t in parse_tags(bytes(received))]
    assert sorted(times) == times and times[-1] == sent[-1].timestamp_ms
    assert len([t for t in times if t > 0]) == len([m for m in sent if m.timestamp_ms > 0])  # each frame once


async def test_audio_waits_for_video_only_briefly(messages: MessageFactory) -> None:
    stream = LiveStream("s1")
    msgs = messages(1000, gop_ms=1000, frame_bytes=500)
    async with connection() as (writer, _client):
        for message in msgs[:5]:
            stream.publish(message)
        stream.subscribe().attach(writer)
        before = writer.writes
        stream.publish(MediaMessage("audio", 200, b"\xaf\x01" + bytes(20)))  # and then no video for a while
        await asyncio.sleep(0.01)
        assert writer.writes == before  # held for the next video frame
        await asyncio.sleep(0.1)
        assert writer.writes == before + 1  # ... but not longer than AUDIO_HOLD_SECONDS
