"""Small state kept next to the credentials (``state.json``): the platform skill version last seen (the
skill's version check), the heartbeat's comment cursor, and which operator warnings were already reported.
It is a cache: losing it only means a skill change or a warning is reported once more."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from retake.agent.credentials import read_json, state_path, write_private_json

MAX_SEEN_WARNINGS = 200


class AgentState:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or state_path("state.json")
        self.data: dict[str, Any] = read_json(self.path)

    def save(self) -> None:
        with contextlib.suppress(OSError):  # a read-only home must not stop a stream
            write_private_json(self.path, self.data)

    # skill version check
    def skill_version(self, base_url: str) -> str | None:
        seen = self.data.get("skill_versions", {})
        value = seen.get(base_url) if isinstance(seen, dict) else None
        return str(value) if value is not None else None

    def set_skill_version(self, base_url: str, version: str) -> None:
        seen = self.data.setdefault("skill_versions", {})
        if not isinstance(seen, dict):
            seen = self.data["skill_versions"] = {}
        seen[base_url] = version

    # heartbeat cursor
    @property
    def heartbeat_last_id(self) -> str | None:
        value = self.data.get("heartbeat_last_comment_id")
        return str(value) if value is not None else None

    @heartbeat_last_id.setter
    def heartbeat_last_id(self, value: str | None) -> None:
        self.data["heartbeat_last_comment_id"] = value

    # operator warnings already reported
    def unseen_warnings(self, warnings: Iterable[Any]) -> list[dict[str, Any]]:
        """The warnings (``{id, kind, reason, …}``) not reported before, oldest first; marks them seen."""
        seen = [str(x) for x in self.data.get("seen_warnings", []) if x is not None]
        fresh: list[dict[str, Any]] = []
        for item in warnings:
            warning = item if isinstance(item, dict) else {"reason": str(item)}
            key = warning_key(warning)
            if key not in seen:
                seen.append(key)
                fresh.append(warning)
        self.data["seen_warnings"] = seen[-MAX_SEEN_WARNINGS:]
        fresh.reverse()  # the platform lists newest first
        return fresh


def warning_key(warning: dict[str, Any]) -> str:
    if warning.get("id") is not None:
        return str(warning["id"])
    return f"{warning.get('kind', '')}|{warning.get('created_at', '')}|{warning.get('reason', '')}"


def warning_text(warning: dict[str, Any]) -> str:
    kind = str(warning.get("kind") or "warn")
    reason = str(warning.get("reason") or warning.get("message") or "").strip()
    head = "the operator shut this stream down" if kind == "shutdown" else "shutdown warning from the platform"
    return f"{head}: {reason}" if reason else head
