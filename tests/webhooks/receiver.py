"""A real HTTP webhook receiver on 127.0.0.1 (aiohttp): records every delivery, answers what the test says,
and can be taken down and brought back on the same port."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support import free_port


@dataclass(frozen=True)
class Received:
    event_id: str
    signature: str
    raw: bytes
    at: float  # time.monotonic()

    @property
    def body(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.received: list[Received] = []
        self.status = 200
        self.hold: asyncio.Event | None = None  # when set, requests wait for it before answering
        self._arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.received.append(
            Received(
                request.headers.get("Retake-Event-Id", ""),
                request.headers.get("Retake-Signature", ""),
                raw,
                time.monotonic(),
            )
        )
        self._arrived.set()
        if self.hold is not None:
            await self.hold.wait()
        return web.Response(status=self.status, text="ok")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def of_type(self, kind: str) -> list[Received]:
        return [r for r in self.received if r.body["type"] == kind]

    async def wait_for(self, match: Callable[[list[Received]], bool], seconds: float = 15.0) -> None:
        async with asyncio.timeout(seconds):
            while not match(self.received):
                self._arrived.clear()
                await self._arrived.wait()
