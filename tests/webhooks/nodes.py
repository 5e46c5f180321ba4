"""Real ``retake serve`` processes for the crash and scale-out tests, with push settings for a local receiver."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.conftest import Server, start_server
from tests.support import VALID_WALLET, new_db_name, pg_create, pg_drop

PUSH_ENV = {
    "RETAKE_WEBHOOK_ALLOW_PRIVATE": "1",
    "RETAKE_WEBHOOK_BACKOFF_BASE_SECONDS": "0.2",
    "RETAKE_WEBHOOK_BACKOFF_MAX_SECONDS": "1",
    "RETAKE_WEBHOOK_POLL_SECONDS": "0.5",
    "RETAKE_WEBHOOK_LEASE_SECONDS": "6",
    "RETAKE_RTMP_ENABLED": "false",
}


@contextmanager
def database(backend: str, tmp: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'shared.db'}"
        return
    name = new_db_name("retake_push")
    try:
        yield pg_create(name)
    finally:
        pg_drop(name)


async def start(tmp: Path, oembed_url: str, database_url: str, **env: str) -> Server:
    """Started in a thread: the test's receiver keeps answering while the node boots."""

    def boot() -> Server:
        tmp.mkdir(parents=True, exist_ok=True)
        return start_server(tmp, oembed_url, database_url, **PUSH_ENV, **env)

    return await asyncio.to_thread(boot)


class Agent:
    def __init__(self, body: dict[str, Any]) -> None:
        self.token: str = body["access_token"]
        self.user_id: str = body["userDbId"]
        self.headers = {"Authorization": f"Bearer {self.token}"}


async def register(http: httpx.AsyncClient, base: str, name: str) -> Agent:
    body = {"agent_name": name, "agent_description": "push test", "wallet_address": VALID_WALLET, "ticker": "PSH"}
    answer = await http.post(f"{base}/api/v1/agent/register", json=body)
    assert answer.status_code == 200, answer.text
    return Agent(answer.json())


async def say(http: httpx.AsyncClient, base: str, sender: Agent, to: Agent, text: str) -> str:
    answer = await http.post(
        f"{base}/api/v1/agent/stream/chat/send",
        json={"message": text, "destination_user_id": to.user_id},
        headers=sender.headers,
    )
    assert answer.status_code == 200, answer.text
    chat_id: str = answer.json()["chat_event_id"]
    return chat_id
