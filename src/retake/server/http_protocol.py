"""uvicorn's httptools protocol with the limits it lacks: a deadline for a request's head, and a size and count
limit for its headers.

uvicorn (0.54, httptools) arms its keep-alive timer only after a response, and any byte cancels it: a connection
that never sends anything, or sends a header byte every few seconds, was kept open forever, and a request head
of any size was buffered (30 MB of headers were accepted). Here:

- from the moment a connection opens, and again after every response, the next request line and headers must
  arrive within ``request_timeout_seconds`` (408 and close otherwise) — this also closes half-open connections;
- the request line and headers together may be at most ``max_header_bytes`` and ``max_headers`` fields (431
  and close otherwise), counted on the raw bytes before the parser buffers them.

The body has its own deadline in ``server/admission.py``, which knows how many bytes it has been given.

Each request's scope also carries ``retake.http.direct``, a :class:`DirectBody`: a long response whose body is
the same bytes for many clients (HTTP-FLV) writes it, already chunk-framed, straight to the transport instead
of one ASGI ``http.response.body`` message per piece (``server/playback.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Callable
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from retake.server.overload import ThrottledWarning

log = logging.getLogger(__name__)
_warning = ThrottledWarning(log)

DIRECT_EXTENSION = "retake.http.direct"


def http_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body [RFC 9112 §7.1]."""
    return b"%x\r\n%b\r\n" % (len(data), data)


class DirectBody:
    """The body of one response of uvicorn's httptools protocol, written by the app to the transport.

    The app sends ``http.response.start`` through ASGI as usual (middleware adds its headers, uvicorn picks
    chunked encoding), writes chunks with :meth:`write` from wherever it likes (never waiting: the caller reads
    :meth:`buffered` and decides what a slow client gets), and ends with an ASGI ``http.response.body`` as
    usual (uvicorn writes the last chunk and keeps or closes the connection).
    """

    __slots__ = ("_cycle", "_is_closing", "_transport", "_write", "buffered")
    framing = staticmethod(http_chunk)

    def __init__(self, cycle: RequestResponseCycle, transport: asyncio.Transport) -> None:
        self._cycle = cycle
        self._transport = transport
        # Bound once: these run for every viewer and every tag.
        self._write = transport.write
        self._is_closing = transport.is_closing
        self.buffered: Callable[[], int] = transport.get_write_buffer_size

    @property
    def can_start(self) -> bool:
        """Nothing sent yet, and a response without Content-Length will be chunked (not HEAD)."""
        c = self._cycle
        return not c.response_started and c.chunked_encoding is None and c.scope["method"] != "HEAD"

    @property
    def started(self) -> bool:
        """The head went out chunked and the body is ours to write."""
        c = self._cycle
        return c.response_started and bool(c.chunked_encoding) and not c.response_complete and not c.disconnected

    def write(self, framed: bytes) -> bool:
        if self._is_closing():  # closed by either side (uvicorn closes it when the client goes)
            return False
        self._write(framed)
        return True

    def cap_kernel_buffer(self, size: int) -> None:
        cap_send_buffer(self._transport, size)


def cap_send_buffer(transport: asyncio.BaseTransport, size: int) -> None:
    """Fix the kernel's send buffer of a streaming connection: Linux otherwise grows it up to tcp_wmem's maximum
    (4 MiB here, ~20 s of a 1.5 Mb/s stream) for a client that stops reading, seconds of video the app cannot
    see as lag nor skip."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def direct_body_of(scope: Any) -> DirectBody | None:
    extensions = scope.get("extensions") if isinstance(scope, dict) else None
    body = extensions.get(DIRECT_EXTENSION) if isinstance(extensions, dict) else None
    return body if isinstance(body, DirectBody) else None


def _answer(status: int, reason: str, message: str, code: str) -> bytes:
    body = json.dumps({"error": message, "code": code}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


HEAD_TIMEOUT = _answer(408, "Request Timeout", "the request was not received in time", "request_timeout")
HEADERS_TOO_LARGE = _answer(
    431, "Request Header Fields Too Large", "the request headers are too large or too many", "headers_too_large"
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Limits come from ``Settings`` through :func:`configure` (uvicorn builds protocols from its Config only)."""

    head_timeout: float = 10.0
    max_head_bytes: int = 16 * 1024
    max_headers: int = 100

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._head_done = False
        self._header_count = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_done or self.parser is None:
            super().data_received(data)
            return
        room = self.max_head_bytes - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            self._check_count()
            return
        # Feed only what the limit allows: if the head is not complete within it, the request is refused
        # before the parser could buffer more.
        self._head_bytes = self.max_head_bytes
        super().data_received(data[:room])
        if self.transport.is_closing() or self._check_count():
            return
        if not self._head_done:
            self._refuse(HEADERS_TOO_LARGE, "request head over %d bytes")
            return
        super().data_received(data[room:])

    def _check_count(self) -> bool:
        if self._header_count > self.max_headers and not self.transport.is_closing():
            self._refuse(HEADERS_TOO_LARGE, "request with more than %d headers", self.max_headers)
            return True
        return False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_done = False
        self._header_count = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count <= self.max_headers:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._header_count > self.max_headers:
            return  # refused in data_received once the parser returns
        self._head_done = True
        self._cancel_head_timer()
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and not cycle.response_started:  # not an upgrade
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[DIRECT_EXTENSION] = DirectBody(cycle, self.transport)

    # A refused request has no cycle: the parser's remaining callbacks for it are ignored.
    def on_body(self, body: bytes) -> None:
        if self._header_count <= self.max_headers:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._header_count <= self.max_headers:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            # The next request's head gets its own deadline (uvicorn's keep-alive timer still closes a
            # connection that stays silent; this one closes one that trickles).
            self._head_bytes = 0
            self._head_done = False
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._head_done or self.transport.is_closing():
            return
        if self._head_bytes == 0:
            self.transport.close()  # nothing was asked: nobody to answer
            return
        self._refuse(HEAD_TIMEOUT, "request head not received within %.0f s", self.head_timeout)

    def _refuse(self, answer: bytes, why: str, *args: object) -> None:
        client = self.client[0] if self.client else "?"
        _warning.warn("closing an HTTP connection from %s: " + why, client, *(args or (self.max_head_bytes,)))
        self._cancel_head_timer()
        self.transport.write(answer)
        self.transport.close()


def configure(head_timeout: float, max_head_bytes: int, max_headers: int) -> type[GuardedHttpToolsProtocol]:
    """A protocol class carrying these limits, for ``uvicorn.Config(http=...)``."""
    return type(
        "ConfiguredHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"head_timeout": head_timeout, "max_head_bytes": max_head_bytes, "max_headers": max_headers},
    )
