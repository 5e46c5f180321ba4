"""Request admission: a request reaches the app only once its whole body has arrived, within a deadline.

Before, the app was called as soon as the headers were in, and the in-flight limit (``server/overload.py``)
counted a request while it waited for its body: 300 sockets that sent ``Content-Length: 1000`` and never the
body held every slot, and every API and page request was answered 503 for as long as they stayed open.

``RequestAdmission`` (outside the in-flight limit) now

- refuses a declared ``Content-Length`` over ``max_body_bytes`` at once, and any body, chunked or not, as soon
  as more than that has arrived: 413 ``payload_too_large``;
- gives the body ``request_timeout_seconds`` plus one second per ``min_body_rate`` bytes received (a slow but
  steady upload keeps going, a stalled one does not): 408 ``request_timeout`` and the connection closed;
- answers JSON nested deeper than ``max_json_depth`` with 400 ``invalid_json`` before any parser recurses
  into it (Python's parser raises RecursionError near 1,000 levels, which surfaced as a 500);
- then calls the app with the buffered body. The request head has its deadline and size limits in
  ``server/http_protocol.py``.
"""

from __future__ import annotations

import asyncio
import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retake.config import Settings

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


async def send_error(send: Send, status: int, message: str, code: str, *, close: bool = False) -> None:
    body = json.dumps({"error": message, "code": code}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:  # the rest of the request is not read: the connection cannot carry another one
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def too_deep(body: bytes, limit: int) -> bool:
    """Whether the brackets of ``body`` (outside strings) nest deeper than ``limit``. Each pass removes the
    innermost pairs everywhere at C speed, so a body costs at most ``limit`` scans, and nearly every body
    costs none: fewer brackets than ``limit`` cannot nest deeper."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    if b'"' in body:
        body = _STRING.sub(b"", body)
    shape = body.translate(None, _NOT_BRACKETS)
    for _ in range(limit):
        shorter = shape.replace(b"[]", b"").replace(b"{}", b"")
        if not shorter:
            return False
        if len(shorter) == len(shape):  # unbalanced: invalid JSON, deep only if many openers stay unclosed
            return shape.count(b"[") + shape.count(b"{") > limit
        shape = shorter
    return True


def _json_candidate(scope: Scope) -> bool:
    """Bodies FastAPI would parse as JSON: a JSON content type, or none at all (``strict_content_type=False``),
    and the access-token lookup in ``api/deps.py`` reads the body the same way."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return b"json" in value.lower()
    return True


class RequestAdmission:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_bytes = settings.max_body_bytes
        self.timeout = settings.request_timeout_seconds
        self.min_rate = float(settings.min_body_rate)
        self.max_depth = settings.max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # A NUL in a path or query parameter would reach PostgreSQL, which refuses it: answer 400 here.
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await send_error(send, 400, "the URL must not contain NUL characters", "invalid_characters")
            return
        expects_body = False
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await send_error(send, 400, "Content-Length is not a number", "bad_request", close=True)
                    return
                if length > self.max_bytes:
                    await send_error(send, 413, "request body is too large", "payload_too_large", close=True)
                    return
                expects_body = expects_body or length > 0
            elif name == b"transfer-encoding":
                expects_body = True
        if not expects_body:
            await self.app(scope, receive, send)
            return
        body = await self._read_body(receive, send)
        if body is None:
            return
        if scope["method"] in _BODY_METHODS and _json_candidate(scope) and too_deep(body, self.max_depth):
            await send_error(send, 400, f"request body is nested deeper than {self.max_depth}", "invalid_json")
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once the request has been answered (or its client has gone)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        chunks: list[bytes] = []
        received = 0
        while True:
            deadline = started + self.timeout + received / self.min_rate
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                await send_error(send, 408, "the request body was not received in time", "request_timeout", close=True)
                return None
            if message["type"] != "http.request":
                return None  # http.disconnect: nobody left to answer
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                await send_error(send, 413, "request body is too large", "payload_too_large", close=True)
                return None
            if chunk:
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body as one message, then the server's own ``receive`` (so a client's disconnect is still seen)."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
