"""asyncio wrapper around the sans-IO RTMP core: sockets in, hook calls out.

One task per TCP connection reads, feeds :class:`~retake.ingest.rtmp.RtmpConnection`, awaits the hooks for
its events and writes the replies. Every failure of one connection (bad bytes, timeouts, resets, a hook
raising) ends that connection only. Stream keys are never logged: log lines carry the connection id, the
peer, the app (query removed) and, once granted, the session and stream ids.
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

from retake.ingest.errors import RtmpProtocolError
from retake.ingest.hooks import IngestHooks, MediaMessage, PublishGrant
from retake.ingest.rtmp.connection import ConnState, RtmpConfig, RtmpConnection
from retake.ingest.rtmp.events import (
    Connected,
    HandshakeCompleted,
    MediaReceived,
    PublishEnded,
    PublishRequested,
)

log = logging.getLogger("retake.ingest")

_READ_SIZE = 64 * 1024


class _HookFailed(Exception):
    """on_media raised: the connection is closed with reason "error"."""


@dataclass(eq=False)
class _Client:
    id: int
    peer: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    conn: RtmpConnection
    task: asyncio.Task[None] | None
    setup_deadline: float
    grant: PublishGrant | None = None
    close_reason: str | None = None  # an UnpublishReason, or "takeover" (never passed to on_unpublish)
    fields: dict[str, object] = field(default_factory=dict)


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
        self._server = await asyncio.start_server(
            self._on_client,
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

    # -- per connection -----------------------------------------------------------------------------------

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        if self._closing or len(self._clients) >= self.max_connections:
            self._log(logging.WARNING, "connection refused", None, peer=peer, open=len(self._clients))
            writer.transport.abort()
            return
        loop = asyncio.get_running_loop()
        client = _Client(
            id=next(self._ids),
            peer=peer,
            reader=reader,
            writer=writer,
            conn=RtmpConnection(clock=self._clock, config=self._config),
            task=asyncio.current_task(),
            setup_deadline=loop.time() + self.setup_timeout,
        )
        self._clients[client.id] = client
        self._log(logging.DEBUG, "connection opened", client)
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
        conn = client.conn
        loop = asyncio.get_running_loop()
        while client.close_reason is None:
            timeout = self.read_timeout
            if conn.state is not ConnState.PUBLISHING:
                timeout = min(timeout, client.setup_deadline - loop.time())
                if timeout <= 0:
                    raise TimeoutError
            async with asyncio.timeout(timeout):
                data = await client.reader.read(_READ_SIZE)
            if not data:
                return
            conn.receive_data(data)
            await self._handle_events(client)
            await self._flush(client)
            if conn.closed:  # the publish was refused
                await self._linger(client)
                return

    async def _handle_events(self, client: _Client) -> None:
        conn = client.conn
        while (event := conn.next_event()) is not None:
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
                loop = asyncio.get_running_loop()
                client.setup_deadline = loop.time() + self.setup_timeout
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
        if data:
            client.writer.write(data)
            async with asyncio.timeout(self.write_timeout):
                await client.writer.drain()

    async def _linger(self, client: _Client) -> None:
        """After a refusal: let the client read the error status before the socket goes, and do not reset
        it by closing with unread input (which makes the kernel send RST)."""
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            if client.writer.can_write_eof():
                client.writer.write_eof()
            async with asyncio.timeout(1.0):
                while await client.reader.read(_READ_SIZE):
                    pass

    async def _finish(self, client: _Client, reason: str) -> None:
        try:
            await self._end_grant(client, reason)
        finally:
            self._clients.pop(client.id, None)
            client.conn.close()
            client.writer.close()
            with contextlib.suppress(OSError, TimeoutError, asyncio.CancelledError):
                async with asyncio.timeout(self.close_timeout):
                    await client.writer.wait_closed()
            self._log(logging.DEBUG, "connection closed", client, reason=reason)

    def _request_close(self, client: _Client, reason: str) -> None:
        if client.close_reason is None:
            client.close_reason = reason
        # Closing the transport ends a pending read with EOF; a hook in progress finishes first.
        client.writer.close()

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
