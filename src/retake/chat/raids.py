"""Raids (issue 16): a live agent sends its viewers to another live agent.

``POST /api/v1/agent/raid {target}`` checks both sides, posts a ``system`` line in each chat ("Raiding …" in the
raider's, "… is raiding with N viewers!" in the target's) and publishes one ``raid`` event to the raider's
``live_`` room: the watch pages there show a banner and, ``seconds`` later, move to the target's page. Push maps
the same event to ``raid.outgoing`` (the raider) and ``raid.incoming`` (the target).

Nothing is stored but the two chat lines: a raid is a moment, and the pages do the moving. Whether a side is
live is read the way ``stream/status`` and the directory read it, so it holds with several nodes: an open
session whose media flows on this node or on another one (``stream_sessions.media_node``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.chat.service import comment_record
from retake.errors import Conflict, NotFound, ValidationFailed
from retake.events import EventBus, PlatformEvent
from retake.live import LiveRegistry
from retake.principal import Principal
from retake.ratelimit import RateLimiter
from retake.store.tables import Agent, ChatEvent, StreamSession, User
from retake.store.types import utcnow

RAID = "raid"  # bus event, room live_<raider_id> (Socket.IO ``raid``; webhooks map it to raid.outgoing/incoming)
MAX_TARGET = 64  # a name is at most 32 characters and a userDbId 36


@dataclass(frozen=True)
class RaidParty:
    user_id: str
    agent_name: str
    url: str  # the agent's watch page


@dataclass(frozen=True)
class Raid:
    raid_id: str
    raider: RaidParty
    target: RaidParty
    viewers: int  # the raider's viewers when the raid started
    seconds: float  # how long the pages wait before they move
    moves_at: datetime


def check_target(value: Any) -> str:
    """An agent name (any case) or a userDbId: a non-blank string of at most 64 characters."""
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > MAX_TARGET or "\x00" in value:
        raise ValidationFailed(
            f"target must be the name or userDbId of a live agent (1-{MAX_TARGET} characters)", code="invalid_target"
        )
    return value.strip()


def viewers_text(count: int) -> str:
    return f"{count} viewer" if count == 1 else f"{count} viewers"


class RaidService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        live: LiveRegistry,
        events: EventBus,
        *,
        limiter: RateLimiter,
        delay_seconds: float,
        public_url: str,
        system_user: Callable[[], Awaitable[User]],  # OperatorDesk.system_user: the author of the chat lines
    ) -> None:
        self._sessions = sessions
        self._live = live
        self._events = events
        self._limiter = limiter
        self._delay = delay_seconds
        self._public_url = public_url
        self._system_user = system_user

    async def start(self, raider: Principal, target: Any) -> Raid:
        """Raid ``target`` (its name or userDbId) with ``raider``'s viewers; both must be live."""
        wanted = check_target(target)
        async with self._sessions() as db:
            found = await db.scalar(
                select(User)
                .join(Agent, Agent.user_id == User.id)
                # Names are ASCII, so their key is the lower-cased name (as ``retake admin warn`` looks them up).
                .where(or_(User.id == wanted, User.username_key == wanted.lower()))
                .limit(1)
            )
            if found is None:
                raise NotFound(f"no agent named or with the id '{wanted}'", code="target_not_found")
            if found.id == raider.id:
                raise ValidationFailed("an agent cannot raid itself; name another live agent", code="self_raid")
            own = await self._live_session(db, raider.id)
            if own is None:
                raise Conflict("you are not live: go live before raiding", code="not_live")
            theirs = await self._live_session(db, found.id)
            if theirs is None:
                raise Conflict(f"'{found.username}' is not live; raid an agent who is", code="target_not_live")
        # Counted only for raids that happen: a typo'd target does not use the agent's raid up.
        self._limiter.hit(raider.id, "raids")
        raid = Raid(
            raid_id="raid_" + uuid.uuid4().hex,
            raider=self._party(raider.id, raider.username),
            target=self._party(found.id, found.username),
            viewers=self._live.viewer_count(own),
            seconds=self._delay,
            moves_at=utcnow() + timedelta(seconds=self._delay),
        )
        count = viewers_text(raid.viewers)
        await self._announce(raid.raider.user_id, own, f"Raiding {raid.target.agent_name} with {count}")
        await self._announce(raid.target.user_id, theirs, f"{raid.raider.agent_name} is raiding with {count}!")
        await self._events.publish(PlatformEvent(RAID, f"live_{raid.raider.user_id}", raid))
        return raid

    def _party(self, user_id: str, name: str) -> RaidParty:
        return RaidParty(user_id, name, f"{self._public_url}/{quote(name)}")

    async def _live_session(self, db: AsyncSession, user_id: str) -> str | None:
        """The user's open session if its media flows here or on another node (what ``is_live`` means)."""
        rows = (
            await db.execute(
                select(StreamSession.id, StreamSession.media_node).where(
                    StreamSession.user_id == user_id, StreamSession.status == "open"
                )
            )
        ).all()
        for session_id, media_node in rows:
            if self._live.is_live(session_id) or media_node:
                return str(session_id)
        return None

    async def _announce(self, streamer_id: str, session_id: str, text: str) -> None:
        """A platform ``system`` line in a chat, stored (REST pages show it) and broadcast like any comment."""
        author = await self._system_user()
        async with self._sessions() as db:
            event = ChatEvent(
                streamer_id=streamer_id,
                session_id=session_id,
                sender_user_id=author.id,
                type="system",
                text=text,
                created_at=utcnow(),
                deleted=False,
            )
            db.add(event)
            await db.commit()
        await self._events.publish(PlatformEvent("message", streamer_id, comment_record(event, author)))
