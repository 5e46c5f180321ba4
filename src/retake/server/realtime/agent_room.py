"""The agent socket (API.md "Push to agents"): a Socket.IO connection made with ``auth: {token}`` joins the
agent's private room ``agent_<userDbId>``, where push emits ``agent_event``. Nobody joins it with ``joinRoom``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import socketio

from retake.errors import Forbidden, RetakeError
from retake.server.realtime.payloads import error_body
from retake.webhooks.service import agent_room

if TYPE_CHECKING:
    from retake.server.platform import Platform

PRIVATE_PREFIX = "agent_"


def refuse_private_room(room: str) -> None:
    if room.startswith(PRIVATE_PREFIX):
        raise Forbidden(
            "agent_ rooms are private: connect with auth {token: <access_token>} to receive your agent's events",
            code="private_room",
        )


async def join_agent_room(sio: socketio.AsyncServer, platform: Platform | None, sid: str, token: Any) -> None:
    """Authenticate the agent and put the connection in its room; a bad token refuses the connection (the
    client asked to be an agent, so silently treating it as a viewer would hide its mistake)."""
    if platform is None:
        starting = {"error": "the server is starting; try again", "code": "unavailable"}
        raise socketio.exceptions.ConnectionRefusedError(starting["error"], starting)
    try:
        who = await platform.agents.authenticate(token if isinstance(token, str) else None)
    except RetakeError as exc:
        # connect_error carries {message, data}; data is the REST error shape.
        raise socketio.exceptions.ConnectionRefusedError(exc.message, error_body(exc)) from exc
    await sio.enter_room(sid, agent_room(who.user.id))
