"""asyncio wrapper around the sans-IO RTMP core: sockets in, hook calls out.

Each TCP connection is an :class:`asyncio.Protocol` whose ``data_received`` feeds
:class:`~retake.ingest.rtmp.RtmpConnection`, plus one task for whatever has to wait (authorizing a publish,
the hooks' coroutines, draining writes, closing). Media of an accepted publish goes to the synchronous
``on_media`` hook inside ``data_received``, so a media message costs no task wakeup, no stream-reader copy, no
coroutine and no timeout context; that per-message overhead used to be most of the ingest's CPU
(docs/benchmarks.md, media). Any other event is handed to the task with reading paused until the task has
handled it and every event after it, so events keep their order. Timeouts are one lazily re-armed timer per
connection rather than a timeout context per read.

Every failure of one connection (bad bytes, timeouts, resets, a hook raising) ends that connection only.
Before its publish is authorized a connection may make the server hold little (``RtmpConfig.preauth_max_bytes``)
and parsing yields to the loop every ``RtmpConfig.parse_budget`` chunks; admission (:mod:`.admission`)
bounds connections per address, sheds idle unauthenticated ones when the server is full, and throttles wrong
keys. Stream keys are never logged, not even in part: log lines carry the connection id, the peer, the app
only when it is one of ``known_apps`` and, once granted, the session and stream ids; refusals are
rate-limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import ssl
import time
from collections.abc import Callable

from retake.av.message import MediaMessage
from retake.ingest.admission import Admission, AdmissionLimits, LogLimiter
from retake.ingest.errors import RtmpProtocolError
from retake.ingest.hooks import IngestHooks, PublishGrant
from retake.ingest.input_path import HookFailed, InputPath
from retake.ingest.peer import Client, RtmpProtocol
from retake.ingest.rtmp.connection import RtmpConfig, RtmpConnection
from retake.ingest.rtmp.events import (
    Connected,
    Event,
    HandshakeCompleted,
    PublishEnded,
    PublishRequested,
)

log = logging.getLogger("retake.ingest")

_LINGER_SECONDS = 1.0


# Lines that a flood repeats: at most a few per window each (LogLimiter).
_LIMITED_EVENTS = frozenset({"connection refused", "publish refused", "protocol error", "timed out", "shed"})


class RtmpServer(InputPath):
    """RTMP(S) ingest listener.

    ``read_timeout``: a connection that sends nothing for that long is dropped (publishers send media
    continuously). ``setup_timeout``: a connection must be publishing within that long of connecting (or
    of ending a publish); ffmpeg waits forever for a reply, so half-open sessions are reaped by it.
    ``max_connections`` is the global cap, ``admission`` the per-address limits; ``known_apps`` are the app
    names that may appear in log lines (anything else could be a key pasted into the server URL).
    ``reuse_port``: bind with ``SO_REUSEPORT``, so that the kernel spreads new connections over every process
    listening on the port (``retake serve --workers``). ``read_coalesce``: a publishing connection is read at
    most once per that many seconds, all of them in one tick (0: at every arrival; :meth:`InputPath._nap`).
    """

    def __init__(
        self,
        hooks: IngestHooks,
        host: str = "0.0.0.0",
        port: int = 1935,
        *,
        ssl_context: ssl.SSLContext | None = None,
        read_timeout: float = 30.0,
        setup_timeout: float = 10.0,
        write_timeout: float = 10.0,
        close_timeout: float = 5.0,
        max_connections: int = 256,
        max_connections_per_ip: int | None = None,
        admission: AdmissionLimits | None = None,
        known_apps: frozenset[str] = frozenset({"live"}),
        config: RtmpConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        reuse_port: bool = False,
        read_coalesce: float = 0.0,
    ) -> None:
        self._hooks = hooks
        self._reuse_port = reuse_port  # several worker processes listen on one port (server/supervisor.py)
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self.read_timeout = read_timeout
        self.read_coalesce = read_coalesce
        self._napping: list[Client] = []
        self._nap_timer: asyncio.TimerHandle | None = None
        self.setup_timeout = setup_timeout
        self.write_timeout = write_timeout
        self.close_timeout = close_timeout
        self.max_connections = max_connections
        self._config = config or RtmpConfig()
        self._clock = clock
        limits = admission or AdmissionLimits()
        if max_connections_per_ip is not None:
            limits = dataclasses.replace(limits, max_per_ip=max_connections_per_ip)
        self.admission = Admission(limits, clock)
        self._log_limiter = LogLimiter(clock)
        self._known_apps = known_apps
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._clients: dict[int, Client] = {}
        self._publishers: dict[str, Client] = {}  # session_id -> the connection publishing it
        self._ids = itertools.count(1)
        self._closing = False
        self._tasks: set[asyncio.Task[None]] = set()  # every connection's, shed ones included

    # -- lifecycle ----------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with port 0 and started)."""
        if self._server is not None and self._server.sockets:
            port: int = self._server.sockets[0].getsockname()[1]
            return port
        return self._port

    @property
    def publishing_sessions(self) -> frozenset[str]:
        return frozenset(self._publishers)

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("RtmpServer already started")
        self._closing = False
        self._loop = asyncio.get_running_loop()
        self._server = await self._loop.create_server(
            lambda: RtmpProtocol(self),
            self._host,
            self._port,
            ssl=self._ssl,
            ssl_handshake_timeout=self.setup_timeout if self._ssl is not None else None,
            reuse_port=True if self._reuse_port else None,
        )
        self._log(logging.INFO, "listening", None, host=self._host, port=self.port, tls=self._ssl is not None)

    async def stop(self) -> None:
        """Stop listening and close every connection; publishers get ``on_unpublish(..., "shutdown")``."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        clients = list(self._clients.values())
        for client in clients:
            self._request_close(client, "shutdown")
        await asyncio.gather(*(self._wait_done(client) for client in clients))
        if self._nap_timer is not None:  # every napping connection is gone: nothing to wake
            self._nap_timer.cancel()
            self._nap_timer = None
        self._napping.clear()
        if self._tasks:  # connections already leaving (shed, closing) finish too
            await asyncio.wait(set(self._tasks), timeout=self.close_timeout)
        if server is not None:
            await server.wait_closed()
        self._log(logging.INFO, "stopped", None)

    async def close_publisher(self, session_id: str) -> bool:
        """Close the connection publishing ``session_id``; ``False`` if there is none.

        Returns after that connection finished, which includes its ``on_unpublish(grant, "stopped")``: do
        not hold, while awaiting this, a lock that ``on_unpublish`` needs.
        """
        client = self._publishers.get(session_id)
        if client is None:
            return False
        self._request_close(client, "stopped")
        if client.task is not asyncio.current_task():
            await self._wait_done(client)
        return True

    # -- transport callbacks ------------------------------------------------------------------------------

    def _connection_made(self, transport: asyncio.Transport) -> Client | None:
        peername = transport.get_extra_info("peername")
        ip = str(peername[0]) if isinstance(peername, tuple) else str(peername)
        peer = f"{ip}:{peername[1]}" if isinstance(peername, tuple) else ip
        refusal = self._refusal(ip)
        if refusal is not None:
            self._log(logging.WARNING, "connection refused", None, peer=peer, reason=refusal, open=len(self._clients))
            transport.abort()
            return None
        loop = asyncio.get_running_loop()
        now = loop.time()
        client = Client(
            id=next(self._ids),
            peer=peer,
            ip=ip,
            transport=transport,
            conn=RtmpConnection(clock=self._clock, config=self._config),
            setup_deadline=now + self.setup_timeout,
            lost=loop.create_future(),
            last_data=now,
        )
        self._clients[client.id] = client
        self.admission.opened(ip)
        client.task = loop.create_task(self._run(client), name=f"rtmp-connection-{client.id}")
        self._tasks.add(client.task)
        client.task.add_done_callback(self._tasks.discard)
        self._arm_timer(client)
        self._log(logging.DEBUG, "connection opened", client)
        return client

    def _refusal(self, ip: str) -> str | None:
        """Why a new connection from ``ip`` is turned away, or ``None`` to take it (shedding one if full)."""
        if self._closing:
            return "closing"
        if self.admission.blocked(ip):
            return "key_failures"
        if self.admission.full(ip):
            return "per_ip_limit"
        if len(self._clients) >= self.max_connections:
            victim = self._shed_candidate()
            if victim is None:
                return "server_full"
            # Full: a stranger that has not even asked to publish makes room for whoever comes now, so idle
            # sockets cannot keep an encoder out. Its slot is freed at once (its task finishes it later).
            self._log(logging.INFO, "shed", victim)
            self._release_slot(victim)
            self._request_close(victim, "shed")
            victim.transport.abort()
        return None

    def _shed_candidate(self) -> Client | None:
        """The unauthenticated connection (no publish decided or pending) of the address holding most
        connections, the one idle longest among them."""
        best: Client | None = None
        best_key: tuple[int, float] = (0, 0.0)
        for client in self._clients.values():
            if client.grant is not None or client.conn.authorized or client.busy or client.close_reason is not None:
                continue
            key = (-self.admission.connections_of(client.ip), client.last_data)
            if best is None or key < best_key:
                best, best_key = client, key
        return best

    def _release_slot(self, client: Client) -> None:
        if self._clients.pop(client.id, None) is not None:
            self.admission.closed(client.ip)

    # -- per connection task ------------------------------------------------------------------------------

    async def _run(self, client: Client) -> None:
        reason: str = "disconnect"
        try:
            await self._serve(client)
        except RtmpProtocolError as exc:
            reason = "protocol_error"
            self._log(logging.WARNING, "protocol error", client, error=str(exc))
        except TimeoutError:
            reason = "timeout"
            self._log(logging.INFO, "timed out", client)
        except HookFailed:
            reason = "error"
        except (ConnectionError, OSError) as exc:
            reason = "disconnect"
            self._log(logging.DEBUG, "connection lost", client, error=type(exc).__name__)
        except asyncio.CancelledError:
            reason = client.close_reason or "shutdown"
            await self._finish(client, reason)
            raise
        except Exception:
            reason = "error"
            log.exception("rtmp connection %d failed unexpectedly", client.id)
        await self._finish(client, client.close_reason or reason)

    async def _serve(self, client: Client) -> None:
        while True:
            await client.wake.wait()
            client.wake.clear()
            if client.failure is not None:
                raise client.failure
            if client.close_reason is not None:
                return
            if client.busy:
                event, client.held = client.held, None
                if event is not None:
                    await self._handle_event(client, event)
                await self._handle_events(client)
                await self._flush(client)
                if client.close_reason is not None:
                    return
                if client.conn.closed:  # the publish was refused
                    await self._linger(client)
                    return
                self._resume(client)
            if client.failure is not None:
                raise client.failure
            if client.eof:
                return

    async def _handle_events(self, client: Client) -> None:
        conn = client.conn
        while client.close_reason is None and (event := conn.next_event()) is not None:
            await self._handle_event(client, event)

    async def _handle_event(self, client: Client, event: Event | MediaMessage) -> None:
        if client.close_reason is not None:
            return
        if isinstance(event, MediaMessage):
            if client.grant is not None:
                try:
                    self._hooks.on_media(client.grant, event)
                except Exception as exc:
                    log.exception("rtmp on_media failed on connection %d", client.id)
                    raise HookFailed from exc
        elif isinstance(event, PublishRequested):
            await self._authorize(client, event)
        elif isinstance(event, PublishEnded):
            self._log(logging.INFO, "publish ended by client", client, command=event.command)
            await self._end_grant(client, "unpublish")
            assert self._loop is not None
            client.setup_deadline = self._loop.time() + self.setup_timeout
            self._arm_timer(client)
        elif isinstance(event, Connected):
            # A user who pastes "rtmp://host/<key>" or "rtmp://host/live/<key>" as the server URL puts the key
            # into the app name: only names we know are logged, anything else as "other".
            client.fields["app"] = event.app if event.app in self._known_apps else "other"
            self._log(logging.INFO, "connected", client, flash_ver=event.flash_ver[:64])
        elif isinstance(event, HandshakeCompleted):
            self._log(logging.DEBUG, "handshake done", client, digest=event.client_digest)

    async def _authorize(self, client: Client, event: PublishRequested) -> None:
        grant = await self._check_key(client, event)
        if client.close_reason is not None:
            # Closed (stop(), close_publisher) while the hook ran: never answered, but a granted publish
            # still gets its on_unpublish so the hook's bookkeeping is undone.
            client.grant = grant
            return
        if grant is None:
            client.conn.reject_publish()
            return
        previous = self._publishers.get(grant.session_id)
        if previous is not None and previous is not client:
            # Takeover: the same session publishes again (an encoder reconnecting after a drop while the old
            # TCP session still looks alive). The old connection goes without on_unpublish.
            self._log(logging.INFO, "takeover", client, session_id=grant.session_id, replaced=previous.id)
            previous.grant = None
            self._request_close(previous, "takeover")
            await self._wait_done(previous)
        client.grant = grant
        client.fields.update(session_id=grant.session_id, stream_id=grant.stream_id)
        self._publishers[grant.session_id] = client
        self._log(logging.INFO, "publish accepted", client, publish_type=event.publish_type)
        client.conn.accept_publish()

    async def _check_key(self, client: Client, event: PublishRequested) -> PublishGrant | None:
        """The hook's answer, after the address's back-off; refused unasked while the address is blocked."""
        delay = self.admission.key_attempt(client.ip)
        if delay is None:
            self._log(logging.INFO, "publish refused", client, reason="key_failures")
            return None
        try:
            if delay > 0:
                await asyncio.sleep(delay)
                if client.close_reason is not None or client.eof:
                    self.admission.key_abandoned(client.ip)
                    return None
            grant = await self._hooks.on_publish(event.app, event.key)
        except Exception:
            self.admission.key_abandoned(client.ip)
            log.exception("rtmp on_publish failed on connection %d", client.id)
            return None
        except BaseException:  # cancelled while waiting or checking: settle the attempt, then go on cancelling
            self.admission.key_abandoned(client.ip)
            raise
        if grant is None:
            self.admission.key_refused(client.ip)
            self._log(logging.INFO, "publish refused", client, reason="key")
        else:
            self.admission.key_accepted(client.ip)
        return grant

    async def _end_grant(self, client: Client, reason: str) -> None:
        grant, client.grant = client.grant, None
        if grant is None:
            return
        if self._publishers.get(grant.session_id) is client:
            del self._publishers[grant.session_id]
        self._log(logging.INFO, "unpublished", client, reason=reason)
        try:
            await self._hooks.on_unpublish(grant, reason)
        except Exception:
            log.exception("rtmp on_unpublish failed on connection %d", client.id)

    async def _flush(self, client: Client) -> None:
        data = client.conn.data_to_send()
        if data and not client.transport.is_closing():
            client.transport.write(data)
        ready = client.write_ready
        if ready is not None:
            async with asyncio.timeout(self.write_timeout):
                await asyncio.shield(ready)
            if client.eof and client.close_reason is None:
                raise ConnectionResetError("connection lost while writing")

    async def _linger(self, client: Client) -> None:
        """After a refusal: let the client read the error status before the socket goes, and do not reset
        it by closing with unread input (which makes the kernel send RST)."""
        client.lingering = True
        transport = client.transport
        with contextlib.suppress(OSError, RuntimeError):
            if transport.can_write_eof():
                transport.write_eof()
            if not transport.is_closing():
                transport.resume_reading()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_LINGER_SECONDS):
                while not client.eof:
                    client.wake.clear()
                    await client.wake.wait()

    async def _finish(self, client: Client, reason: str) -> None:
        try:
            await self._end_grant(client, reason)
        finally:
            self._release_slot(client)
            if client.timer is not None:
                client.timer.cancel()
                client.timer = None
            # Nothing of what the peer sent outlives the connection, and nothing points back at the client
            # (an exception's traceback holds the frames that hold it): memory goes back at once, not at the
            # next full collection of the (tuned) cyclic GC.
            client.failure = None
            client.held = None
            client.backlog.clear()
            client.conn.close()
            client.transport.close()
            try:
                async with asyncio.timeout(self.close_timeout):
                    await asyncio.shield(client.lost)
            except TimeoutError:
                client.transport.abort()  # a peer that reads nothing keeps close() waiting on its buffer
            except (OSError, asyncio.CancelledError):
                pass
            self._log(logging.DEBUG, "connection closed", client, reason=reason)

    def _request_close(self, client: Client, reason: str) -> None:
        if client.close_reason is None:
            client.close_reason = reason
        # The task ends the connection as soon as it waits again; a hook in progress finishes first.
        client.transport.close()
        client.wake.set()

    async def _wait_done(self, client: Client) -> None:
        task = client.task
        if task is None or task.done() or task is asyncio.current_task():
            return
        done, _ = await asyncio.wait({task}, timeout=self.close_timeout)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=self.close_timeout)

    def _log(self, level: int, event: str, client: Client | None, **fields: object) -> None:
        if not log.isEnabledFor(level):
            return
        if event in _LIMITED_EVENTS:
            dropped = self._log_limiter.allow(event)
            if dropped is None:
                return
            if dropped:
                fields["suppressed"] = dropped  # lines of this kind left out since the previous one
        data: dict[str, object] = {}
        if client is not None:
            data.update(conn=client.id, peer=client.peer, **client.fields)
        data.update(fields)
        # Client-supplied strings are escaped so they cannot forge log lines.
        text = " ".join(
            f"{key}={value if not isinstance(value, str) or value.isprintable() else ascii(value)}"
            for key, value in data.items()
        )
        log.log(level, "rtmp %s %s", event, text, extra={"rtmp_event": event, "rtmp": data})
