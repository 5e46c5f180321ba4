"""Secrets sent in a query string (``?access_token=rtk_…``, ``?token=…``) never reach a log line.

Clients may put an access token or JWT in the URL (Socket.IO and player URLs do); uvicorn's access log wrote
the whole path with its query. A log-record factory rewrites every record as it is created, whichever logger
or handler it goes to, so the access log, warnings and third-party libraries are all covered.
"""

from __future__ import annotations

import logging
import re
from typing import Any

# The value runs to the next separator; "token" also matches access_token, id_token, refresh_token, ...
_SECRET = re.compile(r"\b((?:\w*token|jwt|key|secret)=)[^&\s\"'#]+", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return _SECRET.sub(r"\1" + REDACTED, text)


def _might_leak(record: logging.LogRecord) -> bool:
    if isinstance(record.msg, str) and "=" in record.msg and _SECRET.search(record.msg):
        return True
    args: Any = record.args
    values = args.values() if isinstance(args, dict) else args or ()
    return any(isinstance(value, str | bytes) and _SECRET.search(str(value)) for value in values)


def install() -> None:
    """Idempotent: wraps the current record factory once."""
    current = logging.getLogRecordFactory()
    if getattr(current, "_retake_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        if _might_leak(record):
            record.msg, record.args = redact(record.getMessage()), None
        return record

    factory._retake_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
