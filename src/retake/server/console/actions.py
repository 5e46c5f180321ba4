"""Every operator action, for the console and for ``retake admin``: the domain service acts, the audit log
records who did what to what. The services are the ones the API uses (accounts for verify and suspension,
the operator desk for warn and shutdown, moderation for delete and jail); nothing here decides an outcome.

Roles: an admin may do everything, a moderator may warn, delete and jail (and view); the command line, run by
whoever holds the machine, acts as ``cli`` with every right.
"""

from __future__ import annotations

from dataclasses import dataclass

from retake.accounts.agents import AgentService, AgentVerification
from retake.accounts.audit import CLI_ACTOR, AuditLog
from retake.chat.moderation import ModerationService, parse_event_id
from retake.chat.operator import OperatorDesk
from retake.chat.results import Deleted, JailState
from retake.errors import Conflict, Forbidden, NotFound, ValidationFailed
from retake.principal import Principal
from retake.server.console.reads import MessageRow, Sessions, message
from retake.store.tables import Agent, OperatorAction

MODERATOR_MAY = frozenset({"warn", "delete_message", "jail"})


@dataclass(frozen=True)
class Actor:
    name: str
    role: str  # admin | moderator | cli


CLI = Actor(CLI_ACTOR, "cli")


def may(actor: Actor, action: str) -> bool:
    return actor.role in {"admin", "cli"} or (actor.role == "moderator" and action in MODERATOR_MAY)


class OperatorActions:
    def __init__(
        self,
        sessions: Sessions,
        agents: AgentService,
        desk: OperatorDesk,
        moderation: ModerationService,
        audit: AuditLog,
    ) -> None:
        self._sessions = sessions
        self._agents = agents
        self.desk = desk  # the command line also waits on it for a running node to act on a shutdown
        self._moderation = moderation
        self.audit = audit

    async def warn(self, actor: Actor, agent_name: str, reason: str) -> OperatorAction:
        self._require(actor, "warn")
        action = await self.desk.warn(agent_name, reason)
        await self.audit.record(actor.name, actor.role, "warn", agent_name, action.reason)
        return action

    async def shutdown(self, actor: Actor, agent_name: str, reason: str = "") -> OperatorAction:
        """Recorded here; every running node's operator poller closes the publisher and ends the session."""
        self._require(actor, "shutdown")
        action = await self.desk.shutdown(agent_name, reason)
        detail = f"session {action.session_id}" + (f": {action.reason}" if action.reason else "")
        await self.audit.record(actor.name, actor.role, "shutdown", agent_name, detail)
        return action

    async def verify(self, actor: Actor, agent_name: str) -> AgentVerification:
        self._require(actor, "verify")
        agent = await self._agents.operator_verify(agent_name)
        await self.audit.record(actor.name, actor.role, "verify", agent_name)
        return agent

    async def set_suspended(self, actor: Actor, agent_name: str, suspended: bool) -> Agent:
        what = "suspend" if suspended else "unsuspend"
        self._require(actor, what)
        agent = await self._agents.set_suspended(agent_name, suspended)
        await self.audit.record(actor.name, actor.role, what, agent_name)
        return agent

    async def delete_message(self, actor: Actor, chat_event_id: str) -> Deleted:
        self._require(actor, "delete_message")
        row = await self._message(chat_event_id)
        deleted = await self._moderation.delete_message(Principal.of(await self.desk.system_user()), row.chat_event_id)
        target = f"message {row.chat_event_id} by {row.sender} in {row.room}'s chat"
        await self.audit.record(actor.name, actor.role, "delete_message", target, row.text)
        return deleted

    async def jail(self, actor: Actor, chat_event_id: str) -> JailState:
        """Jail the author of a message in the chat it was written in (until the streamer unjails them)."""
        self._require(actor, "jail")
        row = await self._message(chat_event_id)
        if row.sender_kind == "system":
            raise ValidationFailed("platform notices have no author to jail", code="cannot_jail_system")
        if row.session_id is None:
            raise Conflict(
                "this message was written outside a session: nobody can be jailed for it", code="not_in_session"
            )
        state = await self._moderation.jail(Principal.of(await self.desk.system_user()), row.session_id, row.sender_id)
        detail = f"for message {row.chat_event_id}: {row.text}"
        await self.audit.record(actor.name, actor.role, "jail", f"{row.sender} in {row.room}'s chat", detail)
        return state

    async def _message(self, chat_event_id: str) -> MessageRow:
        row = await message(self._sessions, parse_event_id(chat_event_id))
        if row is None:
            raise NotFound(f"no chat message with id '{chat_event_id}'", code="chat_event_not_found")
        return row

    @staticmethod
    def _require(actor: Actor, action: str) -> None:
        if not may(actor, action):
            raise Forbidden(f"a {actor.role} may not {action.replace('_', ' ')}", code="role_forbidden")
