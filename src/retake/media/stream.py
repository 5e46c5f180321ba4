"""Live FLV fan-out: one :class:`LiveStream` per stream id, many :class:`Subscriber` viewers.

The publisher path never awaits a viewer (mediamtx#5162, Red5/red5-server#479): ``publish()`` is
synchronous, and each viewer has a bounded queue, or is a connection written to from here (attached viewers:
the frames of one event-loop callback in one write each, see ``viewer_io.py``). A viewer that falls behind is
skipped ahead to the next keyframe, and one that keeps falling behind is dropped, so memory never grows with slow
readers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

from retake.av import amf0
from retake.av.errors import AmfError
from retake.av.headers import Tracks
from retake.av.message import MediaMessage

from .flv import (
    AAC_SEQUENCE_HEADER,
    AVC_NALU,
    AVC_SEQUENCE_HEADER,
    FRAME_GENERATED_KEY,
    FRAME_KEY,
    TAG_AUDIO,
    TAG_SCRIPT,
    TAG_VIDEO,
    FlvTag,
    ScriptData,
    audio_packet_type,
    stream_start,
    video_header,
)
from .hls import HlsPackager
from .stream_types import Keyframe, MediaSink, StreamLimits
from .subscriber import Subscriber
from .timestamps import TimestampRepair
from .viewer_io import SharedBatch, SharedTag

# How long an audio frame may wait for the next video frame to share its write (a 30 fps stream's frame interval
# and a bit: video is never held; audio-only streams are not held).
AUDIO_HOLD_SECONDS = 0.04

__all__ = ["Keyframe", "LiveStream", "MediaSink", "StreamLimits", "StreamRegistry", "Subscriber"]


class LiveStream:
    """Per-stream state: codec headers (:attr:`tracks`, shared with the sinks), metadata, the latest GOP,
    viewers and sinks.

    Feed it the ingest's messages in order with :meth:`publish`; timestamps are repaired first, and sinks
    (HLS packager, recorders) receive the repaired messages.
    """

    def __init__(
        self,
        stream_id: str,
        limits: StreamLimits | None = None,
        repair: TimestampRepair | None = None,
        hls: HlsPackager | None = None,
    ) -> None:
        self.stream_id = stream_id
        self.limits = limits or StreamLimits()
        self.repair = repair or TimestampRepair()
        self.tracks = Tracks()  # sequence headers, parsed once here; their payloads are re-stamped per use
        self.metadata: dict[str, amf0.AmfValue] = {}
        self._gop: list[SharedTag] = []
        self._gop_bytes = 0
        self._subscribers: list[Subscriber] = []
        self._sinks: list[MediaSink] = []
        self._closed = False
        self._batch: list[SharedTag] = []  # frames for the attached viewers, written at the end of the callback
        self._flush_handle: asyncio.Handle | None = None
        self._flush_delayed = False
        self.hls = hls  # the stream's LL-HLS packager, if any (also registered as a sink)
        if hls is not None:
            self.add_sink(hls)

    # -- properties --------------------------------------------------------------------------------

    @property
    def has_video(self) -> bool:
        return self.tracks.video is not None or "videocodecid" in self.metadata

    @property
    def has_audio(self) -> bool:
        return self.tracks.audio is not None or "audiocodecid" in self.metadata

    @property
    def codecs(self) -> str:
        """RFC 6381 CODECS list of the known tracks, e.g. ``avc1.64001f,mp4a.40.2``."""
        return self.tracks.codecs

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def gop_bytes(self) -> int:
        return self._gop_bytes

    def latest_keyframe(self) -> Keyframe | None:
        """The keyframe that starts the cached GOP, with the current AVC config; None without one."""
        video = self.tracks.video
        if video is None or not self._gop:
            return None
        first = self._gop[0]
        if first.tag_type != TAG_VIDEO:  # audio-only GOPs start with an AAC frame
            return None
        # [FLV E.4.3.1] the 5-byte AVC video header, then the length-prefixed NAL units
        return Keyframe(video.avc_config, first.body[5:], first.timestamp_ms)

    # -- publisher side ----------------------------------------------------------------------------

    def begin_publish(self) -> None:
        """A (new) publisher starts: its timeline continues after ours and its GOPs start fresh."""
        self._flush()
        self.repair.mark_discontinuity()
        self._gop = []
        self._gop_bytes = 0

    def publish(self, message: MediaMessage) -> None:
        """Take one ingest message. Raises :class:`~.errors.UnsupportedCodecError` / ``FlvError``."""
        if self._closed:
            return
        message = self.repair.repair(message)
        kind = message.kind
        if kind == "video":
            self._on_video(message)
        elif kind == "audio":
            self._on_audio(message)
        else:
            self._on_script(message)
        for sink in self._sinks:
            sink.push(message)

    def _on_script(self, message: MediaMessage) -> None:
        try:
            script = ScriptData.parse(message.payload)
        except AmfError:
            return  # metadata is advisory; a broken one must not end the stream
        if script.name != "onMetaData" or not isinstance(script.value, dict):
            return
        self.metadata = dict(script.value)
        self._flush()
        data = self._metadata_tag()
        for sub in self._subscribers:
            sub._offer_config(data)

    def _on_video(self, message: MediaMessage) -> None:
        frame_type, packet_type = video_header(message.payload)
        if packet_type == AVC_NALU:
            key = frame_type in (FRAME_KEY, FRAME_GENERATED_KEY)
            self._on_frame(TAG_VIDEO, message, is_sync=key, resets_gop=key)
        elif packet_type == AVC_SEQUENCE_HEADER:
            self.tracks.update_video(message.payload)  # the one parse of this header (SPS included)
            self._broadcast_config(message)
        # end-of-sequence and command frames are not relayed

    def _on_audio(self, message: MediaMessage) -> None:
        if audio_packet_type(message.payload) == AAC_SEQUENCE_HEADER:
            self.tracks.update_audio(message.payload)
            self._broadcast_config(message)
        else:
            # Without video every AAC frame is a random access point.
            video = self.tracks.video is not None or "videocodecid" in self.metadata
            self._on_frame(TAG_AUDIO, message, is_sync=not video, resets_gop=not video)

    def _broadcast_config(self, message: MediaMessage) -> None:
        self._flush()
        data = FlvTag.from_message(message).serialize()
        for sub in self._subscribers:
            sub._offer_config(data)

    def _on_frame(self, tag_type: int, message: MediaMessage, is_sync: bool, resets_gop: bool) -> None:
        timestamp_ms = message.timestamp_ms
        tag = SharedTag(tag_type, timestamp_ms, message.payload, is_sync)
        size = tag.size
        if resets_gop:
            self._gop = [tag]
            self._gop_bytes = size
        elif self._gop:
            span = timestamp_ms - self._gop[0].timestamp_ms
            if self._gop_bytes + size > self.limits.gop_max_bytes or span > self.limits.gop_max_duration_ms:
                self._gop = []  # too long to cache: new viewers wait for the next keyframe
                self._gop_bytes = 0
            else:
                self._gop.append(tag)
                self._gop_bytes += size
        if self._subscribers:
            batched = False
            for sub in list(self._subscribers):
                if not sub._started:
                    if is_sync and self._gop:
                        sub._bootstrap(self._bootstrap_head(), self._gop)
                        if sub._writer is not None:
                            sub._batch_from = len(self._batch) + 1  # this frame was in its bootstrap
                            batched = True
                elif sub._writer is not None:
                    batched = True
                else:
                    sub._offer(tag)
            if batched:
                self._batch.append(tag)
                # Audio frames of a stream with video wait (briefly) for the next video frame: one write per
                # viewer per video frame instead of ~2.4 (43 AAC + 30 video frames a second).
                hold = tag_type == TAG_AUDIO and not is_sync
                if self._flush_handle is None or (not hold and self._flush_delayed):
                    self._schedule_flush(AUDIO_HOLD_SECONDS if hold else 0.0)

    def _schedule_flush(self, delay: float) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside an event loop (tools, tests): no batching
            self._flush()
            return
        self._flush_delayed = delay > 0
        self._flush_handle = loop.call_later(delay, self._flush) if delay > 0 else loop.call_soon(self._flush)

    def _flush(self) -> None:
        """Write the pending frames to the attached viewers (also before anything that must come after them)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        if not self._batch:
            return
        batch = SharedBatch(self._batch)
        self._batch = []
        for sub in list(self._subscribers):
            writer = sub._writer
            if writer is not None and sub._started:
                sub._offer_batch(batch, writer)
        for tag in batch.tags:
            tag.drop_framed()

    # -- viewer side -------------------------------------------------------------------------------

    def subscribe(self) -> Subscriber:
        """A new viewer; it starts at once from the cached GOP, or at the next keyframe."""
        self._flush()
        sub = Subscriber(self, self.limits)
        if self._closed:
            sub._finish("stream ended")
            return sub
        self._subscribers.append(sub)
        if self._gop:
            sub._bootstrap(self._bootstrap_head(), self._gop)
        return sub

    def _bootstrap_head(self) -> list[bytes]:
        # FLV header with the real tracks → onMetaData → AVC then AAC sequence headers, stamped with the
        # first GOP tag's time so per-track time never goes backwards on this connection [media notes §2].
        start = self._gop[0].timestamp_ms if self._gop else self.repair.current_ms
        head = [stream_start(has_audio=self.has_audio, has_video=self.has_video)]
        if self.metadata:
            head.append(self._metadata_tag())
        head += self._config_tags(start)
        return head

    def _config_tags(self, timestamp_ms: int) -> list[bytes]:
        tags = []
        video, audio = self.tracks.video, self.tracks.audio
        if video is not None:
            tags.append(FlvTag(9, timestamp_ms, video.payload).serialize())
        if audio is not None:
            tags.append(FlvTag(8, timestamp_ms, audio.payload).serialize())
        return tags

    def _resend_config(self, sub: Subscriber) -> None:
        # Queued sequence headers may have been dropped by a skip; the viewer needs the current ones.
        for data in self._config_tags(self.repair.current_ms):
            sub._append(data, None)

    def _metadata_tag(self) -> bytes:
        # hasAudio/hasVideo are honoured by mpegts.js and keep MSE from waiting for an absent track. Time 0:
        # ffmpeg's FLV demuxer treats onMetaData at any other time as a subtitle stream (flvdec.c).
        value = amf0.EcmaArray(self.metadata)
        value["hasAudio"] = self.has_audio
        value["hasVideo"] = self.has_video
        return FlvTag(TAG_SCRIPT, 0, ScriptData("onMetaData", value).serialize()).serialize()

    def _forget(self, sub: Subscriber) -> None:
        if sub in self._subscribers:
            self._subscribers.remove(sub)

    # -- sinks and lifecycle -----------------------------------------------------------------------

    def add_sink(self, sink: MediaSink) -> Callable[[], None]:
        """Feed ``sink`` every later message; returns a function that detaches it."""
        sink.share_tracks(self.tracks)
        self._sinks.append(sink)

        def remove() -> None:
            if sink in self._sinks:
                self._sinks.remove(sink)

        return remove

    def close(self, reason: str = "stream ended") -> None:
        """End the stream: viewers drain their queues and stop; sinks get ``end()``."""
        if self._closed:
            return
        self._flush()
        self._closed = True
        for sub in list(self._subscribers):
            sub._finish(reason)
        for sink in self._sinks:
            sink.end()
        self._gop = []
        self._gop_bytes = 0


class StreamRegistry:
    """stream_id → :class:`LiveStream`, for the live streams of this process."""

    def __init__(self, factory: Callable[[str], LiveStream] | None = None) -> None:
        self._factory = factory or LiveStream
        self._streams: dict[str, LiveStream] = {}

    def get(self, stream_id: str) -> LiveStream | None:
        return self._streams.get(stream_id)

    def open(self, stream_id: str) -> LiveStream:
        """The live stream for ``stream_id``, created on first use."""
        stream = self._streams.get(stream_id)
        if stream is None or stream.closed:
            stream = self._factory(stream_id)
            self._streams[stream_id] = stream
        return stream

    def close(self, stream_id: str, reason: str = "stream ended") -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            stream.close(reason)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._streams

    def __len__(self) -> int:
        return len(self._streams)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._streams))
