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
2. ``on_media(grant, message)`` for each audio, video and script message, in arrival order, one at a time:
   a plain (synchronous) call from the socket's read callback (or from the connection's task, for media
   queued behind an event the task handles), with the :class:`~retake.av.message.MediaMessage` the RTMP
   core emitted (no copy, no coroutine, no task wakeup: at
   73 messages a second per stream, those were most of the ingest's CPU, docs/benchmarks.md). It must not
   block; work that has to wait (the store) is the implementation's to schedule as a task, and it must keep
   its own order. If it raises, the connection is closed with reason ``"error"`` and nothing after that
   message is delivered.
3. ``on_unpublish(grant, reason)`` exactly once when that publish ends — **except on takeover**: when a new
   publish is granted with the same ``session_id`` while this one is live, the old connection is closed and
   ``on_unpublish`` is *not* called for it (the session goes on with the new publisher; viewers stay).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from retake.av.message import MediaMessage

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


class IngestHooks(Protocol):
    async def on_publish(self, app: str, key: str) -> PublishGrant | None: ...

    def on_media(self, grant: PublishGrant, message: MediaMessage) -> None: ...

    async def on_unpublish(self, grant: PublishGrant, reason: str) -> None: ...
