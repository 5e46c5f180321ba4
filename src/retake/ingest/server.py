"""asyncio wrapper around the sans-IO RTMP core: sockets in, hook calls out.

Each TCP connection is an :class:`asyncio.Protocol` whose ``data_received`` feeds
:class:`~retake.ingest.rtmp.RtmpConnection`, plus one task for whatever has to wait (authorizing a publish,
the hooks' coroutines, draining writes, closing). Media of an accepted publish takes the direct path: when
the hooks offer ``on_media_nowait`` (:class:`~retake.ingest.hooks.MediaNowait`) it is called inside
``data_received``, so a media message costs no task wakeup, no stream-reader copy, no coroutine and no
timeout context; that per-message overhead used to be most of the ingest's CPU (docs/benchmarks.md, media).
The first event the direct path cannot take is handed to the task with reading paused until the task has
handled it and every event after it, so events keep their order and a slow hook still back-pressures the
encoder. Timeouts are one lazily re-armed timer per connection rather than a timeout context per read.

Every failure of one connection (bad bytes, timeouts, resets, a hook raising) ends that connection only.
Stream keys are never logged: log lines carry the connection id, the peer, the app (query removed) and, once
granted, the session and stream ids.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from retake.ingest.errors import RtmpProtocolError
from retake.ingest.hooks import IngestHooks, MediaKind, MediaMessage, PublishGrant
from retake.ingest.rtmp.connection import ConnState, RtmpConfig, RtmpConnection
from retake.ingest.rtmp.events import (
    Connected,
    Event,
    HandshakeCompleted,
    MediaReceived,
    PublishEnded,
    PublishRequested,
)

log = logging.getLogger("retake.ingest")

_LINGER_SECONDS = 1.0

MediaNowaitHook = Callable[[PublishGrant, MediaKind, int, bytes], bool]


class _HookFailed(Exception):
    """on_media raised: the connection is closed with reason "error"."""


@dataclass(eq=False)
class _Client:
    id: int
    peer: str
    transport: asyncio.Transport
    conn: RtmpConnection
    setup_deadline: float
    lost: asyncio.Future[None]  # resolved by connection_lost
    task: asyncio.Task[None] | None = None
    grant: PublishGrant | None = None
    close_reason: str | None = None  # an UnpublishReason, or "takeover" (never passed to on_unpublish)
    fields: dict[str, object] = field(default_factory=dict)
    # Shared by the transport callbacks and the task.
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    busy: bool = False  # the task owns the events now; reading is paused until it is done
    held: Event | None = None  # the event the direct path handed to the task
    backlog: list[bytes] = field(default_factory=list)  # bytes delivered while busy (TLS may still deliver)
    failure: BaseException | None = None  # ends the connection: protocol error, timeout, hook failure
    eof: bool = False  # the peer closed its side, or the connection is gone
    lingering: bool = False
    last_data: float = 0.0  # loop time of the last bytes received (or of the task giving reading back)
    timer: asyncio.TimerHandle | None = None
    write_ready: asyncio.Future[None] | None = None  # set while the transport asks us to stop writing


class _RtmpProtocol(asyncio.Protocol):
    """Transport callbacks of one connection, forwarded to the server."""

    __slots__ = ("_client", "_server")

    def __init__(self, server: RtmpServer) -> None:
        self._server = server
        self._client: _Client | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's does not subclass asyncio.Transport, so no isinstance check).
        self._client = self._server._connection_made(cast(asyncio.Transport, transport))

    def data_received(self, data: bytes) -> None:
        if self._client is not None:
            self._server._data_received(self._client, data)

    def eof_received(self) -> bool:
        if self._client is not None:
            self._client.eof = True
            self._client.wake.set()
        return False  # let the transport close: nothing more goes to a publisher that hung up

    def connection_lost(self, exc: Exception | None) -> None:
        client = self._client
        if client is None:
            return
        client.eof = True
        if not client.lost.done():
            client.lost.set_result(None)
        if client.write_ready is not None and not client.write_ready.done():
            client.write_ready.set_result(None)
        client.write_ready = None
        if client.timer is not None:
            client.timer.cancel()
            client.timer = None
        client.wake.set()

    def pause_writing(self) -> None:
        client = self._client
        if client is not None and client.write_ready is None:
            client.write_ready = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        client = self._client
        if client is not None and client.write_ready is not None:
            if not client.write_ready.done():
                client.write_ready.set_result(None)
            client.write_ready = None


class RtmpServer:
    """RTMP(S) ingest listener.

    ``read_timeout``: a connection that sends nothing for that long is dropped (publishers send media
    continuously). ``setup_timeout``: a connection must be publishing within that long of connecting (or
    of ending a publish); ffmpeg waits forever for a reply, so half-open sessions are reaped by it.
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
        config: RtmpConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._hooks = hooks
        self._media_nowait: MediaNowaitHook | None = getattr(hooks, "on_media_nowait", None)
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self.read_timeout = read_timeout
        self.setup_timeout = setup_timeout
        self.write_timeout = write_timeout
        self.close_timeout = close_timeout
        self.max_connections = max_connections
        self._config = config or RtmpConfig()
        self._clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._clients: dict[int, _Client] = {}
        self._publishers: dict[str, _Client] = {}  # session_id -> the connection publishing it
        self._ids = itertools.count(1)
        self._closing = False

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
            lambda: _RtmpProtocol(self),
            self._host,
            self._port,
            ssl=self._ssl,
            ssl_handshake_timeout=self.setup_timeout if self._ssl is not None else None,
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

    def _connection_made(self, transport: asyncio.Transport) -> _Client | None:
        peername = transport.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        if self._closing or len(self._clients) >= self.max_connections:
            self._log(logging.WARNING, "connection refused", None, peer=peer, open=len(self._clients))
            transport.abort()
            return None
        loop = asyncio.get_running_loop()
        now = loop.time()
        client = _Client(
            id=next(self._ids),
            peer=peer,
            transport=transport,
            conn=RtmpConnection(clock=self._clock, config=self._config),
            setup_deadline=now + self.setup_timeout,
            lost=loop.create_future(),
            last_data=now,
        )
        self._clients[client.id] = client
        client.task = loop.create_task(self._run(client), name=f"rtmp-connection-{client.id}")
        self._arm_timer(client)
        self._log(logging.DEBUG, "connection opened", client)
        return client

    def _data_received(self, client: _Client, data: bytes) -> None:
        if client.lingering or client.failure is not None or client.close_reason is not None:
            return  # nothing more is parsed; the task is ending the connection
        if client.busy:
            client.backlog.append(data)
            return
        assert self._loop is not None
        client.last_data = self._loop.time()
        try:
            client.conn.receive_data(data)
            self._dispatch(client)
        except Exception as exc:
            # Bad bytes (RtmpProtocolError) or a bug: the task ends this connection, and only this one, with
            # the reason it would have had when it read the bytes itself (an exception escaping a transport
            # callback would make the loop close the transport as a mere disconnect).
            self._fail(client, exc)

    def _dispatch(self, client: _Client) -> None:
        """The direct path: hand each media message of the accepted publish to ``on_media_nowait``; the first
        event it cannot take goes to the task, together with everything queued behind it."""
        conn = client.conn
        grant = client.grant
        nowait = self._media_nowait
        while (event := conn.next_event()) is not None:
            if grant is not None and nowait is not None and type(event) is MediaReceived:
                try:
                    if nowait(grant, event.kind, event.timestamp, event.payload):
                        if client.close_reason is not None:
                            return  # the hook closed us (close_publisher): the rest is dropped
                        continue
                except Exception:
                    log.exception("rtmp on_media failed on connection %d", client.id)
                    self._fail(client, _HookFailed())
                    return
            client.held = event
            self._hand_over(client)
            return
        data = conn.data_to_send()  # acknowledgements, ping answers
        if data:
            client.transport.write(data)
            if client.write_ready is not None:
                self._hand_over(client)  # the peer does not read: the task waits, with write_timeout

    def _hand_over(self, client: _Client) -> None:
        client.busy = True
        if not client.transport.is_closing():
            client.transport.pause_reading()
        client.wake.set()

    def _fail(self, client: _Client, exc: BaseException) -> None:
        if client.failure is None:
            client.failure = exc
        if not client.transport.is_closing():
            client.transport.pause_reading()
        client.wake.set()

    def _resume(self, client: _Client) -> None:
        """The task is done with the events: feed what arrived meanwhile, then read again."""
        assert self._loop is not None
        client.busy = False
        client.last_data = self._loop.time()
        while client.backlog and not client.busy and client.failure is None:
            self._data_received(client, client.backlog.pop(0))
        if not client.busy and client.failure is None and not client.transport.is_closing():
            client.transport.resume_reading()

    # -- timeouts -----------------------------------------------------------------------------------------

    def _deadline(self, client: _Client) -> float:
        deadline = client.last_data + self.read_timeout
        if client.conn.state is not ConnState.PUBLISHING:
            deadline = min(deadline, client.setup_deadline)
        return deadline

    def _arm_timer(self, client: _Client) -> None:
        assert self._loop is not None
        if client.timer is not None:
            client.timer.cancel()
        client.timer = self._loop.call_at(self._deadline(client), self._on_timer, client)

    def _on_timer(self, client: _Client) -> None:
        # One timer per connection, re-armed when it fires early, instead of a timeout context per read.
        assert self._loop is not None
        client.timer = None
        if client.eof or client.failure is not None or client.close_reason is not None:
            return
        now = self._loop.time()
        if client.busy or client.lingering:
            # The task is working (a hook, a drain, the linger): only time spent waiting for bytes counts,
            # and reading restarts the clock when the task gives it back.
            client.timer = self._loop.call_at(now + self.read_timeout, self._on_timer, client)
            return
        deadline = self._deadline(client)
        if now >= deadline:
            self._fail(client, TimeoutError())
            return
        client.timer = self._loop.call_at(deadline, self._on_timer, client)

    # -- per connection task ------------------------------------------------------------------------------

    async def _run(self, client: _Client) -> None:
        reason: str = "disconnect"
        try:
            await self._serve(client)
        except RtmpProtocolError as exc:
            reason = "protocol_error"
            self._log(logging.WARNING, "protocol error", client, error=str(exc))
        except TimeoutError:
            reason = "timeout"
            self._log(logging.INFO, "timed out", client)
        except _HookFailed:
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

    async def _serve(self, client: _Client) -> None:
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

    async def _handle_events(self, client: _Client) -> None:
        conn = client.conn
        while client.close_reason is None and (event := conn.next_event()) is not None:
            await self._handle_event(client, event)

    async def _handle_event(self, client: _Client, event: Event) -> None:
        if client.close_reason is not None:
            return
        if isinstance(event, MediaReceived):
            if client.grant is not None:
                message = MediaMessage(event.kind, event.timestamp, event.payload)
                try:
                    await self._hooks.on_media(client.grant, message)
                except Exception as exc:
                    log.exception("rtmp on_media failed on connection %d", client.id)
                    raise _HookFailed from exc
        elif isinstance(event, PublishRequested):
            await self._authorize(client, event)
        elif isinstance(event, PublishEnded):
            self._log(logging.INFO, "publish ended by client", client, command=event.command)
            await self._end_grant(client, "unpublish")
            assert self._loop is not None
            client.setup_deadline = self._loop.time() + self.setup_timeout
            self._arm_timer(client)
        elif isinstance(event, Connected):
            # Only the first path segment: a user who pastes "rtmp://host/live/<key>" as the server
            # URL puts the key into the app name.
            client.fields["app"] = event.app.split("/", 1)[0][:32]
            self._log(logging.INFO, "connected", client, flash_ver=event.flash_ver[:64])
        elif isinstance(event, HandshakeCompleted):
            self._log(logging.DEBUG, "handshake done", client, digest=event.client_digest)

    async def _authorize(self, client: _Client, event: PublishRequested) -> None:
        try:
            grant = await self._hooks.on_publish(event.app, event.key)
        except Exception:
            log.exception("rtmp on_publish failed on connection %d", client.id)
            grant = None
        if client.close_reason is not None:
            # Closed (stop(), close_publisher) while the hook ran: never answered, but a granted publish
            # still gets its on_unpublish so the hook's bookkeeping is undone.
            client.grant = grant
            return
        if grant is None:
            self._log(logging.INFO, "publish refused", client)
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

    async def _end_grant(self, client: _Client, reason: str) -> None:
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

    async def _flush(self, client: _Client) -> None:
        data = client.conn.data_to_send()
        if data and not client.transport.is_closing():
            client.transport.write(data)
        ready = client.write_ready
        if ready is not None:
            async with asyncio.timeout(self.write_timeout):
                await asyncio.shield(ready)
            if client.eof and client.close_reason is None:
                raise ConnectionResetError("connection lost while writing")

    async def _linger(self, client: _Client) -> None:
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

    async def _finish(self, client: _Client, reason: str) -> None:
        try:
            await self._end_grant(client, reason)
        finally:
            self._clients.pop(client.id, None)
            if client.timer is not None:
                client.timer.cancel()
                client.timer = None
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

    def _request_close(self, client: _Client, reason: str) -> None:
        if client.close_reason is None:
            client.close_reason = reason
        # The task ends the connection as soon as it waits again; a hook in progress finishes first.
        client.transport.close()
        client.wake.set()

    async def _wait_done(self, client: _Client) -> None:
        task = client.task
        if task is None or task.done() or task is asyncio.current_task():
            return
        done, _ = await asyncio.wait({task}, timeout=self.close_timeout)
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=self.close_timeout)

    def _log(self, level: int, event: str, client: _Client | None, **fields: object) -> None:
        if not log.isEnabledFor(level):
            return
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
