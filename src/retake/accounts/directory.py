"""Public reads: users and sessions as the discovery endpoints show them."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.accounts.results import (
    LiveUser,
    Page,
    Playback,
    PublicProfile,
    Recording,
    SessionCard,
    Upcoming,
    UserCard,
)
from retake.errors import NotFound, ValidationFailed
from retake.live import LiveRegistry
from retake.store.tables import Agent, Follow, StreamSession, User
from retake.store.types import utcnow


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def encode_cursor(when: datetime, ident: str) -> str:
    return base64.urlsafe_b64encode(f"{when.timestamp():.6f}|{ident}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, ident = raw.split("|", 1)
        return float(stamp), ident
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("cursor is not one this server issued", code="invalid_cursor") from exc


class Directory:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        live: LiveRegistry,
        public_url: str,
        *,
        market_caps: Callable[[list[str]], Awaitable[dict[str, float]]],
        recorded_seconds: Callable[[str], float | None],
    ) -> None:
        self._sessions = sessions
        self._live = live
        self._public_url = public_url
        # Token address -> market cap (USD), from the ledger: /users/live/ shows real market caps.
        self.market_caps = market_caps
        # Recording folder -> the media duration of its VOD (from the media layer, which accounts does not import).
        self._recorded_seconds = recorded_seconds

    def playback(self, user_id: str) -> Playback:
        return Playback(
            flv=f"{self._public_url}/live/{user_id}.flv", hls=f"{self._public_url}/live/{user_id}/index.m3u8"
        )

    def _user_card(self, user: User, agent: Agent | None) -> UserCard:
        return UserCard(
            user_id=user.id,
            username=user.username,
            avatar_url=user.avatar_url,
            ticker=agent.ticker if agent else "",
            token_address=(agent.token_address or "") if agent else "",
            verified=bool(agent and agent.verified),
            is_live=user.id in self._live.live_stream_ids(),
            created_at=user.created_at,
        )

    async def search(self, query: str, limit: int = 50) -> list[UserCard]:
        query = query.strip()
        if not 1 <= len(query) <= 64:
            raise ValidationFailed("search query must be 1-64 characters", code="invalid_query")
        pattern = f"%{_escape_like(query.lower())}%"
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(User, Agent)
                    .outerjoin(Agent, Agent.user_id == User.id)
                    .where(User.username_key.like(pattern, escape="\\"))
                    .order_by(func.length(User.username_key), User.username_key)
                    .limit(limit)
                )
            ).all()
        return [self._user_card(u, a) for u, a in rows]

    async def newest(self, limit: int = 50) -> list[UserCard]:
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(User, Agent)
                    .join(Agent, Agent.user_id == User.id)
                    .order_by(User.created_at.desc(), User.id)
                    .limit(limit)
                )
            ).all()
        return [self._user_card(u, a) for u, a in rows]

    async def _live_rows(self) -> list[tuple[StreamSession, User, Agent | None]]:
        """Open sessions with media flowing here, or on another node (``media_node`` set, scale-out)."""
        live_ids = self._live.live_stream_ids()
        async with self._sessions() as db:
            rows = (
                await db.execute(
                    select(StreamSession, User, Agent)
                    .join(User, User.id == StreamSession.user_id)
                    .outerjoin(Agent, Agent.user_id == User.id)
                    .where(
                        StreamSession.status == "open",
                        or_(StreamSession.user_id.in_(live_ids), StreamSession.media_node.is_not(None)),
                    )
                )
            ).all()
        result = [(s, u, a) for s, u, a in rows if self._live.is_live(s.id) or s.media_node]
        result.sort(key=lambda r: (-self._live.viewer_count(r[0].id), r[0].started_at or utcnow()))
        return result

    async def live_users(self) -> list[LiveUser]:
        rows = await self._live_rows()
        addresses = [a.token_address for _s, _u, a in rows if a is not None and a.token_address]
        caps = await self.market_caps(addresses) if addresses else {}
        return [
            LiveUser(
                user_id=user.id,
                username=user.username,
                avatar_url=user.avatar_url,
                ticker=agent.ticker if agent else "",
                token_address=(agent.token_address or "") if agent else "",
                market_cap=caps.get(agent.token_address or "", 0) if agent else 0,
                rank=rank,
                viewer_count=self._live.viewer_count(session.id),
                session_id=session.id,
                thumbnail_url=session.thumbnail_url or user.avatar_url,
            )
            for rank, (session, user, agent) in enumerate(rows, start=1)
        ]

    def _session_card(self, session: StreamSession, user: User) -> SessionCard:
        live = self._live.is_live(session.id) or (session.status == "open" and bool(session.media_node))
        return SessionCard(
            session_id=session.id,
            user_id=user.id,
            username=user.username,
            title=session.title,
            category=session.category,
            tags=tuple(session.tags or []),
            status="live" if live else session.status,
            viewer_count=self._live.viewer_count(session.id),
            started_at=session.first_media_at or session.started_at,
            thumbnail_url=session.thumbnail_url or user.avatar_url,
            playback=self.playback(user.id),
        )

    def _recording(self, session: StreamSession, user: User) -> Recording:
        return Recording(
            session=self._session_card(session, user),
            ended_at=session.ended_at,
            duration_seconds=_duration_seconds(session, self._recorded_seconds),
            recording_url=(
                f"{self._public_url}/recordings/{session.id}/index.m3u8" if session.recording_path else None
            ),
            peak_viewers=session.peak_viewers,
        )

    async def active_sessions(self) -> list[SessionCard]:
        return [self._session_card(s, u) for s, u, _a in await self._live_rows()]

    async def active_session_of(self, streamer_id: str) -> SessionCard:
        for session, user, _agent in await self._live_rows():
            if user.id == streamer_id:
                return self._session_card(session, user)
        raise NotFound("this streamer has no active session", code="no_active_session")

    async def recorded(self, streamer_id: str | None, limit: int, cursor: str | None) -> Page[Recording]:
        async with self._sessions() as db:
            query = (
                select(StreamSession, User)
                .join(User, User.id == StreamSession.user_id)
                .where(StreamSession.status == "ended")
            )
            if streamer_id is not None:
                query = query.where(StreamSession.user_id == streamer_id)
            if cursor:
                stamp, ident = decode_cursor(cursor)
                when = datetime.fromtimestamp(stamp, tz=utcnow().tzinfo)
                query = query.where(
                    or_(
                        StreamSession.ended_at < when,
                        (StreamSession.ended_at == when) & (StreamSession.id > ident),
                    )
                )
            rows = (
                await db.execute(query.order_by(StreamSession.ended_at.desc(), StreamSession.id).limit(limit + 1))
            ).all()
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1][0]
            next_cursor = encode_cursor(last.ended_at or utcnow(), last.id)
        return Page(tuple(self._recording(s, u) for s, u in rows[:limit]), next_cursor)

    async def recorded_session(self, streamer_id: str, session_id: str) -> Recording:
        """One ended session of this streamer, as an item of ``recorded`` (the watch page's recording player)."""
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(StreamSession, User)
                    .join(User, User.id == StreamSession.user_id)
                    .where(
                        StreamSession.id == session_id,
                        StreamSession.user_id == streamer_id,
                        StreamSession.status == "ended",
                    )
                )
            ).first()
        if row is None:
            raise NotFound("no such recorded session", code="session_not_found")
        return self._recording(row[0], row[1])

    async def scheduled(self, streamer_id: str | None, limit: int, cursor: str | None) -> Page[Upcoming]:
        now = utcnow()
        async with self._sessions() as db:
            query = (
                select(StreamSession, User)
                .join(User, User.id == StreamSession.user_id)
                .where(StreamSession.status == "scheduled", StreamSession.scheduled_for >= now)
            )
            if streamer_id is not None:
                query = query.where(StreamSession.user_id == streamer_id)
            if cursor:
                stamp, ident = decode_cursor(cursor)
                when = datetime.fromtimestamp(stamp, tz=now.tzinfo)
                query = query.where(
                    or_(
                        StreamSession.scheduled_for > when,
                        (StreamSession.scheduled_for == when) & (StreamSession.id > ident),
                    )
                )
            rows = (
                await db.execute(query.order_by(StreamSession.scheduled_for, StreamSession.id).limit(limit + 1))
            ).all()
        items = tuple(Upcoming(self._session_card(s, u), s.scheduled_for) for s, u in rows[:limit])
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1][0]
            next_cursor = encode_cursor(last.scheduled_for or now, last.id)
        return Page(items, next_cursor)

    async def metadata(self, user_id: str) -> PublicProfile:
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(User, Agent).outerjoin(Agent, Agent.user_id == User.id).where(User.id == user_id)
                )
            ).first()
            if row is None:
                raise NotFound(f"no user with id '{user_id}'", code="user_not_found")
            followers = await db.scalar(select(func.count()).select_from(Follow).where(Follow.target_id == user_id))
        return self._public_profile(row[0], row[1], int(followers or 0))

    async def streamer(self, username: str) -> PublicProfile:
        async with self._sessions() as db:
            row = (
                await db.execute(
                    select(User, Agent)
                    .outerjoin(Agent, Agent.user_id == User.id)
                    .where(User.username_key == username.lower())
                )
            ).first()
            if row is None:
                raise NotFound(f"no streamer named '{username}'", code="streamer_not_found")
            followers = await db.scalar(select(func.count()).select_from(Follow).where(Follow.target_id == row[0].id))
        return self._public_profile(row[0], row[1], int(followers or 0))

    def _public_profile(self, user: User, agent: Agent | None, followers: int) -> PublicProfile:
        return PublicProfile(
            user_id=user.id,
            username=user.username,
            bio=user.bio,
            avatar_url=user.avatar_url,
            banner_url=user.banner_url,
            wallet_address=user.wallet_address,
            twitter_handle=user.twitter_handle or None,
            ticker=agent.ticker if agent else "",
            token_address=(agent.token_address or "") if agent else "",
            token_name=user.token_name or (user.username if agent else None),
            verified=bool(agent and agent.verified),
            is_agent=agent is not None,
            is_live=user.id in self._live.live_stream_ids(),
            followers_count=followers,
            created_at=user.created_at,
        )


def _duration_seconds(session: StreamSession, recorded_seconds: Callable[[str], float | None]) -> int:
    """How long the recording plays (its media: an outage within the session does not count), else the
    session's wall-clock length."""
    recorded = recorded_seconds(session.recording_path) if session.recording_path else None
    if recorded is not None:
        return round(recorded)
    started, ended = session.first_media_at or session.started_at, session.ended_at
    return int((ended - started).total_seconds()) if started and ended else 0
