"""The go-live status monitor: polls ``stream/status`` and tells the operator about viewers (milestones, a
falling audience), operator warnings and shutdown notices, and notices when the platform ended the session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.errors import AgentError
from retake.agent.liveness import Liveness
from retake.agent.notify import Notifier
from retake.agent.options import GoLiveOptions
from retake.agent.policy import ViewerTracker
from retake.agent.report import Reporter, WarnOnce
from retake.agent.state import AgentState, warning_text

OPERATOR_KINDS = frozenset({"warn", "shutdown"})  # what `retake admin warn|shutdown` and the console issue


def notify_warning(warning: dict[str, Any], report: Reporter, notifier: Notifier) -> None:
    """An operator warning or shutdown notice: on the console (shutdowns in capitals) and as an urgent event.
    Anything else in the status's warnings (stream health, a disabled webhook) is a quality notice, not urgent."""
    text = warning_text(warning)
    kind = warning.get("kind")
    if kind not in OPERATOR_KINDS:
        report.warn(text)
        notifier.emit("stream_warning", text, urgent=False, warning=warning)
        return
    report.error(text.upper() if kind == "shutdown" else text)
    notifier.emit("shutdown_warning", text, urgent=True, warning=warning)


class StatusMonitor:
    def __init__(
        self,
        client: AsyncRetakeClient,
        options: GoLiveOptions,
        liveness: Liveness,
        state: AgentState,
        *,
        notifier: Notifier,
        report: Reporter,
        watch_url: Callable[[], str],
        on_session_ended: Callable[[], None],
    ) -> None:
        self.client = client
        self.options = options
        self.liveness = liveness
        self.state = state
        self.notifier = notifier
        self.report = report
        self._watch_url = watch_url  # read at each use: the agent's name is only known after the preflight
        self._on_session_ended = on_session_ended
        self._viewers = ViewerTracker(options.viewer_milestones)
        self._warn_once = WarnOnce(report)

    async def run(self) -> None:
        """Poll every ``status_interval`` until the platform ended the session (then ``on_session_ended`` ran)."""
        while True:
            await asyncio.sleep(self.options.status_interval)
            try:
                if await self.poll_once():
                    return
            except Exception as exc:  # a surprising answer must not take a live stream down
                self._warn_once("monitor", f"status monitor: {exc!r}")

    async def poll_once(self) -> bool:
        """One status poll; True when the session ended and the runtime is stopping."""
        try:
            status = await self.client.stream_status()
        except AgentError as exc:
            self._warn_once("status", f"reading the stream status failed: {exc}")
            return False
        self._warn_once.clear("status")
        self.liveness.saw_status(status)
        fresh = self.state.unseen_warnings(status.get("warnings") or [])
        for warning in fresh:
            notify_warning(warning, self.report, self.notifier)
        if fresh:
            self.state.save()
        if not self.liveness.recovering and self.liveness.ended_elsewhere(status):
            self._on_session_ended()
            return True
        for event in self._viewers.update(int(status["viewers"])):
            message = event.message
            if event.event == "viewers_falling":
                message += f" Here's the link: {self._watch_url()}"
            self.notifier.emit(event.event, message, **event.data)
        return False
