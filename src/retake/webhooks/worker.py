"""The delivery loop: claim due endpoint heads, POST each, settle it, go on with the endpoint's next row.

One lane (task) per endpoint at a time keeps each agent's events in order; lanes for different agents run side
by side up to ``concurrency``. Rows this node writes are usually handed to a lane directly by the outbox
(handoff.py); the loop claims what is left. It sleeps until a row is written behind a busy head or a full worker
frees a lane (``wake``), a retry this node scheduled comes due (a timer per back-off, so retries do not wait for
a poll) or, as a safety net for rows of nodes that stopped before delivering them, ``poll_seconds`` (30 s by
default: an idle node does not wake).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
import uuid
from urllib.parse import urlsplit

import aiohttp

from retake.store.nudges import wait_set
from retake.webhooks.envelope import signature_header
from retake.webhooks.outbox import Claimed, Outbox, Outcome
from retake.webhooks.targets import GuardedResolver, RefusedTarget, check_address

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0
USER_AGENT = "retake-webhooks/1"
MAX_ERROR = 300
STOP_GRACE_SECONDS = TIMEOUT_SECONDS + 1.0
RETRY_MARGIN_SECONDS = 0.05  # the row's back-off is counted from the store's clock a little earlier


class DeliveryWorker:
    def __init__(
        self, outbox: Outbox, *, allow_private: bool, poll_seconds: float = 30.0, concurrency: int = 64
    ) -> None:
        self._outbox = outbox
        self._allow_private = allow_private
        self._poll = poll_seconds
        self._concurrency = concurrency
        self.owner = f"node_{uuid.uuid4().hex[:16]}"  # this process's leases; a restarted node is a new owner
        self._wake = asyncio.Event()
        self._lanes: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._stopping = False
        self._retries: list[float] = []  # loop times at which a retry scheduled here comes due (a heap)
        self._retry_timer: asyncio.TimerHandle | None = None

    def wake(self) -> None:
        self._wake.set()

    # -- the outbox's direct hand-off (handoff.py) ---------------------------------------------------------

    def accepting(self) -> bool:
        return self._task is not None and not self._stopping

    def take(self, batch: list[Claimed]) -> None:
        """A batch this node's outbox wrote and leased to us: its lane starts now, no claim round needed."""
        self._start_lane(batch)

    def _start_lane(self, batch: list[Claimed]) -> None:
        lane = asyncio.create_task(self._lane(batch))
        self._lanes.add(lane)
        lane.add_done_callback(self._lane_done)

    def _retry_scheduled(self, attempt: int) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + self._outbox.policy.backoff(attempt) + RETRY_MARGIN_SECONDS
        heapq.heappush(self._retries, due)
        if self._retries[0] == due:  # the earliest now: re-arm
            self._arm_retry_timer(loop)

    def _arm_retry_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        self._retry_timer = loop.call_at(self._retries[0], self._retry_due) if self._retries else None

    def _retry_due(self) -> None:
        loop = asyncio.get_running_loop()
        while self._retries and self._retries[0] <= loop.time():
            heapq.heappop(self._retries)
        self._arm_retry_timer(loop)
        self._wake.set()

    def start(self) -> None:
        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self._allow_private), limit=self._concurrency)
        self._http = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
            headers={"User-Agent": USER_AGENT},
        )
        self._task = asyncio.create_task(self._run(), name="webhook-deliveries")
        if self._outbox is not None:  # tests drive ``send`` alone, without an outbox
            self._outbox.taker = self

    async def stop(self) -> None:
        """Finish the POSTs in flight (up to the timeout), then hand back leases this node still holds."""
        self._stopping = True
        if self._outbox is not None and self._outbox.taker is self:
            self._outbox.taker = None
        if self._retry_timer is not None:
            self._retry_timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._lanes:
            _done, pending = await asyncio.wait(set(self._lanes), timeout=STOP_GRACE_SECONDS)
            for lane in pending:
                lane.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._outbox.release(self.owner)
        if self._http is not None:
            await self._http.close()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            free = self._concurrency - len(self._lanes)
            claimed: list[list[Claimed]] = []
            if free > 0:
                try:
                    claimed = await self._outbox.claim(self.owner, free)
                except Exception:  # a store hiccup: the next round retries
                    log.exception("claiming webhook deliveries failed")
            for batch in claimed:
                self._start_lane(batch)
            if claimed and len(claimed) == free:
                await asyncio.sleep(0)  # more may be due: claim again once a lane frees up or a row arrives
            await wait_set(self._wake, self._poll)

    def _lane_done(self, lane: asyncio.Task[None]) -> None:
        full = len(self._lanes) >= self._concurrency
        self._lanes.discard(lane)
        # Only a full worker left due rows unclaimed: a lane's own endpoint was drained by ``finish`` (rows due
        # later are found by the poll), so waking on every lane's end was a claim query per delivery for nothing.
        if full:
            self._wake.set()

    async def _lane(self, first: list[Claimed]) -> None:
        """POST one endpoint's batch in order; stop at a failure that will be retried (order), then settle the
        batch and go on with the next one, until the endpoint has nothing due."""
        batch = first
        while batch:
            outcomes: list[Outcome] = []
            for delivery in batch:
                outcome = await self.send(delivery)
                outcomes.append(outcome)
                if not outcome.ok and outcome.retryable:
                    break
            failed = batch[len(outcomes) - 1]
            try:
                batch = await self._outbox.finish(batch, outcomes, self.owner, take_next=not self._stopping)
            except Exception:  # the leases expire and the rows are delivered again (same event ids)
                log.exception("recording webhook deliveries failed")
                return
            if not outcomes[-1].ok and outcomes[-1].retryable:  # backed off: claim it again when it comes due
                self._retry_scheduled(failed.attempt)

    async def send(self, delivery: Claimed) -> Outcome:
        assert self._http is not None
        raw = delivery.body.encode()
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "Retake-Event-Id": delivery.event_id,
            "Retake-Signature": signature_header(delivery.secret, timestamp, raw),
        }
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        try:
            host = urlsplit(delivery.url).hostname or ""
            with contextlib.suppress(ValueError):  # a name, not an IP literal: the resolver checks it
                check_address(host, self._allow_private)
            async with self._http.post(delivery.url, data=raw, headers=headers, allow_redirects=False) as answer:
                status = answer.status
                await answer.content.read(64 * 1024)  # drain a little, so the connection can be reused
        except RefusedTarget as exc:
            error = str(exc)
        except TimeoutError:
            error = f"timed out after {TIMEOUT_SECONDS:.0f} s"
        except aiohttp.ClientError as exc:
            cause = exc.__cause__ or exc.__context__
            error = str(cause) if isinstance(cause, RefusedTarget) else f"{type(exc).__name__}: {exc}"
        if status is not None and not 200 <= status < 300:
            error = f"HTTP {status}"
        latency = int((time.perf_counter() - started) * 1000)
        return Outcome(status, error[:MAX_ERROR] if error else None, latency)
