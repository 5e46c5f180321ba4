"""The skill's version check: before going live, fetch ``/skill.json`` and compare its ``version`` with the
one seen last time (kept next to the credentials); when it moved, fetch ``/skill.md`` again and say so.

Only the platform's own origin is asked and redirects are never followed (the skill's security boundary);
the fetched text is saved for the agent to read, never executed.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from retake.agent.async_client import AsyncRetakeClient
from retake.agent.errors import AgentError
from retake.agent.state import AgentState


@dataclass(frozen=True)
class SkillCheck:
    version: str | None
    previous: str | None
    changed: bool
    skill_md: Path | None = None
    error: str | None = None
    push: bool = False  # the platform lists the agent socket: events can be pushed instead of polled


def offers_push(info: dict[str, object]) -> bool:
    """skill.json lists ``agent_socket`` among its endpoints on servers that push agent events (skill 1.1+)."""
    endpoints = info.get("endpoints")
    return isinstance(endpoints, dict) and "agent_socket" in endpoints


async def check_skill(client: AsyncRetakeClient, state: AgentState) -> SkillCheck:
    try:
        info = await client.skill_json()
    except AgentError as exc:
        return SkillCheck(None, state.skill_version(client.base_url), False, error=str(exc))
    version = str(info.get("version") or "") or None
    previous = state.skill_version(client.base_url)
    if version is None:
        return SkillCheck(None, previous, False, error="skill.json has no version", push=offers_push(info))
    changed = previous is not None and previous != version
    saved: Path | None = None
    if changed or previous is None:
        with contextlib.suppress(AgentError, OSError):
            text = await client.skill_md()
            saved = state.path.with_name("skill.md")
            saved.write_text(text, encoding="utf-8")
    state.set_skill_version(client.base_url, version)
    state.save()
    return SkillCheck(version, previous, changed, saved, push=offers_push(info))
