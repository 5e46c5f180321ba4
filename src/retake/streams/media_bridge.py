"""Connects the RTMP ingest to the media layer and the session lifecycle.

ingest ──on_publish(key)──▶ StreamService.authorize_publish ──▶ Playback: LiveStream (FLV fan-out + LL-HLS + recorder)
       ──on_media────────▶ LiveStream.publish, synchronously; the first audio/video of a publish also starts a
                           task that marks the session live (it awaits the store; on_unpublish waits for it)
       ──on_unpublish────▶ StreamService.publisher_left (grace period; viewers stay connected)
StreamService ends a session ──▶ ``Playback.session_ended`` closes the LiveStream and returns the recording path
(or finishes, from its journal, a recording a killed process left on disk: streams/recovery.py).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from retake.av.errors import AvError
from retake.av.message import MediaMessage
from retake.ingest.hooks import PublishGrant
from retake.media.errors import MediaError
from retake.media.health import HealthConfig, HealthReport, HealthSink, StreamHealth
from retake.media.hls import HlsPackager
from retake.media.journal import JOURNAL_NAME
from retake.media.recording import FileWriter, HlsRecorder
from retake.media.stream import LiveStream, StreamRegistry
from retake.streams.lifecycle import PublishTarget, StreamService

log = logging.getLogger(__name__)

INGEST_APP = "live"  # rtmp://host:1935/live/<key>


@dataclass(frozen=True)
class SessionGrant(PublishGrant):
    target: PublishTarget = field(compare=False)


@dataclass
class Playing:
    session_id: str
    stream: LiveStream
    recorder: HlsRecorder
    health: StreamHealth | None = None  # None: stream health is off (RETAKE_STREAM_HEALTH=0)
    media_seen: set[int] = field(default_factory=set)  # id() of grants that already delivered media
    # The grant whose media came last, so a message's check is one identity compare: id() is not free (it raises
    # an audit event, which showed in profiles), and the set is only consulted when the publisher changes.
    flowing: PublishGrant | None = None


class MediaBridge:
    """Implements ``retake.ingest.IngestHooks``: the lifecycle authorizes each publish, ``Playback`` plays it."""

    def __init__(self, streams: StreamService, playback: Playback) -> None:
        self._streams = streams
        self._playback = playback
        self._going_live: dict[int, asyncio.Task[None]] = {}  # id(grant) -> its media_flowing, while it runs

    async def on_publish(self, app: str, key: str) -> PublishGrant | None:
        if app != INGEST_APP:
            return None
        target = await self._streams.authorize_publish(key)
        if target is None:
            return None
        self._playback.begin(target.stream_id, target.session_id)
        return SessionGrant(stream_id=target.stream_id, session_id=target.session_id, target=target)

    def on_media(self, grant: PublishGrant, message: MediaMessage) -> None:
        """Every media message of a publish, in order, synchronously from the ingest's read callback."""
        playing = self._playback.of(grant)
        if playing is None:
            return  # the session ended under this publisher; the ingest is closing it
        try:
            playing.stream.publish(message)
        except (MediaError, AvError):
            log.warning("stream %s sent media we cannot carry; closing the publisher", grant.stream_id)
            raise
        if playing.flowing is not grant and message.kind != "script":
            playing.flowing = grant
            if id(grant) not in playing.media_seen:
                playing.media_seen.add(id(grant))
                self._go_live(grant)

    def _go_live(self, grant: PublishGrant) -> None:
        # The first audio/video marks the session live, which awaits the store: a task, so the per-message
        # path stays synchronous. Later messages go on meanwhile (they need nothing of it).
        assert isinstance(grant, SessionGrant)
        key = id(grant)
        task = asyncio.get_running_loop().create_task(self._streams.media_flowing(grant.target))
        self._going_live[key] = task

        def done(task: asyncio.Task[None]) -> None:
            if self._going_live.get(key) is task:
                del self._going_live[key]
            if not task.cancelled() and (exc := task.exception()) is not None:
                log.error("marking session %s live failed", grant.session_id, exc_info=exc)

        task.add_done_callback(done)

    async def on_unpublish(self, grant: PublishGrant, reason: str) -> None:
        assert isinstance(grant, SessionGrant)
        going_live = self._going_live.get(id(grant))
        if going_live is not None:
            await asyncio.wait({going_live})  # live, then left: in the order the publisher did it
        self._playback.publisher_left(grant)
        await self._streams.publisher_left(grant.target, reason)


