"""What the FLV fan-out hands its viewers: the shared tag of each frame, and the direct-write connection.

A viewer with a :class:`DirectWriter` (HTTP-FLV on retake's uvicorn protocol, WebSocket-FLV on its frame
writer) is written to from the publish path itself: no queue, no task wake-up and no ASGI message per tag. The
frames one ingest read brought (often an audio and a video frame) go out together at the end of that event-loop
callback (:class:`SharedBatch`): one ``transport.write`` per viewer per batch, a syscall being most of a write's
cost. Framing (an HTTP chunk, a WebSocket binary frame) is done once per batch and shared by every viewer that
frames alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .flv import TAG_HEADER_SIZE, tag_bytes

Framing = Callable[[bytes], bytes]


class DirectWriter(Protocol):
    """One viewer's connection. ``framing`` must be the same function object for every connection that frames
    alike (a module-level function or a staticmethod): it keys the per-tag cache."""

    @property
    def framing(self) -> Framing: ...

    def write(self, framed: bytes) -> bool:
        """Write without waiting; False when the connection is gone."""

    def buffered(self) -> int:
        """Bytes written but not yet taken by the kernel (the transport's write buffer)."""


class SharedTag:
    """One frame as an FLV tag, shared by every viewer's queue and the GOP cache.

    Serialized on first use, and from then on only the serialized tag is kept (it contains the body): a stream
    nobody watches over FLV (LL-HLS viewers, or none) never pays for its tags, and one that is watched holds
    each frame once. A plain class, not a dataclass: one is made per frame, ~73 times a second per stream.
    Framed copies live only while the frame is being fanned out (the stream drops them after), so the GOP
    cache holds each frame once.
    """

    __slots__ = ("_body", "_data", "_framed", "is_sync", "size", "tag_type", "timestamp_ms")

    def __init__(self, tag_type: int, timestamp_ms: int, body: bytes, is_sync: bool) -> None:
        self.tag_type = tag_type
        self.timestamp_ms = timestamp_ms
        self.is_sync = is_sync  # a point a new or skipped viewer may start at
        self.size = TAG_HEADER_SIZE + len(body) + 4  # bytes of the serialized tag [FLV E.3]
        self._body: bytes | None = body
        self._data: bytes | None = None
        self._framed: dict[Framing, bytes] | None = None

    @property
    def data(self) -> bytes:
        """The serialized FLV tag."""
        data = self._data
        if data is None:
            assert self._body is not None
            data = self._data = tag_bytes(self.tag_type, self.timestamp_ms, self._body)
            self._body = None
        return data

    @property
    def body(self) -> bytes:
        """The FLV tag body (a copy once the tag was serialized)."""
        if self._body is not None:
            return self._body
        assert self._data is not None
        return self._data[TAG_HEADER_SIZE:-4]

    def framed(self, framing: Framing) -> bytes:
        """The serialized tag framed by ``framing``, made once per fan-out of this frame."""
        cache = self._framed
        if cache is None:
            cache = self._framed = {}
        framed = cache.get(framing)
        if framed is None:
            framed = cache[framing] = framing(self.data)
        return framed

    def drop_framed(self) -> None:
        self._framed = None


class SharedBatch:
    """The frames published within one event-loop callback, as one framed write shared by the viewers."""

    __slots__ = ("_framed", "tags")

    def __init__(self, tags: list[SharedTag]) -> None:
        self.tags = tags
        self._framed: dict[Framing, bytes] = {}

    def framed(self, framing: Framing) -> bytes:
        framed = self._framed.get(framing)
        if framed is None:
            tags = self.tags
            data = tags[0].data if len(tags) == 1 else b"".join([t.data for t in tags])
            framed = self._framed[framing] = framing(data)
        return framed
