"""For agents that receive webhooks: check a delivery's ``Retake-Signature`` before trusting it.

    from retake.agent.webhooks import verify

    if not verify(secret, request.headers["Retake-Signature"], raw_body):
        return 400

The header is ``t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``; the key is the whole secret
(``whsec_…``) as shown by ``PUT /api/v1/agent/webhook``. Pass the body exactly as received (bytes), before any
JSON parsing. De-duplicate on ``Retake-Event-Id``: a delivery can arrive twice after a crash or a timeout.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from retake.agent.calls import API, Call
from retake.agent.types import JSONObject

TOLERANCE_SECONDS = 300


def verify(
    secret: str, header: str | None, body: bytes | str, tolerance: float = TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """True if ``header`` signs ``body`` with ``secret`` and its timestamp is within ``tolerance`` seconds."""
    if not header or not secret:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    raw = body.encode() if isinstance(body, str) else body
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, c) for c in candidates)


# -- calls (API.md "Push to agents"), executed by RetakeClient / AsyncRetakeClient -------------------------


def set_webhook(url: str, events: list[str] | None = None) -> Call[JSONObject]:
    body: JSONObject = {"url": url}
    if events is not None:
        body["events"] = events
    return Call("PUT", f"{API}/agent/webhook", json=body, auth=True)


def show_webhook() -> Call[JSONObject]:
    return Call("GET", f"{API}/agent/webhook", auth=True)


def delete_webhook() -> Call[JSONObject]:
    return Call("DELETE", f"{API}/agent/webhook", auth=True)


def test_webhook() -> Call[JSONObject]:
    return Call("POST", f"{API}/agent/webhook/test", auth=True)


def webhook_deliveries(limit: int | None = None) -> Call[JSONObject]:
    params: dict[str, str | int] = {} if limit is None else {"limit": limit}
    return Call("GET", f"{API}/agent/webhook/deliveries", params=params, auth=True)
