"""One destination of one live stream: subscribe like an FLV viewer, push over RTMP(S), reconnect with back-off.

The source is a :class:`~retake.media.stream.LiveStream` subscription, so a destination gets exactly what a
viewer gets: it starts at the cached GOP's keyframe with the current sequence headers, and its queue is the
viewer's bounded queue, which skips ahead to the next keyframe when the destination falls behind. The origin
never waits for a destination (``LiveStream.publish`` is synchronous), and destinations never wait for each
other (each has its own task and socket).

While a destination is unreachable nothing is subscribed (nothing queues); the next connection starts again at
a keyframe. Timestamps are rebased so every connection's stream starts near 0, as destinations expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal

from retake.av.message import MediaMessage
from retake.ingest.push import PushConnection, PushError, PushRefusedError, PushTarget
from retake.media.flv import FlvReader, FlvTag
from retake.media.stream import LiveStream, Subscriber

log = logging.getLogger(__name__)

PushState = Literal["connecting", "live", "retrying", "failed"]
Connect = Callable[[PushTarget], Awaitable[PushConnection]]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before the next attempt: ``initial``, then ×``factor`` per failure up to ``maximum``. The factor
    is 1.5 rather than 2 so a destination back after a 10 s outage is tried again within ~5 s."""

    initial: float = 1.0
    maximum: float = 30.0
    factor: float = 1.5

    def next(self, delay: float) -> float:
        return min(delay * self.factor, self.maximum)


DEFAULT_BACKOFF: Final = Backoff()


@dataclass(frozen=True, slots=True)
class PushStatus:
    state: PushState
    last_error: str | None
    bytes_sent: int
    uptime_seconds: int  # of the current connection; 0 unless live
    attempts: int


class Pusher:
    """Pushes ``stream`` to ``target`` until :meth:`stop` or the stream ends."""

    def __init__(
        self,
        label: str,
        target: PushTarget,
        stream: LiveStream,
        *,
        connect: Connect = PushConnection.open,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label = label  # for logs: the restream id and name, never the URL's key or the key
        self._target = target
        self._stream = stream
        self._connect = connect
        self._backoff = backoff
        self._clock = clock
        self._state: PushState = "connecting"
        self._last_error: str | None = None
        self._bytes_before = 0  # bytes sent by earlier connections
        self._connection: PushConnection | None = None
        self._live_since: float | None = None
        self._attempts = 0
        self._task: asyncio.Task[None] | None = None
        self._on_done: list[Callable[[], None]] = []

    @property
    def stream(self) -> LiveStream:
        return self._stream

    def status(self) -> PushStatus:
        sent = self._bytes_before + (self._connection.bytes_sent if self._connection is not None else 0)
        uptime = int(self._clock() - self._live_since) if self._live_since is not None else 0
        return PushStatus(self._state, self._last_error, sent, uptime, self._attempts)

    def start(self, on_done: Callable[[], None] | None = None) -> None:
        if on_done is not None:
            self._on_done.append(on_done)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"restream {self.label}")
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("restream %s stopped on an unexpected error", self.label, exc_info=exc)
        for callback in self._on_done:
            callback()

    async def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait(self) -> None:
        if self._task is not None:
            await asyncio.wait({self._task})

    async def _run(self) -> None:
        delay = self._backoff.initial
        while not self._stream.closed:
            self._state = "connecting"
            self._attempts += 1
            try:
                connection = await self._connect(self._target)
            except PushRefusedError as exc:
                # The destination said no (a wrong key): retried, but only at the longest interval.
                self._fail("failed", str(exc))
                delay = self._backoff.maximum
            except PushError as exc:
                self._fail("retrying", str(exc))
            else:
                delay = self._backoff.initial
                ended = await self._push(connection)
                if ended:
                    return
            await asyncio.sleep(delay)
            delay = self._backoff.next(delay)

    def _fail(self, state: PushState, error: str) -> None:
        if self._state != state or self._last_error != error:
            log.info("restream %s: %s (%s)", self.label, state, error)
        self._state = state
        self._last_error = error

    async def _push(self, connection: PushConnection) -> bool:
        """Stream until the stream ends (True) or the connection fails (False)."""
        self._connection = connection
        self._state = "live"
        self._live_since = self._clock()
        log.info("restream %s live", self.label)
        subscriber = self._stream.subscribe()
        try:
            await self._forward(subscriber, connection)
            if subscriber.close_reason == "too slow":
                self._fail("retrying", "the destination is too slow for the stream")
                return False
            return True
        except PushError as exc:
            self._fail("retrying", str(exc))
            return False
        finally:
            subscriber.close()
            self._live_since = None
            self._bytes_before += connection.bytes_sent
            self._connection = None
            await connection.close()

    async def _forward(self, subscriber: Subscriber, connection: PushConnection) -> None:
        reader = FlvReader()
        base: int | None = None
        async for chunk in subscriber:
            messages: list[MediaMessage] = []
            for item in reader.feed(chunk):
                if not isinstance(item, FlvTag):
                    continue  # the FLV header
                message = item.to_message()
                if message.kind != "script":
                    if base is None:
                        base = message.timestamp_ms
                    message = message.with_timestamp(max(0, message.timestamp_ms - base))
                messages.append(message)
            if messages:
                await connection.send(messages)
