"""Preview images of open sessions: the latest keyframe of each live stream on this node, as a JPEG.

When: a stream's first preview at once (the live grid and its share card need one); then only when somebody
looks, at most once per ``interval`` (``looked_at``: the home page, the live listings, a share card, a request of
a preview image), and otherwise at the slow ``idle_interval`` (0: never). A preview costs ~5 ms of CPU, the
largest single Python cost of a live stream when every stream got one every 10 s whether anyone looked or not
(docs/benchmarks.md, "Where each message's cost goes").

The rule, kept here and applied in one conditional UPDATE: a preview becomes the session's ``thumbnail_url``
only while that is empty or itself one of this stream's previews. An uploaded thumbnail (or one the owner set)
always wins, also when the upload lands while a preview is being made; clearing it lets previews return.
Decoding and file writes run in a worker thread, one stream at a time, so the event loop never waits on them
and at most one core's worth of a moment goes to previews.

A node also makes at most ``max_per_second`` previews, the most overdue streams first: one costs ~5 ms of CPU
(decode a 720p keyframe, scale, JPEG), so 50 streams at a 10 s interval took ~2.5 % of a core, half of what
nginx-rtmp spends on relaying all 50 (docs/benchmarks.md, media). With many streams each preview is then
older than ``interval`` (at 1/s and 50 streams, ~50 s); with few, nothing changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.images import ImageStore
from retake.media.preview import PREVIEW_WIDTH, PreviewError, render_preview
from retake.media.stream import Keyframe, LiveStream
from retake.store.tables import StreamSession

log = logging.getLogger(__name__)

PREVIEW_KIND = "previews"  # <data_dir>/media/previews/<userDbId>/<random>.jpg

PlayingStreams = Callable[[], Iterable[tuple[str, str, LiveStream]]]  # (stream_id, session_id, stream)


@dataclass
class _Last:
    session_id: str
    at: float  # clock() of the last attempt that found a keyframe
    keyframe_ms: int


class PreviewService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        images: ImageStore,
        playing: PlayingStreams,
        *,
        interval_seconds: float = 10.0,
        idle_interval_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        max_per_second: float = 1.0,
        width: int = PREVIEW_WIDTH,
        clock: Callable[[], float] = time.monotonic,
        render: Callable[[Keyframe, int], bytes] = render_preview,
    ) -> None:
        self._sessions = sessions
        self._images = images
        self._playing = playing
        self.interval = interval_seconds
        self.idle_interval = idle_interval_seconds  # 0: a preview only when somebody looks
        self._poll = min(poll_seconds, interval_seconds)
        # Previews allowed per pass (at least one, so a long poll never starves them).
        self._per_pass = max(1, math.floor(max_per_second * self._poll))
        self._width = width
        self._clock = clock
        self._render = render
        self._last: dict[str, _Last] = {}  # stream_id -> last preview attempt
        self._looked: dict[str, float] = {}  # stream_id -> clock() of the last look at its preview
        self._looked_all = -math.inf  # clock() of the last look at every stream's (a listing, the home page)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="retake-previews")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # a bad frame or a busy database must not end previews for everyone
                log.exception("preview refresh failed")
            await asyncio.sleep(self._poll)

    def looked_at(self, stream_id: str | None = None) -> None:
        """Somebody looks at ``stream_id``'s preview (``None``: at every live stream's): the next pass makes a
        fresh one if the last is older than ``interval``. Cheap: called per request."""
        if stream_id is None:
            self._looked_all = self._clock()
        elif stream_id in self._last or len(self._looked) < 4096:  # a stranger's made-up ids cannot grow it
            self._looked[stream_id] = self._clock()

    async def refresh(self) -> int:
        """One pass over the playing streams; returns how many previews were stored."""
        made = 0
        playing = list(self._playing())
        ids = {stream_id for stream_id, _, _ in playing}
        for gone in self._last.keys() - ids:
            del self._last[gone]
        for gone in self._looked.keys() - ids:
            del self._looked[gone]
        due = [item for item in playing if not item[2].closed and self._due(item[0], item[1])]
        due.sort(key=lambda item: self._last_at(item[0]))  # the longest without a look first
        budget = self._per_pass
        for stream_id, session_id, stream in due:
            if budget <= 0:
                break  # the rest waits for the next pass
            keyframe = stream.latest_keyframe()
            last = self._last.get(stream_id)
            if keyframe is None or (
                last and last.session_id == session_id and last.keyframe_ms == keyframe.timestamp_ms
            ):
                continue  # nothing new to show yet: look again at the next poll
            self._last[stream_id] = _Last(session_id, self._clock(), keyframe.timestamp_ms)
            if not await self._wants_preview(session_id, stream_id):
                continue  # an upload is shown: do not spend a decode on it
            budget -= 1
            if await self._make(stream_id, session_id, keyframe):
                made += 1
        return made

    def _last_at(self, stream_id: str) -> float:
        last = self._last.get(stream_id)
        return -math.inf if last is None else last.at

    def _due(self, stream_id: str, session_id: str) -> bool:
        last = self._last.get(stream_id)
        if last is None or last.session_id != session_id:
            return True  # a new session: its first preview at once
        age = self._clock() - last.at
        if 0 < self.idle_interval <= age:
            return True
        looked = max(self._looked_all, self._looked.get(stream_id, -math.inf))
        return age >= self.interval and looked > last.at

    def _preview_rule(self, stream_id: str) -> ColumnElement[bool]:
        prefix = self._images.url_prefix(PREVIEW_KIND, stream_id)
        return or_(
            StreamSession.thumbnail_url.is_(None), StreamSession.thumbnail_url.startswith(prefix, autoescape=True)
        )

    async def _wants_preview(self, session_id: str, stream_id: str) -> bool:
        async with self._sessions() as db:
            found = await db.scalar(
                select(StreamSession.id).where(
                    StreamSession.id == session_id, StreamSession.status == "open", self._preview_rule(stream_id)
                )
            )
        return found is not None

    async def _make(self, stream_id: str, session_id: str, keyframe: Keyframe) -> bool:
        try:
            data = await asyncio.to_thread(self._render, keyframe, self._width)
        except PreviewError as exc:
            log.info("no preview for stream %s: %s", stream_id, exc)
            return False
        stored = await asyncio.to_thread(self._images.save, PREVIEW_KIND, stream_id, data, "jpg")
        # Checked again in the UPDATE itself: an upload committed since the check above still wins.
        async with self._sessions() as db:
            result = await db.execute(
                update(StreamSession)
                .where(StreamSession.id == session_id, StreamSession.status == "open", self._preview_rule(stream_id))
                .values(thumbnail_url=stored.url)
            )
            await db.commit()
        if getattr(result, "rowcount", 0) == 0:
            stored.path.unlink(missing_ok=True)
            return False
        return True
