"""What ``retake admin …`` builds: the store and the one service a command needs, never a node.

An operator often runs these commands on a node's machine, with that node's ``RETAKE_*`` environment (its
``RETAKE_PUBLIC_URL`` included). A node's start-up and shutdown effects (dropping the ``media_node`` claims of
its URL, recovering sessions, creating keys, starting listeners and pollers) belong to ``retake serve`` only:
run from a command they would tell every other node that the running node's live streams had ended. So a
command opens the store, migrates it (under the database-wide lock, like a node) and builds its service on
the store alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.accounts.agents import AgentService
from retake.accounts.audit import AuditLog
from retake.chat.moderation import ModerationService
from retake.chat.operator import OperatorDesk
from retake.config import Settings
from retake.events import EventBus
from retake.identity.tweets import build_verifier
from retake.ledger.service import LedgerService
from retake.live import LiveRegistry
from retake.server.console.actions import OperatorActions
from retake.store import nudges
from retake.store.engine import (
    Migration,
    create_engine,
    dispose_engine,
    migrate,
    private_dir,
    session_factory,
    sqlite_file,
)
from retake.streams.lifecycle import StreamService
from retake.streams.media_bridge import Playback
from retake.streams.ports import Publishers

Sessions = async_sessionmaker[AsyncSession]


def _database_url(settings: Settings) -> str:
    url = settings.effective_database_url
    if sqlite_file(url) is not None and not settings.database_url:
        private_dir(settings.data_dir)  # the default SQLite file lives in the data folder
    return url


@asynccontextmanager
async def store(settings: Settings) -> AsyncIterator[Sessions]:
    """The migrated store of ``settings``; the engine is disposed of when the command is done."""
    engine = create_engine(_database_url(settings), pool_size=2, max_overflow=2)
    try:
        await migrate(engine)
        yield session_factory(engine)
    finally:
        await dispose_engine(engine)


async def migrate_only(settings: Settings) -> Migration:
    """``retake admin migrate``: bring the schema to the newest revision and report what it was."""
    engine = create_engine(_database_url(settings), pool_size=1, max_overflow=0)
    try:
        return await migrate(engine)
    finally:
        await dispose_engine(engine)


def agents(settings: Settings, sessions: Sessions) -> AgentService:
    verifier = build_verifier(settings.tweet_verifier, settings.oembed_url, settings.oembed_timeout_seconds)
    return AgentService(sessions, verifier, settings.platform_handle)


def actions(settings: Settings, sessions: Sessions) -> OperatorActions:
    """What ``admin verify|warn|shutdown`` do, as the console does it: the service acts, the audit log records."""
    events = EventBus()
    return OperatorActions(
        sessions,
        agents(settings, sessions),
        operator_desk(settings, sessions),
        ModerationService(sessions, events),
        AuditLog(sessions),
    )


def operator_desk(settings: Settings, sessions: Sessions) -> OperatorDesk:
    """The operator's side of warn/shutdown, on the store alone: its StreamService has no node URL, no RTMP server
    attached and nothing playing, so when no node is running ``apply_unnoticed`` ends the session in the store
    (and revokes the agent's stream keys) and touches nothing a node holds."""
    events = EventBus()
    ledger = LedgerService(
        sessions,
        events,
        dialect=make_url(settings.effective_database_url).get_dialect().name,
        config_name=settings.token_config,
        chat_gate=ModerationService(sessions, events),
    )
    streams = StreamService(
        sessions,
        agents(settings, sessions),
        LiveRegistry(),
        events,
        publishers=Publishers(),
        tokens=ledger,
        media=Playback(settings.data_dir / "recordings"),
    )
    # Not started: it only sends (a command never binds the SQLite store's socket, the running server does).
    return OperatorDesk(
        sessions, events, streams, nudges.for_store(make_url(settings.effective_database_url), sessions)
    )


async def verified_before(sessions: Sessions, agent_name: str) -> bool | None:
    """Whether the named agent was already verified (None: no such agent), read before ``operator_verify``."""
    from sqlalchemy import select

    from retake.store.tables import Agent, User

    async with sessions() as db:
        found: bool | None = await db.scalar(
            select(Agent.verified).join(User, User.id == Agent.user_id).where(User.username_key == agent_name.lower())
        )
        return found


async def announce_verified(settings: Settings, sessions: Sessions, agent_id: str) -> bool:
    """Push's ``verification.completed`` for a verification the operator made from the command line. There is
    no node here (no bus, no socket), so the event goes straight into the durable outbox, where a running
    node's delivery worker finds it on its next poll: webhooks get it; the agent socket does not (it is fed by
    a node's bus). True when a webhook row was written."""
    from sqlalchemy import select

    from retake.store.tables import Agent
    from retake.webhooks.envelope import encode, envelope
    from retake.webhooks.outbox import Outbox, RetryPolicy

    async with sessions() as db:
        user_id = await db.scalar(select(Agent.user_id).where(Agent.id == agent_id))
    if user_id is None:
        return False
    data = {"userDbId": user_id, "agent_id": agent_id, "verified": True, "verified_via": "operator"}
    body = envelope("verification.completed", data)
    dialect = make_url(_database_url(settings)).get_backend_name()
    outbox = Outbox(sessions, dialect, RetryPolicy())
    return await outbox.enqueue(user_id, body["type"], body["id"], encode(body)) is not None
