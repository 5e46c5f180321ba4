"""``go-live``: the skill's sequence (retake skill 2.1.2, "go live on retake") as one supervised run.

1. credentials and verification (unverified agents may stream with ``allow_unverified``: they get no token);
   the platform's ``/skill.json`` version against the one seen last time;
2. fresh RTMP credentials, ``stream/start``;
3. Xvfb on a free display, the text window (xterm following the stream log, or drawtext), ffmpeg with the
   skill's settings;
4. poll ``stream/status`` until ``is_live`` (30 s limit), upload the first thumbnail, send the opening message;
5. loops until stopped: comments (3 s; 2 s while busy, slowing to 10 s when quiet) handed to the handler, a
   proactive line when chat has been silent too long, a thumbnail every 3 minutes, a status monitor (viewers,
   milestones, operator warnings) and a watchdog that restarts a dead Xvfb or ffmpeg and, when the ingest
   dropped the stream, fetches a fresh key and restarts the encoder (the skill's "Stream Crashes" recipe);
6. on ``request_stop`` (Ctrl-C, SIGTERM): ``stream/stop``, then end exactly the processes it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.chat import ChatDesk
from retake.agent.commands import TextOverlay
from retake.agent.credentials import Credentials
from retake.agent.errors import AgentError, Conflict
from retake.agent.handlers import CommandHandler, Handler
from retake.agent.notify import Notifier
from retake.agent.options import GoLiveError, GoLiveOptions, GoLiveResult, NotVerified
from retake.agent.policy import RestartBudget, ViewerTracker
from retake.agent.processes import ProcessError
from retake.agent.report import LogReporter, Reporter
from retake.agent.screen import Screen, monospace_font
from retake.agent.skillcheck import check_skill
from retake.agent.stage import Stage, TextWindowMode
from retake.agent.state import AgentState, warning_text
from retake.agent.types import RtmpCredentials, StreamStatus, StreamStopped

_STREAM_KEY = re.compile(r"sk_[A-Za-z0-9_\-]+")


class GoLive:
    """One stream, from the skill's STEP 1 to STEP 10. ``run()`` returns after a stop (``request_stop``, a signal,
    the platform ending the session) with every process it started ended; it raises when the stream could not
    be brought up."""

    def __init__(
        self,
        client: AsyncRetakeClient,
        creds: Credentials,
        options: GoLiveOptions | None = None,
        *,
        handler: Handler | None = None,
        notifier: Notifier | None = None,
        reporter: Reporter | None = None,
        state: AgentState | None = None,
        on_credentials: Callable[[Credentials], None] | None = None,
    ) -> None:
        self.client = client
        self.creds = creds
        self.options = options or GoLiveOptions()
        self.handler = handler
        self.notifier = notifier or Notifier()
        self.report: Reporter = reporter or LogReporter()
        self.state = state or AgentState()
        self._on_credentials = on_credentials
        self.user_id = creds.userDbId
        self.agent_name = creds.agent_name
        self.session_id: str | None = None
        self.stage: Stage | None = None
        self.screen: Screen | None = None
        self.work_dir: Path | None = None
        self.thumbnail_url: str | None = None
        self.chat: ChatDesk | None = None
        self.encoder_restarts = 0
        self._temp_work_dir = False
        self._text_window: TextWindowMode = "none"
        self._rtmp: RtmpCredentials | None = None
        self._status: StreamStatus | None = None
        self._stop_event = asyncio.Event()
        self._stop_reason = "stopped"
        self._call_stop = True
        self._session_opened = False
        self._stopping = False
        self._recovering = False
        self._failures_in_a_row = 0
        self._last_live_at = 0.0
        self._last_status_at = 0.0  # the last status answer: "not live" is only trusted while they arrive
        self._last_thumbnail_ok = False
        self._viewers = ViewerTracker(self.options.viewer_milestones)
        self._budget = RestartBudget(self.options.max_restarts, self.options.restart_window)
        self._warned: set[str] = set()
        self._display_reported: int | None = None

    # -- public controls -----------------------------------------------------------------------------------

    @property
    def comments_handled(self) -> int:
        return self.chat.comments_handled if self.chat else 0

    @property
    def replies_sent(self) -> int:
        return self.chat.replies_sent if self.chat else 0

    @property
    def watch_url(self) -> str:
        return f"{self.client.base_url}/{self.agent_name}"

    def request_stop(self, reason: str = "stop requested", *, call_stop: bool = True) -> None:
        if not self._stop_event.is_set():
            self._stop_reason = reason
            self._call_stop = call_stop
            self._stop_event.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self.request_stop, "interrupted (SIGINT)")
        loop.add_signal_handler(signal.SIGTERM, self.request_stop, "terminated (SIGTERM)")

    def screen_write(self, text: str) -> None:
        """Show a line on stream (appended to the stream log)."""
        if self.screen is not None:
            self.screen.write(text)

    async def say(self, text: str) -> None:
        """Post to our own chat (split past the platform's 500 characters) and show it on screen."""
        assert self.chat is not None, "say() works once the stream is open"
        await self.chat.say(text)

    async def run(self) -> GoLiveResult:
        main = asyncio.create_task(self._main(), name="go-live")
        stopper = asyncio.create_task(self._stop_event.wait(), name="go-live-stop")
        failure: BaseException | None = None
        try:
            done, _ = await asyncio.wait({main, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if main in done:
                failure = main.exception()
                if failure is None:
                    failure = GoLiveError("the runtime ended unexpectedly")
            else:
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await main
        finally:
            stopper.cancel()
            main.cancel()
            result = await self._shutdown(failed=failure is not None)
        if failure is not None:
            raise failure
        return result

    # -- bring-up ------------------------------------------------------------------------------------------

    async def _main(self) -> None:
        self._prepare_work_dir()
        await self._preflight()
        await self._open()
        assert self.chat is not None
        tasks = [
            asyncio.create_task(self.chat.run(), name="chat"),
            asyncio.create_task(self._thumbnail_loop(), name="thumbnails"),
            asyncio.create_task(self._monitor_loop(), name="monitor"),
            asyncio.create_task(self._watchdog_loop(), name="watchdog"),
        ]
        if self._text_window == "drawtext":
            tasks.append(asyncio.create_task(self._overlay_loop(), name="overlay"))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                task.result()  # a loop that crashed is a bug: surface it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _prepare_work_dir(self) -> None:
        if self.options.work_dir is not None:
            self.work_dir = self.options.work_dir
            self.work_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.work_dir = Path(tempfile.mkdtemp(prefix="retake-golive-"))
            self._temp_work_dir = True

    async def _preflight(self) -> None:
        o = self.options
        with self.report.step("checking credentials"):
            status = await self.client.stream_status()
            # The platform says who the token belongs to (RETAKE_ACCESS_TOKEN may be another agent's than the
            # file's); the file's name is only trusted for the file's own agent.
            if status["userDbId"] != self.user_id:
                self.user_id, self.agent_name = status["userDbId"], ""
            if not self.agent_name:
                meta = await self.client.user_metadata(self.user_id)
                self.agent_name = str(meta.get("username") or "")
        self.notifier.agent = self.agent_name
        self.notifier.watch_url = self.watch_url
        self.report.ok(f"agent {self.agent_name} ({self.user_id}) on {self.client.base_url}")
        if o.skill_check:
            with self.report.step("checking the platform's skill version"):
                check = await check_skill(self.client, self.state)
            if check.error:
                self.report.warn(f"could not check /skill.json: {check.error}")
            elif check.changed:
                where = f" (saved to {check.skill_md})" if check.skill_md else ""
                message = f"the platform's skill changed from {check.previous} to {check.version}: re-read it{where}"
                self.report.warn(message)
                self.notifier.emit("skill_changed", message, previous=check.previous, version=check.version)
            else:
                self.report.ok(f"skill version {check.version}")
        verified = (await self.client.verification_status())["verified"]
        if not verified:
            if not o.allow_unverified:
                raise NotVerified(
                    f"{self.agent_name} is not verified. Run `retake agent verify` (your operator posts the tweet), "
                    f"or on a self-hosted platform ask the operator for `retake admin verify {self.agent_name}`. "
                    "To stream anyway without a token, pass --allow-unverified."
                )
            self.report.warn("not verified: streaming anyway (--allow-unverified); no token will be created")
        for warning in self.state.unseen_warnings(status.get("warnings") or []):
            self._notify_warning(warning)
        self.state.save()
        self._choose_text_window()
        for tool in ("Xvfb", "ffmpeg", *(["xterm"] if self._text_window == "xterm" else [])):
            if shutil.which(tool) is None:
                raise GoLiveError(f"{tool} is not installed (Debian: apt-get install xvfb ffmpeg xterm)")

    def _choose_text_window(self) -> None:
        mode = self.options.text_window
        if mode == "auto":
            mode = "xterm" if shutil.which("xterm") else "drawtext"
        self._text_window = mode
        assert self.work_dir is not None
        log_path = self.options.stream_log or self.work_dir / "stream.log"
        overlay = None
        if mode == "drawtext":
            font = monospace_font()
            fontsize = max(12, self.options.size.height // 40)
            overlay = TextOverlay(self.work_dir / "overlay.txt", font, fontsize=fontsize)
        self.screen = Screen(log_path, overlay, self.options.size)
        o = self.options
        self.stage = Stage(
            self.work_dir, self.screen, size=o.size, framerate=o.framerate, audio=o.audio, text_window=mode
        )
        if isinstance(self.handler, CommandHandler):
            self.handler.env.update(
                RETAKE_STREAM_LOG=str(log_path), RETAKE_AGENT_NAME=self.agent_name, RETAKE_WATCH_URL=self.watch_url
            )

    async def _open(self) -> None:
        o = self.options
        with self.report.step("getting fresh RTMP credentials"):
            self._rtmp = await self.client.rtmp()
        with self.report.step("opening the stream session"):
            start = await self.client.stream_start()
        self._session_opened = True
        self.session_id = start.get("session_id") or (await self.client.stream_status()).get("session_id")
        self._remember_token(start.get("token") or {})
        self.chat = ChatDesk(
            self.client,
            user_id=self.user_id,
            agent_name=self.agent_name,
            options=o,
            handler=self.handler,
            notifier=self.notifier,
            report=self.report,
            show=self.screen_write,
            context=self._context,
        )
        await self.chat.prime()
        stage = self.stage
        assert stage is not None
        with self.report.step("starting the virtual display"):
            stage.start_display()
            stage.start_window()
        self.report.ok(f"display {stage.display} ({o.size}), text window: {self._text_window}")
        self.screen_write(f"{self.agent_name} is going live")
        with self.report.step("starting ffmpeg"):
            stage.start_encoder(self._target())
        with self.report.step(f"waiting for the platform to see the stream (up to {o.live_timeout:.0f} s)"):
            live = await self._wait_live(o.live_timeout)
        if not live:
            tail = self._redact(stage.encoder.log_tail() if stage.encoder else "")
            raise GoLiveError(f"not live after {o.live_timeout:.0f} s" + (f"; ffmpeg said:\n{tail}" if tail else ""))
        self.report.ok(f"live: {self.watch_url}")
        with self.report.step("uploading the first thumbnail"):
            for attempt in range(3):
                try:
                    await self._thumbnail()
                    break
                except (AgentError, ProcessError, OSError) as exc:
                    if attempt == 2:
                        self.report.warn(f"first thumbnail failed ({exc}); the thumbnail loop retries in 30 s")
                    else:
                        await asyncio.sleep(2)
        if self.thumbnail_url:
            self.report.ok(f"thumbnail {self.thumbnail_url}")
        if o.opening_message:
            await self.say(o.opening_message)
            self.report.ok(f"said: {o.opening_message}")
        viewers = self._status["viewers"] if self._status else 0
        self.notifier.emit(
            "live",
            f"I'm live at {self.watch_url} Viewers: {viewers}. Share the link to grow the audience.",
            viewers=viewers,
            session_id=self.session_id,
            thumbnail_url=self.thumbnail_url,
        )

    def _remember_token(self, token: Any) -> None:
        address = str(token.get("tokenAddress") or "") if isinstance(token, dict) else ""
        if address and address != self.creds.token_address:
            self.creds = self.creds.with_updates(token_address=address, token_ticker=str(token.get("ticker") or ""))
            self.report.ok(f"token {self.creds.token_ticker} at {address}")
            if self._on_credentials is not None:
                self._on_credentials(self.creds)

    # -- processes -----------------------------------------------------------------------------------------

    def _target(self) -> str:
        assert self._rtmp is not None
        return f"{self._rtmp['url'].rstrip('/')}/{self._rtmp['key']}"

    async def _wait_live(self, limit: float) -> bool:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            encoder = self.stage.encoder if self.stage else None
            if encoder is None or not encoder.alive():
                return False
            with contextlib.suppress(AgentError):
                self._status = await self.client.stream_status()
                if self._status["is_live"]:
                    self._last_live_at = time.monotonic()
                    return True
            await asyncio.sleep(1.0)
        return False

    async def _thumbnail(self) -> None:
        assert self.stage is not None
        answer = await self.client.update_thumbnail(await self.stage.capture(), "thumbnail.png")
        self.thumbnail_url = answer["thumbnail_url"]
        self._last_thumbnail_ok = True

    # -- loops ---------------------------------------------------------------------------------------------

    def _context(self) -> dict[str, Any]:
        status: dict[str, Any] = dict(self._status) if self._status else {}
        return {
            "agent": {"name": self.agent_name, "userDbId": self.user_id},
            "stream": {
                "watch_url": self.watch_url,
                "session_id": self.session_id,
                "is_live": bool(status.get("is_live")),
                "viewers": int(status.get("viewers") or 0),
                "uptime_seconds": int(status.get("uptime_seconds") or 0),
            },
            "recent": list(self.chat.recent) if self.chat else [],
            "stream_log": str(self.screen.log_path) if self.screen else None,
        }

    async def _thumbnail_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.thumbnail_interval if self._last_thumbnail_ok else 30.0)
            if self._recovering:
                continue
            try:
                await self._thumbnail()
            except Exception as exc:  # the next round tries again; the stream goes on
                self._last_thumbnail_ok = False
                self.report.warn(f"thumbnail update failed: {exc}")

    async def _overlay_loop(self) -> None:
        assert self.screen is not None
        while True:
            await asyncio.sleep(0.5)
            self.screen.refresh_overlay()

    async def _monitor_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.status_interval)
            try:
                if await self._monitor_once():
                    return
            except Exception as exc:  # a surprising answer must not take a live stream down
                self._warn_once("monitor", f"status monitor: {exc!r}")

    async def _monitor_once(self) -> bool:
        """One status poll; True when the session ended and the runtime is stopping."""
        try:
            status = await self.client.stream_status()
        except AgentError as exc:
            self._warn_once("status", f"reading the stream status failed: {exc}")
            return False
        self._warned.discard("status")
        self._status = status
        self._last_status_at = time.monotonic()
        if status["is_live"]:
            self._last_live_at = time.monotonic()
        fresh = self.state.unseen_warnings(status.get("warnings") or [])
        for warning in fresh:
            self._notify_warning(warning)
        if fresh:
            self.state.save()
        if not self._recovering and "session_id" in status and status["session_id"] != self.session_id:
            self._ended_remotely()
            return True
        for event in self._viewers.update(int(status["viewers"])):
            message = event.message
            if event.event == "viewers_falling":
                message += f" Here's the link: {self.watch_url}"
            self.notifier.emit(event.event, message, **event.data)
        return False

    def _notify_warning(self, warning: dict[str, Any]) -> None:
        text = warning_text(warning)
        self.report.error(text.upper() if warning.get("kind") == "shutdown" else text)
        self.notifier.emit("shutdown_warning", text, urgent=True, warning=warning)

    def _ended_remotely(self) -> None:
        message = "the platform ended this stream session (stopped elsewhere or by the operator)"
        self.report.warn(message)
        self.notifier.emit("session_ended", message, urgent=True, session_id=self.session_id)
        self.request_stop(message, call_stop=False)

    async def _watchdog_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.options.watchdog_interval)
            if self._stopping:
                return
            try:
                await self._watch_once()
            except Exception as exc:  # keep watching whatever went wrong in one round
                self._warn_once("watchdog", f"watchdog: {exc!r}")

    async def _watch_once(self) -> None:
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
            await self._recover_encoder(f"the display restarted (Xvfb exited with {code})")
            return
        if stage.window is not None and not stage.window.alive():
            self.report.warn(f"the text window exited ({stage.window.returncode}): restarting it")
            with contextlib.suppress(ProcessError):
                stage.start_window()
        encoder = stage.encoder
        if encoder is not None and not encoder.alive():
            await self._recover_encoder(f"ffmpeg exited with code {encoder.returncode}")
        elif encoder is not None and self._stalled(encoder.uptime()):
            await self._recover_encoder("the ingest dropped the stream (not live while ffmpeg runs)")

    def _stalled(self, encoder_uptime: float) -> bool:
        """ffmpeg runs but the platform has said "not live" for ``stall_after`` seconds. An unreachable API is
        not a stall: the encoder is only restarted on fresh answers."""
        limit, now = self.options.stall_after, time.monotonic()
        fresh = now - self._last_status_at < 2 * self.options.status_interval + 5
        return encoder_uptime > limit and now - self._last_live_at > limit and fresh

    async def _recover_encoder(self, reason: str) -> None:
        self._recovering = True
        try:
            tail = self._redact(self.stage.stop_encoder() if self.stage else "")
            # An encoder the platform disconnected because it ended the session (stop elsewhere, an operator's
            # shutdown) must not be brought back: that would open a new session against the operator's will.
            with contextlib.suppress(AgentError):
                status = await self.client.stream_status()
                if "session_id" in status and status["session_id"] != self.session_id:
                    self._ended_remotely()
                    return
            self.encoder_restarts += 1
            self.report.warn(f"encoder down: {reason}; restarting with a fresh key")
            self.notifier.emit("encoder_crashed", f"Encoder down: {reason}. Restarting.", reason=reason, log=tail)
            if not self._budget.allow(time.monotonic()):
                message = f"the encoder failed {self._budget.recent()} times in a row; giving up"
                self.notifier.emit("encoder_failed", message, urgent=True)
                self.report.error(message)
                self.request_stop(message)
                return
            if self._failures_in_a_row:
                await asyncio.sleep(min(2.0**self._failures_in_a_row, 15.0))
            # The skill's "Stream Crashes": fresh keys, stream/start (idempotent), restart ffmpeg.
            self._rtmp = await self.client.rtmp()
            await self.client.stream_start()
            assert self.stage is not None
            self.stage.start_encoder(self._target())
            if await self._wait_live(self.options.live_timeout):
                self._failures_in_a_row = 0
                self.report.ok("encoder restarted: live again")
                self.notifier.emit("encoder_recovered", "The stream is live again.", restarts=self.encoder_restarts)
            else:
                self._failures_in_a_row += 1
                self.report.warn("restarted encoder is not live yet; the watchdog keeps trying")
        except (AgentError, ProcessError) as exc:
            self._failures_in_a_row += 1
            self.report.warn(f"encoder recovery failed: {exc}")
        finally:
            self._recovering = False

    # -- shutdown ------------------------------------------------------------------------------------------

    async def _shutdown(self, failed: bool) -> GoLiveResult:
        self._stopping = True
        stopped: StreamStopped | None = None
        if self._session_opened and self._call_stop:
            with self.report.step("stopping the stream"):
                try:
                    stopped = await asyncio.wait_for(self.client.stream_stop(), 15)
                except Conflict:
                    pass  # already stopped (another `retake agent stop`, or the operator)
                except (AgentError, TimeoutError) as exc:
                    self.report.warn(f"stream/stop failed: {exc}")
        if self.stage is not None:
            with self.report.step("ending ffmpeg, the text window and Xvfb"):
                await self.stage.stop_all()
        if stopped is not None:
            self.report.ok(
                f"stopped after {stopped['duration_seconds']} s, peak viewers {stopped['viewers']}"
                f" ({self.comments_handled} comments, {self.replies_sent} messages sent)"
            )
        if self._session_opened:
            self.notifier.emit(
                "stopped",
                f"Stream stopped: {self._stop_reason}.",
                reason=self._stop_reason,
                duration_seconds=stopped["duration_seconds"] if stopped else None,
                peak_viewers=stopped["viewers"] if stopped else None,
            )
        await self.notifier.aclose()
        work_dir = self.work_dir
        if self._temp_work_dir and not failed and work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)
            work_dir = None
        return GoLiveResult(
            reason=self._stop_reason,
            session_id=self.session_id,
            stopped=stopped,
            comments_handled=self.comments_handled,
            replies_sent=self.replies_sent,
            encoder_restarts=self.encoder_restarts,
            notices=list(self.notifier.sent),
            work_dir=work_dir,
        )

    # -- helpers -------------------------------------------------------------------------------------------

    @staticmethod
    def _redact(text: str) -> str:
        """Stream keys out of ffmpeg's messages before they reach a console or a notification."""
        return _STREAM_KEY.sub("sk_***", text)

    def _warn_once(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            self.report.warn(message)
