"""A recording Socket.IO test client (python-socketio's AsyncClient) and small REST helpers."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from typing import Any

import httpx
import socketio

from tests.support import VALID_WALLET

Event = tuple[str, Any]
_names = itertools.count()


class Probe:
    """Connects over the WebSocket transport and keeps every event it receives, in order."""

    def __init__(self) -> None:
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[Event] = []
        self._arrived = asyncio.Event()

        @self.sio.on("*")
        async def record(event: str, *args: Any) -> None:
            self.events.append((event, args[0] if len(args) == 1 else list(args)))
            self._arrived.set()

    async def connect(self, base: str, query: str = "") -> Probe:
        await self.sio.connect(base + query, transports=["websocket"], wait_timeout=10)
        return self

    async def join(self, room: str) -> None:
        await self.sio.emit("joinRoom", {"roomId": room})
        await self.wait_for(lambda e: e == ("joinedRoom", {"roomId": room}))

    async def wait_for(self, match: Callable[[Event], bool], seconds: float = 10.0) -> Event:
        """The first recorded event that matches (earlier ones included), waiting up to ``seconds``."""
        async with asyncio.timeout(seconds):
            while True:
                for event in self.events:
                    if match(event):
                        return event
                self._arrived.clear()
                await self._arrived.wait()

    def messages(self, **fields: Any) -> list[dict[str, Any]]:
        return [
            data
            for name, data in self.events
            if name == "message" and isinstance(data, dict) and all(data.get(k) == v for k, v in fields.items())
        ]

    async def close(self) -> None:
        await self.sio.disconnect()


class Agent:
    def __init__(self, body: dict[str, Any], name: str) -> None:
        self.name = name
        self.token: str = body["access_token"]
        self.user_id: str = body["userDbId"]
        self.headers = {"Authorization": f"Bearer {self.token}"}


async def register(http: httpx.AsyncClient, prefix: str = "rt") -> Agent:
    name = f"{prefix}_{os.getpid()}_{next(_names)}"
    body = {"agent_name": name, "wallet_address": VALID_WALLET, "ticker": "RT"}
    response = await http.post("/api/v1/agent/register", json=body)
    assert response.status_code == 200, response.text
    return Agent(response.json(), name)


def socket_message(sender: Agent, streamer_id: str, text: str, **extra: Any) -> dict[str, Any]:
    """The payload real clients emit (API.md, Socket.IO)."""
    return {
        "type": "message",
        "session_id": None,
        "streamer_id": streamer_id,
        "sender_token": sender.token,
        "sender_user_id": sender.user_id,
        "sender_username": sender.name,
        "text": text,
        "timestamp": "2026-11-27T14:20:00.000Z",
        **extra,
    }
