"""Publishing to another RTMP(S) server: the asyncio side of :class:`~retake.ingest.rtmp.client.RtmpPublisher`.

``await PushConnection.open(target)`` connects, does the handshake and the publish, and returns once the
destination answered NetStream.Publish.Start; then :meth:`PushConnection.send` writes media messages. A reader
task answers the peer's pings and acknowledgements meanwhile and notices when the peer goes away.

The stream key lives in :class:`PushTarget` only (left out of its ``repr``); errors never carry it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from retake.av.message import MediaMessage
from retake.ingest.errors import IngestError, RtmpProtocolError
from retake.ingest.rtmp.client import PublishRefused, PublishStarted, RtmpPublisher

SCHEMES: Final = {"rtmp": 1935, "rtmps": 443}
_READ_SIZE: Final = 64 * 1024
# The transport buffers this much before send() waits for the socket: small, so a slow destination shows up
# as waiting here (and the caller's bounded queue skips ahead) instead of as memory in the transport.
_WRITE_HIGH_WATER: Final = 256 * 1024


class PushError(IngestError):
    """The destination could not be reached or went away (retry later)."""


class PushRefusedError(PushError):
    """The destination refused the connect or the publish (a wrong key or application)."""

    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code


@dataclass(frozen=True, slots=True)
class PushTarget:
    host: str
    port: int
    tls: bool
    app: str
    tc_url: str
    key: str = field(repr=False)

    @classmethod
    def parse(cls, url: str, key: str) -> PushTarget:
        """``rtmp[s]://host[:port]/app[/more]`` plus a stream key; ``ValueError`` for anything else."""
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            raise ValueError("the URL must start with rtmp:// or rtmps://")
        try:
            port = parts.port or SCHEMES[scheme]
        except ValueError as exc:
            raise ValueError("the URL has an invalid port") from exc
        if not parts.hostname:
            raise ValueError("the URL has no host")
        if parts.username or parts.password:
            raise ValueError("credentials in the URL are not supported; put the key in 'key'")
        app = parts.path.strip("/")
        if parts.query:
            app += "?" + parts.query
        if not app:
            raise ValueError("the URL has no application path (e.g. rtmp://host/live)")
        tc_url = f"{scheme}://{parts.netloc}/{app}"
        return cls(parts.hostname, port, scheme == "rtmps", app, tc_url, key)


class PushConnection:
    """One publish to a destination. Use :meth:`open`; always :meth:`close`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, publisher: RtmpPublisher) -> None:
        self._reader = reader
        self._writer = writer
        self._publisher = publisher
        self._reading: asyncio.Task[None] | None = None
        self._error: PushError | None = None

    @classmethod
    async def open(
        cls, target: PushTarget, *, time_limit: float = 10.0, ssl_context: ssl.SSLContext | None = None
    ) -> PushConnection:
        """Connect and publish; raises :class:`PushError` (or its ``PushRefusedError``) within ``time_limit`` s."""
        loop = asyncio.get_running_loop()
        epoch = loop.time()
        publisher = RtmpPublisher(
            app=target.app, key=target.key, tc_url=target.tc_url, now_ms=lambda: int((loop.time() - epoch) * 1000)
        )
        context = (ssl_context or ssl.create_default_context()) if target.tls else None
        try:
            async with asyncio.timeout(time_limit):
                reader, writer = await asyncio.open_connection(
                    target.host, target.port, ssl=context, server_hostname=target.host if context else None
                )
        except (OSError, TimeoutError) as exc:
            raise PushError(f"cannot connect to {target.host}:{target.port}: {_reason(exc)}") from None
        connection = cls(reader, writer, publisher)
        try:
            async with asyncio.timeout(time_limit):
                await connection._publish()
        except TimeoutError:
            await connection.close()
            raise PushError("the destination did not start the publish in time") from None
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _publish(self) -> None:
        publisher = self._publisher
        self._writer.write(publisher.data_to_send())
        while True:
            data = await self._read()
            publisher.receive_data(data)
            self._flush()
            while (event := publisher.next_event()) is not None:
                if isinstance(event, PublishRefused):
                    raise PushRefusedError(event.code, event.description)
                if isinstance(event, PublishStarted):
                    self._writer.transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
                    self._reading = asyncio.create_task(self._read_forever())
                    return

    async def _read(self) -> bytes:
        try:
            data = await self._reader.read(_READ_SIZE)
        except OSError as exc:
            raise PushError(f"connection lost: {_reason(exc)}") from None
        if not data:
            raise PushError("the destination closed the connection")
        return data

    async def _read_forever(self) -> None:
        # After Publish.Start the peer only sends control messages (acks, pings) or an error status.
        try:
            while True:
                self._publisher.receive_data(await self._read())
                self._flush()
                while (event := self._publisher.next_event()) is not None:
                    if isinstance(event, PublishRefused):
                        raise PushRefusedError(event.code, event.description)
        except PushError as exc:
            self._error = exc
        except RtmpProtocolError as exc:
            self._error = PushError(f"protocol error from the destination: {exc}")
        self._writer.transport.abort()  # wakes a send() waiting in drain

    def _flush(self) -> None:
        data = self._publisher.data_to_send()
        if data:
            self._writer.write(data)

    @property
    def bytes_sent(self) -> int:
        return self._publisher.bytes_sent

    async def send(self, messages: Iterable[MediaMessage]) -> None:
        """Write ``messages``; waits while the socket is behind (raises :class:`PushError` once it is gone)."""
        if self._error is not None:
            raise self._error
        publisher = self._publisher
        for message in messages:
            publisher.send_media(message.kind, message.timestamp_ms, message.payload)
        try:
            self._flush()
            await self._writer.drain()
        except (OSError, RuntimeError) as exc:
            raise self._error or PushError(f"connection lost: {_reason(exc)}") from None
        if self._error is not None:
            raise self._error

    async def close(self) -> None:
        """End the publish (FCUnpublish, deleteStream) and the connection."""
        if self._reading is not None:
            self._reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reading
        if self._error is None and self._publisher.publishing:
            self._publisher.close()
            with contextlib.suppress(OSError, RuntimeError):
                self._flush()
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            async with asyncio.timeout(2):
                await self._writer.wait_closed()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
