"""The go-live watchdog: keeps Xvfb, the text window and ffmpeg running, and when the encoder died or the
ingest dropped the stream, brings it back with a fresh key (the skill's "Stream Crashes" recipe) within a
restart budget. It also owns the RTMP target, so bring-up and recovery start the encoder the same way."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.errors import AgentError
from retake.agent.liveness import Liveness
from retake.agent.notify import Notifier
from retake.agent.options import GoLiveOptions
from retake.agent.policy import RestartBudget
from retake.agent.processes import ProcessError
from retake.agent.report import Reporter, WarnOnce
from retake.agent.stage import Stage
from retake.agent.types import RtmpCredentials

_STREAM_KEY = re.compile(r"sk_[A-Za-z0-9_\-]+")


def redact(text: str) -> str:
    """Stream keys out of ffmpeg's messages before they reach a console or a notification."""
    return _STREAM_KEY.sub("sk_***", text)


class Watchdog:
    def __init__(
        self,
        client: AsyncRetakeClient,
        options: GoLiveOptions,
        liveness: Liveness,
        *,
        notifier: Notifier,
        report: Reporter,
        on_session_ended: Callable[[], None],
        request_stop: Callable[[str], None],
    ) -> None:
        self.client = client
        self.options = options
        self.liveness = liveness
        self.notifier = notifier
        self.report = report
        self.stage: Stage | None = None  # set by attach(): the stage exists once the text window is chosen
        self.rtmp: RtmpCredentials | None = None
        self.restarts = 0
        self._on_session_ended = on_session_ended
        self._request_stop = request_stop
        self._budget = RestartBudget(options.max_restarts, options.restart_window)
        self._failures_in_a_row = 0
        self._display_reported: int | None = None
        self._warn_once = WarnOnce(report)

    def attach(self, stage: Stage) -> None:
        """Watch these processes (the go-live preflight builds the stage)."""
        self.stage = stage

    async def fresh_key(self) -> None:
        """New RTMP credentials for the next encoder start (a key is not reused after a crash)."""
        self.rtmp = await self.client.rtmp()

    def start_encoder(self) -> None:
        assert self.stage is not None and self.rtmp is not None
        self.stage.start_encoder(f"{self.rtmp['url'].rstrip('/')}/{self.rtmp['key']}")

    async def wait_live(self, limit: float) -> bool:
        """Poll ``stream/status`` until the platform sees the stream; False when ffmpeg died or time ran out."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            encoder = self.stage.encoder if self.stage else None
            if encoder is None or not encoder.alive():
                return False
            with contextlib.suppress(AgentError):
                self.liveness.status = await self.client.stream_status()
                if self.liveness.status["is_live"]:
                    self.liveness.last_live_at = time.monotonic()
                    return True
            await asyncio.sleep(1.0)
        return False

    async def run(self) -> None:
        """Check the processes every ``watchdog_interval`` until shutdown begins."""
        while not self.liveness.stopping:
            await asyncio.sleep(self.options.watchdog_interval)
            if self.liveness.stopping:
                return
            try:
                await self.watch_once()
            except Exception as exc:  # keep watching whatever went wrong in one round
                self._warn_once("watchdog", f"watchdog: {exc!r}")

    async def watch_once(self) -> None:
        """One round: restart a dead display (and the encoder on it), a dead text window, a dead or stalled
        encoder."""
        stage = self.stage
        if stage is None:
            return
        if stage.xvfb is not None and not stage.xvfb.alive():
            code, pid = stage.xvfb.returncode, stage.xvfb.pid
            if pid != self._display_reported:  # once per dead display, not once per failed restart
                self._display_reported = pid
                self.report.warn(f"Xvfb exited ({code}): restarting the display")
                self.notifier.emit("display_crashed", f"The virtual display exited ({code}); restarting it.")
            stage.stop_encoder()
            try:
                stage.start_display()
                stage.start_window()
            except ProcessError as exc:
                self.report.error(str(exc))
                return
            await self.recover_encoder(f"the display restarted (Xvfb exited with {code})")
            return
        if stage.window is not None and not stage.window.alive():
            self.report.warn(f"the text window exited ({stage.window.returncode}): restarting it")
            with contextlib.suppress(ProcessError):
                stage.start_window()
        encoder = stage.encoder
        o = self.options
        if encoder is not None and not encoder.alive():
            await self.recover_encoder(f"ffmpeg exited with code {encoder.returncode}")
        elif encoder is not None and self.liveness.stalled(encoder.uptime(), o.stall_after, o.status_interval):
            await self.recover_encoder("the ingest dropped the stream (not live while ffmpeg runs)")

    async def recover_encoder(self, reason: str) -> None:
        """Stop the encoder and, unless the platform ended the session, start it again with a fresh key; gives
        up (and requests a stop) when the restart budget is spent."""
        self.liveness.recovering = True
        try:
            tail = redact(self.stage.stop_encoder() if self.stage else "")
            # An encoder the platform disconnected because it ended the session (stop elsewhere, an operator's
            # shutdown) must not be brought back: that would open a new session against the operator's will.
            with contextlib.suppress(AgentError):
                if self.liveness.ended_elsewhere(await self.client.stream_status()):
                    self._on_session_ended()
                    return
            self.restarts += 1
            self.report.warn(f"encoder down: {reason}; restarting with a fresh key")
            self.notifier.emit("encoder_crashed", f"Encoder down: {reason}. Restarting.", reason=reason, log=tail)
            if not self._budget.allow(time.monotonic()):
                message = f"the encoder failed {self._budget.recent()} times in a row; giving up"
                self.notifier.emit("encoder_failed", message, urgent=True)
                self.report.error(message)
                self._request_stop(message)
                return
            if self._failures_in_a_row:
                await asyncio.sleep(min(2.0**self._failures_in_a_row, 15.0))
            # The skill's "Stream Crashes": fresh keys, stream/start (idempotent), restart ffmpeg.
            await self.fresh_key()
            await self.client.stream_start()
            self.start_encoder()
            if await self.wait_live(self.options.live_timeout):
                self._failures_in_a_row = 0
                self.report.ok("encoder restarted: live again")
                self.notifier.emit("encoder_recovered", "The stream is live again.", restarts=self.restarts)
            else:
                self._failures_in_a_row += 1
                self.report.warn("restarted encoder is not live yet; the watchdog keeps trying")
        except (AgentError, ProcessError) as exc:
            self._failures_in_a_row += 1
            self.report.warn(f"encoder recovery failed: {exc}")
        finally:
            self.liveness.recovering = False
