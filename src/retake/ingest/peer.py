"""One RTMP connection's record and its transport callbacks (see :mod:`retake.ingest.server`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol, cast

from retake.av.message import MediaMessage
from retake.ingest.hooks import PublishGrant
from retake.ingest.nap_gate import NapGate
from retake.ingest.rtmp.connection import RtmpConnection
from retake.ingest.rtmp.events import Event


class _Server(Protocol):
    def _connection_made(self, transport: asyncio.Transport) -> Client | None: ...

    def _data_received(self, client: Client, data: bytes) -> None: ...


@dataclass(eq=False)
class Client:
    id: int
    peer: str
    ip: str
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
    held: Event | MediaMessage | None = None  # the event the read callback handed to the task
    backlog: list[bytes] = field(default_factory=list)  # bytes delivered while busy (TLS may still deliver)
    backlog_bytes: int = 0
    napping: bool = False  # reads held until the server's next read tick (InputPath._nap)
    gate: NapGate | None = None  # holds a napping publisher's bytes in the kernel (made at its first nap)
    parsing: bool = False  # the parse of earlier input ran out of budget and continues in a later loop turn
    failure: BaseException | None = None  # ends the connection: protocol error, timeout, hook failure
    eof: bool = False  # the peer closed its side, or the connection is gone
    lingering: bool = False
    last_data: float = 0.0  # loop time of the last bytes received (or of the task giving reading back)
    timer: asyncio.TimerHandle | None = None
    write_ready: asyncio.Future[None] | None = None  # set while the transport asks us to stop writing


class RtmpProtocol(asyncio.Protocol):
    """Transport callbacks of one connection, forwarded to the server."""

    __slots__ = ("_client", "_server")

    def __init__(self, server: _Server) -> None:
        self._server = server
        self._client: Client | None = None

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
        self._client = None  # the transport keeps its protocol a while: it must not keep the client too

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
