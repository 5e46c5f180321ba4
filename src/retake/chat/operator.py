"""Operator actions: ``retake admin warn <agent> "<reason>"`` and ``retake admin shutdown <agent>``.

The command line acts on the store directly (like ``admin verify``), so it cannot reach the sockets of a
running server. It writes an ``operator_actions`` row and the ``system`` chat message that goes with it, then
nudges every running node (store/nudges.py: PostgreSQL ``NOTIFY``, or a datagram to the SQLite store's server),
which reads that table for ids above the last one it saw — at once, instead of polling it every few seconds;
``Settings.operator_poll_seconds`` is now only the safety net for a lost nudge. For each new action, every node
closes the agent's publisher if it holds it (shutdown), and exactly one node (the one whose ``UPDATE … WHERE
announced_at IS NULL`` wins) broadcasts the system message. The store stays the record (a nudge carries no
data), so this works the same with SQLite, with one PostgreSQL node or many, and with or without Redis.

When no server notices a shutdown (none is running), the command claims it after a short wait and ends the
session in the store itself, so the agent's session never stays open by mistake.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.chat.results import OperatorNotice
from retake.chat.service import comment_record
from retake.errors import Conflict, NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.store.nudges import OPERATOR, SESSIONS, Nudges, Waiter
from retake.store.tables import Agent, ChatEvent, OperatorAction, StreamSession, User
from retake.store.types import iso, utcnow

log = logging.getLogger(__name__)

# The author of platform notices. Its name is reserved (identity/validation.py), so no agent or viewer can
# take it, and it has no agents row, so the public user lists (which join agents) never show it.
SYSTEM_USER_ID = "00000000-0000-4000-8000-000000000001"
SYSTEM_USERNAME = "retake"
MAX_REASON = 400  # leaves room for the prefix inside the 500-character chat limit
WARNINGS_LISTED = 20


class SessionStopper(Protocol):
    """``StreamService.force_stop``: close the session's publisher on this node and end the session."""

    async def force_stop(self, session_id: str, agent_id: str) -> None: ...


