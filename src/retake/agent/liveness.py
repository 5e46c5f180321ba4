"""What one go-live run knows about its stream from the platform, shared by bring-up, the status monitor, the
watchdog and the thumbnail loop (each reads what the others last heard)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from retake.agent.types import StreamStatus


@dataclass
class Liveness:
    session_id: str | None = None
    status: StreamStatus | None = None
    last_live_at: float = 0.0  # monotonic time of the last "is_live" answer
    last_status_at: float = 0.0  # the last monitor answer: "not live" is only trusted while they arrive
    recovering: bool = False  # the watchdog is bringing the encoder back: other loops hold off
    stopping: bool = False  # shutdown began: the watchdog must not restart anything

    def saw_status(self, status: StreamStatus) -> None:
        """A status answer from the monitor's poll."""
        self.status = status
        self.last_status_at = time.monotonic()
        if status["is_live"]:
            self.last_live_at = time.monotonic()

    def ended_elsewhere(self, status: StreamStatus) -> bool:
        """The platform's open session is no longer ours: stopped elsewhere or by the operator."""
        return "session_id" in status and status["session_id"] != self.session_id

    def stalled(self, encoder_uptime: float, stall_after: float, status_interval: float) -> bool:
        """ffmpeg runs but the platform has said "not live" for ``stall_after`` seconds. An unreachable API is
        not a stall: the encoder is only restarted on fresh answers."""
        now = time.monotonic()
        fresh = now - self.last_status_at < 2 * status_interval + 5
        return encoder_uptime > stall_after and now - self.last_live_at > stall_after and fresh
