"""SQL statements and CPU per webhook delivery, in one process, so the figure holds on a busy machine.

The app runs under ``asgi_lifespan`` on a throwaway SQLite database with ``--agents`` agents, each with a webhook
on an aiohttp receiver in this process. A fan sends ``--count`` chat lines at ``--rate`` per second (low by
default: one event per endpoint at a time, so nothing batches and each delivery pays its own round trips), then
the same again with the webhooks deleted. The difference in SQL statements (every cursor execute) and in this
process's CPU (all threads; the receiver and the HTTP client included, so an upper bound of the node's share),
divided by the deliveries, is the cost of a delivery. Run: ``python -m bench.webhook_cost [--count 200 --rate 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.harness import WALLET, free_port, machine_line


class Counts:
    def __init__(self) -> None:
        self.statements = 0
        self.hooks = 0
        self.wanted = 0
        self.all_in = asyncio.Event()

    def count_statement(self, *_args: Any, **_kwargs: Any) -> None:
        self.statements += 1

    def snapshot(self) -> tuple[float, int]:
        times = os.times()
        return times.user + times.system, self.statements


async def _load(http: httpx.AsyncClient, fan: str, targets: list[str], count: int, rate: float) -> None:
    async def one(i: int) -> None:
        body = {"message": f"cost {i}", "destination_user_id": targets[i % len(targets)]}
        answer = await http.post(
            "/api/v1/agent/stream/chat/send", json=body, headers={"Authorization": f"Bearer {fan}"}
        )
        answer.raise_for_status()

    start, tasks = time.perf_counter(), []
    for i in range(count):
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        tasks.append(asyncio.ensure_future(one(i)))
    await asyncio.gather(*tasks)


async def run(args: argparse.Namespace, counts: Counts) -> str:
    from retake.config import Settings
    from retake.server.app import create_app

    async def hook(request: web.Request) -> web.Response:
        if json.loads(await request.read())["type"] == "chat.message":
            counts.hooks += 1
            if counts.hooks >= counts.wanted:
                counts.all_in.set()
        return web.Response(text="ok")

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    runner = web.AppRunner(receiver)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    tmp = Path(tempfile.mkdtemp(prefix="retake-webhook-cost-"))
    settings = Settings(
        data_dir=tmp / "data",
        database_url=f"sqlite+aiosqlite:///{tmp / 'retake.db'}",
        public_url="http://testserver",
        oembed_url="http://127.0.0.1:9/",
        register_rate="1000/minute",
        chat_rate="100000/10seconds",
        rtmp_enabled=False,
        webhook_allow_private=True,
        max_inflight_requests=0,
        max_inflight_per_ip=0,
    )
    try:
        async with LifespanManager(create_app(settings)) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:

                async def register(name: str) -> dict[str, Any]:
                    body = {"agent_name": name, "agent_description": "cost", "wallet_address": WALLET, "ticker": "CST"}
                    answer = await http.post("/api/v1/agent/register", json=body)
                    answer.raise_for_status()
                    registered: dict[str, Any] = answer.json()
                    return registered

                fan = (await register("CostFan"))["access_token"]
                agents = [await register(f"CostAgent{i}") for i in range(args.agents)]
                auths = [{"Authorization": f"Bearer {a['access_token']}"} for a in agents]
                hook_body = {"url": f"http://127.0.0.1:{port}/hook", "events": ["chat.message"]}
                for auth in auths:
                    (await http.put("/api/v1/agent/webhook", json=hook_body, headers=auth)).raise_for_status()
                targets = [a["userDbId"] for a in agents]
                await _load(http, fan, targets, 50, args.rate * 5)  # warm-up
                await asyncio.sleep(3)  # its deliveries are in before counting starts
                counts.hooks, counts.wanted = 0, args.count
                counts.all_in.clear()
                cpu0, sql0 = counts.snapshot()
                await _load(http, fan, targets, args.count, args.rate)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(counts.all_in.wait(), 60)
                await asyncio.sleep(1)
                cpu1, sql1 = counts.snapshot()
                delivered = counts.hooks
                for auth in auths:
                    await http.delete("/api/v1/agent/webhook", headers=auth)
                await asyncio.sleep(0.5)
                cpu2, sql2 = counts.snapshot()
                await _load(http, fan, targets, args.count, args.rate)
                await asyncio.sleep(1)
                cpu3, sql3 = counts.snapshot()
    finally:
        await runner.cleanup()
    extra_cpu, extra_sql = (cpu1 - cpu0) - (cpu3 - cpu2), (sql1 - sql0) - (sql3 - sql2)
    per = max(1, delivered)
    return (
        f"{delivered}/{args.count} delivered at {args.rate:g}/s; CPU {cpu1 - cpu0:.2f} s with webhooks, "
        f"{cpu3 - cpu2:.2f} s without → {extra_cpu / per * 1000:.2f} ms per delivery; SQL statements "
        f"{sql1 - sql0} with, {sql3 - sql2} without → {extra_sql / per:.1f} per delivery"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=200, help="chat lines per phase")
    parser.add_argument("--rate", type=float, default=10.0, help="chat lines per second")
    parser.add_argument("--agents", type=int, default=10)
    args = parser.parse_args(argv)
    counts = Counts()  # its Event is made before the loop runs; asyncio binds it on first use (3.10+)
    event.listen(Engine, "before_cursor_execute", counts.count_statement)
    print(machine_line())
    print(asyncio.run(run(args, counts)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
