"""The runtime's decisions as pure, clock-injected logic: chat polling pace, viewer events, restart budget,
comment ordering. The loops (``chat.py``, ``monitor.py``, ``watchdog.py``) only feed them and act on the answers."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from retake.agent.types import Comment

DEFAULT_MILESTONES = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
CHAT_TYPES = ("message", "tip")


@dataclass
class ChatPacer:
    """The skill's polling strategy: every ``base`` seconds, ``busy`` while chat is active, slowing one second
    per empty poll down to ``quiet`` once nobody has written for ``quiet_after`` seconds."""

    base: float = 3.0
    busy: float = 2.0
    quiet: float = 10.0
    quiet_after: float = 30.0
    _interval: float = field(default=0.0, init=False)
    _last_activity: float | None = field(default=None, init=False)

    def next_interval(self, now: float, had_messages: bool) -> float:
        if self._last_activity is None:
            self._last_activity = now
        if had_messages:
            self._last_activity = now
            self._interval = self.busy
        elif now - self._last_activity < self.quiet_after:
            self._interval = self.base
        else:
            self._interval = min(self.quiet, max(self._interval, self.base) + 1.0)
        return self._interval


@dataclass(frozen=True)
class ViewerEvent:
    event: str
    message: str
    data: dict[str, Any]


@dataclass
class ViewerTracker:
    """Milestones (first time the count reaches each mark) and "falling" (the count halved from the peak of at
    least ``falling_min_peak``; said once per peak, so a wobbling count does not spam the operator)."""

    milestones: tuple[int, ...] = DEFAULT_MILESTONES
    falling_min_peak: int = 2
    peak: int = 0
    reached: set[int] = field(default_factory=set)
    _fall_reported_for: int = field(default=0, init=False)

    def update(self, viewers: int) -> list[ViewerEvent]:
        events: list[ViewerEvent] = []
        for mark in self.milestones:
            if viewers >= mark and mark not in self.reached:
                self.reached.add(mark)
                noun = "viewer" if mark == 1 else "viewers"
                events.append(ViewerEvent("milestone", f"{mark} {noun} watching", {"kind": "viewers", "value": mark}))
        if viewers > self.peak:
            self.peak = viewers
        if self.peak >= self.falling_min_peak and viewers <= self.peak // 2 and self._fall_reported_for != self.peak:
            self._fall_reported_for = self.peak
            events.append(
                ViewerEvent(
                    "viewers_falling",
                    f"Viewer count is {viewers} (peak {self.peak}). A share right now would help.",
                    {"viewers": viewers, "peak": self.peak},
                )
            )
        return events


@dataclass
class RestartBudget:
    """At most ``limit`` restarts within ``window`` seconds; past that the runtime gives up and says so."""

    limit: int = 5
    window: float = 300.0
    _times: deque[float] = field(default_factory=deque, init=False)

    def allow(self, now: float) -> bool:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        if len(self._times) >= self.limit:
            return False
        self._times.append(now)
        return True

    def recent(self) -> int:
        return len(self._times)


def comment_id(comment: Comment | dict[str, Any]) -> str:
    return str(comment.get("_id") or comment.get("chat_event_id") or "")


def id_key(value: str | None) -> tuple[int, str]:
    """Chat ids are numeric strings that grow with time (API.md); compare them as numbers."""
    if not value:
        return (-1, "")
    return (int(value), "") if value.isdigit() else (-1, value)


def newer_than(comments: list[Comment], last_id: str | None) -> list[Comment]:
    """The comments after ``last_id``, oldest first."""
    floor = id_key(last_id)
    fresh = [c for c in comments if id_key(comment_id(c)) > floor]
    return sorted(fresh, key=lambda c: id_key(comment_id(c)))


def newest_id(comments: list[Comment], current: str | None = None) -> str | None:
    best = current
    for c in comments:
        cid = comment_id(c)
        if id_key(cid) > id_key(best):
            best = cid
    return best


def sender_id(comment: Comment | dict[str, Any]) -> str:
    return str(comment.get("sender_user_id") or "")


def sender_name(comment: Comment | dict[str, Any]) -> str:
    author = comment.get("author") or {}
    name = comment.get("sender_username") or (author.get("fusername") if isinstance(author, dict) else None)
    return str(name or "someone")


def tip_amount_sol(comment: Comment | dict[str, Any]) -> float | None:
    if comment.get("type") != "tip":
        return None
    data = comment.get("tip_data") or {}
    amount = data.get("amount") if isinstance(data, dict) else None
    if amount is None:
        return None
    try:
        return float(amount)
    except (TypeError, ValueError):
        return None
