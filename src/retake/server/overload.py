"""Load shedding: answer 503 ``overloaded`` with ``Retry-After`` early instead of queueing until clients time out.

Without it, a node offered more than it can serve (1,000 agents polling comments on two cores, see
docs/benchmarks.md) let requests pile up waiting for a pooled database connection; after 30 s they failed with
a 500 and a traceback each, long after the client had given up. Now:

- ``InflightLimitMiddleware`` admits at most ``Settings.max_inflight_requests`` HTTP requests at a time and
  answers the rest at once, before any work is done for them;
- a request that still waits longer than ``Settings.db_pool_timeout_seconds`` for a database connection is
  answered 503 by ``server/errors.py`` (``store/availability.py`` tells those errors apart).

Both log through ``ThrottledWarning``: one WARNING line, no traceback, at most one every few seconds.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1  # the agent SDK polls every 3 s: one second later is already a lighter moment

# Never counted: Socket.IO (its long-polling requests hang for up to 25 s by design), playback (HTTP-FLV is an
# endless response, LL-HLS blocking playlist reloads wait for the next part), and what monitoring must reach
# on an overloaded node.
EXEMPT_PREFIXES = ("/socket.io", "/live/", "/health", "/ready", "/metrics")


class ThrottledWarning:
    """One WARNING line for the first occurrence, then at most one per ``every`` seconds with the count since
    the last line: an overloaded node must not also drown its log."""

    def __init__(self, logger: logging.Logger, every: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self._log = logger
        self._every = every
        self._clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def warn(self, message: str, *args: object) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            self._suppressed += 1
            return
        more = f" (and {self._suppressed} more in the last {now - self._last:.0f} s)" if self._last else ""
        self._last, self._suppressed = now, 0
        self._log.warning(message + more, *args)


def overloaded_body(message: str, code: str = "overloaded") -> bytes:
    return json.dumps({"error": message, "code": code}).encode()


def _loopback(address: str) -> bool:
    return address.startswith("127.") or address == "::1"


class InflightLimitMiddleware:
    """Pure ASGI: counts HTTP requests from the start of the call until the app returns (the response is fully
    sent by then). Over ``limit`` the request is answered 503 without reaching the app; 0 turns it off.

    ``per_ip`` also bounds the requests of one client address (``scope["client"]``, which
    ``server/client_address.py`` has resolved): past it that address is answered 429 ``rate_limited``, so one
    client cannot take every slot of the node. 0 turns it off. Loopback peers are not limited per address:
    they are this machine (a local reverse proxy not listed in RETAKE_TRUSTED_PROXIES, a load generator), where
    one address stands for many clients."""

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        shed: Counter | None = None,
        in_flight: Gauge | None = None,
        per_ip: int = 0,
    ) -> None:
        self.app = app
        self.limit = limit
        self.per_ip = per_ip
        self.in_flight = 0
        self.by_address: dict[str, int] = {}
        self._address_warning = ThrottledWarning(log)
        self._address_body = overloaded_body(
            "too many requests from this address at once; retry after the time in Retry-After", "rate_limited"
        )
        self._shed = shed
        if in_flight is not None:  # read when /metrics is scraped: nothing to do per request
            in_flight.set_function(lambda: self.in_flight)
        self._warning = ThrottledWarning(log)
        self._body = overloaded_body("the server is overloaded; retry after the time in Retry-After")

    @property
    def full(self) -> bool:
        return 0 < self.limit <= self.in_flight

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        if self.full:
            if self._shed is not None:
                self._shed.inc()
            self._warning.warn("overloaded: %d requests in flight, answering 503", self.in_flight)
            await self._refuse(send, 503, self._body)
            return
        client = scope.get("client")
        address = client[0] if client else ""
        mine = self.by_address.get(address, 0)
        if 0 < self.per_ip <= mine and not _loopback(address):
            self._address_warning.warn("%d requests in flight from %s, answering 429", mine, address)
            await self._refuse(send, 429, self._address_body)
            return
        self.in_flight += 1
        self.by_address[address] = mine + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            left = self.by_address[address] - 1
            if left:
                self.by_address[address] = left
            else:  # bounded by the addresses with a request in progress, not by every address ever seen
                del self.by_address[address]

    async def _refuse(self, send: Send, status: int, body: bytes) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
