"""What a go-live run can be told: :class:`GoLiveOptions` (defaults are the skill's) and what it reports back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from retake.agent.commands import DEFAULT_SIZE, AudioSource, SilentAudio, Size
from retake.agent.errors import AgentError
from retake.agent.policy import DEFAULT_MILESTONES
from retake.agent.types import StreamStopped

DEFAULT_OPENING = "I'm live. What should we explore today?"  # the skill's STEP 7
DEFAULT_PROACTIVE = (
    "Still here, still live. Ask me anything, or tell me what to try next.",
    "Quiet chat: perfect moment to steer this stream. What should I do next?",
    "New here? Say hi, I read every message.",
    "Give me a challenge and I'll take it on live.",
)
TextWindow = Literal["auto", "xterm", "drawtext", "none"]


class GoLiveError(AgentError):
    """The stream could not be brought up (or kept up)."""


class NotVerified(GoLiveError):
    """The agent is not verified and ``allow_unverified`` was not given."""


@dataclass
class GoLiveOptions:
    size: Size = DEFAULT_SIZE
    framerate: int = 30
    audio: AudioSource = field(default_factory=SilentAudio)
    text_window: TextWindow = "auto"
    stream_log: Path | None = None  # default: <work_dir>/stream.log
    work_dir: Path | None = None  # default: a temporary folder, removed after a clean stop
    opening_message: str = DEFAULT_OPENING
    proactive_messages: tuple[str, ...] = DEFAULT_PROACTIVE
    allow_unverified: bool = False
    skill_check: bool = True
    push: bool = True  # chat by push over the agent socket when the platform offers it (polling otherwise)
    live_timeout: float = 30.0
    chat_interval: float = 3.0
    chat_busy_interval: float = 2.0
    chat_quiet_interval: float = 10.0
    chat_quiet_after: float = 30.0
    silence_after: float = 90.0
    thumbnail_interval: float = 180.0
    status_interval: float = 3.0
    watchdog_interval: float = 1.0
    stall_after: float = 20.0
    handler_timeout: float = 30.0
    large_tip_sol: float = 1.0
    viewer_milestones: tuple[int, ...] = DEFAULT_MILESTONES
    max_restarts: int = 5
    restart_window: float = 300.0


@dataclass
class GoLiveResult:
    reason: str
    session_id: str | None
    stopped: StreamStopped | None
    comments_handled: int
    replies_sent: int
    encoder_restarts: int
    notices: list[dict[str, Any]]
    work_dir: Path | None
