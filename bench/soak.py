"""Soak: a real ``retake serve`` under steady mixed load for a long time; does it leak, drop or lose anything?

    python -m bench.soak --minutes 30 --publishers 5 --viewers 50 --sockets 100 --chat-rate 5

One node (SQLite by default, ``--postgres`` for a throwaway PostgreSQL database) on loopback, and in this process:

- ``--publishers`` agents, each pushing the benchmark input (the skill's 720p30 settings) with ``ffmpeg -c copy
  -stream_loop -1``, so publishing costs the machine almost nothing;
- ``--viewers`` HTTP-FLV viewers spread over the publishers; a viewer whose response ends while its stream is
  live is a *dropped viewer* (it reconnects, and the drop is counted);
- ``--sockets`` python-socketio clients, each in the chat room of one publisher;
- ``--chat-rate`` chat messages per second in total, sent by the agents over REST into their own rooms, each
  with a unique marker: a socket client that was connected the whole time and missed one counts a *lost* message.

The server's RSS is sampled every ``--sample-seconds``; the slope (least squares, MB/hour) is taken over the
samples after ``--warmup-minutes``. Errors: non-2xx answers, socket disconnects, FLV drops, tracebacks / ERROR
lines in the server log. Goal (issue 12): slope < 5 MB/hour after warm-up, 0 errors, 0 lost.

Not part of ``make test`` (it runs for as long as asked); the pure helpers are smoke-tested in
``tests/unit/test_bench_soak.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import socketio

from bench.harness import (
    WALLET,
    install_uvloop,
    keep_logs,
    log_problems,
    machine_line,
    postgres_database,
    start_node,
    stop_node,
)
from bench.media import parse_rss_kib, prepare_input

MARKER = "soak"


# -- pure helpers ----------------------------------------------------------------------------------------------


def rss_slope_mb_per_hour(samples: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MiB) samples, in MiB per hour; None with fewer than two samples."""
    if len(samples) < 2:
        return None
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 3600


def after_warmup(samples: Sequence[tuple[float, float]], warmup_seconds: float) -> list[tuple[float, float]]:
    return [(t, m) for t, m in samples if t >= warmup_seconds]


def publisher_argv(source: Path, target: str) -> list[str]:
    """A looping stream-copy publisher: real time, no encoding (the load generator must not eat the server's CPU)."""
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
        "-re", "-stream_loop", "-1", "-i", str(source), "-c", "copy", "-f", "flv", target,
    ]  # fmt: skip


def chat_text(run: str, seq: int) -> str:
    return f"{MARKER}:{run}:{seq}"


def parse_chat_text(text: str, run: str) -> int | None:
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != MARKER or parts[1] != run or not parts[2].isascii() or not parts[2].isdigit():
        return None
    return int(parts[2])


def lost_messages(sent: dict[str, set[int]], received: dict[int, set[int]], rooms: dict[int, str]) -> int:
    """Messages a socket client should have seen (all sent into its room) but did not."""
    return sum(len(sent.get(rooms[client], set()) - got) for client, got in received.items())


# -- the run ---------------------------------------------------------------------------------------------------


@dataclass
class Agent:
    user_id: str
    auth: dict[str, str]
    target: str


@dataclass
class Tally:
    errors: list[str] = field(default_factory=list)
    dropped_viewers: int = 0
    flv_bytes: int = 0
    socket_disconnects: int = 0
    chat_sent: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    chat_received: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))
    client_rooms: dict[int, str] = field(default_factory=dict)
    rss: list[tuple[float, float]] = field(default_factory=list)

    def error(self, what: str) -> None:
        if len(self.errors) < 50:
            self.errors.append(what)
        else:
            self.errors[-1] = f"… {what}"


async def register_agents(http: httpx.AsyncClient, count: int) -> list[Agent]:
    agents = []
    for i in range(count):
        body = {"agent_name": f"Soak{i:03d}", "wallet_address": WALLET, "ticker": f"SOAK{i:03d}"}
        creds = (await http.post("/api/v1/agent/register", json=body)).raise_for_status().json()
        auth = {"Authorization": f"Bearer {creds['access_token']}"}
        rtmp = (await http.post("/api/v1/agent/rtmp", headers=auth)).raise_for_status().json()
        (await http.post("/api/v1/agent/stream/start", headers=auth)).raise_for_status()
        agents.append(Agent(creds["userDbId"], auth, f"{rtmp['url']}/{rtmp['key']}"))
    return agents


