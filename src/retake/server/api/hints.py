"""Next-step hints that name HTTP calls. Services say what is wrong ("no active session"); only the HTTP edge
knows which request fixes it, so routes add that here and the answer reads as API.md documents it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from retake.errors import RetakeError

START_STREAM = "call POST /api/v1/agent/stream/start first"
PREPARE_VERIFY = "call POST /api/v1/agent/prepare-verify first"
REQUEST_NONCE = "call POST /api/v1/auth/nonce first"


@contextmanager
def hint(code: str, next_step: str) -> Iterator[None]:
    """Re-raise a service error with ``code`` as ``"<its message>: <next_step>"`` (same class, code and status)."""
    try:
        yield
    except RetakeError as exc:
        if exc.code != code:
            raise
        raise type(exc)(f"{exc.message}: {next_step}", code=exc.code, retry_after=exc.retry_after) from exc
