"""The direct hand-off: outbox rows this node writes are leased to its own delivery worker in the writing
transaction, when nothing older is pending for their endpoint, and start a lane at once.

Without it every event took a second transaction before its POST (the worker's claim: find the endpoint heads,
read the rows behind them, lease them, read them back) and a claim round after the lane ended; at 100 events/s
those round trips were most of the ~5 ms of CPU a delivery cost (docs/benchmarks.md).

Why the guarantees still hold:

* Order per endpoint: a new row is leased only if no older row of its endpoint is pending (leased or not, due or
  in back-off). Otherwise it is written unleased, as before, and the lane holding the endpoint takes it in its
  ``finish`` (or a claim does, once the head is due).
* Once across nodes: the check runs after this transaction holds the endpoint. On SQLite the ``INSERT`` before
  it took the database's one write lock; on PostgreSQL the endpoint rows were read ``FOR NO KEY UPDATE``, as
  ``Outbox.finish`` and other nodes' writes read them, so two writers for one endpoint take turns and the second
  sees the first's row. Claims skip leased rows.
* Durability: the row and its lease commit together; a node that dies after the commit leaves a lease that
  expires, and the row is claimed again with the same event id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import and_, exists, select, update
from sqlalchemy.engine import Connection

from retake.webhooks.rows import DELIVERIES, Claimed


class Taker(Protocol):
    """The node's delivery worker, as the outbox sees it."""

    owner: str

    def accepting(self) -> bool: ...

    def take(self, batch: list[Claimed]) -> None: ...

    def wake(self) -> None: ...


def lease_new(
    db: Connection, rows: Sequence[Claimed], owner: str, now: datetime, lease_seconds: float
) -> list[list[Claimed]]:
    """Lease the rows just inserted (as their first attempt would carry them) of every endpoint with nothing older
    pending; one batch per endpoint, in id order."""
    if not rows:
        return []
    d, older = DELIVERIES, DELIVERIES.alias("older")
    new_ids = [r.id for r in rows]
    nothing_older = ~exists(
        select(older.c.id).where(
            and_(
                older.c.endpoint_id == d.c.endpoint_id,
                older.c.status == "pending",
                older.c.id < d.c.id,
                older.c.id.not_in(new_ids),
            )
        )
    )
    leased = db.execute(
        update(d)
        .where(d.c.id.in_(new_ids), nothing_older)
        .values(lease_until=now + timedelta(seconds=lease_seconds), lease_owner=owner, attempts=1)
        .returning(d.c.id)
    )
    taken = {row_id for (row_id,) in leased.all()}
    batches: dict[int, list[Claimed]] = {}
    for r in sorted(rows, key=lambda r: r.id):
        if r.id in taken:
            batches.setdefault(r.endpoint_id, []).append(r)
    return list(batches.values())