async def wait_live(http: httpx.AsyncClient, agents: Sequence[Agent], within: float = 60) -> None:
    deadline = time.monotonic() + within
    for agent in agents:
        while True:
            status = (await http.get("/api/v1/agent/stream/status", headers=agent.auth)).json()
            if status.get("is_live"):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"agent {agent.user_id} did not go live within {within:.0f} s")
            await asyncio.sleep(0.5)


async def flv_viewer(base: str, agent: Agent, tally: Tally, stop: asyncio.Event) -> None:
    url = f"{base}/live/{agent.user_id}.flv"
    async with httpx.AsyncClient(timeout=httpx.Timeout(15, read=15)) as client:
        while not stop.is_set():
            try:
                async with client.stream("GET", url) as response:
                    if response.status_code != 200:
                        tally.error(f"FLV {response.status_code}")
                        await asyncio.sleep(1)
                        continue
                    async for chunk in response.aiter_raw():
                        tally.flv_bytes += len(chunk)
                        if stop.is_set():
                            return
            except httpx.HTTPError as exc:
                if stop.is_set():
                    return
                tally.error(f"FLV viewer: {type(exc).__name__}")
            if not stop.is_set():
                tally.dropped_viewers += 1
                await asyncio.sleep(1)


async def socket_client(
    base: str, index: int, room: str, run: str, tally: Tally, closing: asyncio.Event
) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    tally.client_rooms[index] = room
    received = tally.chat_received[index]

    @sio.on("message")  # type: ignore[misc]
    async def on_message(data: dict[str, object]) -> None:
        seq = parse_chat_text(str(data.get("text", "")), run)
        if seq is not None:
            received.add(seq)

    @sio.on("disconnect")  # type: ignore[misc]
    async def on_disconnect(*_: object) -> None:
        if not closing.is_set():  # our own disconnect at the end is not a drop
            tally.socket_disconnects += 1

    await sio.connect(base, transports=["websocket"], socketio_path="/socket.io/")
    await sio.emit("joinRoom", {"roomId": room})
    return sio


async def chat_sender(
    http: httpx.AsyncClient, agents: Sequence[Agent], rate: float, run: str, tally: Tally, stop: asyncio.Event
) -> None:
    interval = 1 / rate
    start = time.monotonic()
    for seq in itertools.count():
        if stop.is_set():
            return
        agent = agents[seq % len(agents)]
        body = {"message": chat_text(run, seq), "destination_user_id": agent.user_id}
        try:
            response = await http.post("/api/v1/agent/stream/chat/send", headers=agent.auth, json=body)
            if response.status_code == 200:
                tally.chat_sent[agent.user_id].add(seq)
            else:
                tally.error(f"chat/send {response.status_code}: {response.text[:120]}")
        except httpx.HTTPError as exc:
            tally.error(f"chat/send: {type(exc).__name__}")
        await asyncio.sleep(max(0.0, start + (seq + 1) * interval - time.monotonic()))


def read_rss_mib(pid: int) -> float | None:
    try:
        return parse_rss_kib(Path(f"/proc/{pid}/status").read_text()) / 1024
    except OSError:
        return None


def start_publishers(source: Path, agents: Sequence[Agent]) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen(publisher_argv(source, a.target), stdin=subprocess.DEVNULL) for a in agents]


async def rss_sampler(pid: int, every: float, tally: Tally, stop: asyncio.Event, started: float) -> None:
    while not stop.is_set():
        mib = read_rss_mib(pid)
        if mib is not None:
            tally.rss.append((time.monotonic() - started, mib))
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


async def soak(base: str, pid: int, args: argparse.Namespace, source: Path) -> Tally:
    tally = Tally()
    run = f"{int(time.time())}"
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        agents = await register_agents(http, args.publishers)
        publishers = start_publishers(source, agents)
        try:
            await wait_live(http, agents)
            clients = [
                await socket_client(base, i, agents[i % len(agents)].user_id, run, tally, stop)
                for i in range(args.sockets)
            ]
            started = time.monotonic()
            viewed = [agents[i % len(agents)] for i in range(args.viewers)]
            tasks = [asyncio.create_task(flv_viewer(base, agent, tally, stop)) for agent in viewed]
            tasks.append(asyncio.create_task(chat_sender(http, agents, args.chat_rate, run, tally, stop)))
            tasks.append(asyncio.create_task(rss_sampler(pid, args.sample_seconds, tally, stop, started)))
            await progress(args.minutes * 60, tally, publishers, stop, started)
            stop.set()
            await asyncio.sleep(3)  # the last chat messages reach the sockets
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for sio in clients:
                with contextlib.suppress(Exception):
                    await sio.disconnect()
        finally:
            for process in publishers:
                process.terminate()
            for process in publishers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=10)
    return tally


