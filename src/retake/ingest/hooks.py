"""The interface the ingest calls out through. The streams layer implements :class:`IngestHooks`; the
ingest imports nothing from ``retake.streams``, ``retake.server`` or ``retake.store``.

Lifecycle of one publishing connection, as seen by the hooks:

1. ``on_publish(app, key)`` once the client sent ``publish`` and *before* anything is answered. Return a
   :class:`PublishGrant` to accept (NetStream.Publish.Start goes out after it returns) or ``None`` to refuse
   (NetStream.Publish.BadName, level error, then the connection is closed). If it raises, the publish is
   refused the same way and the exception is logged. ``key`` is the publish name without its ``?query``
   (``rtmp://h/live/KEY?x=1`` → app ``"live"``, key ``"KEY"``); ``app`` is the connect app without its query
   and outer slashes. Both come from the client: compare, never log the key.
   The grant object returned is the one passed back to ``on_media``/``on_unpublish`` (same identity), so an
   implementation may return a subclass of :class:`PublishGrant` that carries its own bookkeeping.
2. ``on_media(grant, message)`` for each audio, video and script message, in arrival order, one at a time
   (the connection is not read while it runs, so a slow hook back-pressures the encoder).
   Optional direct path: hooks that also define ``on_media_nowait(grant, kind, timestamp_ms, payload)``
   (:class:`MediaNowait`) get each media message through it first, synchronously, from the socket's read
   callback. Returning ``True`` means handled; ``False`` sends that message (and everything after it in the
   same read) through ``on_media`` as above. Raising works as ``on_media`` raising. At 73 messages per second
   per stream, the coroutine, the task wakeup and the message object that ``on_media`` costs were most of
   the ingest's CPU (docs/benchmarks.md, media).
3. ``on_unpublish(grant, reason)`` exactly once when that publish ends — **except on takeover**: when a new
   publish is granted with the same ``session_id`` while this one is live, the old connection is closed and
   ``on_unpublish`` is *not* called for it (the session goes on with the new publisher; viewers stay).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

MediaKind = Literal["audio", "video", "script"]

UnpublishReason = Literal[
    "unpublish",  # the encoder sent FCUnpublish / deleteStream / closeStream
    "disconnect",  # the TCP connection ended (EOF or reset)
    "timeout",  # nothing received for read_timeout seconds
    "protocol_error",  # the encoder sent malformed RTMP
    "stopped",  # RtmpServer.close_publisher(session_id) was called (stream/stop, operator)
    "shutdown",  # RtmpServer.stop()
    "error",  # on_media raised; the connection was closed
]


@dataclass(frozen=True)
class PublishGrant:
    stream_id: str  # the streamer's userDbId; playback is keyed by it
    session_id: str  # the open stream session


@dataclass(frozen=True)
class MediaMessage:
    kind: MediaKind
    timestamp_ms: int  # RTMP timestamp (32-bit, extended-timestamp aware, absolute; wraps at 2^32)
    payload: bytes = field(repr=False)  # the FLV tag body (exactly what an FLV tag of that type carries)


class MediaNowait(Protocol):
    """The optional synchronous media hook (see the module docstring, step 2)."""

    def on_media_nowait(self, grant: PublishGrant, kind: MediaKind, timestamp_ms: int, payload: bytes) -> bool: ...


class IngestHooks(Protocol):
    async def on_publish(self, app: str, key: str) -> PublishGrant | None: ...

    async def on_media(self, grant: PublishGrant, message: MediaMessage) -> None: ...

    async def on_unpublish(self, grant: PublishGrant, reason: str) -> None: ...
