"""What the console pages show: read-only queries of the store and of this node's live state.

Every action goes through the domain services (``actions.py``); only these reads are the console's own. Live
streams come from the directory (the same list the home page shows), with the node and the stream status
(uptime, viewers and ``health`` when the media layer provides it) the agents themselves read.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from retake.accounts.agents import AuthedAgent
from retake.media.health import HealthReport
from retake.principal import Principal
from retake.server.platform import Platform
from retake.store.tables import Agent, ChatEvent, StreamSession, User
from retake.store.types import iso

Sessions = async_sessionmaker[AsyncSession]
RECENT_MESSAGES = 100
AGENTS_LISTED = 50


@dataclass(frozen=True)
class LiveRow:
    username: str
    user_id: str
    session_id: str
    title: str
    thumbnail_url: str
    viewers: int
    uptime_seconds: int
    node: str
    health: dict[str, Any] | None


@dataclass(frozen=True)
class AgentRow:
    username: str
    user_id: str
    agent_id: str
    verified: bool
    verified_via: str
    suspended_at: str | None
    is_live: bool
    created_at: str


@dataclass(frozen=True)
class MessageRow:
    chat_event_id: str
    room: str  # the streamer's name
    sender: str
    sender_id: str
    sender_kind: str
    own_room: bool  # written by the streamer itself: it cannot be jailed in its own chat
    kind: str
    text: str
    session_id: str | None  # jail needs the session the message was written in
    created_at: str


def _health(report: HealthReport | None) -> dict[str, Any] | None:
    """The media layer's health of a stream this node plays (None elsewhere: the holder measures it)."""
    if report is None:
        return None
    shown: dict[str, Any] = {f.name: getattr(report, f.name) for f in fields(report) if f.name != "warnings"}
    shown["warnings"] = [{"kind": w.kind, "reason": w.reason} for w in report.warnings]
    return shown


def _field(status: Any, name: str, default: int) -> int:
    value = status.get(name, default) if isinstance(status, dict) else getattr(status, name, default)
    return int(value or 0)


async def live_streams(platform: Platform) -> list[LiveRow]:
    items = await platform.directory.active_sessions()
    if not items:
        return []
    ids = [item.session_id for item in items]
    async with platform.sessions() as db:
        rows = (
            await db.execute(
                select(StreamSession.id, StreamSession.media_node, Agent, User)
                .join(User, User.id == StreamSession.user_id)
                .join(Agent, Agent.user_id == User.id)
                .where(StreamSession.id.in_(ids))
            )
        ).all()
    found = {session_id: (node, agent, user) for session_id, node, agent, user in rows}
    out = []
    for item in items:
        if item.session_id not in found:
            continue  # not an agent's session
        node, agent, user = found[item.session_id]
        status = await platform.streams.status(AuthedAgent(agent_id=agent.id, user=Principal.of(user)))
        out.append(
            LiveRow(
                username=item.username,
                user_id=item.user_id,
                session_id=item.session_id,
                title=item.title or "",
                thumbnail_url=item.thumbnail_url or "",
                viewers=_field(status, "viewers", item.viewer_count),
                uptime_seconds=_field(status, "uptime_seconds", 0),
                node=node or platform.settings.public_url,
                health=_health(platform.media.health(user.id)),
            )
        )
    return out


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def agents(platform: Platform, query: str) -> list[AgentRow]:
    """Agents whose name contains ``query`` (shortest names first), or the newest when it is empty."""
    statement = select(Agent, User).join(User, User.id == Agent.user_id)
    query = query.strip()[:64]
    if query:
        pattern = f"%{_escape_like(query.lower())}%"
        statement = statement.where(User.username_key.like(pattern, escape="\\")).order_by(
            func.length(User.username_key), User.username_key
        )
    else:
        statement = statement.order_by(User.created_at.desc(), User.id)
    async with platform.sessions() as db:
        rows = (await db.execute(statement.limit(AGENTS_LISTED))).all()
    live = platform.live.live_stream_ids()
    return [
        AgentRow(
            username=user.username,
            user_id=user.id,
            agent_id=agent.id,
            verified=agent.verified,
            verified_via=agent.verified_via or "",
            suspended_at=iso(agent.suspended_at),
            is_live=user.id in live,
            created_at=iso(user.created_at) or "",
        )
        for agent, user in rows
    ]


async def recent_messages(sessions: Sessions, limit: int = RECENT_MESSAGES) -> list[MessageRow]:
    """The newest messages of every chat (not deleted), newest first."""
    return await _messages(sessions, limit)


async def message(sessions: Sessions, chat_event_id: int) -> MessageRow | None:
    """One message, as the audit log names it (read before it is deleted or its author jailed)."""
    found = await _messages(sessions, 1, ChatEvent.id == chat_event_id)
    return found[0] if found else None


async def _messages(sessions: Sessions, limit: int, *where: Any) -> list[MessageRow]:
    sender = aliased(User)
    room = aliased(User)
    async with sessions() as db:
        rows = (
            await db.execute(
                select(ChatEvent, sender, room.username)
                .join(sender, sender.id == ChatEvent.sender_user_id)
                .join(room, room.id == ChatEvent.streamer_id)
                .where(ChatEvent.deleted.is_(False), *where)
                .order_by(ChatEvent.id.desc())
                .limit(limit)
            )
        ).all()
    return [
        MessageRow(
            chat_event_id=str(event.id),
            room=room_name,
            sender=author.username,
            sender_id=author.id,
            sender_kind=author.kind,
            own_room=author.id == event.streamer_id,
            kind=event.type,
            text=event.text,
            session_id=event.session_id,
            created_at=iso(event.created_at) or "",
        )
        for event, author, room_name in rows
    ]