class OperatorDesk:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], events: EventBus, stopper: SessionStopper, nudges: Nudges
    ) -> None:
        self._sessions = sessions
        self._events = events
        self._stopper = stopper
        self._nudges = nudges

    # -- the command line's side ---------------------------------------------------------------------------

    async def warn(self, agent_name: str, reason: str) -> OperatorAction:
        reason = reason.strip()
        if not 1 <= len(reason) <= MAX_REASON:
            raise ValidationFailed(f"the reason must be 1-{MAX_REASON} characters", code="invalid_reason")
        return await self._record("warn", agent_name, reason, f"Operator warning: {reason}")

    async def shutdown(self, agent_name: str, reason: str = "") -> OperatorAction:
        reason = reason.strip()
        if len(reason) > MAX_REASON:
            raise ValidationFailed(f"the reason must be at most {MAX_REASON} characters", code="invalid_reason")
        text = "This stream was shut down by the operator" + (f": {reason}" if reason else ".")
        return await self._record("shutdown", agent_name, reason, text)

    async def wait_noticed(self, action_id: int, within_seconds: float, step: float = 0.2) -> bool:
        """True once a running node has claimed the action."""
        deadline = asyncio.get_running_loop().time() + within_seconds
        while True:
            async with self._sessions() as db:
                claimed = await db.scalar(select(OperatorAction.announced_at).where(OperatorAction.id == action_id))
            if claimed is not None:
                return True
            if asyncio.get_running_loop().time() >= deadline:
                return False
            await asyncio.sleep(step)

    async def apply_unnoticed(self, action: OperatorAction) -> bool:
        """No node noticed: claim the action and apply it here. False if a node claimed it after all."""
        if not await self._claim(action.id):
            return False
        if action.kind == "shutdown" and action.session_id is not None:
            await self._stopper.force_stop(action.session_id, action.agent_id)
            await self._nudges.nudge(SESSIONS)  # a server that missed the action still drops the publisher
        return True

    # -- what agents see -----------------------------------------------------------------------------------

    async def warnings_for(self, agent_id: str) -> list[OperatorNotice]:
        """Newest first: every warning and shutdown the operator issued to this agent (the last 20)."""
        async with self._sessions() as db:
            actions = (
                await db.scalars(
                    select(OperatorAction)
                    .where(OperatorAction.agent_id == agent_id)
                    .order_by(OperatorAction.id.desc())
                    .limit(WARNINGS_LISTED)
                )
            ).all()
        return [
            OperatorNotice(
                id=str(a.id), kind=a.kind, reason=a.reason, session_id=a.session_id, created_at=iso(a.created_at)
            )
            for a in actions
        ]

    # -- the running node's side ---------------------------------------------------------------------------

    async def newest_id(self) -> int:
        async with self._sessions() as db:
            return int(await db.scalar(select(func.max(OperatorAction.id))) or 0)

    async def apply_since(self, after_id: int) -> int:
        """Apply the actions newer than ``after_id``; return the id to continue after."""
        async with self._sessions() as db:
            actions = (
                await db.scalars(
                    select(OperatorAction).where(OperatorAction.id > after_id).order_by(OperatorAction.id).limit(100)
                )
            ).all()
        for action in actions:
            try:
                if action.kind == "shutdown" and action.session_id is not None:
                    # Every node: the publisher may be connected to any of them. Ending twice is harmless.
                    await self._stopper.force_stop(action.session_id, action.agent_id)
                # Claimed after the stop, so a command line that sees the claim sees the session ended.
                if await self._claim(action.id):
                    await self._announce(action)
            except Exception:  # one action that fails must not stop the others or the watcher
                log.exception("operator action %s (%s) failed", action.id, action.kind)
            after_id = action.id
        return after_id

    async def start_watching(self, interval: float) -> asyncio.Task[None]:
        """Start watching; the cursor is taken now, so actions older than this start are not replayed. Woken by
        nudges; ``interval`` is the safety-net poll for a nudge that was lost."""
        waiter = self._nudges.waiter(OPERATOR)  # before the cursor: an action recorded in between wakes it
        cursor = await self.newest_id()
        return asyncio.create_task(self._watch(cursor, waiter, interval), name="operator-actions")

    async def _watch(self, cursor: int, waiter: Waiter, interval: float) -> None:
        while True:
            await waiter.wait(interval)
            try:
                cursor = await self.apply_since(cursor)
            except Exception as exc:  # a database hiccup: try again at the next nudge or tick
                log.warning("reading operator actions failed: %s", exc)

    # -- helpers -------------------------------------------------------------------------------------------

    async def _record(self, kind: str, agent_name: str, reason: str, text: str) -> OperatorAction:
        await self._ensure_system_user()
        async with self._sessions() as db:
            agent = await db.scalar(
                select(Agent).join(User, User.id == Agent.user_id).where(User.username_key == agent_name.lower())
            )
            if agent is None:
                raise NotFound(f"no agent named '{agent_name}'", code="agent_not_found")
            session_id = await db.scalar(
                select(StreamSession.id)
                .where(StreamSession.user_id == agent.user_id, StreamSession.status == "open")
                .order_by(StreamSession.started_at.desc())
                .limit(1)
            )
            if kind == "shutdown" and session_id is None:
                raise Conflict(f"agent '{agent_name}' has no open session to shut down", code="no_active_session")
            now = utcnow()
            notice = ChatEvent(
                streamer_id=agent.user_id,
                session_id=session_id,
                sender_user_id=SYSTEM_USER_ID,
                type="system",
                text=text,
                created_at=now,
                deleted=False,
            )
            db.add(notice)
            await db.flush()
            action = OperatorAction(
                agent_id=agent.id,
                user_id=agent.user_id,
                kind=kind,
                reason=reason,
                session_id=session_id,
                chat_event_id=notice.id,
                created_at=now,
            )
            db.add(action)
            await db.commit()
        await self._nudges.nudge(OPERATOR)
        log.info("operator %s recorded for agent %s (action %s)", kind, agent.id, action.id)
        return action

    async def system_user(self) -> User:
        """The platform's own user, the author of notices and the actor of console moderation."""
        await self._ensure_system_user()
        async with self._sessions() as db:
            user = await db.get(User, SYSTEM_USER_ID)
        assert user is not None, "created just above"
        return user

    async def _ensure_system_user(self) -> None:
        async with self._sessions() as db:
            if await db.get(User, SYSTEM_USER_ID) is not None:
                return
            db.add(
                User(
                    id=SYSTEM_USER_ID,
                    username=SYSTEM_USERNAME,
                    username_key=SYSTEM_USERNAME,
                    kind="system",
                    bio="platform notices",
                    avatar_url="",
                    created_at=utcnow(),
                )
            )
            try:
                await db.commit()
            except IntegrityError:  # created concurrently by another command
                await db.rollback()

    async def _claim(self, action_id: int) -> bool:
        async with self._sessions() as db:
            result = await db.execute(
                update(OperatorAction)
                .where(OperatorAction.id == action_id, OperatorAction.announced_at.is_(None))
                .values(announced_at=utcnow())
            )
            await db.commit()
        return bool(getattr(result, "rowcount", 0))

    async def _announce(self, action: OperatorAction) -> None:
        # the shape of a stream-status `warnings` entry
        notice = OperatorNotice(str(action.id), action.kind, action.reason, action.session_id, iso(action.created_at))
        await self._events.publish(PlatformEvent("operator_action", f"live_{action.user_id}", notice))
        if action.chat_event_id is None:
            return
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(ChatEvent, User)
                    .join(User, User.id == ChatEvent.sender_user_id)
                    .where(ChatEvent.id == action.chat_event_id, ChatEvent.deleted.is_(False))
                )
            ).first()
        if row is not None:
            event, sender = row
            await self._events.publish(PlatformEvent("message", event.streamer_id, comment_record(event, sender)))
