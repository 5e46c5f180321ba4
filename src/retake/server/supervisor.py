"""``retake serve --workers N``: one supervisor process and N worker processes, each a whole ``retake serve``.

Ports. Every worker binds the public HTTP port and the RTMP port itself with ``SO_REUSEPORT``: the kernel hashes
each new connection to one of the listening workers, so publishers spread over the workers without anybody in
between, and a worker that dies takes only its own accept queue with it (the others keep accepting). The same
option on the HTTP port keeps the two ports alike; which worker answers an API call does not matter (the state is
in PostgreSQL and Redis). A socket bound in the supervisor and inherited by the children would work for HTTP too,
but its one accept queue goes mostly to whichever worker is awake (epoll wakes the last waiter first).

``SO_REUSEPORT`` would also let a second ``retake serve --workers`` on the same ports join silently and take half
the connections, so the supervisor first binds every port once without the option: when that fails, another
server is there and the start stops with an error. Workers bind but listen only once their app has started,
so no connection waits in a worker that cannot answer yet (a TCP socket joins the port's group at ``listen``).

Media. A stream is played from the worker holding its publisher (its LiveStream lives in that process): each
worker also listens on a port of its own (``Settings.worker_port``), records that address as the session's
``media_node``, and the others answer playback requests with a 307 there (server/playback.py) — the two-node
model of scale-out, on one machine. Browsers (fetch/XHR in hls.js and flv.js) and ffmpeg/ffplay follow a 307; a
proxy in between would cost a copy of every byte of every viewer.

Supervision. Migrations and the first signing keys are made once here, before any worker starts, so workers do
not race. SIGTERM/SIGINT are forwarded to every worker (a second signal is forwarded too: workers then stop
waiting for open connections); the supervisor exits 0 once they all stopped. A worker that dies is restarted
after a back-off that doubles while it keeps dying within ``STABLE_SECONDS`` of its start, and the supervisor
gives up (stopping the others, exit status 1) after ``MAX_QUICK_FAILURES`` such deaths in a row. Workers run in
their own process group (a terminal's Ctrl-C reaches the supervisor once, not every worker twice) and get
SIGTERM if the supervisor itself dies (``PR_SET_PDEATHSIG``), so none is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from retake.config import Settings

log = logging.getLogger("retake.supervisor")

STABLE_SECONDS = 10.0  # a worker that ran this long before dying is restarted after the shortest back-off
FIRST_BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
MAX_QUICK_FAILURES = 5
STOP_TIMEOUT_SECONDS = 30.0  # after a stop signal, workers still running this much later are killed
READY_TIMEOUT_SECONDS = 120.0
_PR_SET_PDEATHSIG = 1


class RequirementError(Exception):
    """``--workers`` cannot run with these settings; the message says what to change."""


def check_requirements(settings: Settings) -> None:
    """What several workers need, checked before anything starts (see README, "Several workers")."""
    n = settings.worker_count
    if n <= 1:
        return
    if not sys.platform.startswith("linux"):
        raise RequirementError(f"--workers {n} needs Linux: other systems do not spread SO_REUSEPORT connections")
    if not settings.effective_database_url.startswith("postgresql"):
        raise RequirementError(
            f"--workers {n} needs PostgreSQL (--database-url postgresql+asyncpg://…): with SQLite, writers in "
            "different processes take turns through the database file's lock by sleeping and retrying"
        )
    if not settings.redis_url:
        raise RequirementError(
            f"--workers {n} needs Redis (--redis-url redis://…): Socket.IO rooms and the chat page cache are "
            "shared between the workers through it"
        )


def bound_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """A TCP socket bound to (host, port), not yet listening (asyncio's ``create_server`` calls ``listen``)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def worker_sockets(settings: Settings) -> list[socket.socket]:
    """A worker's HTTP sockets: the shared public port and its own port."""
    assert settings.worker_index is not None
    shared = bound_socket(settings.host, settings.port, reuse_port=True)
    own = bound_socket(settings.host, settings.worker_port(settings.worker_index), reuse_port=False)
    return [shared, own]


def probe_ports(settings: Settings) -> None:
    """Every port the workers will use is free (see the module docstring: SO_REUSEPORT would share it)."""
    ports = [("HTTP", settings.host, settings.port)]
    ports += [(f"worker {i} HTTP", settings.host, settings.worker_port(i)) for i in range(settings.worker_count)]
    if settings.rtmp_enabled:
        ports.append(("RTMP", settings.rtmp_bind or settings.host, settings.rtmp_port))
    for what, host, port in ports:
        try:
            sock = bound_socket(host, port, reuse_port=False)
        except OSError as exc:
            raise RequirementError(
                f"the {what} port {host}:{port} is not free ({exc.strerror}): is another "
                "server running? (--worker-port-base moves the workers' own ports)"
            ) from exc
        sock.close()


def prepare(settings: Settings) -> None:
    """Once, before the workers start: the schema is current and the first signing keys exist."""
    from retake.identity.jwt_keys import JwtKeyRing
    from retake.identity.livekit import LiveKitIssuer
    from retake.store.engine import create_engine, dispose_engine, migrate

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    keys = settings.data_dir / "keys"
    JwtKeyRing(keys).ensure()
    LiveKitIssuer.from_settings(settings.livekit_api_key, settings.livekit_api_secret, settings.livekit_url, keys)

    async def migrate_once() -> None:
        engine = create_engine(settings.effective_database_url)
        try:
            await migrate(engine)
        finally:
            await dispose_engine(engine)

    asyncio.run(migrate_once())


def worker_env(settings: Settings, index: int) -> dict[str, str]:
    """The worker's environment: every setting of the supervisor (flags included) as ``RETAKE_*``, its index,
    and the demo agent in worker 0 only."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        env[f"RETAKE_{name.upper()}"] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    env["RETAKE_WORKER_INDEX"] = str(index)
    if index > 0:
        env["RETAKE_DEMO"] = "false"
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _connect_host(host: str) -> str:
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    quick_failures: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    def __init__(self, settings: Settings, console: Console, argv: list[str] | None = None) -> None:
        self.settings = settings
        self.console = console
        self.argv = argv or [sys.executable, "-m", "retake", "serve"]
        self.workers = [_Worker(i) for i in range(settings.worker_count)]
        self._stop = asyncio.Event()
        self._signals = 0
        self._gave_up = False

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal, sig)
        try:
            keepers = [asyncio.create_task(self._keep(w)) for w in self.workers]
            announce = asyncio.create_task(self._announce_ready())
            await self._stop.wait()
            killed = await self._stop_workers()
            announce.cancel()
            await asyncio.gather(*keepers, announce, return_exceptions=True)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
        if self._gave_up or killed:
            return 1
        self.console.print("[green]✓[/green] every worker stopped")
        return 0

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals += 1
        log.info("%s received: stopping %d workers", sig.name, len(self.workers))
        if self._signals > 1:  # a second signal: forwarded again, the workers stop waiting for open connections
            self._send_all(signal.SIGTERM)
        self._stop.set()

    def _send_all(self, sig: signal.Signals) -> None:
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    worker.process.send_signal(sig)

    async def _stop_workers(self) -> bool:
        """SIGTERM to every worker, then wait; True when some had to be killed."""
        self._send_all(signal.SIGTERM)
        running = [w.process for w in self.workers if w.process is not None and w.process.returncode is None]
        if not running:
            return False
        _done, late = await asyncio.wait(
            [asyncio.ensure_future(p.wait()) for p in running], timeout=STOP_TIMEOUT_SECONDS
        )
        if not late:
            return False
        self._send_all(signal.SIGKILL)
        await asyncio.gather(*(p.wait() for p in running))
        log.error("%d workers did not stop within %.0f s and were killed", len(late), STOP_TIMEOUT_SECONDS)
        return True

    async def _spawn(self, worker: _Worker) -> asyncio.subprocess.Process:
        worker.ready.clear()
        worker.process = await asyncio.create_subprocess_exec(
            *self.argv,
            env=worker_env(self.settings, worker.index),
            stdin=asyncio.subprocess.DEVNULL,
            process_group=0,
            preexec_fn=_die_with_parent,
        )
        log.info("worker %d started (pid %d)", worker.index, worker.process.pid)
        return worker.process

    async def _keep(self, worker: _Worker) -> None:
        """Run one worker until the stop; restart it when it dies, with back-off."""
        from retake.store.nudges import wait_set  # the supervisor imports the store lazily, as prepare() does

        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            started = loop.time()
            process = await self._spawn(worker)
            if self._stop.is_set():  # the stop came while it was being started: _stop_workers did not see it
                process.send_signal(signal.SIGTERM)
            waiting = asyncio.create_task(self._wait_ready(worker, process))
            code = await process.wait()
            waiting.cancel()
            if self._stop.is_set():
                return
            worker.quick_failures = 0 if loop.time() - started >= STABLE_SECONDS else worker.quick_failures + 1
            if worker.quick_failures >= MAX_QUICK_FAILURES:
                log.error(
                    "worker %d died %d times in a row right after starting: giving up",
                    worker.index,
                    worker.quick_failures,
                )
                self._gave_up = True
                self._stop.set()
                return
            delay = min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2 ** max(0, worker.quick_failures - 1))
            log.warning(
                "worker %d (pid %d) exited with status %s; restarting it in %.1f s",
                worker.index,
                process.pid,
                code,
                delay,
            )
            await wait_set(self._stop, delay)

    async def _wait_ready(self, worker: _Worker, process: asyncio.subprocess.Process) -> None:
        """A worker listens on its own port once its app has started: a connection there means ready."""
        host, port = _connect_host(self.settings.host), self.settings.worker_port(worker.index)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_SECONDS
        while process.returncode is None and loop.time() < deadline:
            try:
                _reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            writer.close()
            worker.ready.set()
            log.info(
                "worker %d ready (pid %d) at %s", worker.index, process.pid, self.settings.worker_url(worker.index)
            )
            return

    async def _announce_ready(self) -> None:
        await asyncio.gather(*(w.ready.wait() for w in self.workers))
        self.console.print(workers_table(self.settings, [w.process.pid if w.process else 0 for w in self.workers]))


def workers_table(settings: Settings, pids: list[int]) -> Table:
    rtmp = f"{settings.rtmp_url}  (port {settings.rtmp_port}, shared)" if settings.rtmp_enabled else "off"
    table = Table(title=f"{len(pids)} workers ready: web {settings.public_url}/ · RTMP {rtmp}")
    for column in ("worker", "pid", "own address (media node)", "shares"):
        table.add_column(column)
    for index, pid in enumerate(pids):
        shares = f"HTTP :{settings.port}" + (f", RTMP :{settings.rtmp_port}" if settings.rtmp_enabled else "")
        table.add_row(str(index), str(pid), settings.worker_url(index), shares)
    return table


def supervise(settings: Settings, console: Console) -> int:
    """The supervisor's whole life; the exit status of ``retake serve --workers N``."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        check_requirements(settings)
        probe_ports(settings)
    except RequirementError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    with console.status("migrating the database…"):
        prepare(settings)
    console.print(
        f"[bold]retake[/bold] supervisor (pid {os.getpid()}): starting {settings.worker_count} workers, "
        f"HTTP {settings.host}:{settings.port} and RTMP {settings.rtmp_bind or settings.host}:{settings.rtmp_port} "
        f"shared, own ports from {settings.worker_port(0)}; data {Path(settings.data_dir).resolve()}"
    )
    return asyncio.run(Supervisor(settings, console).run())
