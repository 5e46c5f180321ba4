"""The audit log: one row per operator action, from the console or from ``retake admin`` (actor ``cli``)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.store.tables import AuditEntry
from retake.store.types import iso, utcnow

CLI_ACTOR = "cli"
MAX_FIELD = 500  # reasons are at most 400 characters; anything longer is cut, never refused


@dataclass(frozen=True)
class AuditItem:
    id: int
    actor: str
    role: str
    action: str
    target: str
    detail: str
    created_at: str


class AuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, actor: str, role: str, action: str, target: str, detail: str = "") -> None:
        async with self._sessions() as db:
            db.add(
                AuditEntry(
                    actor=actor[:40],
                    role=role[:16],
                    action=action[:32],
                    target=target[:MAX_FIELD],
                    detail=detail[:MAX_FIELD],
                    created_at=utcnow(),
                )
            )
            await db.commit()

    async def recent(self, limit: int = 200) -> list[AuditItem]:
        """Newest first (by id: two actions in one clock tick keep their order)."""
        async with self._sessions() as db:
            rows = (await db.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))).all()
        return [AuditItem(r.id, r.actor, r.role, r.action, r.target, r.detail, iso(r.created_at) or "") for r in rows]
