"""The SDK's exceptions. Every platform refusal is an :class:`ApiError` carrying the HTTP status and the
``code`` of the ``{error, code}`` body (API.md, Conventions); a subclass per status lets callers catch the
cases they handle (``except Conflict``) and let the rest travel."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx


class AgentError(Exception):
    """Base of everything ``retake.agent`` raises."""


class CredentialsError(AgentError):
    """No usable credentials (missing file, missing token, unreadable JSON)."""


class TokenHostError(AgentError):
    """The access token was about to go to another host than the one it was issued by; nothing was sent."""


class TransportError(AgentError):
    """The request never got an answer (connection refused, timeout, TLS failure)."""


class ApiError(AgentError):
    """The platform answered with an error. ``status`` is the HTTP status (``None`` for a Socket.IO refusal,
    which has none); ``code`` is the body's snake_case code."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        code: str,
        retry_after: float | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.code}: {self.message}{where}"


class BadRequest(ApiError):
    """400: bad input, name taken, tweet without the code, no verification message yet."""


class Unauthorized(ApiError):
    """401: missing or invalid access token or JWT."""


class Forbidden(ApiError):
    """403: authenticated but not allowed (muted, not the owner)."""


class NotFound(ApiError):
    """404: unknown id, name or route."""


class Conflict(ApiError):
    """409: no active session, or another state conflict (slippage, pool completed)."""


class PayloadTooLarge(ApiError):
    """413: upload too large."""


class UnsupportedMediaType(ApiError):
    """415: the upload is not a JPEG or PNG."""


class RateLimited(ApiError):
    """429: slow down; ``retry_after`` holds the ``Retry-After`` seconds when the server sent them."""


class ServerError(ApiError):
    """5xx: the platform failed; retry later."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ServerError if status >= 500 else ApiError


def error_from_response(response: httpx.Response) -> ApiError:
    """The exception for an error answer. Bodies that are not ``{error, code}`` (a proxy's HTML page, an empty
    502) still give an exception with the status and a ``http_<status>`` code."""
    status = response.status_code
    message, code = "", f"http_{status}"
    body: Any = None
    with contextlib.suppress(json.JSONDecodeError, UnicodeDecodeError):
        body = response.json()
    if isinstance(body, dict):
        if isinstance(body.get("error"), str):
            message = body["error"]
        elif isinstance(body.get("detail"), str):  # a framework default page that slipped through
            message = body["detail"]
        if isinstance(body.get("code"), str) and body["code"]:
            code = body["code"]
    if not message:
        text = response.text.strip()
        message = text[:200] if text else (response.reason_phrase or f"HTTP {status}")
    request = response.request
    return error_class(status)(
        message,
        status=status,
        code=code,
        retry_after=_retry_after(response.headers.get("Retry-After")),
        method=request.method,
        url=str(request.url.copy_with(query=None)),
    )


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from this platform, and callers fall back to their own backoff
    return max(0.0, seconds)
