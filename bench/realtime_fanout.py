"""Socket.IO fan-out: N clients in one room, chat sent over REST at stepped rates; delivery latency per client.

    python -m bench.realtime_fanout                                   # 1000 clients, rates 10,25,50,100,200
    python -m bench.realtime_fanout --clients 1000 --rates 50 --seconds 30
    python -m bench.realtime_fanout --nodes 2                         # clients on node B, REST to node A
    python -m bench.realtime_fanout --nodes 1 --postgres --redis-url redis://127.0.0.1:6379/0   # its baseline
    python -m bench.realtime_fanout --clients 200 --rates 25 --client socketio   # python-socketio clients

Each step sends ``rate × seconds`` messages on an open-loop schedule (a send is due at its time whether or not
the previous one has been answered; at most ``--max-inflight`` are outstanding) through
``POST /api/v1/agent/stream/chat/send`` as one agent into its own room. Every client of the room records, per
message, the time from just before the REST call to the frame's arrival. The send time travels inside the
message text and both sides read ``CLOCK_MONOTONIC``, so the receivers can run in other processes: the
clients are spread over ``--workers`` load-generator processes, the orchestrator (this process) only sends.

The latency therefore covers the HTTP request, the database write, the event bus, the Socket.IO emit to every
member of the room (and with two nodes the Redis hop) and the client's read. What has not arrived ``--drain``
seconds after a step's last answer counts as lost. A step is *held* when nothing was lost, no send failed and
the generator kept at least 95 % of the rate; the ladder stops at the first step that is not held or whose p99
exceeds ``--p99-limit`` (250 ms), unless ``--all-rates``.

Per message the workers also keep the first and last arrival: *1st client* (send → first client: REST,
database, event bus, start of the emit) and *spread* (first → last client: the emit reaching the whole room).

CPU is read from ``/proc`` over each step's send window, in % of one core: every server node, the generator
(workers + orchestrator) and ``others`` (everything else the machine ran meanwhile, so a shared machine shows).
``--server-gc`` starts the node(s) behind ``gc.freeze()`` / ``gc.set_threshold(...)``, an experiment.

Clients (``--client``):

- ``raw`` (default): a minimal Engine.IO v4 / Socket.IO client over a WebSocket written for this benchmark on
  ``asyncio.Protocol`` (handshake, frames, ping/pong, ``joinRoom``), on uvloop. It does not JSON-decode the
  broadcast; it finds the marker in the frame. The lightest generator, so most of the two cores go to the server.
- ``websockets``: the same protocol handling on the ``websockets`` library's client.
- ``socketio``: python-socketio's ``AsyncClient`` (aiohttp WebSocket transport); it decodes every packet and
  costs ~3.5 times the raw client per received frame (docs/benchmarks.md), about what the server spends.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.harness import (
    REPO,
    WALLET,
    CpuMeter,
    Histogram,
    Node,
    generator_env,
    highest_held,
    install_uvloop,
    keep_logs,
    log_problems,
    machine_line,
    markdown_table,
    parse_server_gc,
    postgres_database,
    rate_steps,
    redis_channel,
    send_offsets,
    start_node,
    stop_node,
    wait_until_quiet,
)

MARKER = "fanout"
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
CLIENT_KINDS = ("raw", "websockets", "socketio")


# -- pure helpers (smoke-tested by tests/unit/test_bench_realtime.py) ------------------------------------------


def make_text(run: str, step: int, seq: int, sent_at: float) -> str:
    """The chat line: it carries the send time (``CLOCK_MONOTONIC``, shared by all processes of the machine)."""
    return f"{MARKER} {run} {step} {seq} {sent_at:.6f}"


def parse_marker(payload: bytes, run: bytes) -> tuple[int, int, float] | None:
    """(step, seq, sent_at) from a raw ``42["message",{…"text":"fanout <run> …"}]`` frame, without JSON."""
    head = MARKER.encode() + b" " + run + b" "
    start = payload.find(head)
    if start < 0:
        return None
    start += len(head)
    end = payload.find(b'"', start)
    parts = payload[start:end].split(b" ") if end > 0 else []
    if len(parts) != 3:
        return None
    try:
        return int(parts[0]), int(parts[1]), float(parts[2])
    except ValueError:
        return None


def xor_mask(data: bytes, mask: bytes) -> bytes:
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def ws_frame(payload: bytes, opcode: int = 0x1, mask: bytes | None = None) -> bytes:
    """One final client frame (clients must mask, RFC 6455 §5.3)."""
    mask = mask if mask is not None else os.urandom(4)
    n = len(payload)
    if n < 126:
        head = bytes([0x80 | opcode, 0x80 | n])
    elif n < 65536:
        head = bytes([0x80 | opcode, 0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([0x80 | opcode, 0x80 | 127]) + n.to_bytes(8, "big")
    return head + mask + xor_mask(payload, mask)


def parse_frames(buf: bytes | bytearray) -> tuple[list[tuple[bool, int, bytes]], int]:
    """Complete frames at the start of ``buf`` as (fin, opcode, payload), and how many bytes they used."""
    frames: list[tuple[bool, int, bytes]] = []
    pos, n = 0, len(buf)
    while n - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        length, header = b1 & 0x7F, 2
        if length == 126:
            if n - pos < 4:
                break
            length, header = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
        elif length == 127:
            if n - pos < 10:
                break
            length, header = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
        mask = b""
        if b1 & 0x80:  # servers do not mask; tolerated anyway
            if n - pos < header + 4:
                break
            mask = bytes(buf[pos + header : pos + header + 4])
            header += 4
        if n - pos < header + length:
            break
        payload = bytes(buf[pos + header : pos + header + length])
        frames.append((bool(b0 & 0x80), b0 & 0x0F, xor_mask(payload, mask) if mask else payload))
        pos += header + length
    return frames, pos


def handshake_request(host: str, port: int, key: str) -> bytes:
    return (
        f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def accept_for(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + WS_GUID).digest()).decode()


def join_packet(room: str) -> bytes:
    return b"42" + json.dumps(["joinRoom", {"roomId": room}], separators=(",", ":")).encode()


def merge_spans(into: dict[str, list[float]], other: dict[str, list[float]]) -> None:
    """Per message [sent, first arrival, last arrival], over several worker processes."""
    for seq, (sent, first, last) in other.items():
        mine = into.get(seq)
        if mine is None:
            into[seq] = [sent, first, last]
        else:
            mine[1], mine[2] = min(mine[1], first), max(mine[2], last)


def span_histograms(spans: dict[str, list[float]]) -> tuple[Histogram, Histogram]:
    """Per message: send → first client (REST, database, event bus: the part before the fan-out), and first →
    last client (the fan-out itself: one emit reaching every member of the room)."""
    first, spread = Histogram(), Histogram()
    for sent, first_at, last_at in spans.values():
        first.record((first_at - sent) * 1000)
        spread.record((last_at - first_at) * 1000)
    return first, spread


def split_clients(total: int, workers: int) -> list[int]:
    """``total`` clients over at most ``workers`` processes, as evenly as possible, none empty."""
    workers = max(1, min(workers, total))
    return [total // workers + (1 if i < total % workers else 0) for i in range(workers)]


# -- Engine.IO / Socket.IO client side -------------------------------------------------------------------------


class EioSession:
    """The client's side of Engine.IO v4 + Socket.IO on one WebSocket, independent of the WebSocket library:
    open → ``40`` → ``joinRoom`` → ``joinedRoom``; answers pings; hands every later event to ``sink``."""

    def __init__(self, room: str, send: Callable[[bytes], None], sink: Callable[[bytes, float], None]) -> None:
        self.room = room
        self.send = send
        self.sink = sink
        self.joined = asyncio.get_running_loop().create_future()
        self.closed = False
        self.why = ""  # the first reason this session ended, reported with the step

    def on_text(self, payload: bytes, now: float) -> None:
        if payload.startswith(b"42"):
            if self.joined.done():
                self.sink(payload, now)
            elif payload.startswith(b'42["joinedRoom"'):
                self.joined.set_result(True)
            elif payload.startswith(b'42["error"'):
                self.joined.set_exception(RuntimeError(payload[:200].decode(errors="replace")))
        elif payload == b"2":
            self.send(b"3")
        elif payload.startswith(b"0"):
            self.send(b"40")
        elif payload.startswith(b"40"):
            self.send(join_packet(self.room))
        elif payload.startswith(b"44") or payload.startswith(b"41") or payload == b"1":
            self.lost(payload[:200].decode(errors="replace"))

    def lost(self, why: str) -> None:
        if not self.closed:
            self.why = why
        self.closed = True
        if not self.joined.done():
            self.joined.set_exception(ConnectionError(why))


class RawClient(asyncio.Protocol):
    """WebSocket on a bare ``asyncio.Protocol``: parses all frames of a read in one pass, stamps them once."""

    def __init__(self, host: str, port: int, room: str, sink: Callable[[bytes, float], None]) -> None:
        self.host, self.port = host, port
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.session = EioSession(room, self._send_text, sink)
        self.buffer = bytearray()
        self.upgraded = False
        self.fragments: list[bytes] = []
        self.transport: asyncio.Transport | None = None

    @property
    def closed(self) -> bool:
        return self.session.closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment] # uvloop's transports do not subclass asyncio's
        transport.write(handshake_request(self.host, self.port, self.key))

    def connection_lost(self, exc: Exception | None) -> None:
        self.session.lost(f"connection lost ({exc})")

    def _send_text(self, payload: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(ws_frame(payload))

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buffer = self.buffer
        buffer += data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            if not head.startswith("HTTP/1.1 101") or accept_for(self.key) not in head:
                self.session.lost(f"handshake refused: {head.splitlines()[0] if head else '?'}")
                self.close()
                return
            self.upgraded = True
        frames, used = parse_frames(buffer)
        if used:
            del buffer[:used]
        for fin, opcode, payload in frames:
            if opcode == 0x0 or not fin:  # fragmented message (not used by the server for small events)
                self.fragments.append(payload)
                if fin:
                    self.session.on_text(b"".join(self.fragments), now)
                    self.fragments.clear()
            elif opcode == 0x1:
                self.session.on_text(payload, now)
            elif opcode == 0x9 and self.transport is not None:
                self.transport.write(ws_frame(payload, opcode=0xA))
            elif opcode == 0x8:
                self.session.lost("close frame")
                self.close()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self.transport.write(ws_frame(b"\x03\xe8", opcode=0x8))
            self.transport.close()


def close_reason(client: Any) -> str:
    """The first reason the Engine.IO session of a handle ended (raw and websockets clients keep one)."""
    session = getattr(client, "session", None) or getattr(getattr(client, "protocol", None), "session", None)
    return getattr(session, "why", "") or "?"


class Client:
    """What a worker needs of any client kind."""

    closed: bool

    async def close(self) -> None:
        raise NotImplementedError


class RawHandle(Client):
    def __init__(self, protocol: RawClient) -> None:
        self.protocol = protocol

    @property  # type: ignore[override]
    def closed(self) -> bool:
        return self.protocol.closed

    async def close(self) -> None:
        self.protocol.close()


async def connect_raw(base: str, room: str, sink: Callable[[bytes, float], None]) -> Client:
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(lambda: RawClient(host, port, room, sink), host, port)
    await protocol.session.joined
    return RawHandle(protocol)


class WebsocketsHandle(Client):
    def __init__(self, ws: Any, session: EioSession) -> None:
        self.ws, self.session = ws, session
        self.reader: asyncio.Task[None] | None = None

    @property  # type: ignore[override]
    def closed(self) -> bool:
        return self.session.closed

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)
        if self.reader is not None:
            self.reader.cancel()


async def connect_websockets(base: str, room: str, sink: Callable[[bytes, float], None]) -> Client:
    from websockets.asyncio.client import connect

    url = base.replace("http://", "ws://", 1) + "/socket.io/?EIO=4&transport=websocket"
    ws = await connect(url, compression=None, max_size=None, ping_interval=None)
    pending: list[asyncio.Task[None]] = []

    def send(payload: bytes) -> None:
        pending.append(asyncio.ensure_future(ws.send(payload.decode())))  # Engine.IO text packets are text frames

    session = EioSession(room, send, sink)
    handle = WebsocketsHandle(ws, session)

    async def read() -> None:
        try:
            while True:
                message = await ws.recv(decode=False)
                session.on_text(message, time.monotonic())
                if pending:
                    pending[:] = [t for t in pending if not t.done()]
        except Exception as exc:
            session.lost(f"{type(exc).__name__}")

    handle.reader = asyncio.create_task(read())
    await session.joined
    return handle


class SocketioHandle(Client):
    def __init__(self, sio: Any) -> None:
        self.sio = sio

    @property  # type: ignore[override]
    def closed(self) -> bool:
        return not self.sio.connected

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.disconnect(), 5)


async def connect_socketio(base: str, room: str, sink: Callable[[bytes, float], None]) -> Client:
    import socketio

    sio = socketio.AsyncClient(reconnection=False)
    joined = asyncio.get_running_loop().create_future()

    async def on_message(data: Any) -> None:
        now = time.monotonic()
        text = data.get("text") if isinstance(data, dict) else None
        if isinstance(text, str):
            sink(b'"' + text.encode() + b'"', now)

    def on_joined(_data: Any) -> None:
        if not joined.done():
            joined.set_result(True)

    sio.on("message", on_message)
    sio.on("joinedRoom", on_joined)
    await sio.connect(base, transports=["websocket"], wait_timeout=20)
    await sio.emit("joinRoom", {"roomId": room})
    await joined
    return SocketioHandle(sio)


CONNECTORS = {"raw": connect_raw, "websockets": connect_websockets, "socketio": connect_socketio}


# -- load-generator worker process -----------------------------------------------------------------------------


@dataclass
class StepStats:
    hist: Histogram = field(default_factory=Histogram)
    # seq -> [sent, first arrival, last arrival] in this process: how long one emit takes to reach every client
    spans: dict[int, list[float]] = field(default_factory=dict)


def emit_line(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def worker_main(spec: dict[str, Any]) -> None:
    """Connect ``spec["clients"]`` clients, then answer ``count <step>`` / ``report <step>`` / ``quit`` on stdin."""
    run = spec["run"].encode()
    steps: dict[int, StepStats] = {}

    def sink(payload: bytes, now: float) -> None:
        marker = parse_marker(payload, run)
        if marker is None:
            return
        step, seq, sent_at = marker
        stats = steps.get(step)
        if stats is None:
            stats = steps[step] = StepStats()
        stats.hist.record((now - sent_at) * 1000)
        span = stats.spans.get(seq)
        if span is None:
            stats.spans[seq] = [sent_at, now, now]
        else:
            span[2] = now

    connect = CONNECTORS[spec["kind"]]
    clients: list[Client] = []
    failures: dict[str, int] = {}
    gate = asyncio.Semaphore(spec.get("connect_concurrency", 50))

    async def connect_one() -> None:
        async with gate:
            try:
                clients.append(await asyncio.wait_for(connect(spec["base"], spec["room"], sink), 30))
            except Exception as exc:
                name = type(exc).__name__
                failures[name] = failures.get(name, 0) + 1

    await asyncio.gather(*(connect_one() for _ in range(spec["clients"])))
    emit_line({"ready": len(clients), "failed": failures, "pid": os.getpid()})

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().split()
        if not line or line[0] == "quit":
            break
        alive = sum(1 for c in clients if not c.closed)
        stats = steps.get(int(line[1])) if len(line) > 1 else None
        if line[0] == "count":
            emit_line({"count": stats.hist.count if stats else 0, "alive": alive})
        elif line[0] == "report":
            hist, spans = (stats.hist, stats.spans) if stats else (Histogram(), {})
            why = collections.Counter(close_reason(c) for c in clients if c.closed)
            emit_line({"hist": hist.to_json(), "spans": spans, "alive": alive, "closed_why": dict(why)})
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.close() for c in clients), return_exceptions=True), 20)


# -- orchestrator ----------------------------------------------------------------------------------------------


class Worker:
    def __init__(self, process: asyncio.subprocess.Process, clients: int) -> None:
        self.process = process
        self.clients = clients
        self.ready = 0

    async def ask(self, command: str, wait: float = 30) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        line = await asyncio.wait_for(self.process.stdout.readline(), wait)
        if not line:
            raise RuntimeError(f"worker {self.process.pid} ended")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                assert self.process.stdin is not None
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_workers(args: argparse.Namespace, base: str, room: str, run: str) -> list[Worker]:
    workers: list[Worker] = []
    env = generator_env()
    for count in split_clients(args.clients, args.workers):
        spec = {"base": base, "room": room, "run": run, "clients": count, "kind": args.client}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.realtime_fanout",
            "_worker",
            json.dumps(spec),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
            env=env,
            limit=1 << 24,
        )
        workers.append(Worker(process, count))
    for worker in workers:
        assert worker.process.stdout is not None
        line = await asyncio.wait_for(worker.process.stdout.readline(), 60 + args.clients / 10)
        if not line:
            raise RuntimeError("a load-generator worker ended before its clients connected")
        answer = json.loads(line)
        worker.ready = answer["ready"]
        if answer["failed"]:
            print(f"worker {worker.process.pid}: {answer['ready']} connected, failed: {answer['failed']}")
    return workers


async def run_step(
    args: argparse.Namespace,
    http: httpx.AsyncClient,
    token: str,
    room: str,
    run: str,
    step: int,
    rate: float,
    seconds: float,
    workers: Sequence[Worker],
    meter: CpuMeter | None,
) -> dict[str, Any]:
    alive = 0
    for w in workers:
        alive += int((await w.ask(f"count {step}"))["alive"])
    headers = {"Authorization": f"Bearer {token}"}
    rest = Histogram()
    failures: dict[str, int] = {}
    ok = 0
    gate = asyncio.Semaphore(args.max_inflight)

    async def send(seq: int) -> None:
        nonlocal ok
        try:
            started = time.monotonic()
            body = {"message": make_text(run, step, seq, started), "destination_user_id": room}
            response = await http.post("/api/v1/agent/stream/chat/send", json=body, headers=headers)
            rest.record((time.monotonic() - started) * 1000)
            if response.status_code == 200:
                ok += 1
            else:
                failures[str(response.status_code)] = failures.get(str(response.status_code), 0) + 1
        except httpx.HTTPError as exc:
            failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
        finally:
            gate.release()

    offsets = send_offsets(rate, seconds)
    tasks: list[asyncio.Task[None]] = []
    cpu_start = meter.snapshot() if meter else None
    begin = time.monotonic()
    stop_at = begin + seconds  # a server that falls behind does not stretch the step: the rest is not sent
    for seq, offset in enumerate(offsets):
        delay = begin + offset - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        # More than --max-inflight outstanding: the schedule slips, which shows as the achieved rate.
        try:
            await asyncio.wait_for(gate.acquire(), max(0.0, stop_at - time.monotonic()))
        except TimeoutError:
            break
        if time.monotonic() >= stop_at and seq > 0:
            gate.release()
            break
        tasks.append(asyncio.create_task(send(seq)))
    window = max(time.monotonic() - begin, seconds)
    cpu = meter.delta(cpu_start, meter.snapshot()) if meter and cpu_start else {}
    await asyncio.gather(*tasks)
    achieved = len(tasks) / window

    expected = alive * ok
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        counts = [await w.ask(f"count {step}") for w in workers]
        if sum(int(c["count"]) for c in counts) >= expected:
            break
        await asyncio.sleep(0.1)
    hist = Histogram()
    alive_after = 0
    closed_why: collections.Counter[str] = collections.Counter()
    spans: dict[str, list[float]] = {}
    for w in workers:
        answer = await w.ask(f"report {step}")
        hist.merge(Histogram.from_json(answer["hist"]))
        alive_after += int(answer["alive"])
        closed_why.update(answer.get("closed_why", {}))
        merge_spans(spans, answer["spans"])
    first, spread = span_histograms(spans)
    delivered = hist.count
    row: dict[str, Any] = {
        "rate": rate,
        "scheduled": len(offsets),
        "sent": len(tasks),
        "failed": sum(failures.values()),
        "achieved": achieved,
        "clients": alive,
        "delivered": delivered,
        "expected": expected,
        "lost": max(0, expected - delivered),
        "delivered_txt": f"{delivered}/{expected}",
        "p50_ms": hist.percentile(50),
        "p99_ms": hist.percentile(99),
        "max_ms": hist.max_ms,
        "first_p50_ms": first.percentile(50),
        "first_p99_ms": first.percentile(99),
        "spread_p50_ms": spread.percentile(50),
        "spread_p99_ms": spread.percentile(99),
        "rest_p50_ms": rest.percentile(50),
        "rest_p99_ms": rest.percentile(99),
        "failures": failures,
        "closed_during_step": alive - alive_after,
        "closed_why": dict(closed_why),  # since the start, by the client's first reason
    }
    for name, value in cpu.items():
        row[f"cpu {name}"] = value
    row["ok"] = not failures and delivered >= expected and achieved >= 0.95 * rate and alive_after == alive
    return row


async def orchestrate(
    args: argparse.Namespace, send_base: str, recv_base: str, meter_groups: dict[str, list[int]]
) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:8]
    limits = httpx.Limits(max_connections=args.max_inflight, max_keepalive_connections=args.max_inflight)
    async with httpx.AsyncClient(base_url=send_base, timeout=30, limits=limits) as http:
        body = {"agent_name": f"fan_{run}", "wallet_address": WALLET, "ticker": "FAN"}
        reg = await http.post("/api/v1/agent/register", json=body)
        reg.raise_for_status()
        token, room = reg.json()["access_token"], reg.json()["userDbId"]
        started = time.monotonic()
        workers = await start_workers(args, recv_base, room, run)
        rows: list[dict[str, Any]] = []
        try:
            connected = sum(w.ready for w in workers)
            if connected == 0:
                raise RuntimeError("no client could join the room")
            print(
                f"{connected}/{args.clients} {args.client} clients joined room {room} on {recv_base} "
                f"in {time.monotonic() - started:.1f} s ({len(workers)} worker processes)",
                flush=True,
            )
            groups = {**meter_groups, "generator": [os.getpid(), *(w.process.pid for w in workers)]}
            meter = CpuMeter(groups)
            # Warm-up (not reported): connection pools, first queries, the clients' first frames.
            await run_step(args, http, token, room, run, 0, 10, 1.0, workers, None)
            for step, rate in enumerate(args.rates, start=1):
                row = await run_step(args, http, token, room, run, step, rate, args.seconds, workers, meter)
                rows.append(row)
                print(summary_line(row), flush=True)
                if not args.all_rates and (not row["ok"] or not row["p99_ms"] < args.p99_limit):
                    break
                await asyncio.sleep(1.0)
        finally:
            await asyncio.gather(*(w.stop() for w in workers))
    return rows


def summary_line(row: dict[str, Any]) -> str:
    cpu = ", ".join(f"{k[4:]} {v:.0f}%" for k, v in row.items() if k.startswith("cpu "))
    return (
        f"rate {row['rate']:g}/s (achieved {row['achieved']:.1f}): delivered {row['delivered_txt']}, "
        f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, max {row['max_ms']:.1f} ms; "
        f"first client p50 {row['first_p50_ms']:.1f} ms, spread p50 {row['spread_p50_ms']:.1f} / "
        f"p99 {row['spread_p99_ms']:.1f} ms; "
        f"REST p50 {row['rest_p50_ms']:.1f} / p99 {row['rest_p99_ms']:.1f} ms; failed {row['failures'] or 0}; "
        f"CPU {cpu}" + (f"; clients closed so far: {row['closed_why']}" if row.get("closed_why") else "")
    )


def result_table(rows: Sequence[dict[str, Any]], cpu_names: Sequence[str]) -> str:
    columns = [
        ("rate", "rate/s"),
        ("achieved", "achieved/s"),
        ("delivered_txt", "delivered"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("max_ms", "max ms"),
        ("first_p50_ms", "1st client p50 ms"),
        ("spread_p50_ms", "spread p50 ms"),
        ("spread_p99_ms", "spread p99 ms"),
        ("rest_p50_ms", "REST p50 ms"),
        ("rest_p99_ms", "REST p99 ms"),
        *[(f"cpu {name}", f"CPU {name} %") for name in cpu_names],
    ]
    return markdown_table(rows, columns)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000, help="Socket.IO clients in the room (default 1000)")
    parser.add_argument("--rates", type=rate_steps, default=rate_steps("..200"), help="messages/s per step, e.g. "
                        "10,25,50 or ..400 for the ladder 10,25,50,100,200,400 (default ..200)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=15.0, help="send window per step (default 15)")
    parser.add_argument("--drain", type=float, default=10.0, help="seconds to wait for late frames (default 10)")
    parser.add_argument("--p99-limit", type=float, default=250.0, help="a held rate keeps p99 under this (ms)")
    parser.add_argument("--all-rates", action="store_true", help="do not stop at the first step that fails")
    parser.add_argument("--client", choices=CLIENT_KINDS, default="raw")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes for the clients")
    parser.add_argument("--max-inflight", type=int, default=64, help="outstanding REST sends at most")
    parser.add_argument("--nodes", type=int, choices=(1, 2), default=1, help="2: clients on node B, REST to A")
    parser.add_argument("--redis-url", help="Socket.IO through AsyncRedisManager (default for --nodes 2: "
                        "redis://127.0.0.1:6379/0)")  # fmt: skip
    parser.add_argument("--postgres", action="store_true", help="a throwaway database on 127.0.0.1:5432")
    parser.add_argument("--database-url", help="run the node(s) on this database")
    parser.add_argument("--base", help="an already running server (nothing is started; no server CPU)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--keep-logs", type=Path, metavar="DIR", help="copy the server log(s) here")
    gc_help = "experiment: start the server(s) after gc.freeze() and/or gc.set_threshold(N, …) (CPython 700,10,10)"
    parser.add_argument("--server-gc", type=parse_server_gc, metavar="[freeze,]N[,N,N]", help=gc_help)
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="PCT", help="first wait (5 min at most) "
                        "until the machine is less than PCT %% busy (other work moves every number)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.nodes == 2 and not args.redis_url:
        args.redis_url = "redis://127.0.0.1:6379/0"
    if args.nodes == 2 and not args.database_url:
        args.postgres = True
    return args


def describe(args: argparse.Namespace) -> str:
    db = "PostgreSQL" if args.postgres or (args.database_url or "").startswith("postgres") else "SQLite"
    pubsub = "Redis" if args.redis_url else "in-process"
    where = "clients on node B, REST to node A" if args.nodes == 2 else "one node"
    gc = f", server gc {args.server_gc}" if args.server_gc else ""
    return (
        f"{where}, {db}, Socket.IO manager {pubsub}, {args.clients} {args.client} clients in {args.workers} workers{gc}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        install_uvloop()
        asyncio.run(worker_main(json.loads(argv[1])))
        return 0
    args = parse_args(argv)
    loop_name = install_uvloop()
    if args.wait_quiet:
        print(f"machine {wait_until_quiet(args.wait_quiet, 300):.0f}% busy when the run started")
    print(machine_line())
    print(f"setup: {describe(args)}; generator loop {loop_name}", flush=True)
    nodes: list[Node] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="retake-fanout-")))
        stack.callback(lambda: [stop_node(n) for n in nodes])
        if args.base:
            send_base = recv_base = args.base
        else:
            env: dict[str, str] = {}
            database_url = args.database_url or (stack.enter_context(postgres_database()) if args.postgres else None)
            if database_url:
                env["RETAKE_DATABASE_URL"] = database_url
            if args.redis_url:
                env["RETAKE_REDIS_URL"] = args.redis_url
                env["RETAKE_REDIS_CHANNEL"] = redis_channel()
            for label in "AB"[: args.nodes]:
                nodes.append(start_node(label, folder / label, env, server_gc=args.server_gc))
            send_base, recv_base = nodes[0].base, nodes[-1].base
        groups = {f"server {n.name}" if len(nodes) > 1 else "server": [n.pid] for n in nodes}
        rows = asyncio.run(orchestrate(args, send_base, recv_base, groups))
        problems = {n.name: log_problems(n.log()) for n in nodes}
        keep_logs(nodes, args.keep_logs)
    cpu_names = [*groups, "generator", "others"]
    print()
    print(result_table(rows, cpu_names))
    held = highest_held(rows, args.p99_limit)
    print(f"\nhighest rate held with p99 < {args.p99_limit:g} ms: {held if held is not None else 'none'} msg/s")
    for name, lines in problems.items():
        if lines:
            print(f"node {name} log:", *lines, sep="\n  ")
    if args.json:
        args.json.write_text(json.dumps({"setup": describe(args), "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
