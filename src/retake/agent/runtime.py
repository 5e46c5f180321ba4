"""``go-live``: the skill's sequence (retake skill 2.1.2, "go live on retake") as one supervised run.

1. credentials and verification (unverified agents may stream with ``allow_unverified``: they get no token);
   the platform's ``/skill.json`` version against the one seen last time;
2. fresh RTMP credentials, ``stream/start``;
3. Xvfb on a free display, the text window (xterm following the stream log, or drawtext), ffmpeg with the
   skill's settings;
4. poll ``stream/status`` until ``is_live`` (30 s limit), upload the first thumbnail, send the opening message;
5. loops until stopped: comments pushed over the agent socket when the platform offers it (its skill.json lists
   ``agent_socket``; refused sockets fall back), else polled (3 s; 2 s while busy, slowing to 10 s when quiet),
   handed to the handler, a
   proactive line when chat has been silent too long, a thumbnail every 3 minutes, a status monitor (viewers,
   milestones, operator warnings) and a watchdog that restarts a dead Xvfb or ffmpeg and, when the ingest
   dropped the stream, fetches a fresh key and restarts the encoder (the skill's "Stream Crashes" recipe);
6. on ``request_stop`` (Ctrl-C, SIGTERM): ``stream/stop``, then end exactly the processes it started.

The status monitor (``monitor.py``) and the watchdog (``watchdog.py``) are collaborators built here and reachable
as ``GoLive.monitor`` and ``GoLive.watchdog``; they share what the platform last said through ``Liveness``.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.chat import ChatDesk
from retake.agent.commands import TextOverlay
from retake.agent.credentials import Credentials
from retake.agent.errors import AgentError, Conflict
from retake.agent.events import AgentSocket
from retake.agent.handlers import CommandHandler, Handler
from retake.agent.liveness import Liveness
from retake.agent.monitor import StatusMonitor, notify_warning
from retake.agent.notify import Notifier
from retake.agent.options import GoLiveError, GoLiveOptions, GoLiveResult, NotVerified
from retake.agent.processes import ProcessError
from retake.agent.report import LogReporter, Reporter
from retake.agent.screen import Screen, monospace_font
from retake.agent.skillcheck import check_skill
from retake.agent.stage import Stage, TextWindowMode
from retake.agent.state import AgentState
from retake.agent.types import StreamStopped
from retake.agent.watchdog import Watchdog, redact


@dataclass(frozen=True)
class StopRequest:
    """Why the run is stopping, and whether it still has to call ``stream/stop`` (not when the platform already
    ended the session)."""

    reason: str
    call_stop: bool


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
        self.stage: Stage | None = None
        self.screen: Screen | None = None
        self.work_dir: Path | None = None
        self.thumbnail_url: str | None = None
        self.chat: ChatDesk | None = None
        self.liveness = Liveness()
        self.monitor = StatusMonitor(
            client,
            self.options,
            self.liveness,
            self.state,
            notifier=self.notifier,
            report=self.report,
            watch_url=lambda: self.watch_url,
            on_session_ended=self._ended_remotely,
        )
        self.watchdog = Watchdog(
            client,
            self.options,
            self.liveness,
            notifier=self.notifier,
            report=self.report,
            on_session_ended=self._ended_remotely,
            request_stop=self.request_stop,
        )
        self._temp_work_dir = False
        self._text_window: TextWindowMode = "none"
        self._stop_event = asyncio.Event()
        self._stop_reason = "stopped"
        self._call_stop = True
        self._session_opened = False
        self._last_thumbnail_ok = False
        # Push is tried when the skill check saw the agent socket offered, or when the check is off (then a
        # refused socket is what tells).
        self._push_offered = not self.options.skill_check
        self.push_socket: AgentSocket | None = None

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

    @property
    def session_id(self) -> str | None:
        return self.liveness.session_id

    @property
    def encoder_restarts(self) -> int:
        return self.watchdog.restarts

    @property
    def stop_request(self) -> StopRequest | None:
        """None while the run goes on; set by ``request_stop`` (a signal, the platform ending the session, the
        watchdog giving up)."""
        if not self._stop_event.is_set():
            return None
        return StopRequest(self._stop_reason, self._call_stop)

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
        await self.preflight()
        await self._open()
        assert self.chat is not None
        tasks = [
            asyncio.create_task(self.chat.run(self.push_socket), name="chat"),
            asyncio.create_task(self._thumbnail_loop(), name="thumbnails"),
            asyncio.create_task(self.monitor.run(), name="monitor"),
            asyncio.create_task(self.watchdog.run(), name="watchdog"),
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

    async def _open_push(self) -> None:
        """The agent socket for chat (``push_socket``), when wanted and offered; left None (polling) when it
        cannot be opened."""
        if not (self.options.push and self._push_offered and self.client.has_token):
            return
        socket = AgentSocket(self.client)
        with self.report.step("opening the agent socket (push)"):
            opened = await socket.connect(10.0)
        if not opened:
            self.report.warn("the agent socket was refused: polling chat every few seconds instead")
            return
        self.push_socket = socket
        self.report.ok("chat by push over the agent socket")

    def _prepare_work_dir(self) -> None:
        if self.options.work_dir is not None:
            self.work_dir = self.options.work_dir
            self.work_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.work_dir = Path(tempfile.mkdtemp(prefix="retake-golive-"))
            self._temp_work_dir = True

    async def preflight(self) -> None:
        """The checks before anything starts (``run()`` does them first): whose token this is, the skill version,
        verification (``NotVerified`` unless ``allow_unverified``), unseen operator warnings, the tools; then the
        screen and the stage are built in ``work_dir``, which must be set."""
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
            self._push_offered = check.push
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
            notify_warning(warning, self.report, self.notifier)
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
        self.watchdog.attach(self.stage)
        if isinstance(self.handler, CommandHandler):
            self.handler.env.update(
                RETAKE_STREAM_LOG=str(log_path), RETAKE_AGENT_NAME=self.agent_name, RETAKE_WATCH_URL=self.watch_url
            )

    async def _open(self) -> None:
        o = self.options
        with self.report.step("getting fresh RTMP credentials"):
            await self.watchdog.fresh_key()
        with self.report.step("opening the stream session"):
            start = await self.client.stream_start()
        self._session_opened = True
        self.liveness.session_id = start.get("session_id") or (await self.client.stream_status()).get("session_id")
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
            context=self.context,
        )
        await self._open_push()  # before the prime: nothing said between the two is missed
        await self.chat.prime()
        stage = self.stage
        assert stage is not None
        with self.report.step("starting the virtual display"):
            stage.start_display()
            stage.start_window()
        self.report.ok(f"display {stage.display} ({o.size}), text window: {self._text_window}")
        self.screen_write(f"{self.agent_name} is going live")
        with self.report.step("starting ffmpeg"):
            self.watchdog.start_encoder()
        with self.report.step(f"waiting for the platform to see the stream (up to {o.live_timeout:.0f} s)"):
            live = await self.watchdog.wait_live(o.live_timeout)
        if not live:
            tail = redact(stage.encoder.log_tail() if stage.encoder else "")
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
        status = self.liveness.status
        viewers = status["viewers"] if status else 0
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

    # -- thumbnails ------------------------------------------------------------------------------------

    async def _thumbnail(self) -> None:
        assert self.stage is not None
        answer = await self.client.update_thumbnail(await self.stage.capture(), "thumbnail.png")
        self.thumbnail_url = answer["thumbnail_url"]
        self._last_thumbnail_ok = True

    # -- loops ---------------------------------------------------------------------------------------------

    def context(self) -> dict[str, Any]:
        """Agent and stream facts handed to the handler with each chat event (``ChatDesk``'s ``context``)."""
        status: dict[str, Any] = dict(self.liveness.status) if self.liveness.status else {}
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
            if self.liveness.recovering:
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

    def _ended_remotely(self) -> None:
        message = "the platform ended this stream session (stopped elsewhere or by the operator)"
        self.report.warn(message)
        self.notifier.emit("session_ended", message, urgent=True, session_id=self.session_id)
        self.request_stop(message, call_stop=False)

    # -- shutdown ------------------------------------------------------------------------------------------

    async def _shutdown(self, failed: bool) -> GoLiveResult:
        self.liveness.stopping = True
        stopped: StreamStopped | None = None
        if self._session_opened and self._call_stop:
            with self.report.step("stopping the stream"):
                try:
                    stopped = await asyncio.wait_for(self.client.stream_stop(), 15)
                except Conflict:
                    pass  # already stopped (another `retake agent stop`, or the operator)
                except (AgentError, TimeoutError) as exc:
                    self.report.warn(f"stream/stop failed: {exc}")
        if self.push_socket is not None:
            await self.push_socket.close()
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
