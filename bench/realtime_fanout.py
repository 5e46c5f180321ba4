"""Socket.IO fan-out: N clients in one room, chat messages sent over REST at a fixed rate; delivery latency.

Latency is measured from just before the REST call until each client receives the broadcast, on one clock (all
clients live in this process), so it includes the HTTP request, the database write and the fan-out.

    .venv/bin/python bench/realtime_fanout.py --clients 200 --messages 300 --rate 20
    .venv/bin/python bench/realtime_fanout.py --redis-url redis://127.0.0.1:6379/0   # through AsyncRedisManager
    .venv/bin/python bench/realtime_fanout.py --base http://127.0.0.1:8000           # an already running server

Without ``--base`` a ``retake serve`` is started on free ports with a throwaway data folder (SQLite).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import socketio

WALLET = "11111111111111111111111111111111"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def server(args: argparse.Namespace) -> Iterator[str]:
    if args.base:
        yield args.base
        return
    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        env = {
            **os.environ,
            "RETAKE_PORT": str(port),
            "RETAKE_RTMP_PORT": str(free_port()),
            "RETAKE_DATA_DIR": data,
            "RETAKE_REGISTER_RATE": "1000/minute",
            "RETAKE_CHAT_RATE": "100000/10seconds",
            "RETAKE_LOG_LEVEL": "warning",
        }
        if args.redis_url:
            env["RETAKE_REDIS_URL"] = args.redis_url
            env["RETAKE_REDIS_CHANNEL"] = f"bench-{uuid.uuid4().hex}"
        if args.database_url:
            env["RETAKE_DATABASE_URL"] = args.database_url
        log = open(os.path.join(data, "server.log"), "wb")  # noqa: SIM115 - closed below, after the process
        process = subprocess.Popen([sys.executable, "-m", "retake", "serve"], env=env, stdout=log, stderr=log)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("the server did not start; see its log")
                time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=20)
            log.close()


async def run(base: str, args: argparse.Namespace) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        body = {"agent_name": name, "wallet_address": WALLET, "ticker": "B"}
        reg = await http.post("/api/v1/agent/register", json=body)
        reg.raise_for_status()
        token, room = reg.json()["access_token"], reg.json()["userDbId"]
        sent_at: dict[str, float] = {}
        latencies: list[float] = []
        expected = args.clients * args.messages
        all_delivered = asyncio.Event()
        clients: list[socketio.AsyncClient] = []

        def listener() -> Any:
            async def on_message(data: dict[str, Any]) -> None:
                started = sent_at.get(str(data.get("text")))
                if started is not None:
                    latencies.append(time.perf_counter() - started)
                    if len(latencies) >= expected:
                        all_delivered.set()

            return on_message

        for _ in range(args.clients):
            client = socketio.AsyncClient(reconnection=False)
            client.on("message", listener())
            joined = asyncio.Event()
            client.on("joinedRoom", lambda _data, joined=joined: joined.set())
            await client.connect(base, transports=["websocket"], wait_timeout=10)
            await client.emit("joinRoom", {"roomId": room})
            await asyncio.wait_for(joined.wait(), 10)
            clients.append(client)

        headers = {"Authorization": f"Bearer {token}"}
        interval = 1.0 / args.rate
        begin = time.perf_counter()
        for i in range(args.messages):
            await asyncio.sleep(max(0.0, begin + i * interval - time.perf_counter()))
            text = f"bench {i}"
            sent_at[text] = time.perf_counter()
            response = await http.post(
                "/api/v1/agent/stream/chat/send", json={"message": text, "destination_user_id": room}, headers=headers
            )
            response.raise_for_status()
        with contextlib.suppress(TimeoutError):  # what has not arrived 10 s after the last send counts as lost
            await asyncio.wait_for(all_delivered.wait(), 10)
        for client in clients:
            await client.disconnect()

    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return 1000 * ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    return {
        "clients": args.clients,
        "messages": args.messages,
        "rate_per_s": args.rate,
        "delivered": f"{len(latencies)}/{expected}",
        "p50_ms": round(pct(50), 2),
        "p99_ms": round(pct(99), 2),
        "max_ms": round(1000 * ordered[-1], 2) if ordered else None,
        "mean_ms": round(1000 * statistics.fmean(ordered), 2) if ordered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="REST messages per second")
    parser.add_argument("--base", help="URL of a running server (otherwise one is started)")
    parser.add_argument("--redis-url", help="start the server with this Redis (AsyncRedisManager)")
    parser.add_argument("--database-url", help="start the server on this database")
    args = parser.parse_args()
    with server(args) as base:
        result = asyncio.run(run(base, args))
    print(" ".join(f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