async def progress(
    seconds: float, tally: Tally, publishers: Sequence[subprocess.Popen[bytes]], stop: asyncio.Event, started: float
) -> None:
    """Wait out the run, printing a line a minute; a publisher that exits is an error (and ends nothing)."""
    last = started
    while (now := time.monotonic()) - started < seconds:
        await asyncio.sleep(min(5.0, seconds - (now - started)))
        for process in publishers:
            if process.poll() is not None and process.returncode is not None:
                tally.error(f"publisher exited with {process.returncode}")
                process.returncode = None  # report once
        if time.monotonic() - last >= 60:
            last = time.monotonic()
            rss = tally.rss[-1][1] if tally.rss else float("nan")
            sent = sum(len(s) for s in tally.chat_sent.values())
            print(
                f"[{(last - started) / 60:5.1f} min] RSS {rss:.0f} MiB, chat sent {sent}, "
                f"FLV {tally.flv_bytes / 2**20:.0f} MiB, dropped {tally.dropped_viewers}, errors {len(tally.errors)}",
                flush=True,
            )


def report(args: argparse.Namespace, tally: Tally, log_text: str) -> dict[str, object]:
    steady = after_warmup(tally.rss, args.warmup_minutes * 60)
    slope = rss_slope_mb_per_hour(steady)
    problems = log_problems(log_text)
    result: dict[str, object] = {
        "machine": machine_line(),
        "minutes": args.minutes,
        "database": "postgresql" if args.postgres else "sqlite",
        "publishers": args.publishers,
        "viewers": args.viewers,
        "sockets": args.sockets,
        "chat_rate": args.chat_rate,
        "rss_start_mib": round(tally.rss[0][1], 1) if tally.rss else None,
        "rss_after_warmup_mib": round(steady[0][1], 1) if steady else None,
        "rss_end_mib": round(tally.rss[-1][1], 1) if tally.rss else None,
        "rss_slope_mb_per_hour": None if slope is None else round(slope, 2),
        "chat_sent": sum(len(s) for s in tally.chat_sent.values()),
        "chat_lost": lost_messages(tally.chat_sent, tally.chat_received, tally.client_rooms),
        "dropped_viewers": tally.dropped_viewers,
        "socket_disconnects": tally.socket_disconnects,
        "flv_mib": round(tally.flv_bytes / 2**20, 1),
        "errors": len(tally.errors) + len(problems),
        "error_samples": tally.errors[:10] + problems,
    }
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warmup-minutes", type=float, default=None, help="default: 10 %% of the run, at least 1")
    parser.add_argument("--publishers", type=int, default=5)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--chat-rate", type=float, default=5)
    parser.add_argument("--sample-seconds", type=float, default=10)
    parser.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL database instead of SQLite")
    parser.add_argument("--keep-logs", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    args = parser.parse_args(argv)
    if args.warmup_minutes is None:
        args.warmup_minutes = max(1.0, args.minutes / 10) if args.minutes >= 2 else 0.0
    print(f"loop: {install_uvloop()}; {machine_line()}", flush=True)
    source = prepare_input(20)
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="retake-soak-")))
        env = {"RETAKE_LOG_LEVEL": "warning"}
        if args.postgres:
            env["RETAKE_DATABASE_URL"] = stack.enter_context(postgres_database("retake_soak"))
        node = start_node("soak", folder, env)
        try:
            tally = asyncio.run(soak(node.base, node.pid, args, source))
        finally:
            exit_code = stop_node(node)
            keep_logs([node], args.keep_logs)
        result = report(args, tally, node.log())
        result["server_exit"] = exit_code
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    slope = result["rss_slope_mb_per_hour"]
    ok = result["errors"] == 0 and result["chat_lost"] == 0 and isinstance(slope, float) and slope < 5
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
