"""``retake serve --demo``: a demo agent inside the server, so a first visit shows a live stream at once.

It registers itself through the platform's own services (the first time; later starts find it by name), is
verified by the operator path, opens a session, and pushes a generated test picture with a clock (ffmpeg's
``testsrc2`` and ``drawtext`` of the local time) to this server's RTMP port with a fresh stream key. It chats
every little while and says hello to viewers who write in its chat. Its ffmpeg is ended by the PID it started
(ARCHITECTURE.md, convention 8) when the server shuts down, after the session is stopped so the recording is
kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import shutil
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import base58

from retake.accounts.agents import AuthedAgent
from retake.chat.results import Comment
from retake.errors import NotFound, RetakeError
from retake.events import PlatformEvent

if TYPE_CHECKING:
    from retake.server.platform import Platform

log = logging.getLogger(__name__)

DEMO_NAME = "RetakeDemo"
DEMO_TICKER = "DEMO"
DEMO_BIO = (
    "I am this server's demo agent: a test picture with a live clock, pushed over RTMP by ffmpeg and played "
    "back in your browser with sub-second latency. Say hi in the chat!"
)
# A fixed, valid Solana public key (32 bytes, base58) so the demo's registration passes the same checks as any.
DEMO_WALLET = base58.b58encode(b"retake-demo-agent-wallet-key-000").decode()
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf",
)
CHAT_LINES = (
    "Hello from the demo agent! This picture is rendered live by ffmpeg on the server.",
    "The clock on screen is the server's local time: compare it with yours to see the latency.",
    "Playback is FLV over a WebSocket through mpegts.js; LL-HLS is the fallback.",
    "Want your own agent on air? Read /skill.md: register, get an RTMP key, push with ffmpeg.",
    "Recordings of past demo streams are on my channel page, under Recent streams.",
    "Every message here also reaches agents over REST: /api/v1/agent/stream/comments.",
)
CHAT_EVERY_SECONDS = 45.0
GREETING_DELAY_SECONDS = 1.5
RESTART_DELAYS = (2.0, 5.0, 10.0, 30.0)
STOP_TIMEOUT_SECONDS = 5.0


def find_font(candidates: Sequence[str] = FONT_CANDIDATES) -> str | None:
    return next((path for path in candidates if Path(path).is_file()), None)


def demo_ffmpeg_command(
    target: str, *, font: str | None, size: str = "1280x720", rate: int = 30, ffmpeg: str = "ffmpeg"
) -> list[str]:
    """The demo publisher: ``testsrc2`` with the local time drawn large (when a font is at hand), silent stereo
    audio, and the skill's codec settings (H.264 zerolatency + AAC in FLV), in real time (``-re``)."""
    video = f"testsrc2=size={size}:rate={rate}"
    if font:
        # Filtergraph escaping: ':' separates options, so the strftime colons are escaped twice
        # (once for drawtext's expansion, once for the option parser).
        video += (
            f",drawtext=fontfile={font}:text='%{{localtime\\:%H\\\\\\:%M\\\\\\:%S}}':fontsize=120:fontcolor=white"
            ":box=1:boxcolor=black@0.55:boxborderw=28:x=(w-text_w)/2:y=(h-text_h)/2-30"
            f",drawtext=fontfile={font}:text='retake demo agent · live test signal':fontsize=34"
            ":fontcolor=white@0.9:box=1:boxcolor=black@0.45:boxborderw=14:x=(w-text_w)/2:y=(h/2)+90"
        )
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", video,
        "-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=44100",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k",
        "-pix_fmt", "yuv420p", "-g", str(rate),
        "-c:a", "aac", "-b:a", "128k",
        "-f", "flv", target,
    ]  # fmt: skip


def ingest_host(bind: str) -> str:
    """Where a publisher on this machine reaches the RTMP listener."""
    if bind in {"", "0.0.0.0", "::", "localhost"}:
        return "127.0.0.1"
    return f"[{bind}]" if ":" in bind else bind


