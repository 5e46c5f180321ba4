"""The webhook tables: endpoints, the delivery outbox, the attempt log, and the claims that make each delivery
happen once across nodes.

A delivery is attempted only when it is the oldest pending row of its endpoint (so events reach a receiver in
order) and nobody holds a lease on it. Claiming sets ``lease_until``/``lease_owner`` in a short transaction; on
PostgreSQL the candidate rows are read ``FOR UPDATE SKIP LOCKED``, so two nodes claiming at once never wait for
or take the same row. SQLite has one writer at a time, so the conditional ``UPDATE`` alone decides. A node that
dies holding a lease leaves it to expire; the row is then claimed again with the same event id.

The worker that finishes a delivery leases the endpoint's next row in the same transaction, so a busy endpoint
is drained by one lane without a claim round per event.

Writes are batched: ``enqueue`` calls made while an outbox write is in flight are written together in the next
transaction (group commit; each call still returns only once its row is committed), and a finished batch's
attempts and settlements go out as a few multi-row statements. The hot paths use Core statements on the tables
(no ORM objects, no identity map): they run several times per event.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from retake.store.tables import Agent, User, WebhookAttempt, WebhookEndpoint
from retake.store.types import utcnow
from retake.store.writer import run_write
from retake.webhooks.handoff import Taker, lease_new
from retake.webhooks.rows import ATTEMPTS, DELIVERIES, ENDPOINTS, Claimed, Outcome, RetryPolicy

__all__ = ["BATCH", "Claimed", "Outbox", "Outcome", "RetryPolicy"]

BATCH = 20  # rows of one endpoint leased (and POSTed in order) per claim
SUCCESS_GRANULARITY = 1.0  # seconds: how stale a healthy endpoint's last_success_at may be


def _attempt(claimed: Claimed, outcome: Outcome, now: datetime) -> dict[str, Any]:
    return {
        "delivery_id": claimed.id,
        "user_id": claimed.user_id,
        "event_id": claimed.event_id,
        "type": claimed.type,
        "attempt": claimed.attempt,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "latency_ms": outcome.latency_ms,
        "at": now,
    }


def _row(endpoint_id: int, q: _Queued, now: datetime) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "user_id": q.user_id,
        "event_id": q.event_id,
        "type": q.type,
        "body": q.body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


@dataclass
class _Queued:
    user_id: str
    type: str
    event_id: str
    body: str
    done: asyncio.Future[int | None] = field(repr=False)


@dataclass
class _Settled:
    """What a finished attempt leaves on its row (every field written, so one executemany covers all rows)."""

    id: int
    status: str = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = None
    finished_at: datetime | None = None

    def params(self) -> dict[str, Any]:
        return {
            "b_id": self.id,
            "b_status": self.status,
            "b_attempts": self.attempts,
            "b_next": self.next_attempt_at,
            "b_finished": self.finished_at,
        }


class Outbox:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], dialect: str, policy: RetryPolicy) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]
        self._skip_locked = dialect == "postgresql"
        self.policy = policy
        self._queued: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None
        self.taker: Taker | None = None  # this node's delivery worker, once started (the admin CLI has none)

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
        """One outbox row per enabled webhook of the agent that wants ``event_type`` (a ``ping`` always); returns
        once the row is committed, with its id (None when no webhook wants it). Calls arriving while a write is
        in flight join the next one: one transaction for many events."""
        done: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queued.append(_Queued(user_id, event_type, event_id, body, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued(), name="webhook-outbox-writer")
        return await asyncio.shield(done)  # a caller that gives up does not cancel the others' write

    async def _write_queued(self) -> None:
        await asyncio.sleep(0)  # the events published in this loop turn join the first batch
        while self._queued:
            batch, self._queued = self._queued, []
            try:
                ids, leased, left = await self._insert(batch)
            except Exception as exc:  # each caller sees the failure (the bus logs it), the next batch goes on
                for queued in batch:
                    if not queued.done.done():
                        queued.done.set_exception(exc)
                continue
            for queued, row_id in zip(batch, ids, strict=True):
                if not queued.done.done():
                    queued.done.set_result(row_id)
            if self.taker is not None:
                for lane in leased:
                    self.taker.take(lane)
                if left:  # rows queued behind a head someone holds (or one coming due): a claim may find them
                    self.taker.wake()

    async def _insert(self, batch: list[_Queued]) -> tuple[list[int | None], list[list[Claimed]], bool]:
        """Write the batch's rows; lease those this node's worker can send at once (handoff.py). Returns the
        row id per queued event, the leased batches, and whether any row was left for a claim."""
        now = utcnow()
        taker = self.taker if self.taker is not None and self.taker.accepting() else None
        owner = taker.owner if taker is not None else None
        return await run_write(self._engine, lambda conn: self._insert_rows(conn, batch, owner, now))

    def _insert_rows(
        self, db: Connection, batch: list[_Queued], owner: str | None, now: datetime
    ) -> tuple[list[int | None], list[list[Claimed]], bool]:
        e = ENDPOINTS
        query = (
            select(e.c.id, e.c.user_id, e.c.events, e.c.url, e.c.secret)
            .where(e.c.user_id.in_({q.user_id for q in batch}), e.c.enabled.is_(True))
            .order_by(e.c.id)
        )
        if owner is not None and self._skip_locked:  # hold the endpoints while deciding who sends (handoff.py)
            query = query.with_for_update(key_share=True)
        wanted: dict[str, list[Any]] = defaultdict(list)
        for endpoint in db.execute(query).all():
            wanted[endpoint.user_id].append(endpoint)
        rows: list[dict[str, Any]] = []
        owners: list[tuple[int, Any]] = []  # the batch index and endpoint each row belongs to
        for index, q in enumerate(batch):
            for endpoint in wanted.get(q.user_id, ()):
                if endpoint.events is None or q.type in endpoint.events or q.type == "ping":
                    rows.append(_row(endpoint.id, q, now))
                    owners.append((index, endpoint))
        result: list[int | None] = [None] * len(batch)
        if not rows:
            return result, [], False
        # One multi-row INSERT; ids come back in row order, so each endpoint's rows stay in event order.
        ids = db.scalars(insert(DELIVERIES).returning(DELIVERIES.c.id, sort_by_parameter_order=True), rows)
        new: list[Claimed] = []  # as the first attempt carries them, if they are leased here
        for (index, endpoint), row_id in zip(owners, ids.all(), strict=True):
            result[index], q = row_id, batch[index]
            url, secret = endpoint.url, endpoint.secret
            new.append(Claimed(row_id, endpoint.id, q.user_id, q.event_id, q.type, q.body, 1, url, secret))
        leased: list[list[Claimed]] = []
        if owner is not None:
            leased = lease_new(db, new, owner, now, self.policy.lease_seconds)
        return result, leased, sum(map(len, leased)) < len(new)

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
        d, older = DELIVERIES, DELIVERIES.alias("older")
        head = (
            select(func.min(older.c.id))
            .where(older.c.endpoint_id == d.c.endpoint_id, older.c.status == "pending")
            .scalar_subquery()
        )
        query = (
            select(d.c.id, d.c.endpoint_id)
            .join(ENDPOINTS, ENDPOINTS.c.id == d.c.endpoint_id)
            .where(
                d.c.status == "pending",
                ENDPOINTS.c.enabled.is_(True),
                d.c.next_attempt_at <= now,
                or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                d.c.id == head,
            )
            .order_by(d.c.id)
            .limit(limit)
        )
        if self._skip_locked:
            query = query.with_for_update(of=d, skip_locked=True)

        def lease_heads(db: Connection) -> list[list[Claimed]]:
            heads = db.execute(query).all()
            return [self._lease_batch(db, endpoint_id, head_id, owner, now) for head_id, endpoint_id in heads]

        return [b for b in await run_write(self._engine, lease_heads) if b]

    def _lease_batch(self, db: Connection, endpoint_id: int, head_id: int, owner: str, now: datetime) -> list[Claimed]:
        """Lease the head and the rows behind it if they are still free (the conditional UPDATE is the claim on
        SQLite; on PostgreSQL the head row is already locked by the claiming SELECT). Rows behind a head are
        never leased by anyone else: only a head can be claimed."""
        d = DELIVERIES
        free = or_(d.c.lease_until.is_(None), d.c.lease_until < now)
        following = (
            select(d.c.id)
            .where(d.c.endpoint_id == endpoint_id, d.c.status == "pending", d.c.id >= head_id)
            .order_by(d.c.id)
            .limit(BATCH)
        )
        ids = list(db.scalars(following))
        if not ids or ids[0] != head_id:
            return []
        leased = db.execute(
            update(d)
            .where(d.c.id.in_(ids), d.c.status == "pending", free)
            .values(
                lease_until=now + timedelta(seconds=self.policy.lease_seconds),
                lease_owner=owner,
                attempts=d.c.attempts + 1,
            )
        )
        if not getattr(leased, "rowcount", 0):
            return []
        rows = db.execute(
            select(
                d.c.id,
                d.c.endpoint_id,
                d.c.user_id,
                d.c.event_id,
                d.c.type,
                d.c.body,
                d.c.attempts,
                ENDPOINTS.c.url,
                ENDPOINTS.c.secret,
            )
            .join(ENDPOINTS, ENDPOINTS.c.id == d.c.endpoint_id)
            .where(d.c.id.in_(ids), d.c.lease_owner == owner)
            .order_by(d.c.id)
        )
        return [Claimed(*row) for row in rows.all()]

    async def finish(
        self, batch: list[Claimed], outcomes: list[Outcome], owner: str, *, take_next: bool
    ) -> list[Claimed]:
        """Record the attempts of a batch (``outcomes`` may be shorter: the lane stopped at a failure), settle the
        rows and the endpoint's health, hand back the rows not attempted, and lease the next batch if asked and
        the endpoint is free to go on. One transaction per batch, a few multi-row statements."""
        now = utcnow()
        return await run_write(self._engine, lambda db: self._finish_rows(db, batch, outcomes, owner, take_next, now))

    def _finish_rows(
        self, db: Connection, batch: list[Claimed], outcomes: list[Outcome], owner: str, take_next: bool, now: datetime
    ) -> list[Claimed]:
        e, d = ENDPOINTS, DELIVERIES
        # The endpoint is locked first, as DELETE /agent/webhook does (its cascade), so the two cannot deadlock;
        # FOR NO KEY UPDATE, so new outbox rows (their foreign key) are not held up meanwhile. The batch's rows
        # come in the same statement (outer join: an endpoint whose rows were all deleted still answers).
        ids = [c.id for c in batch]
        joined = e.outerjoin(d, and_(d.c.endpoint_id == e.c.id, d.c.id.in_(ids)))
        locked = (
            select(e.c.enabled, e.c.failing_since, e.c.last_success_at, d.c.id, d.c.attempts, d.c.created_at)
            .add_columns(d.c.lease_owner)
            .select_from(joined)
            .where(e.c.id == batch[0].endpoint_id)
        )
        found = db.execute(locked.with_for_update(of=e, key_share=True)).all()
        if not found:  # the webhook was deleted meanwhile, its rows with it
            return []
        endpoint = found[0]
        current = {row.id: row for row in found if row.id is not None}
        health = _Health(endpoint.enabled, endpoint.failing_since, endpoint.last_success_at)
        settled: list[_Settled] = []
        attempts: list[dict[str, Any]] = []
        moved_on = True
        for claimed, outcome in zip(batch, outcomes, strict=False):
            row = current.get(claimed.id)
            if row is None:
                continue
            attempts.append(_attempt(claimed, outcome, now))
            settled.append(self._settle(health, row.id, row.attempts, row.created_at, outcome, now))
            moved_on = settled[-1].status != "pending"
            if not moved_on:
                break
        for claimed in batch[len(outcomes) :]:  # leased but never sent: free again, the attempt not counted
            row = current.get(claimed.id)
            if row is not None and row.lease_owner == owner:
                settled.append(_Settled(row.id, "pending", row.attempts - 1, None))
        self._write_settled(db, batch[0].endpoint_id, health, settled, attempts)
        following: list[Claimed] = []
        if moved_on and len(outcomes) == len(batch) and take_next and health.enabled:
            following = self._next_batch(db, batch[0].endpoint_id, owner, now)
        return following

    def _write_settled(
        self,
        db: Connection,
        endpoint_id: int,
        health: _Health,
        settled: list[_Settled],
        attempts: list[dict[str, Any]],
    ) -> None:
        d = DELIVERIES
        if attempts:
            db.execute(insert(ATTEMPTS), attempts)
        if settled:
            # Every settled row gets the same statement (executemany); a row left pending keeps its own
            # next_attempt_at unless a back-off moved it (COALESCE).
            db.execute(
                update(d)
                .where(d.c.id == bindparam("b_id"))
                .values(
                    status=bindparam("b_status"),
                    attempts=bindparam("b_attempts"),
                    next_attempt_at=func.coalesce(
                        bindparam("b_next", type_=d.c.next_attempt_at.type), d.c.next_attempt_at
                    ),
                    finished_at=bindparam("b_finished", type_=d.c.finished_at.type),
                    lease_until=None,
                    lease_owner=None,
                ),
                [s.params() for s in settled],
            )
        if health.changed:
            db.execute(update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint_id).values(**health.values()))

    def _settle(
        self, health: _Health, row_id: int, attempts: int, created_at: datetime, outcome: Outcome, now: datetime
    ) -> _Settled:
        policy = self.policy
        if outcome.ok:
            health.succeeded(now)
            return _Settled(row_id, "delivered", attempts, None, now)
        health.failed(now, policy.disable_after_seconds)
        expired = (now - created_at).total_seconds() >= policy.retry_seconds
        if not outcome.retryable or expired:
            return _Settled(row_id, "expired" if outcome.retryable else "failed", attempts, None, now)
        return _Settled(row_id, "pending", attempts, now + timedelta(seconds=policy.backoff(attempts)))

    def _next_batch(self, db: Connection, endpoint_id: int, owner: str, now: datetime) -> list[Claimed]:
        d = DELIVERIES
        query = (
            select(d.c.id, d.c.next_attempt_at)
            .where(d.c.endpoint_id == endpoint_id, d.c.status == "pending")
            .order_by(d.c.id)
            .limit(1)
        )
        if self._skip_locked:
            query = query.with_for_update(skip_locked=True)
        head = db.execute(query).first()
        if head is None or head.next_attempt_at > now:
            return []
        return self._lease_batch(db, endpoint_id, head.id, owner, now)

    async def release(self, owner: str) -> None:
        """A node stopping cleanly hands its unstarted leases back at once (instead of at their expiry)."""
        async with self._sessions() as db:
            await db.execute(
                update(DELIVERIES)
                .where(DELIVERIES.c.lease_owner == owner, DELIVERIES.c.status == "pending")
                .values(lease_until=None, lease_owner=None)
            )
            await db.commit()


class _Health:
    """The endpoint's health as a batch changes it (written once per batch when it changed)."""

    def __init__(self, enabled: bool, failing_since: datetime | None, last_success_at: datetime | None) -> None:
        self.enabled, self.failing_since = enabled, failing_since
        self._stored_success = last_success_at
        self.last_success_at: datetime | None = None
        self.last_failure_at: datetime | None = None
        self.disabled_at: datetime | None = None
        self.changed = False

    def succeeded(self, now: datetime) -> None:
        # A healthy endpoint's ``last_success_at`` is rewritten at most once a second: at 100 events/s the
        # endpoint row was updated on every delivery only to move that clock by a few milliseconds.
        fresh = self._stored_success is not None and (now - self._stored_success).total_seconds() < SUCCESS_GRANULARITY
        if self.failing_since is None and fresh and not self.changed:
            return
        self.last_success_at, self.failing_since, self.changed = now, None, True

    def failed(self, now: datetime, disable_after_seconds: float) -> None:
        self.last_failure_at, self.changed = now, True
        self.failing_since = self.failing_since or now
        if self.enabled and (now - self.failing_since).total_seconds() >= disable_after_seconds:
            self.enabled, self.disabled_at = False, now

    def values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"failing_since": self.failing_since, "enabled": self.enabled}
        for name in ("last_success_at", "last_failure_at", "disabled_at"):
            if getattr(self, name) is not None:
                values[name] = getattr(self, name)
        return values
