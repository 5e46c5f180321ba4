"""What the outbox hands around: the tables, the retry policy, a leased delivery and the outcome of its POST."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table

from retake.store.tables import WebhookAttempt, WebhookDelivery, WebhookEndpoint

ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
DELIVERIES = cast(Table, WebhookDelivery.__table__)
ATTEMPTS = cast(Table, WebhookAttempt.__table__)


@dataclass(frozen=True)
class RetryPolicy:
    backoff_base_seconds: float = 5.0
    backoff_max_seconds: float = 3600.0
    retry_seconds: float = 24 * 3600.0
    disable_after_seconds: float = 3 * 24 * 3600.0
    lease_seconds: float = 30.0

    def backoff(self, attempts: int) -> float:
        return float(min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** max(0, attempts - 1)))


@dataclass(frozen=True)
class Claimed:
    """A leased delivery with what sending it needs (read in the claiming transaction)."""

    id: int
    endpoint_id: int
    user_id: str
    event_id: str
    type: str
    body: str
    attempt: int
    url: str
    secret: str


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None
    latency_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def retryable(self) -> bool:
        """Timeouts, connection errors, 5xx and 429 are retried; other answers (4xx, redirects) are final."""
        return self.status_code is None or self.status_code >= 500 or self.status_code == 429
