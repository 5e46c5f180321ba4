"""Platform events (``retake.events.PlatformEvent``, what services publish) → agent events.

Each platform event names a room and carries a domain record; the agent event's ``data`` is that record's
REST/Socket.IO payload, made by the edge's encoder (``Encode``: handed over by the assembly, since the wire names
are the edge's), so a webhook receiver, a socket listener and a REST poller read the same shapes. Only agents get
agent events: a viewer's room or a token without an agent maps to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from retake.events import PlatformEvent

# Chat lines (the comment shape); moderation notices (delete, jail, …) on the same channel are not messages.
COMMENT_TYPES = frozenset({"message", "tip", "trade", "system"})
MENTION_RE = re.compile(r"@([A-Za-z0-9_-]{3,32})")
MAX_MENTIONS = 5  # a line naming fifty agents is spam; the first few are notified
OPERATOR_TYPES = {"warn": "operator.warning", "shutdown": "operator.shutdown"}
# Platform events that exist only so push can see them (the relay still emits them to their live_ room).
STREAM_ENDED = "session_ended"
ENCODER_DISCONNECTED = "encoder_disconnected"
OPERATOR_ACTION = "operator_action"
AGENT_VERIFIED = "agent_verified"
RAID = "raid"  # chat/raids.py: one event, pushed to both agents
AGENT_EVENT = "agent_event"  # what this package emits itself: never mapped again


Encode = Callable[[PlatformEvent], dict[str, Any]]  # a platform event's JSON payload (server/realtime/wire.py)


@dataclass(frozen=True)
class AgentPush:
    """The record of the ``agent_event`` this package publishes: the envelope as it is also signed and sent."""

    envelope: dict[str, Any]


@dataclass(frozen=True)
class AgentEvent:
    user_id: str  # the agent's userDbId
    type: str
    data: dict[str, Any]


class Lookups(Protocol):
    async def agent_users(self, user_ids: set[str]) -> set[str]: ...

    async def agents_named(self, name_keys: set[str]) -> dict[str, str]: ...

    async def agent_of_token(self, token_address: str) -> str | None: ...


def _live_room_user(room: str) -> str | None:
    return room[len("live_") :] if room.startswith("live_") else None


async def agent_events(event: PlatformEvent, lookups: Lookups, encode: Encode) -> list[AgentEvent]:
    if event.name == "message":
        return await _chat(event, encode(event), lookups)
    if event.name == "rawtrade":
        payload = encode(event)
        owner = await lookups.agent_of_token(str(payload.get("token_address", "")))
        return [AgentEvent(owner, "trade.own_token", payload)] if owner else []
    simple = {
        "tip_received": "tip.received",
        "user_followed": "follower.new",
        "session_started": "stream.live",
        STREAM_ENDED: "stream.offline",
        ENCODER_DISCONNECTED: "encoder.disconnected",
        AGENT_VERIFIED: "verification.completed",
        "clip_created": "clip.created",  # clips/service.py CLIP_CREATED
    }
    user = _live_room_user(event.room)
    if user is None:
        return []
    if event.name == RAID:
        return await _raid(user, encode(event), lookups)
    if event.name == OPERATOR_ACTION:
        payload = encode(event)
        kind = OPERATOR_TYPES.get(str(payload.get("kind")))
        return [AgentEvent(user, kind, payload)] if kind else []
    kind = simple.get(event.name)
    if kind is None or not await lookups.agent_users({user}):
        return []
    return [AgentEvent(user, kind, encode(event))]


async def _raid(raider: str, payload: dict[str, Any], lookups: Lookups) -> list[AgentEvent]:
    """``raid.outgoing`` to the raider (the room's user), ``raid.incoming`` to the target (named in the payload)."""
    target = payload.get("target")
    target_id = str(target.get("userDbId", "")) if isinstance(target, dict) else ""
    agents = await lookups.agent_users({raider, target_id} - {""})
    found = [AgentEvent(raider, "raid.outgoing", payload)] if raider in agents else []
    if target_id in agents and target_id != raider:
        found.append(AgentEvent(target_id, "raid.incoming", payload))
    return found


async def _chat(event: PlatformEvent, payload: dict[str, Any], lookups: Lookups) -> list[AgentEvent]:
    if payload.get("type") not in COMMENT_TYPES:
        return []
    found: list[AgentEvent] = []
    if await lookups.agent_users({event.room}):
        found.append(AgentEvent(event.room, "chat.message", payload))
    text = payload.get("text")
    if isinstance(text, str) and "@" in text:
        names = {m.lower() for m in MENTION_RE.findall(text)[:MAX_MENTIONS]}
        named = await lookups.agents_named(names) if names else {}
        for user_id in sorted(set(named.values()) - {event.room}):
            found.append(AgentEvent(user_id, "chat.message", payload))
    return found
