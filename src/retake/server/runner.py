"""Runs the ASGI app under uvicorn; the RTMP listener lives in the app's lifespan on the same event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Generator
from email.utils import formatdate

import uvicorn
from rich.console import Console
from rich.panel import Panel
from uvicorn.server import ServerState

from retake import __version__, extensions
from retake.config import Settings
from retake.server import gc_tuning, http_protocol, log_redaction
from retake.server.app import create_app
from retake.server.realtime import Realtime
from retake.server.realtime.frames import FrameWriterProtocol

log = logging.getLogger(__name__)


class _LazyHeaders(ServerState):
    """uvicorn's main loop wakes every 0.1 s to look at ``should_exit`` and, every tenth time, to rebuild the
    ``date`` header; an idle node spent most of its CPU there. Here the header list is rebuilt when a response
    asks for it in a new second (one ``time.time()`` per response), so nothing needs to tick."""

    def __init__(self, config: uvicorn.Config) -> None:
        self._config = config
        self._second = -1
        self._headers: list[tuple[bytes, bytes]] = []
        super().__init__()

    @property
    def default_headers(self) -> list[tuple[bytes, bytes]]:
        now = time.time()
        if int(now) != self._second:
            self._second = int(now)
            date = [(b"date", formatdate(now, usegmt=True).encode())] if self._config.date_header else []
            self._headers = date + self._config.encoded_headers
        return self._headers

    @default_headers.setter
    def default_headers(self, _value: list[tuple[bytes, bytes]]) -> None:
        """``ServerState.__init__`` and uvicorn's tick (which does not run here) assign it; the getter owns it."""


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after shutdown, so the exit status reads as "killed"; an operator's stop is a
    clean exit for us, so signals are handled here and the process ends with status 0.

    uvicorn's graceful shutdown waits for requests in flight, and a Socket.IO long-poll is a request that lasts up
    to the ping interval (25 s): so on the first signal the viewers are disconnected at once (their clients
    reconnect elsewhere), instead of every stop taking the full grace period.

    uvicorn's main loop polls ``should_exit`` every 0.1 s; here it waits for the flag to be set (by the signal
    handler or anybody else, from any thread), so an idle server does not wake at all (see ``_LazyHeaders``)."""

    def __init__(self, config: uvicorn.Config, realtime: Realtime | None = None) -> None:
        self._exit_requested = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._should_exit = False
        super().__init__(config)
        self.server_state = _LazyHeaders(config)
        self._realtime = realtime
        self._disconnecting: asyncio.Task[None] | None = None

    @property
    def should_exit(self) -> bool:
        return self._should_exit

    @should_exit.setter
    def should_exit(self, value: bool) -> None:
        self._should_exit = value
        if not value:
            return
        loop = self._loop
        if loop is None or loop.is_closed():
            self._exit_requested.set()  # not serving yet: main_loop sees the flag when it starts
        elif threading.get_ident() == self._loop_thread:
            self._exit_requested.set()
        else:
            loop.call_soon_threadsafe(self._exit_requested.set)

    async def main_loop(self) -> None:
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        if not self._should_exit:
            await self._exit_requested.wait()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            yield
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.should_exit:  # a second signal: stop waiting for open connections
            self.force_exit = True
        log.info("%s received: shutting down", sig.name)
        self.should_exit = True
        if self._realtime is not None and self._disconnecting is None:
            self._disconnecting = asyncio.ensure_future(self._realtime.disconnect_everyone())


def banner(settings: Settings) -> Panel:
    db = "PostgreSQL" if settings.effective_database_url.startswith("postgresql") else "SQLite"
    pubsub = "Redis" if settings.redis_url else "in-process"
    return Panel.fit(
        f"[bold]retake {__version__}[/bold]\n"
        f"web   {settings.public_url}/\n"
        f"API   {settings.api_base}  (docs: {settings.public_url}/docs)\n"
        f"RTMP  {settings.rtmp_url}/<stream key>\n"
        f"data  {settings.data_dir.resolve()}  ({db}, pub/sub {pubsub})\n"
        f"media {extensions.describe()}",
        title="serving",
    )


def uvicorn_config(app: object, settings: Settings) -> uvicorn.Config:
    """The HTTP protocol with request-head deadline and header limits (server/http_protocol.py); proxy headers
    are resolved by the app itself, only from RETAKE_TRUSTED_PROXIES (server/client_address.py)."""
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=False,
        http=http_protocol.configure(settings.request_timeout_seconds, settings.max_header_bytes, settings.max_headers),
        timeout_keep_alive=settings.keep_alive_seconds,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=10,
        ws=FrameWriterProtocol,
        ws_per_message_deflate=settings.ws_per_message_deflate,
    )


def run(settings: Settings, console: Console) -> None:
    """One process serving everything, alone or as one of the workers of ``--workers N`` (``worker_index`` set by
    server/supervisor.py: the ports are shared with SO_REUSEPORT, plus one of its own)."""
    log_redaction.install()  # before anything logs: no query-string secret in any line, the access log included
    worker = "" if settings.worker_index is None else f"w{settings.worker_index} "
    logging.basicConfig(
        level=settings.log_level.upper(), format=f"%(asctime)s {worker}%(levelname)s %(name)s: %(message)s"
    )
    sockets = None
    if settings.worker_index is not None:
        from retake.server.supervisor import worker_sockets

        sockets = worker_sockets(settings)  # bound before the app is built: a taken port fails at once
    app = create_app(settings)
    log.info("media hot path: %s", extensions.describe())
    if sockets is None:
        console.print(banner(settings))
    config = uvicorn_config(app, settings)
    gc_tuning.apply(settings.gc_threshold, freeze=settings.gc_freeze)
    try:
        import uvloop  # shipped with uvicorn[standard]; a much shorter delay tail under many streams

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:  # pragma: no cover - plain asyncio works too
        pass
    asyncio.run(_Server(config, app.state.realtime).serve(sockets=sockets))
