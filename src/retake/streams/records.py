"""What the stream lifecycle publishes on the event bus: frozen records with snake_case fields.

Their JSON (API.md's Socket.IO payloads and push's ``stream.live``/``stream.offline``/``encoder.disconnected``
data) is made at the edge, in ``server/realtime/wire.py``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """``session_started``: the first media of a session arrived (once per session, on the node that got it)."""

    streamer_id: str
    session_id: str
    started_at: str | None


@dataclass(frozen=True, slots=True)
class SessionEnded:
    """``session_ended`` (internal: push's ``stream.offline``), once, by whichever node ended the session."""

    streamer_id: str
    session_id: str
    ended_at: str | None
    duration_seconds: int
    viewers: int  # the session's peak


@dataclass(frozen=True, slots=True)
class EncoderDisconnected:
    """``encoder_disconnected`` (internal: push's ``encoder.disconnected``): the publisher dropped, not stopped."""

    streamer_id: str
    session_id: str
    reason: str
    disconnected_at: str | None
    reconnect_grace_seconds: float