class Playback:
    """What plays on this node: per stream, its LiveStream (FLV fan-out + LL-HLS) and recorder.

    Implements ``retake.streams.ports.MediaControl``. Separate from the ingest side (``MediaBridge``) so the
    lifecycle can be given it in its constructor: it needs nothing of the lifecycle.
    """

    def __init__(
        self,
        recordings_dir: Path,
        health: HealthConfig | None = HealthConfig(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._recordings_dir = recordings_dir
        self._health = health  # None: no health meter on the streams
        self._clock = clock
        self.registry = StreamRegistry()
        self._playback: dict[str, Playing] = {}  # stream_id -> what is playing now
        self._files = FileWriter()  # recordings are written off the event loop

    @property
    def recordings_dir(self) -> Path:
        return self._recordings_dir

    def begin(self, stream_id: str, session_id: str) -> None:
        """A publish of ``session_id`` was granted: play it, continuing that session's stream after a reconnect."""
        playback = self._playback.get(stream_id)
        if playback is not None and playback.session_id != session_id:
            self._close(stream_id)  # an old session's leftovers must not mix into the new one
            playback = None
        if playback is None:
            directory = self._recordings_dir / session_id
            recorder = HlsRecorder(directory, writer=self._files)
            packager = HlsPackager()
            packager.add_listener(recorder)
            packager.serve_from(recorder)  # older segments are read from the recording, not kept in memory
            stream = self.registry.open(stream_id)
            if stream.hls is None:
                stream.hls = packager
                stream.add_sink(packager)
            meter = StreamHealth(self._health) if self._health is not None else None
            if meter is not None:
                stream.add_sink(HealthSink(meter, self._clock))
            playback = Playing(session_id, stream, recorder, meter)
            self._playback[stream_id] = playback
        playback.stream.begin_publish()
        if playback.health is not None:
            playback.health.publish_started(self._clock())

    def of(self, grant: PublishGrant) -> Playing | None:
        """The playback a grant publishes into; ``None`` once its session ended."""
        playback = self._playback.get(grant.stream_id)
        if playback is None or playback.session_id != grant.session_id:
            return None
        return playback

    def has_publisher(self, stream_id: str) -> bool:
        """Whether a publisher is delivering media into ``stream_id`` here now (False in the reconnect grace)."""
        playback = self._playback.get(stream_id)
        return playback is not None and bool(playback.media_seen)

    def publisher_left(self, grant: PublishGrant) -> None:
        playback = self._playback.get(grant.stream_id)
        if playback is not None:
            playback.media_seen.discard(id(grant))
            if playback.flowing is grant:
                playback.flowing = None

    # -- MediaControl --------------------------------------------------------------------------------------

    async def session_ended(self, stream_id: str, session_id: str) -> str | None:
        playback = self._playback.get(stream_id)
        if playback is None or playback.session_id != session_id:
            # Nothing plays here, but a process before this one may have recorded the session and died
            # (kill -9, power): its journal on disk still finishes the recording.
            return await asyncio.to_thread(self._finish_on_disk, session_id)
        return self._close(stream_id)

    async def discard_recording(self, session_id: str) -> None:
        """A deleted session's recording goes with it: ``/recordings/<session_id>/`` is served to anyone."""
        directory = self._recordings_dir / session_id
        if directory.parent != self._recordings_dir:  # an id is one path component; anything else names nothing
            return
        for stream_id, playback in list(self._playback.items()):
            if playback.session_id == session_id:
                self._close(stream_id)
        await asyncio.to_thread(self._remove_written, directory)

    def flush_recordings(self) -> bool:
        """Wait (in a thread) until every recording write queued so far is on disk (clips read the files)."""
        return self._files.flush()

    def _remove_written(self, directory: Path) -> None:
        self._files.flush()  # segments still queued would otherwise land after the removal and be served again
        shutil.rmtree(directory, ignore_errors=True)

    def _finish_on_disk(self, session_id: str) -> str | None:
        directory = self._recordings_dir / session_id
        if not (directory / JOURNAL_NAME).is_file():
            return None
        path = HlsRecorder(directory).finish()
        return str(path.parent) if path is not None else None

    def _close(self, stream_id: str) -> str | None:
        playback = self._playback.pop(stream_id)
        self.registry.close(stream_id)  # ends viewers and the packager, which finishes the recorder
        path = playback.recorder.finish()
        if path is None:
            shutil.rmtree(playback.recorder.directory, ignore_errors=True)
            return None
        return str(path.parent)

    def live_stream(self, stream_id: str) -> LiveStream | None:
        playback = self._playback.get(stream_id)
        return playback.stream if playback else None

    def health(self, stream_id: str) -> HealthReport | None:
        """The health of the stream playing here now; None when nothing plays or health is off."""
        playback = self._playback.get(stream_id)
        if playback is None or playback.health is None:
            return None
        return playback.health.report(self._clock())

    def health_reports(self) -> list[HealthReport]:
        """The health of every stream playing on this node (Prometheus gauges)."""
        now = self._clock()
        return [p.health.report(now) for p in self._playback.values() if p.health is not None]

    def playing(self) -> list[tuple[str, str, LiveStream]]:
        """(stream_id, session_id, stream) of every stream with playback on this node (preview images)."""
        return [(stream_id, p.session_id, p.stream) for stream_id, p in self._playback.items()]

    def close_all(self) -> None:
        for stream_id in list(self._playback):
            self._close(stream_id)
