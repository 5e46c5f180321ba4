"""One viewer of a :class:`~.stream.LiveStream`: a bounded queue read by ``async for``, or a connection written
to from the publish path (:meth:`Subscriber.attach`).

A viewer that falls behind is skipped ahead to the next keyframe, and one that keeps falling behind is dropped,
so memory never grows with slow readers.
"""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING

from .stream_types import StreamLimits
from .viewer_io import DirectWriter, SharedBatch, SharedTag

if TYPE_CHECKING:
    from .stream import LiveStream

_SKIP_WINDOW_MS = 60_000
RESUME_BELOW_BYTES = 64 * 1024  # a skipped direct viewer resumes once its connection took all but this


class Subscriber:
    """One viewer: ``async for chunk in subscriber`` yields FLV bytes (header first) until the end.

    Iteration ends when the stream closes (after the queue drains), when :meth:`close` is called, or when
    the viewer is dropped for being too slow (``close_reason`` says which). After :meth:`attach` the bytes go
    to a :class:`~.viewer_io.DirectWriter` instead; the connection's write buffer is then the queue.
    """

    def __init__(self, stream: LiveStream, limits: StreamLimits) -> None:
        self._stream = stream
        self._limits = limits
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._oldest_ts: int | None = None
        self._started = False
        self._waiting_for_sync = False
        self._skips: deque[int] = deque()
        self._event = asyncio.Event()
        self._closed = False
        self._close_reason: str | None = None
        self._writer: DirectWriter | None = None
        self._skip_ts = 0  # direct: media time of the last skip (or keyframe passed while still behind)
        self._batch_from = 0  # direct: tags of the stream's pending batch this viewer already has (bootstrap)
        self.skipped_bytes = 0

    # -- viewer side -------------------------------------------------------------------------------

    def __aiter__(self) -> Subscriber:
        return self

    async def __anext__(self) -> bytes:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            self._event.clear()
            await self._event.wait()
        chunk = b"".join(self._queue)
        self._queue.clear()
        self._queued_bytes = 0
        self._oldest_ts = None
        return chunk

    def attach(self, writer: DirectWriter) -> None:
        """Write to ``writer`` from the publish path from now on; what is queued (the bootstrap) goes first."""
        self._stream._flush()  # frames in the stream's pending batch may be queued here already
        self._writer = writer
        if self._queue:
            data = b"".join(self._queue)
            self._queue.clear()
            self._queued_bytes = 0
            self._oldest_ts = None
            self._write(data)

    async def wait_closed(self) -> None:
        """Until the stream ends, :meth:`close` is called or the viewer is dropped (for attached viewers)."""
        while not self._closed:
            self._event.clear()
            await self._event.wait()

    def _write(self, data: bytes) -> None:
        writer = self._writer
        assert writer is not None
        if not writer.write(writer.framing(data)):
            self._finish("viewer left")

    async def __aenter__(self) -> Subscriber:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self, reason: str = "viewer closed") -> None:
        """Stop receiving; pending bytes are discarded. Safe to call more than once."""
        self._queue.clear()
        self._queued_bytes = 0
        self._finish(reason)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

    @property
    def queued_bytes(self) -> int:
        return self._queued_bytes

    @property
    def started(self) -> bool:
        """True once the FLV header and bootstrap went into the queue."""
        return self._started

    # -- stream side --------------------------------------------------------------------------------

    def _finish(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self._close_reason = reason
            self._stream._forget(self)
        self._event.set()

    def _bootstrap(self, head: list[bytes], gop: list[SharedTag]) -> None:
        self._started = True
        if self._writer is not None:
            self._write(b"".join([*head, *(tag.data for tag in gop)]))
            return
        for data in head:
            self._append(data, None)
        for tag in gop:
            self._append(tag.data, None)  # the cached GOP is not counted as lag

    def _append(self, data: bytes, timestamp_ms: int | None) -> None:
        if self._writer is not None:
            self._write(data)
            return
        self._queue.append(data)
        self._queued_bytes += len(data)
        if timestamp_ms is not None and self._oldest_ts is None:
            self._oldest_ts = timestamp_ms
        self._event.set()

    def _offer_config(self, data: bytes) -> None:
        """Sequence headers and metadata are always delivered (they are small and needed to decode)."""
        if self._started and not self._closed:
            self._append(data, None)

    def _offer(self, tag: SharedTag) -> None:
        if not self._started or self._closed:
            return
        if self._writer is not None:
            self._offer_direct(tag, self._writer)
            return
        if self._waiting_for_sync:
            if not tag.is_sync:
                self.skipped_bytes += tag.size
                return
            self._waiting_for_sync = False
        lag = tag.timestamp_ms - self._oldest_ts if self._oldest_ts is not None else 0
        if self._queued_bytes + tag.size > self._limits.queue_max_bytes or lag > self._limits.queue_max_lag_ms:
            self._skip_ahead(tag)
            return
        self._append(tag.data, tag.timestamp_ms)

    def _offer_direct(self, tag: SharedTag, writer: DirectWriter) -> None:
        # The lag is media time written since the connection last had nothing buffered; the bytes already
        # written stay (whole tags: the stream stays valid), so a skipped viewer waits for a keyframe that
        # comes when it has taken nearly all of them, and one that stays stuck counts a skip per lag period.
        buffered = writer.buffered()
        if not buffered and not self._waiting_for_sync:  # the connection keeps up: the common case, kept short
            self._oldest_ts = tag.timestamp_ms
            if not writer.write(tag.framed(writer.framing)):
                self._finish("viewer left")
            return
        if self._waiting_for_sync:
            if not tag.is_sync or buffered > RESUME_BELOW_BYTES:
                self.skipped_bytes += tag.size
                if tag.is_sync and tag.timestamp_ms - self._skip_ts > self._limits.queue_max_lag_ms:
                    self._count_skip(tag.timestamp_ms)
                return
            self._waiting_for_sync = False
            self._oldest_ts = tag.timestamp_ms
        elif self._oldest_ts is None:
            self._oldest_ts = tag.timestamp_ms
        lag = tag.timestamp_ms - self._oldest_ts
        if buffered + tag.size > self._limits.queue_max_bytes or lag > self._limits.queue_max_lag_ms:
            self.skipped_bytes += tag.size
            self._waiting_for_sync = True
            self._count_skip(tag.timestamp_ms)
        elif not writer.write(tag.framed(writer.framing)):
            self._finish("viewer left")

    def _offer_batch(self, batch: SharedBatch, writer: DirectWriter) -> None:
        start, self._batch_from = self._batch_from, 0
        if self._closed:
            return
        if not start and not self._waiting_for_sync and not writer.buffered():  # keeping up: one write
            self._oldest_ts = batch.tags[0].timestamp_ms
            if not writer.write(batch.framed(writer.framing)):
                self._finish("viewer left")
            return
        for tag in batch.tags[start:]:
            if self._closed:
                return
            self._offer_direct(tag, writer)

    def _count_skip(self, timestamp_ms: int) -> bool:
        """Note a skip; too many in a minute means the viewer cannot keep up at all (it is dropped)."""
        self._skip_ts = timestamp_ms
        self._skips.append(timestamp_ms)
        while self._skips and self._skips[0] < timestamp_ms - _SKIP_WINDOW_MS:
            self._skips.popleft()
        if len(self._skips) > self._limits.max_skips:
            self._finish("too slow")
            return True
        return False

    def _skip_ahead(self, tag: SharedTag) -> None:
        # Too far behind: drop what is queued and resume at the next keyframe (never mid-GOP, which would
        # not decode).
        self.skipped_bytes += self._queued_bytes
        self._queue.clear()
        self._queued_bytes = 0
        self._oldest_ts = None
        if self._count_skip(tag.timestamp_ms):
            return
        self._waiting_for_sync = True
        self._stream._resend_config(self)
        self._offer(tag)
