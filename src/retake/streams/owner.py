"""Session controls for the session's owner (``/sessions/start``, ``PUT``/``DELETE /sessions/:id``, ``/end``).

An agent's sessions go through ``StreamService`` (it launches the token, closes the publisher and revokes the
stream key on stop), so the agent API and these routes can never disagree about which session is open. Other
users' sessions are plain rows: they have no RTMP key to publish with.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.accounts.agents import AuthedAgent
from retake.errors import Conflict, Forbidden, NotFound, ValidationFailed
from retake.identity.validation import check_http_url, check_text
from retake.live import LiveRegistry
from retake.principal import Principal
from retake.store.tables import Agent, StreamSession
from retake.store.types import utcnow
from retake.streams.lifecycle import StreamService

MAX_TITLE = 200
MAX_CATEGORY = 64
MAX_TAGS = 10
MAX_TAG = 32


@dataclass(frozen=True)
class SessionEdit:
    """What an owner changes in a session; ``None`` leaves a field as it is."""

    title: str | None = None
    category: str | None = None
    tags: list[str] | None = None
    thumbnail_url: str | None = None
    scheduled_for: datetime | None = None


@dataclass(frozen=True)
class OwnSession:
    """A session as its owner sees it."""

    session_id: str
    streamer_id: str
    title: str
    category: str
    tags: tuple[str, ...]
    status: str  # open, live (media flowing on this node), scheduled or ended
    thumbnail_url: str | None
    created_at: datetime | None
    started_at: datetime | None  # first media, or when it was opened
    ended_at: datetime | None
    scheduled_for: datetime | None


def check_title(value: str) -> str:
    value = check_text(value, "title").strip()
    if not 1 <= len(value) <= MAX_TITLE:
        raise ValidationFailed(f"title must be 1-{MAX_TITLE} characters", code="invalid_title")
    return value


def check_category(value: str) -> str:
    value = check_text(value, "category").strip()
    if len(value) > MAX_CATEGORY:
        raise ValidationFailed(f"category must be at most {MAX_CATEGORY} characters", code="invalid_category")
    return value


def check_tags(values: list[str]) -> list[str]:
    tags: list[str] = []
    for raw in values:
        tag = check_text(raw, "tags").strip()
        if not 1 <= len(tag) <= MAX_TAG:
            raise ValidationFailed(f"each tag must be 1-{MAX_TAG} characters", code="invalid_tags")
        if tag.lower() not in {t.lower() for t in tags}:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise ValidationFailed(f"at most {MAX_TAGS} tags", code="invalid_tags")
    return tags


class OwnerSessions:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        streams: StreamService,
        live: LiveRegistry,
        *,
        session_deleted: Callable[[str], Awaitable[None]],
    ) -> None:
        self._sessions = sessions
        self._streams = streams
        self._live = live
        self._session_deleted = session_deleted  # what else goes with a deleted session (its clips)
        # Two concurrent starts by one non-agent owner must not open two sessions (agents use StreamService's).
        self._lock = asyncio.Lock()

    async def _agent_of(self, db: AsyncSession, user: Principal) -> AuthedAgent | None:
        agent_id = await db.scalar(select(Agent.id).where(Agent.user_id == user.id))
        return AuthedAgent(agent_id=agent_id, user=user) if agent_id is not None else None

    def _own(self, session: StreamSession) -> OwnSession:
        return OwnSession(
            session_id=session.id,
            streamer_id=session.user_id,
            title=session.title,
            category=session.category,
            tags=tuple(session.tags or []),
            status="live" if self._live.is_live(session.id) else session.status,
            thumbnail_url=session.thumbnail_url,
            created_at=session.created_at,
            started_at=session.first_media_at or session.started_at,
            ended_at=session.ended_at,
            scheduled_for=session.scheduled_for,
        )

    async def _owned(self, db: AsyncSession, user: Principal, session_id: str) -> StreamSession:
        session = await db.get(StreamSession, session_id)
        if session is None:
            raise NotFound(f"no session with id '{session_id}'", code="session_not_found")
        if session.user_id != user.id:
            raise Forbidden("only the session's owner can change it", code="not_owner")
        return session

    async def get(self, session_id: str) -> OwnSession:
        async with self._sessions() as db:
            session = await db.get(StreamSession, session_id)
        if session is None:
            raise NotFound(f"no session with id '{session_id}'", code="session_not_found")
        return self._own(session)

    async def start(self, user: Principal, title: str, category: str | None, tags: list[str] | None) -> OwnSession:
        """Open a session (promoting the owner's next scheduled one) or update the one already open; ``None``
        keeps a field as it is."""
        title = check_title(title)
        category = check_category(category) if category is not None else None
        tags = check_tags(tags) if tags is not None else None
        async with self._lock:
            async with self._sessions() as db:
                authed = await self._agent_of(db, user)
                session = await self._streams.open_session_of(db, user.id)
                if session is None:
                    session = await db.scalar(
                        select(StreamSession)
                        .where(StreamSession.user_id == user.id, StreamSession.status == "scheduled")
                        .order_by(StreamSession.scheduled_for, StreamSession.id)
                        .limit(1)
                    )
                    now = utcnow()
                    if session is not None:
                        session.status, session.started_at = "open", now
                    elif authed is None:
                        session = StreamSession(
                            id=str(uuid.uuid4()),
                            user_id=user.id,
                            status="open",
                            created_at=now,
                            started_at=now,
                            peak_viewers=0,
                        )
                        db.add(session)
                    await db.commit()
            if authed is not None:
                # Finds the session opened above, or opens one; launches the agent's token when it is due.
                session_id = (await self._streams.start(authed)).session_id
            else:
                assert session is not None
                session_id = session.id
            async with self._sessions() as db:
                row = await db.get(StreamSession, session_id)
                if row is None:  # pragma: no cover - deleted between the two transactions
                    raise Conflict("the session was deleted while starting; try again", code="session_gone")
                row.title = title
                if category is not None:
                    row.category = category
                if tags is not None:
                    row.tags = tags
                await db.commit()
                return self._own(row)

    async def update(self, user: Principal, session_id: str, edit: SessionEdit) -> OwnSession:
        title = check_title(edit.title) if edit.title is not None else None
        category = check_category(edit.category) if edit.category is not None else None
        tags = check_tags(edit.tags) if edit.tags is not None else None
        thumbnail = check_text(edit.thumbnail_url, "thumbnail_url").strip() if edit.thumbnail_url is not None else None
        if thumbnail:
            check_http_url(thumbnail, "thumbnail_url")
        when = edit.scheduled_for
        if when is not None:
            try:
                when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
            except OverflowError as exc:  # year 1 or 9999 with an offset leaves datetime's range
                raise ValidationFailed("scheduled_for is out of range", code="invalid_scheduled_for") from exc
            if when <= utcnow():
                raise ValidationFailed("scheduled_for must be in the future", code="invalid_scheduled_for")
        async with self._sessions() as db:
            session = await self._owned(db, user, session_id)
            if when is not None:
                started = session.first_media_at is not None or self._live.is_live(session.id)
                if session.status == "ended":
                    raise Conflict("an ended session cannot be scheduled", code="session_ended")
                if started:
                    raise Conflict("the session has already started", code="session_started")
                # A future date on a session that has not started makes it an upcoming one (/sessions/scheduled/).
                session.status, session.scheduled_for = "scheduled", when
            if title is not None:
                session.title = title
            if category is not None:
                session.category = category
            if tags is not None:
                session.tags = tags
            if thumbnail is not None:
                session.thumbnail_url = thumbnail or None
            await db.commit()
            return self._own(session)

    async def end(self, user: Principal, session_id: str) -> OwnSession:
        async with self._sessions() as db:
            session = await self._owned(db, user, session_id)
            if session.status == "ended":
                return self._own(session)  # idempotent: ending twice is not an error
            if session.status == "scheduled":
                raise Conflict("the session has not started; DELETE it to cancel", code="session_not_started")
            authed = await self._agent_of(db, user)
            open_now = await self._streams.open_session_of(db, user.id)
        if authed is not None and open_now is not None and open_now.id == session_id:
            # The agent path closes the publisher, revokes the stream key and keeps the recording.
            await self._streams.stop(authed)
        else:
            self._live.forget(session_id)
            async with self._sessions() as db:
                row = await db.get(StreamSession, session_id)
                if row is not None and row.status != "ended":
                    row.status, row.ended_at = "ended", utcnow()
                    await db.commit()
        return await self.get(session_id)

    async def delete(self, user: Principal, session_id: str) -> None:
        async with self._sessions() as db:
            session = await self._owned(db, user, session_id)
            status = session.status
        if status == "open":
            await self.end(user, session_id)
        await self._session_deleted(session_id)
        async with self._sessions() as db:
            row = await db.get(StreamSession, session_id)
            if row is not None:
                await db.delete(row)
                await db.commit()
        await self._streams.media.discard_recording(session_id)
