"""Push to agents: event → webhook delivery latency and event → agent-socket latency at a fixed event rate.

One ``retake serve`` node (SQLite by default, ``--postgres`` for a throwaway PostgreSQL database); ``--agents``
agents, each with a webhook on a local aiohttp receiver in this process and an agent socket (Socket.IO with
``auth: {token}``). A fan sends chat messages round-robin to the agents at ``--rate`` per second (open loop) for
``--seconds``. Latency runs from the comment's stored ``timestamp`` (the server's clock, this machine, ms) to
the moment the webhook POST / the ``agent_event`` arrives here.

CPU per delivery: the same chat load is run twice, with the webhooks set and then deleted (sockets stay), and
the server's extra CPU is divided by the deliveries. Run: ``python -m bench.webhooks [--postgres]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import socketio
from aiohttp import web

from bench import looplag
from bench.harness import (
    WALLET,
    CpuMeter,
    free_port,
    machine_line,
    percentile,
    postgres_database,
    send_offsets,
    start_node,
    stop_node,
)

PUSH_ENV = {"RETAKE_WEBHOOK_ALLOW_PRIVATE": "1", "RETAKE_RTMP_ENABLED": "false"}


def _event_ms(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000


class Sink:
    """The webhook receiver and socket listener: latency samples keyed by chat id."""

    def __init__(self) -> None:
        self.webhook_ms: dict[str, float] = {}
        self.socket_ms: dict[str, float] = {}
        self.port = free_port()

    async def hook(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if body["type"] == "chat.message":
            self.webhook_ms[body["data"]["_id"]] = time.time() * 1000 - _event_ms(body["data"]["timestamp"])
        return web.Response(text="ok")

    async def on_socket(self, body: Any = None) -> None:
        if isinstance(body, dict) and body.get("type") == "chat.message":
            self.socket_ms[body["data"]["_id"]] = time.time() * 1000 - _event_ms(body["data"]["timestamp"])


async def _register(http: httpx.AsyncClient, base: str, name: str) -> dict[str, Any]:
    body = {"agent_name": name, "agent_description": "bench", "wallet_address": WALLET, "ticker": "BNCH"}
    answer = await http.post(f"{base}/api/v1/agent/register", json=body)
    answer.raise_for_status()
    registered: dict[str, Any] = answer.json()
    return registered


async def _load(http: httpx.AsyncClient, base: str, fan: str, targets: Sequence[str], rate: float, secs: float) -> int:
    async def send(i: int) -> bool:
        body = {"message": f"bench {i}", "destination_user_id": targets[i % len(targets)]}
        url, auth = f"{base}/api/v1/agent/stream/chat/send", {"Authorization": f"Bearer {fan}"}
        try:
            return (await http.post(url, json=body, headers=auth)).status_code == 200
        except httpx.HTTPError:  # a keep-alive connection closed under us: counted as not sent
            return False

    start = time.monotonic()
    tasks = []
    for i, offset in enumerate(send_offsets(rate, secs)):
        await asyncio.sleep(max(0.0, start + offset - time.monotonic()))
        tasks.append(asyncio.ensure_future(send(i)))
    return sum(await asyncio.gather(*tasks))


def _load_sync(base: str, fan: str, targets: Sequence[str], rate: float, secs: float) -> int:
    """``_load`` in a child process: the sender's HTTP client work does not delay the receiver's clock here (in
    one process, the bench's own loop lagged up to seconds on a busy machine and that counted as latency)."""

    async def go() -> int:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as http:
            return await _load(http, base, fan, targets, rate, secs)

    return asyncio.run(go())


def _row(name: str, samples: dict[str, float], sent: int) -> str:
    values = list(samples.values())
    p50, p99, top = percentile(values, 50), percentile(values, 99), max(values, default=float("nan"))
    return f"| {name} | {len(values)}/{sent} | {p50:.1f} | {p99:.1f} | {top:.1f} |"


async def run(args: argparse.Namespace, base: str, pid: int) -> list[str]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as sender:
        return await _run(args, base, pid, sender)


async def _run(args: argparse.Namespace, base: str, pid: int, sender: ProcessPoolExecutor) -> list[str]:
    loop = asyncio.get_running_loop()

    async def load(fan: str, targets: Sequence[str], rate: float, secs: float) -> int:
        return await loop.run_in_executor(sender, _load_sync, base, fan, list(targets), rate, secs)

    sink = Sink()
    app = web.Application()
    app.router.add_post("/hook", sink.hook)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", sink.port).start()
    sockets: list[socketio.AsyncClient] = []
    monitor = looplag.Monitor()
    try:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as http:
            fan = (await _register(http, base, "BenchFan"))["access_token"]
            agents = [await _register(http, base, f"BenchAgent{i}") for i in range(args.agents)]
            for agent in agents:
                auth = {"Authorization": f"Bearer {agent['access_token']}"}
                hook = {"url": f"http://127.0.0.1:{sink.port}/hook", "events": ["chat.message"]}
                (await http.put(f"{base}/api/v1/agent/webhook", json=hook, headers=auth)).raise_for_status()
                sio = socketio.AsyncClient(reconnection=False)
                sio.on("agent_event", sink.on_socket)
                await sio.connect(base, transports=["websocket"], auth={"token": agent["access_token"]})
                sockets.append(sio)
            targets = [a["userDbId"] for a in agents]
            await load(fan, targets, 10, 2)  # warm-up
            await asyncio.sleep(2)
            sink.webhook_ms.clear()
            sink.socket_ms.clear()
            meter = CpuMeter({"server": [pid]})
            ticking = monitor.start()  # the bench's own loop: a late receiver would look like a late server
            before = meter.snapshot()
            profiler = _profile(args.profile, pid, args.seconds)
            sent = await load(fan, targets, args.rate, args.seconds)
            if profiler is not None:
                await asyncio.to_thread(profiler.wait)
            await asyncio.sleep(3)  # the tail of deliveries
            with_hooks = meter.delta(before, meter.snapshot())
            ticking.cancel()
            monitor.stop()
            delivered = len(sink.webhook_ms)
            lines = ["| path | received | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
            lines += [_row("event → webhook", sink.webhook_ms, sent)]
            lines += [_row("event → agent socket", sink.socket_ms, sent)]
            for agent in agents:
                auth = {"Authorization": f"Bearer {agent['access_token']}"}
                await http.delete(f"{base}/api/v1/agent/webhook", headers=auth)
            before = meter.snapshot()
            sent_plain = await load(fan, targets, args.rate, args.seconds)
            await asyncio.sleep(3)
            without = meter.delta(before, meter.snapshot())
    finally:
        for sio in sockets:
            with contextlib.suppress(Exception):
                await sio.disconnect()
        await runner.cleanup()
    window = args.seconds + 3
    lines += looplag.describe("bench (receiver)", monitor.summary())
    extra_ms = (with_hooks["server"] - without["server"]) / 100 * window * 1000
    lines += [
        "",
        f"server CPU: {with_hooks['server']:.1f} % of a core with webhooks, {without['server']:.1f} % without "
        f"(same {args.rate:g} chat lines/s, sockets on; {sent_plain} sent) → "
        f"{extra_ms / max(1, delivered):.2f} ms CPU per webhook delivery; machine busy "
        f"{with_hooks['machine busy']:.0f} % / {without['machine busy']:.0f} %",
    ]
    return lines


def _profile(path: str | None, pid: int, seconds: float) -> subprocess.Popen[bytes] | None:
    """``--profile``: py-spy samples the server during the measured load with webhooks (raw folded stacks)."""
    if not path:
        return None
    py_spy = Path(sys.executable).with_name("py-spy")
    argv = [str(py_spy), "record", "-p", str(pid), "-d", f"{seconds:.0f}", "-r", "200", "-f", "raw", "-o", path]
    return subprocess.Popen([*argv, "--nonblocking"], stdout=subprocess.DEVNULL)


@contextlib.contextmanager
def _database(postgres: bool) -> Iterator[str | None]:
    if not postgres:
        yield None
        return
    with postgres_database("retake_bench_push") as url:
        yield url


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=100.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--profile", help="write py-spy folded stacks of the server under load to this file")
    parser.add_argument("--loop-lag", help="write the server's event-loop stalls (bench/looplag.py) to this file")
    parser.add_argument("--keep", help="folder for the node (its log stays there)")
    args = parser.parse_args(argv)
    print(machine_line())
    with tempfile.TemporaryDirectory() as tmp, _database(args.postgres) as url:
        tmp = args.keep or tmp
        env = dict(PUSH_ENV)
        if url:
            env["RETAKE_DATABASE_URL"] = url
        argv = looplag.server_argv(str(Path(args.loop_lag).resolve())) if args.loop_lag else None
        node = start_node("push", Path(tmp), env, argv=argv)
        try:
            lines = asyncio.run(run(args, node.base, node.pid))
        finally:
            stop_node(node)
        if args.loop_lag:
            lines += looplag.describe("server", json.loads(Path(args.loop_lag).read_text()))
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"\n{backend}, {args.agents} agents, {args.rate:g} events/s for {args.seconds:g} s\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
