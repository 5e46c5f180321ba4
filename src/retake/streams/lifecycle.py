"""Stream sessions from an agent's start to its stop, and the ingest's view of them.

The ingest calls ``authorize_publish`` (key → session) before it answers ``NetStream.Publish.Start``,
``media_flowing`` on the first media, and ``publisher_left`` when the connection ends. A publisher that drops
without ``stop`` keeps its session open for the reconnect grace period so an encoder restart resumes it.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.accounts.agents import AgentService, AuthedAgent
from retake.errors import Conflict
from retake.events import EventBus, PlatformEvent
from retake.live import LiveRegistry
from retake.principal import Principal
from retake.store.nudges import Waiter
from retake.store.tables import Agent, RtmpKey, StreamSession, User
from retake.store.types import iso, utcnow
from retake.streams.ports import MediaControl, PublisherControl, TokenLauncher
from retake.streams.records import EncoderDisconnected, SessionEnded, SessionStarted
from retake.token_info import TokenInfo

log = logging.getLogger(__name__)

SWEEP_SECONDS = 30.0  # the safety net behind the nudge a node that ends a session sends


@dataclass(frozen=True)
class PublishTarget:
    stream_id: str  # the streamer's user id
    session_id: str
    agent_id: str
    key_id: int


@dataclass(frozen=True)
class Started:
    session_id: str
    token: TokenInfo | None  # None until the agent is verified (then launched on its first start)


@dataclass(frozen=True)
class StreamStatus:
    is_live: bool  # media flowing, on this node or another
    viewers: int
    uptime_seconds: int
    token_address: str  # empty until the token is launched
    user_id: str
    session_id: str | None  # the open session, if any


@dataclass(frozen=True)
class Stopped:
    duration_seconds: int
    peak_viewers: int


def _no_active_session() -> Conflict:
    # The HTTP edge adds which call opens one (server/api/hints.py).
    return Conflict("no active session", code="no_active_session")


class StreamService:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        agents: AgentService,
        live: LiveRegistry,
        events: EventBus,
        *,
        publishers: PublisherControl,
        tokens: TokenLauncher,
        media: MediaControl,
        reconnect_grace_seconds: float = 60.0,
        node_url: str = "",
    ) -> None:
        self._sessions = sessions
        self.node_url = node_url  # this node's public URL, recorded as the media node of its publishers
        self._agents = agents
        self.live = live
        self._events = events
        self._grace = reconnect_grace_seconds
        self.publishers = publishers  # ends a session's RTMP connection (stop, operator shutdown)
        self.tokens = tokens  # the ledger: launches a verified agent's token on its first stream
        self.media = media  # this node's playback: closed, and the recording kept, when a session ends
        self._grace_timers: dict[str, asyncio.TimerHandle] = {}
        self._start_locks: dict[str, asyncio.Lock] = {}

    # -- agent REST ----------------------------------------------------------------------------------------

    async def open_session_of(self, db: AsyncSession, user_id: str) -> StreamSession | None:
        session: StreamSession | None = await db.scalar(
            select(StreamSession)
            .where(StreamSession.user_id == user_id, StreamSession.status == "open")
            .order_by(StreamSession.started_at.desc())
            .limit(1)
        )
        return session

    async def start(self, who: AuthedAgent) -> Started:
        """Open a session, or return the one already open (idempotent); launch the token if due."""
        # Per agent: two concurrent starts of one agent must not open two sessions, while different agents
        # starting at once (many encoders connecting after a restart) do not queue behind each other.
        lock = self._start_locks.setdefault(who.user_id, asyncio.Lock())
        async with lock, self._sessions() as db:
            await self._agents.require_active(db, who.agent_id)
            session = await self.open_session_of(db, who.user_id)
            if session is None:
                now = utcnow()
                session = StreamSession(
                    id=str(uuid.uuid4()),
                    user_id=who.user_id,
                    status="open",
                    title=f"{who.user.username} is live",
                    category="",
                    tags=[],
                    created_at=now,
                    started_at=now,
                    peak_viewers=0,
                    # Each session starts without a picture: the skill has the agent upload one as soon as it is
                    # live, and until then previews from the stream's keyframes stand in (streams/previews.py).
                    thumbnail_url=None,
                )
                db.add(session)
                await db.commit()
                log.info("session %s opened for %s", session.id, who.user.username)
            session_id = session.id
        token = await self.tokens.ensure_token(who.agent_id)
        return Started(session_id, token)

    async def status(self, who: AuthedAgent) -> StreamStatus:
        async with self._sessions() as db:
            session = await self.open_session_of(db, who.user_id)
            agent = await db.get(Agent, who.agent_id)
        session_id = session.id if session else None
        local = bool(session_id and self.live.is_live(session_id))
        # Another node may hold the publisher (scale-out): the store's media_node says so.
        remote = bool(session and not local and session.media_node)
        uptime = self.live.uptime_seconds(session_id) if session_id and local else 0
        if remote and session is not None and session.first_media_at is not None:
            uptime = max(0, int((utcnow() - session.first_media_at).total_seconds()))
        return StreamStatus(
            is_live=local or remote,
            viewers=self.live.viewer_count(session_id) if session_id else 0,
            uptime_seconds=uptime,
            token_address=(agent.token_address if agent else None) or "",
            user_id=who.user_id,
            session_id=session_id,
        )

    async def stop(self, who: AuthedAgent) -> Stopped:
        async with self._sessions() as db:
            session = await self.open_session_of(db, who.user_id)
            if session is None:
                raise _no_active_session()
            session_id = session.id
        await self.publishers.close_publisher(session_id)
        duration, peak = await self._end_session(session_id, revoke_keys_of=who.agent_id)
        return Stopped(duration_seconds=duration, peak_viewers=peak)

    async def force_stop(self, session_id: str, agent_id: str) -> None:
        """``retake admin shutdown``: what ``stop`` does, for a session named by id. Safe to repeat (every node
        applies it: the publisher may be connected to any of them)."""
        await self.publishers.close_publisher(session_id)
        await self._end_session(session_id, revoke_keys_of=agent_id)

    async def _end_session(self, session_id: str, *, revoke_keys_of: str | None) -> tuple[int, int]:
        self._cancel_grace(session_id)
        live = self.live.forget(session_id)
        peak_here = live.peak_viewers if live else 0
        now = utcnow()
        async with self._sessions() as db:
            session = await db.get(StreamSession, session_id, with_for_update=True)
            if session is None:
                return 0, 0
            ended_now = session.status == "open"
            if ended_now:
                session.status = "ended"
                session.ended_at = now
                session.media_node = None
                session.peak_viewers = max(session.peak_viewers, peak_here)
                recording = await self.media.session_ended(session.user_id, session_id)
                if recording is not None:
                    session.recording_path = recording
            if revoke_keys_of is not None:
                await self._agents.revoke_stream_keys(db, revoke_keys_of, now)
            await db.commit()
            started = session.first_media_at or session.started_at or session.created_at
            ended = session.ended_at or now
            log.info("session %s ended", session_id)
        duration = max(0, int((ended - started).total_seconds()))
        if ended_now:  # once, by whichever node ended it (the row lock above): push's stream.offline
            offline = SessionEnded(session.user_id, session_id, iso(ended), duration, session.peak_viewers)
            await self._events.publish(PlatformEvent("session_ended", f"live_{session.user_id}", offline))
        return duration, session.peak_viewers

    async def set_thumbnail(self, who: AuthedAgent, url: str) -> None:
        async with self._sessions() as db:
            session = await self.open_session_of(db, who.user_id)
            if session is None:
                raise _no_active_session()
            session.thumbnail_url = url
            await db.execute(update(Agent).where(Agent.id == who.agent_id).values(thumbnail_url=url))
            await db.commit()

    async def require_open_session(self, who: AuthedAgent) -> str:
        async with self._sessions() as db:
            session = await self.open_session_of(db, who.user_id)
        if session is None:
            raise _no_active_session()
        return session.id

    # -- ingest side ---------------------------------------------------------------------------------------

    async def authorize_publish(self, key: str) -> PublishTarget | None:
        """Check a stream key before Publish.Start. Opens a session if the agent has none open yet, so an
        encoder started before ``stream/start`` is not refused (start stays idempotent and returns it)."""
        found = await self._agents.agent_for_stream_key(key)
        if found is None:
            return None
        agent, rtmp_key = found
        if agent.suspended_at is not None:  # an encoder reconnecting with a key it held when suspended
            return None
        async with self._sessions() as db:
            user = await db.get(User, agent.user_id)
        if user is None:
            return None
        started = await self.start(AuthedAgent(agent_id=agent.id, user=Principal.of(user)))
        async with self._sessions() as db:
            await db.execute(update(RtmpKey).where(RtmpKey.id == rtmp_key.id).values(publishing=True))
            await db.commit()
        self._cancel_grace(started.session_id)
        return PublishTarget(stream_id=user.id, session_id=started.session_id, agent_id=agent.id, key_id=rtmp_key.id)

    async def media_flowing(self, target: PublishTarget) -> None:
        """Called once per publish when its first media arrives (also after a reconnect or takeover)."""
        first = self.live.get(target.session_id) is None
        self.live.media_started(target.session_id, target.stream_id)
        now = utcnow()
        async with self._sessions() as db:
            session = await db.get(StreamSession, target.session_id)
            if session is not None and session.status == "open":
                if session.first_media_at is None:
                    session.first_media_at = now
                session.media_node = self.node_url
                await db.commit()
        if not first:
            return
        started = SessionStarted(target.stream_id, target.session_id, iso(now))
        await self._events.publish(PlatformEvent("session_started", f"live_{target.stream_id}", started))

    async def publisher_left(self, target: PublishTarget, reason: str) -> None:
        self.live.media_stopped(target.session_id)
        async with self._sessions() as db:
            await db.execute(update(RtmpKey).where(RtmpKey.id == target.key_id).values(publishing=False))
            await db.execute(
                update(StreamSession)
                .where(StreamSession.id == target.session_id, StreamSession.media_node == self.node_url)
                .values(media_node=None)
            )
            await db.commit()
        if reason == "stopped":
            return
        dropped = EncoderDisconnected(target.stream_id, target.session_id, reason, iso(utcnow()), self._grace)
        await self._events.publish(PlatformEvent("encoder_disconnected", f"live_{target.stream_id}", dropped))
        loop = asyncio.get_running_loop()
        self._cancel_grace(target.session_id)
        self._grace_timers[target.session_id] = loop.call_later(
            self._grace, lambda: asyncio.ensure_future(self._grace_expired(target))
        )

    async def _grace_expired(self, target: PublishTarget) -> None:
        self._grace_timers.pop(target.session_id, None)
        if self.live.is_live(target.session_id):
            return
        node = await self.media_node_of(target.stream_id)
        if node and node.rstrip("/") != self.node_url.rstrip("/"):
            # The encoder came back on another node (another worker after a drop): the session goes on there;
            # this node only lets go of its playback (and keeps what it recorded).
            log.info("publisher of session %s came back on another node; releasing playback here", target.session_id)
            await self.media.session_ended(target.stream_id, target.session_id)
            return
        log.info("publisher of session %s did not come back within %.0f s", target.session_id, self._grace)
        await self._end_session(target.session_id, revoke_keys_of=None)

    def _cancel_grace(self, session_id: str) -> None:
        timer = self._grace_timers.pop(session_id, None)
        if timer is not None:
            timer.cancel()

    async def forget_stale_media_nodes(self) -> None:
        """At start: publishers this node held before a crash or restart are gone; stop claiming them."""
        async with self._sessions() as db:
            await db.execute(
                update(StreamSession).where(StreamSession.media_node == self.node_url).values(media_node=None)
            )
            await db.commit()

    async def media_node_of(self, stream_id: str) -> str | None:
        """The public URL of the node streaming ``stream_id`` now, if any (possibly this one)."""
        async with self._sessions() as db:
            node: str | None = await db.scalar(
                select(StreamSession.media_node).where(
                    StreamSession.user_id == stream_id,
                    StreamSession.status == "open",
                    StreamSession.media_node.is_not(None),
                )
            )
        return node

    async def watch_sessions_ended_elsewhere(self, nudged: Waiter, interval: float = SWEEP_SECONDS) -> None:
        """With several nodes, ``stream/stop`` or an operator shutdown may be handled by a node that does not hold
        the publisher. The node that ends a session nudges the others (store/nudges.py); the holder notices here
        (one indexed query, and none when it holds nothing), disconnects the encoder and finishes the recording,
        so a stop means the same on every node. ``interval`` is only the safety net for a lost nudge."""
        while True:
            await nudged.wait(interval)
            try:
                await self._close_sessions_ended_elsewhere()
            except Exception:  # a store hiccup must not end the watcher; the next round retries
                log.exception("checking for sessions ended on other nodes failed")

    async def _close_sessions_ended_elsewhere(self) -> None:
        held = dict(self.live.sessions())
        if not held:
            return
        async with self._sessions() as db:
            still_open = set(
                await db.scalars(
                    select(StreamSession.id).where(StreamSession.id.in_(held), StreamSession.status == "open")
                )
            )
        for session_id in set(held) - still_open:
            log.info("session %s was ended on another node; closing its publisher here", session_id)
            self._cancel_grace(session_id)
            await self.publishers.close_publisher(session_id)
            self.live.forget(session_id)
            recording = await self.media.session_ended(held[session_id], session_id)
            async with self._sessions() as db:
                await db.execute(
                    update(StreamSession)
                    .where(StreamSession.id == session_id)
                    .values(recording_path=recording, media_node=None)
                )
                await db.commit()

    async def close(self) -> None:
        for timer in self._grace_timers.values():
            timer.cancel()
        self._grace_timers.clear()