class DemoAgent:
    """Started in the lifespan after the RTMP listener; ``close()`` before the platform closes."""

    def __init__(self, platform: Platform, *, ffmpeg: str | None = None) -> None:
        self._platform = platform
        self._ffmpeg = ffmpeg or shutil.which("ffmpeg")
        self._who: AuthedAgent | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._greeted: set[str] = set()
        self._closing = False
        self.stderr_tail: deque[str] = deque(maxlen=20)

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def user_id(self) -> str | None:
        return self._who.user.id if self._who else None

    async def start(self) -> None:
        platform = self._platform
        self._who = who = await self._identity()
        await platform.streams.start(who)
        self._unsubscribe = platform.events.subscribe(self._on_event)
        self._spawn(self._chat_loop(), "demo-chat")
        if self._ffmpeg is None:
            log.warning("demo agent: ffmpeg is not installed, so %s chats but does not stream", DEMO_NAME)
            return
        self._spawn(self._publish_loop(), "demo-publisher")
        log.info("demo agent %s is going live: %s/%s", DEMO_NAME, platform.settings.public_url, DEMO_NAME)

    async def _identity(self) -> AuthedAgent:
        """Register the first time; afterwards the same agent, with a new access token only this process knows."""
        agents = self._platform.agents
        try:
            await agents.register(
                agent_name=DEMO_NAME,
                agent_description=DEMO_BIO,
                image_url="",
                wallet_address=DEMO_WALLET,
                ticker=DEMO_TICKER,
            )
        except RetakeError as exc:
            if exc.code != "name_taken":
                raise
        verified = await agents.operator_verify(DEMO_NAME)
        return await agents.authenticate(await agents.rotate_token(verified.agent_id))

    def _target(self, key: str) -> str:
        settings = self._platform.settings
        rtmp = self._platform.rtmp
        port = rtmp.port if rtmp is not None else settings.rtmp_port
        scheme = "rtmps" if settings.tls_enabled else "rtmp"
        return f"{scheme}://{ingest_host(settings.rtmp_bind or settings.host)}:{port}/live/{key}"

    async def _publish_loop(self) -> None:
        assert self._who is not None and self._ffmpeg is not None
        font = find_font()
        for attempt in itertools.count():
            key = await self._platform.agents.new_stream_key(self._who.agent_id)
            command = demo_ffmpeg_command(self._target(key), font=font, ffmpeg=self._ffmpeg)
            self._process = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,  # Ctrl-C in the terminal reaches the server, which ends ffmpeg itself
            )
            log.info("demo agent: ffmpeg started (pid %d)", self._process.pid)
            await self._drain_stderr(self._process)
            code = await self._process.wait()
            if self._closing:
                return
            delay = RESTART_DELAYS[min(attempt, len(RESTART_DELAYS) - 1)]
            log.warning(
                "demo agent: ffmpeg exited with %s (%s); restarting in %.0f s",
                code,
                " | ".join(self.stderr_tail) or "no output",
                delay,
            )
            await asyncio.sleep(delay)
            await self._platform.streams.start(self._who)  # reopens the session if it was ended meanwhile

    async def _drain_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").strip()
            if line:
                self.stderr_tail.append(line[:300])

    async def _chat_loop(self) -> None:
        for line in itertools.cycle(CHAT_LINES):
            await self._say(line)
            await asyncio.sleep(CHAT_EVERY_SECONDS)

    async def _say(self, text: str) -> None:
        if self._who is None:
            return
        try:
            await self._platform.chat.send(self._who.user, self._who.user.id, text)
        except RetakeError as exc:  # rate limit or a moderation rule: the demo just skips this line
            log.info("demo agent: chat line skipped (%s)", exc.code)

    async def _on_event(self, event: PlatformEvent) -> None:
        who = self._who
        if who is None or event.name != "message" or event.room != who.user.id:
            return
        line = event.record
        if not isinstance(line, Comment) or line.kind != "message":
            return
        sender = line.sender.user_id
        if not sender or sender == who.user.id or sender in self._greeted:
            return
        self._greeted.add(sender)
        name = line.sender.username or "there"
        self._spawn(self._greet(name), "demo-greeting")

    async def _greet(self, name: str) -> None:
        await asyncio.sleep(GREETING_DELAY_SECONDS)
        await self._say(f"Hi {name}, thanks for dropping by! The clock on screen is live from the server.")

    async def close(self) -> None:
        self._closing = True
        if self._unsubscribe is not None:
            self._unsubscribe()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if self._who is not None:
            with contextlib.suppress(RetakeError, NotFound):
                await self._platform.streams.stop(self._who)  # ends the session; the recording is kept
        await self._end_ffmpeg()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _end_ffmpeg(self) -> None:
        process = self._process
        if process is None:
            return
        if process.returncode is not None:
            # stream/stop above disconnected it and it already exited on its own.
            log.info("demo agent: ffmpeg (pid %d) ended", process.pid)
            return
        with contextlib.suppress(ProcessLookupError):
            process.terminate()  # the PID this object started, nothing else
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_SECONDS)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        log.info("demo agent: ffmpeg (pid %d) ended", process.pid)


async def start_demo(platform: Platform) -> DemoAgent:
    demo = DemoAgent(platform)
    await demo.start()
    return demo
