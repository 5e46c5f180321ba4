"""The account and stream services built by hand on a migrated store (SQLite or PostgreSQL), without HTTP.

One place builds them, in dependency order, so the unit tests call the services the routes call; only the
tweet service is local (``FakeOEmbed`` speaks oEmbed's real wire format)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from retake.accounts.agents import AgentService
from retake.accounts.directory import Directory
from retake.accounts.profile import ProfileService
from retake.chat.moderation import ModerationService
from retake.events import EventBus, PlatformEvent
from retake.identity.tweets import OEmbedTweetVerifier
from retake.ledger.service import LedgerService
from retake.live import LiveRegistry
from retake.media.journal import recorded_seconds
from retake.principal import Principal
from retake.store.engine import create_engine, migrate, session_factory
from retake.store.tables import User
from retake.store.types import utcnow
from retake.streams.lifecycle import StreamService
from retake.streams.media_bridge import Playback
from retake.streams.owner import OwnerSessions
from retake.streams.ports import Publishers
from tests.support import VALID_WALLET

HANDLE = "retakedottv"
PUBLIC_URL = "http://node.test"


@dataclass
class Services:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    events: EventBus
    live: LiveRegistry
    agents: AgentService
    directory: Directory
    profiles: ProfileService
    streams: StreamService
    owned: OwnerSessions
    ledger: LedgerService
    heard: list[PlatformEvent] = field(default_factory=list)
    # (user id, changed columns) of every stored profile change, as ProfileService reports them to caches
    changed: list[tuple[str, frozenset[str]]] = field(default_factory=list)

    async def register(self, name: str, **fields: str) -> str:
        """Register an agent; its access token."""
        values = {"agent_description": "", "image_url": "", "wallet_address": VALID_WALLET, "ticker": "tst"}
        values.update(fields)
        reg = await self.agents.register(agent_name=name, **values)
        return reg.access_token

    async def viewer(self, name: str) -> Principal:
        """A non-agent user, as a guest sign-in would create it."""
        user = User(
            id=str(uuid.uuid4()),
            username=name,
            username_key=name.lower(),
            kind="guest",
            bio="",
            avatar_url="",
            created_at=utcnow(),
        )
        async with self.sessions() as db:
            db.add(user)
            await db.commit()
        return Principal.of(user)


@asynccontextmanager
async def services(
    database_url: str, oembed_url: str, recordings: Path, *, auth_cache_seconds: float = 0.0
) -> AsyncIterator[Services]:
    engine = create_engine(database_url)
    await migrate(engine)
    sessions = session_factory(engine)
    events, live = EventBus(), LiveRegistry()
    heard: list[PlatformEvent] = []
    changed: list[tuple[str, frozenset[str]]] = []

    async def hear(event: PlatformEvent) -> None:
        heard.append(event)

    async def user_changed(user_id: str, columns: frozenset[str]) -> None:
        changed.append((user_id, columns))

    deleted: list[str] = []

    async def session_deleted(session_id: str) -> None:  # clips are tested in tests/api/test_clips.py
        deleted.append(session_id)

    events.subscribe(hear)
    agents = AgentService(sessions, OEmbedTweetVerifier(oembed_url), HANDLE, auth_cache_seconds=auth_cache_seconds)
    ledger = LedgerService(sessions, events, dialect=engine.dialect.name, chat_gate=ModerationService(sessions, events))
    streams = StreamService(
        sessions,
        agents,
        live,
        events,
        publishers=Publishers(),  # no ingest attached: there is never an RTMP connection to close
        tokens=ledger,
        media=Playback(recordings),
        reconnect_grace_seconds=0.05,
        node_url=PUBLIC_URL,
    )
    built = Services(
        engine=engine,
        sessions=sessions,
        events=events,
        live=live,
        agents=agents,
        directory=Directory(
            sessions,
            live,
            PUBLIC_URL,
            market_caps=ledger.market.market_caps_usd,
            recorded_seconds=recorded_seconds,
        ),
        profiles=ProfileService(sessions, live, events, user_changed=[user_changed]),
        streams=streams,
        owned=OwnerSessions(sessions, streams, live, session_deleted=session_deleted),
        ledger=ledger,
        heard=heard,
        changed=changed,
    )
    try:
        yield built
    finally:
        await streams.close()
        await engine.dispose()
