"""``retake agent heartbeat``: the skill's heartbeat loop as one summary for a scheduler (cron, systemd timer)
to run every few hours: am I live, what was said since the last heartbeat, how is my token doing, did the
platform warn me."""

from __future__ import annotations

from typing import Any

from retake.agent.client import RetakeClient
from retake.agent.credentials import Credentials
from retake.agent.errors import ApiError
from retake.agent.policy import newer_than, newest_id, sender_id, sender_name
from retake.agent.state import AgentState, warning_text


def _username(client: RetakeClient, user_id: str) -> str:
    return str(client.user_metadata(user_id).get("username") or "")


def heartbeat(client: RetakeClient, creds: Credentials, state: AgentState) -> dict[str, Any]:
    status = client.stream_status()
    user_id = status["userDbId"]  # whose token this is, whatever the file says
    name = creds.agent_name if creds.userDbId == user_id and creds.agent_name else _username(client, user_id)
    verified = client.verification_status()["verified"]
    comments = client.comments(user_id, limit=100)["comments"]
    last = state.heartbeat_last_id
    fresh = [c for c in newer_than(comments, last) if sender_id(c) != user_id]
    state.heartbeat_last_id = newest_id(comments, last) or "0"  # "0": a heartbeat ran, chat was empty
    token_address = status.get("token_address") or creds.token_address
    token: dict[str, Any] | None = None
    token_error: str | None = None
    if token_address:
        try:
            token = client.token_stats(token_address)
        except ApiError as exc:
            token_error = str(exc)
    warnings = state.unseen_warnings(status.get("warnings") or [])
    state.save()
    return {
        "agent": name,
        "userDbId": user_id,
        "watch_url": f"{client.base_url}/{name}",
        "verified": verified,
        "live": bool(status["is_live"]),
        "viewers": int(status["viewers"]),
        "uptime_seconds": int(status["uptime_seconds"]),
        "session_id": status.get("session_id"),
        "first_heartbeat": last is None,
        "new_comments": len(fresh),
        "latest_comments": [
            {"from": sender_name(c), "text": c.get("text", ""), "type": c.get("type", "message"), "id": c.get("_id")}
            for c in fresh[-5:]
        ],
        "token_address": token_address or None,
        "token": token,
        "token_error": token_error,
        "warnings": [{**w, "text": warning_text(w)} for w in warnings],
        "urgent": bool(warnings),
    }
