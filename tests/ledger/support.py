"""Helpers for ledger tests over the API: launch a token, fund a viewer, snapshot every ledger row."""

from __future__ import annotations

from typing import Any

import base58
import httpx
from sqlalchemy import select

from retake.events import PlatformEvent
from retake.server.platform import Platform
from retake.store.tables import ChatEvent, Tip, Token, TokenBalance, Trade, Wallet

SOL = 1_000_000_000


def platform_of(client: httpx.AsyncClient) -> Platform:
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    return platform


def is_base58_key(value: str, size: int = 32) -> bool:
    return len(base58.b58decode(value)) == size


async def launch(client: httpx.AsyncClient, register: Any) -> tuple[Any, str]:
    """A verified agent that started a stream, and its token address."""
    agent = await register()
    await platform_of(client).agents.operator_verify(agent.name)
    start = await client.post("/api/v1/agent/stream/start", headers=agent.headers)
    assert start.status_code == 200, start.text
    address: str = start.json()["token"]["tokenAddress"]
    assert address
    return agent, address


async def funded_viewer(client: httpx.AsyncClient, register: Any, lamports: int = 10 * SOL) -> Any:
    viewer = await register()
    response = await client.post("/api/v1/wallet/airdrop", json={"lamports": str(lamports)}, headers=viewer.headers)
    assert response.status_code == 200, response.text
    assert response.json()["sol"] == str(lamports)
    return viewer


async def swap(client: httpx.AsyncClient, viewer: Any, address: str, **body: Any) -> httpx.Response:
    return await client.post(f"/api/v1/tokens/{address}/swap", json=body, headers=viewer.headers)


class Recorder:
    def __init__(self) -> None:
        self.events: list[PlatformEvent] = []

    async def __call__(self, event: PlatformEvent) -> None:
        self.events.append(event)

    def named(self, name: str) -> list[PlatformEvent]:
        return [e for e in self.events if e.name == name]


def record_events(client: httpx.AsyncClient) -> Recorder:
    recorder = Recorder()
    platform_of(client).events.subscribe(recorder)
    return recorder


async def snapshot(client: httpx.AsyncClient) -> dict[str, list[tuple[Any, ...]]]:
    """Every ledger row (and chat events), as plain tuples, to prove a refused request changed nothing."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    async with platform_of(client).sessions() as db:
        for table in (Wallet, TokenBalance, Token, Trade, Tip, ChatEvent):
            columns = [c.name for c in table.__table__.columns]  # type: ignore[attr-defined]
            rows = (await db.execute(select(table))).scalars().all()
            out[table.__tablename__] = sorted(
                (tuple(repr(getattr(row, c)) for c in columns) for row in rows), key=lambda r: r
            )
    return out
