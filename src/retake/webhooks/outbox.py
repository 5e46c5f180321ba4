"""The webhook tables: endpoints, the delivery outbox, the attempt log, and the claims that make each delivery
happen once across nodes.

A delivery is attempted only when it is the oldest pending row of its endpoint (so events reach a receiver in
order) and nobody holds a lease on it. Claiming sets ``lease_until``/``lease_owner`` in a short transaction; on
PostgreSQL the candidate rows are read ``FOR UPDATE SKIP LOCKED``, so two nodes claiming at once never wait for
or take the same row. SQLite has one writer at a time, so the conditional ``UPDATE`` alone decides. A node that
dies holding a lease leaves it to expire; the row is then claimed again with the same event id.

The worker that finishes a delivery leases the endpoint's next row in the same transaction, so a busy endpoint
is drained by one lane without a claim round per event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from retake.store.tables import Agent, User, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from retake.store.types import utcnow

BATCH = 20  # rows of one endpoint leased (and POSTed in order) per claim


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


def _attempt(claimed: Claimed, outcome: Outcome, now: datetime) -> WebhookAttempt:
    return WebhookAttempt(
        delivery_id=claimed.id,
        user_id=claimed.user_id,
        event_id=claimed.event_id,
        type=claimed.type,
        attempt=claimed.attempt,
        status_code=outcome.status_code,
        error=outcome.error,
        latency_ms=outcome.latency_ms,
        at=now,
    )


class Outbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialect: str, policy: RetryPolicy) -> None:
        self._sessions = sessions
        self._skip_locked = dialect == "postgresql"
        self.policy = policy

    # -- endpoints -----------------------------------------------------------------------------------------

    async def put_endpoint(self, user_id: str, url: str, events: list[str] | None, secret: str) -> WebhookEndpoint:
        """Create or replace the agent's webhook: a new secret, enabled again, health reset."""
        async with self._sessions() as db:
            endpoint = await db.scalar(select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id))
            if endpoint is None:
                endpoint = WebhookEndpoint(user_id=user_id, created_at=utcnow())
                db.add(endpoint)
            endpoint.url, endpoint.events, endpoint.secret = url, events, secret
            endpoint.enabled, endpoint.failing_since, endpoint.disabled_at = True, None, None
            await db.commit()
            return endpoint

    async def endpoint(self, user_id: str) -> WebhookEndpoint | None:
        async with self._sessions() as db:
            found: WebhookEndpoint | None = await db.scalar(
                select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id)
            )
            return found

    async def delete_endpoint(self, user_id: str) -> bool:
        async with self._sessions() as db:
            result = await db.execute(delete(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id))
            await db.commit()
        return bool(getattr(result, "rowcount", 0))

    async def enqueue(self, user_id: str, event_type: str, event_id: str, body: str) -> int | None:
        """One outbox row per enabled webhook of the agent that wants ``event_type`` (a ``ping`` always), in one
        transaction; the id of the row written, if any."""
        async with self._sessions() as db:
            endpoints = await db.scalars(
                select(WebhookEndpoint).where(WebhookEndpoint.user_id == user_id, WebhookEndpoint.enabled.is_(True))
            )
            now = utcnow()
            rows = [
                WebhookDelivery(
                    endpoint_id=e.id,
                    user_id=user_id,
                    event_id=event_id,
                    type=event_type,
                    body=body,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now,
                    created_at=now,
                )
                for e in endpoints
                if e.events is None or event_type in e.events or event_type == "ping"
            ]
            if not rows:
                return None
            db.add_all(rows)
            await db.commit()
            return rows[-1].id

    async def attempts(self, user_id: str, limit: int) -> list[WebhookAttempt]:
        async with self._sessions() as db:
            rows = await db.scalars(
                select(WebhookAttempt)
                .where(WebhookAttempt.user_id == user_id)
                .order_by(WebhookAttempt.id.desc())
                .limit(limit)
            )
            return list(rows)

    # -- lookups for mapping.agent_events -----------------------------------------------------------------

    async def agent_users(self, user_ids: set[str]) -> set[str]:
        async with self._sessions() as db:
            return set(await db.scalars(select(Agent.user_id).where(Agent.user_id.in_(user_ids))))

    async def agents_named(self, name_keys: set[str]) -> dict[str, str]:
        async with self._sessions() as db:
            rows = await db.execute(
                select(User.username_key, User.id)
                .join(Agent, Agent.user_id == User.id)
                .where(User.username_key.in_(name_keys))
            )
            return {key: user_id for key, user_id in rows.all()}

    async def agent_of_token(self, token_address: str) -> str | None:
        if not token_address:
            return None
        async with self._sessions() as db:
            found: str | None = await db.scalar(select(Agent.user_id).where(Agent.token_address == token_address))
            return found

    # -- claims --------------------------------------------------------------------------------------------

    async def claim(self, owner: str, limit: int) -> list[list[Claimed]]:
        """Lease up to ``limit`` due endpoint heads (the oldest pending row of each enabled endpoint), each with
        the rows queued behind it (up to ``BATCH``): one batch per endpoint, in order."""
        now = utcnow()
        older = aliased(WebhookDelivery)
        head = (
            select(func.min(older.id))
            .where(older.endpoint_id == WebhookDelivery.endpoint_id, older.status == "pending")
            .scalar_subquery()
        )
        query = (
            select(WebhookDelivery.id, WebhookDelivery.endpoint_id)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.status == "pending",
                WebhookEndpoint.enabled.is_(True),
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now),
                WebhookDelivery.id == head,
            )
            .order_by(WebhookDelivery.id)
            .limit(limit)
        )
        if self._skip_locked:
            query = query.with_for_update(of=WebhookDelivery, skip_locked=True)
        async with self._sessions() as db:
            heads = (await db.execute(query)).all()
            batches = [await self._lease_batch(db, endpoint_id, head_id, owner, now) for head_id, endpoint_id in heads]
            await db.commit()
        return [b for b in batches if b]

    async def _lease_batch(
        self, db: AsyncSession, endpoint_id: int, head_id: int, owner: str, now: datetime
    ) -> list[Claimed]:
        """Lease the head and the rows behind it if they are still free (the conditional UPDATE is the claim on
        SQLite; on PostgreSQL the head row is already locked by the claiming SELECT). Rows behind a head are
        never leased by anyone else: only a head can be claimed."""
        free = or_(WebhookDelivery.lease_until.is_(None), WebhookDelivery.lease_until < now)
        following = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
            .where(WebhookDelivery.id >= head_id)
            .order_by(WebhookDelivery.id)
            .limit(BATCH)
        )
        ids = list(await db.scalars(following))
        if not ids or ids[0] != head_id:
            return []
        result = await db.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(ids), WebhookDelivery.status == "pending", free)
            .values(
                lease_until=now + timedelta(seconds=self.policy.lease_seconds),
                lease_owner=owner,
                attempts=WebhookDelivery.attempts + 1,
            )
        )
        if not getattr(result, "rowcount", 0):
            return []
        rows = (
            await db.execute(
                select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret)
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .where(WebhookDelivery.id.in_(ids), WebhookDelivery.lease_owner == owner)
                .order_by(WebhookDelivery.id)
            )
        ).all()
        return [
            Claimed(d.id, d.endpoint_id, d.user_id, d.event_id, d.type, d.body, d.attempts, u, s) for d, u, s in rows
        ]

    async def finish(
        self, batch: list[Claimed], outcomes: list[Outcome], owner: str, *, take_next: bool
    ) -> list[Claimed]:
        """Record the attempts of a batch (``outcomes`` may be shorter: the lane stopped at a failure), settle the
        rows and the endpoint's health, hand back the rows not attempted, and lease the next batch if asked and
        the endpoint is free to go on. One transaction per batch."""
        now = utcnow()
        async with self._sessions() as db:
            # The endpoint is locked first, as DELETE /agent/webhook does (its cascade), so the two cannot deadlock;
            # FOR NO KEY UPDATE, so new outbox rows (their foreign key) are not held up meanwhile.
            endpoint = await db.get(WebhookEndpoint, batch[0].endpoint_id, with_for_update={"key_share": True})
            rows = {
                r.id: r
                for r in await db.scalars(select(WebhookDelivery).where(WebhookDelivery.id.in_([c.id for c in batch])))
            }
            if endpoint is None:  # the webhook was deleted meanwhile, its rows with it
                return []
            moved_on = True
            for claimed, outcome in zip(batch, outcomes, strict=False):
                row = rows.get(claimed.id)
                if row is None:
                    continue
                db.add(_attempt(claimed, outcome, now))
                row.lease_until = row.lease_owner = None
                moved_on = self._settle(endpoint, row, outcome, now)
                if not moved_on:
                    break
            for claimed in batch[len(outcomes) :]:  # leased but never sent: free again, the attempt not counted
                row = rows.get(claimed.id)
                if row is not None and row.lease_owner == owner:
                    row.lease_until = row.lease_owner = None
                    row.attempts -= 1
            following: list[Claimed] = []
            if moved_on and len(outcomes) == len(batch) and take_next and endpoint.enabled:
                await db.flush()
                following = await self._next_batch(db, endpoint.id, owner, now)
            await db.commit()
        return following

    def _settle(self, endpoint: WebhookEndpoint, row: WebhookDelivery, outcome: Outcome, now: datetime) -> bool:
        policy = self.policy
        if outcome.ok:
            row.status, row.finished_at = "delivered", now
            endpoint.last_success_at, endpoint.failing_since = now, None
            return True
        endpoint.last_failure_at = now
        endpoint.failing_since = endpoint.failing_since or now
        if (now - endpoint.failing_since).total_seconds() >= policy.disable_after_seconds:
            endpoint.enabled, endpoint.disabled_at = False, now
        expired = (now - row.created_at).total_seconds() >= policy.retry_seconds
        if not outcome.retryable or expired:
            row.status, row.finished_at = ("expired" if outcome.retryable else "failed"), now
            return True
        row.next_attempt_at = now + timedelta(seconds=policy.backoff(row.attempts))
        return False

    async def _next_batch(self, db: AsyncSession, endpoint_id: int, owner: str, now: datetime) -> list[Claimed]:
        query = (
            select(WebhookDelivery.id, WebhookDelivery.next_attempt_at)
            .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
            .order_by(WebhookDelivery.id)
            .limit(1)
        )
        if self._skip_locked:
            query = query.with_for_update(skip_locked=True)
        head = (await db.execute(query)).first()
        if head is None or head.next_attempt_at > now:
            return []
        return await self._lease_batch(db, endpoint_id, head.id, owner, now)

    async def release(self, owner: str) -> None:
        """A node stopping cleanly hands its unstarted leases back at once (instead of at their expiry)."""
        async with self._sessions() as db:
            await db.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.lease_owner == owner, WebhookDelivery.status == "pending")
                .values(lease_until=None, lease_owner=None)
            )
            await db.commit()
