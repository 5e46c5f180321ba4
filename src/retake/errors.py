"""The service-level exception tree. Services raise these; the HTTP and Socket.IO edges translate them
(``server/errors.py``) into ``{"error", "code"}`` bodies with the status each class carries."""

from __future__ import annotations


class RetakeError(Exception):
    status: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.retry_after = retry_after


class ValidationFailed(RetakeError):
    status = 400
    code = "validation_error"


class Unauthorized(RetakeError):
    status = 401
    code = "unauthorized"


class Forbidden(RetakeError):
    status = 403
    code = "forbidden"


class NotFound(RetakeError):
    status = 404
    code = "not_found"


class Conflict(RetakeError):
    status = 409
    code = "conflict"


class PayloadTooLarge(RetakeError):
    status = 413
    code = "payload_too_large"


class UnsupportedMedia(RetakeError):
    status = 415
    code = "unsupported_media_type"


class RateLimited(RetakeError):
    status = 429
    code = "rate_limited"


class UpstreamFailed(RetakeError):
    """A dependency we call (the tweet oEmbed service) failed; not the client's fault."""

    status = 502
    code = "upstream_unavailable"
