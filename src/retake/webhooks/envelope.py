"""Event envelopes and their signatures: ``{id, type, created_at, data}`` signed as Stripe-style
``Retake-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``.

The HMAC key is the whole secret string (``whsec_…``) as UTF-8, so a receiver passes what it was shown.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from typing import Any

from retake.store.types import iso, utcnow

EVENT_TYPES = (
    "ping",
    "chat.message",
    "tip.received",
    "trade.own_token",
    "follower.new",
    "stream.live",
    "stream.offline",
    "encoder.disconnected",
    "operator.warning",
    "operator.shutdown",
    "verification.completed",
    "clip.created",
    "raid.outgoing",
    "raid.incoming",
)
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def new_event_id() -> str:
    return "evt_" + uuid.uuid4().hex


def envelope(event_type: str, data: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or new_event_id(), "type": event_type, "created_at": iso(utcnow()), "data": data}


def encode(body: dict[str, Any]) -> str:
    """Compact JSON: these exact bytes are signed and sent, on the first attempt and every retry."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def signature(secret: str, timestamp: int, raw_body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw_body, hashlib.sha256)
    return mac.hexdigest()


def signature_header(secret: str, timestamp: int, raw_body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, raw_body)}"
