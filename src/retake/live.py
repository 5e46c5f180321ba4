"""In-memory live state of this node: which sessions have media flowing, and who is watching.

``is_live`` = session open in the store AND media flowing here. Viewer counts are distinct viewer ids seen
in the last 30 s (FLV connections, HLS playlist requests and watch-page presence all "touch").

A leaf module: the stream lifecycle writes it, and the accounts directory and profiles read it (``isLive``,
viewer counts) without importing ``streams``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

VIEWER_WINDOW_SECONDS = 30.0


@dataclass
class LiveSession:
    session_id: str
    stream_id: str  # the streamer's userDbId
    first_media_monotonic: float
    publishing: bool = True
    viewers: dict[str, float] = field(default_factory=dict)  # viewer id -> last seen (monotonic)
    peak_viewers: int = 0


class LiveRegistry:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_session: dict[str, LiveSession] = {}
        self._session_of_stream: dict[str, str] = {}

    def media_started(self, session_id: str, stream_id: str) -> LiveSession:
        live = self._by_session.get(session_id)
        if live is None:
            live = LiveSession(session_id, stream_id, self._clock())
            self._by_session[session_id] = live
            self._session_of_stream[stream_id] = session_id
        live.publishing = True
        return live

    def media_stopped(self, session_id: str) -> None:
        live = self._by_session.get(session_id)
        if live is not None:
            live.publishing = False

    def forget(self, session_id: str) -> LiveSession | None:
        live = self._by_session.pop(session_id, None)
        if live is not None and self._session_of_stream.get(live.stream_id) == session_id:
            del self._session_of_stream[live.stream_id]
        return live

    def get(self, session_id: str) -> LiveSession | None:
        return self._by_session.get(session_id)

    def is_live(self, session_id: str) -> bool:
        live = self._by_session.get(session_id)
        return live is not None and live.publishing

    def sessions(self) -> list[tuple[str, str]]:
        """(session id, stream id) of every session this node holds, publishing or in its grace period."""
        return [(s.session_id, s.stream_id) for s in self._by_session.values()]

    def live_stream_ids(self) -> set[str]:
        return {s.stream_id for s in self._by_session.values() if s.publishing}

    def uptime_seconds(self, session_id: str) -> int:
        live = self._by_session.get(session_id)
        if live is None or not live.publishing:
            return 0
        return int(self._clock() - live.first_media_monotonic)

    def touch_viewer(self, stream_id: str, viewer_id: str) -> None:
        session_id = self._session_of_stream.get(stream_id)
        live = self._by_session.get(session_id) if session_id else None
        if live is None:
            return
        live.viewers[viewer_id] = self._clock()
        live.peak_viewers = max(live.peak_viewers, self.viewer_count_of(live))

    def viewer_count(self, session_id: str) -> int:
        live = self._by_session.get(session_id)
        return 0 if live is None else self.viewer_count_of(live)

    def viewer_count_of(self, live: LiveSession) -> int:
        cutoff = self._clock() - VIEWER_WINDOW_SECONDS
        stale = [v for v, seen in live.viewers.items() if seen < cutoff]
        for viewer in stale:
            del live.viewers[viewer]
        return len(live.viewers)
