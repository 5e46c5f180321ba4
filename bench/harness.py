"""Shared pieces of the realtime and REST load benchmarks (``bench.realtime_fanout``, ``bench.comment_polling``).

- retake nodes as child processes (``retake serve`` on free loopback ports, a throwaway data folder each),
  optionally on a throwaway PostgreSQL database and a private Redis channel;
- CPU accounting from ``/proc`` (per process, and the whole machine, so a reader can tell the server's cost
  from the load generator's and from whatever else ran on the machine);
- a mergeable latency histogram (load-generator processes send theirs to the orchestrator), percentiles,
  rate steps and result tables.

The pure helpers are smoke-tested by ``tests/unit/test_bench_realtime.py``.
"""

from __future__ import annotations

import asyncio
import math
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
WALLET = "11111111111111111111111111111111"  # the System Program id: a valid 32-byte key
PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc"]
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

# Every benchmark node gets these: registrations and chat are rate-limited per address / sender by default,
# and a benchmark sends from one address and one agent.
BENCH_ENV = {
    "RETAKE_REGISTER_RATE": "1000000/minute",
    "RETAKE_CHAT_RATE": "1000000/10seconds",
    "RETAKE_LOG_LEVEL": "warning",
}


# -- pure helpers ----------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the smallest value with at least ``pct`` % of the values at or below it)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def bucket_of(ms: float) -> int:
    """Histogram bucket in units of 0.1 ms: 0.1 ms wide below 100 ms, 1 ms below 10 s, 10 ms above (<1 % error)."""
    if ms < 0:
        ms = 0.0
    if ms < 100:
        return int(ms * 10)
    if ms < 10_000:
        return int(ms) * 10
    return int(ms / 10) * 100


class Histogram:
    """Latencies in milliseconds, bucketed (see ``bucket_of``) so that millions of samples stay small and the
    histograms of several processes can be merged exactly."""

    def __init__(self, counts: Mapping[int, int] | None = None, max_ms: float = 0.0) -> None:
        self.counts: dict[int, int] = dict(counts or {})
        self.max_ms = max_ms
        self.total_ms = 0.0

    def record(self, ms: float) -> None:
        key = bucket_of(ms)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.total_ms += ms
        if ms > self.max_ms:
            self.max_ms = ms

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: Histogram) -> Histogram:
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.max_ms = max(self.max_ms, other.max_ms)
        self.total_ms += other.total_ms
        return self

    def percentile(self, pct: float) -> float:
        """Nearest rank, reported as the bucket's lower edge (exact to 0.1 ms below 100 ms)."""
        n = self.count
        if n == 0:
            return math.nan
        rank = max(1, math.ceil(pct / 100 * n))
        seen = 0
        for key in sorted(self.counts):
            seen += self.counts[key]
            if seen >= rank:
                return key / 10
        return max(self.counts) / 10  # pragma: no cover - unreachable

    @property
    def mean(self) -> float:
        n = self.count
        return self.total_ms / n if n else math.nan

    def to_json(self) -> dict[str, Any]:
        return {"counts": {str(k): v for k, v in self.counts.items()}, "max": self.max_ms, "total": self.total_ms}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Histogram:
        hist = cls({int(k): int(v) for k, v in data.get("counts", {}).items()}, float(data.get("max", 0.0)))
        hist.total_ms = float(data.get("total", 0.0))
        return hist


DEFAULT_RATE_LADDER = (10, 25, 50, 100, 200, 400, 800, 1600)


def rate_steps(spec: str) -> list[float]:
    """``"10,25,50"`` → those rates; ``"auto"`` or ``"..400"`` → the ladder 10, 25, 50, 100, 200, … up to 400."""
    spec = spec.strip()
    if spec in ("", "auto"):
        return [float(r) for r in DEFAULT_RATE_LADDER]
    if spec.startswith(".."):
        top = float(spec[2:])
        return [float(r) for r in DEFAULT_RATE_LADDER if r <= top]
    rates = [float(part) for part in spec.split(",") if part.strip()]
    if not rates or any(r <= 0 for r in rates):
        raise ValueError(f"rates must be positive numbers, got {spec!r}")
    return rates


def highest_held(rows: Iterable[Mapping[str, Any]], limit_ms: float, key: str = "p99_ms") -> float | None:
    """The highest ``rate`` whose row kept ``key`` under ``limit_ms`` and lost nothing (``ok`` true), counting
    only the ladder up to the first failing step (a pass above a failure is luck, not a held rate)."""
    best = None
    for row in sorted(rows, key=lambda r: r["rate"]):
        if row.get("ok", True) and row[key] == row[key] and row[key] < limit_ms:  # NaN never passes
            best = row["rate"]
        else:
            break
    return best


def send_offsets(rate: float, seconds: float) -> list[float]:
    """Open-loop schedule: when (seconds after the start) each of ``round(rate*seconds)`` sends is due."""
    n = max(1, round(rate * seconds))
    return [i / rate for i in range(n)]


def parse_proc_stat(text: str) -> int:
    """utime+stime clock ticks from a ``/proc/<pid>/stat`` line (the command name may contain spaces)."""
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def parse_system_stat(text: str) -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs from ``/proc/stat``; idle and iowait are not busy."""
    for line in text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            total = sum(values[:8])  # guest time is already inside user
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            return total - idle, total
    raise ValueError("no cpu line in /proc/stat")


def cpu_percent(ticks: float, wall_seconds: float) -> float:
    """CPU ticks over a wall-clock window, in % of one core."""
    return 100.0 * ticks / CLK_TCK / wall_seconds if wall_seconds > 0 else math.nan


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if value != value else f"{value:.{digits}f}"
    return str(value)


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """``columns`` are (key, heading) pairs; floats get one decimal."""
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(row.get(k)) for k, _ in columns) + " |" for row in rows]
    return "\n".join(lines)


# -- /proc CPU meter -------------------------------------------------------------------------------------------


def proc_ticks(pid: int) -> int | None:
    try:
        return parse_proc_stat(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):
        return None  # gone


def _sum_ticks(pids: Sequence[int]) -> float:
    ticks = [proc_ticks(p) for p in pids]
    return math.nan if any(t is None for t in ticks) else float(sum(t for t in ticks if t is not None))


def system_ticks() -> tuple[int, int]:
    return parse_system_stat(Path("/proc/stat").read_text())


@dataclass
class CpuSnapshot:
    at: float
    procs: dict[str, float]  # NaN when a process of the group has gone
    system: tuple[int, int]


class CpuMeter:
    """Named groups of processes (``{"server A": [pid], "generator": [pid, pid]}``); ``delta`` gives each group's
    CPU in % of one core over the window, ``others`` (the rest of the machine, % of one core) and ``machine busy``
    (% of all cores)."""

    def __init__(self, groups: Mapping[str, Sequence[int]]) -> None:
        self.groups = {name: list(pids) for name, pids in groups.items()}

    def snapshot(self) -> CpuSnapshot:
        procs = {name: _sum_ticks(pids) for name, pids in self.groups.items()}
        return CpuSnapshot(time.monotonic(), procs, system_ticks())

    def delta(self, start: CpuSnapshot, end: CpuSnapshot) -> dict[str, float]:
        wall = end.at - start.at
        out = {name: cpu_percent(end.procs[name] - start.procs[name], wall) for name in self.groups}
        busy = end.system[0] - start.system[0]
        total = end.system[1] - start.system[1]
        out["machine busy"] = 100.0 * busy / total if total else math.nan
        # Everything else the machine ran meanwhile (other people's jobs, the kernel), in % of one core.
        out["others"] = max(0.0, cpu_percent(busy, wall) - sum(out[name] for name in self.groups))
        return out


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, load average before the run {load}"


# -- retake nodes ----------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Node:
    name: str
    process: subprocess.Popen[bytes]
    base: str
    data_dir: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def node_env(data_dir: Path, port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        **os.environ,
        "RETAKE_PORT": str(port),
        "RETAKE_RTMP_PORT": str(free_port()),
        "RETAKE_DATA_DIR": str(data_dir),
        **BENCH_ENV,
        **(extra or {}),
    }
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH", "")) if p)
    return env


def serve_argv(server_gc: str | None = None) -> list[str]:
    """``python -m retake serve``; with ``server_gc`` (see ``parse_server_gc``) the same command behind
    ``gc.freeze()`` and/or ``gc.set_threshold(...)``: an experiment on the share of the server's time that
    CPython's cyclic garbage collector takes (not a retake setting)."""
    if not server_gc:
        return [sys.executable, "-m", "retake", "serve"]
    parts = server_gc.split(",")
    lines = ["import gc, sys"]
    if parts[0] == "freeze":
        # The server's modules, imported: their objects move to the permanent generation, which full
        # collections no longer traverse (objects made later, in create_app and per request, are not frozen).
        lines += ["import retake.cli, retake.server.app, retake.server.runner", "gc.freeze()"]
        parts = parts[1:]
    if parts:
        lines.append(f"gc.set_threshold({', '.join(parts)})")
    lines += ["sys.argv = ['retake', 'serve']", "from retake.cli import app", "app()"]
    return [sys.executable, "-c", "\n".join(lines)]


def parse_server_gc(text: str) -> str:
    """``--server-gc``: ``50000,20,100`` (``gc.set_threshold``), ``freeze`` or ``freeze,50000,20,100``."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    freeze = bool(parts) and parts[0] == "freeze"
    numbers = parts[1:] if freeze else parts
    if (not freeze and not numbers) or len(numbers) > 3 or not all(p.isdigit() for p in numbers):
        raise ValueError(f"expected freeze and/or 1-3 thresholds like 50000,20,100, got {text!r}")
    return ",".join(parts)


def start_node(
    name: str,
    folder: Path,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 60,
    server_gc: str | None = None,
    argv: Sequence[str] | None = None,
) -> Node:
    """``retake serve`` on free ports; returns once ``/health`` answers 200 (or raises, with the log tail)."""
    port = free_port()
    data_dir = folder / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            list(argv) if argv else serve_argv(server_gc),
            env=node_env(data_dir, port, extra_env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    node = Node(name, process, f"http://127.0.0.1:{port}", data_dir, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"node {name} exited with {process.returncode}:\n{node.log()[-3000:]}")
        try:
            if httpx.get(f"{node.base}/health", timeout=1).status_code == 200:
                return node
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_node(node)
    raise RuntimeError(f"node {name} was not healthy after {timeout:.0f} s:\n{node.log()[-3000:]}")


def stop_node(node: Node, timeout: float = 20) -> int | None:
    if node.process.poll() is None:
        node.process.terminate()
        try:
            node.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            node.process.kill()
            node.process.wait(timeout=5)
    return node.process.returncode


def log_problems(text: str, limit: int = 5) -> list[str]:
    """Tracebacks, errors and warnings in a server log (the benchmark runs the server at ``warning``)."""
    hits = [line for line in text.splitlines() if "Traceback" in line or " ERROR " in line or " WARNING " in line]
    return hits[:limit] + ([f"… and {len(hits) - limit} more"] if len(hits) > limit else [])


def keep_logs(nodes: Sequence[Node], folder: Path | None) -> None:
    """Copy each node's log to ``folder`` (the nodes' own folders are temporary)."""
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for node in nodes:
        (folder / f"server-{node.name}.log").write_text(node.log())
        print(f"node {node.name} log: {folder / f'server-{node.name}.log'}")


def postgres_available() -> bool:
    try:
        subprocess.run([*PG_ADMIN, "SELECT 1"], check=True, capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return False
    return True


@contextmanager
def postgres_database(prefix: str = "retake_bench") -> Iterator[str]:
    """A throwaway database on the local PostgreSQL (user postgres, as ``make services`` sets up), migrated,
    dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    subprocess.run([*PG_ADMIN, f'CREATE DATABASE "{name}"'], check=True, capture_output=True, timeout=30)
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        asyncio.run(_migrate(url))  # before the nodes start, so two of them do not race to create the schema
        yield url
    finally:
        subprocess.run([*PG_ADMIN, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], capture_output=True, timeout=30)


async def _migrate(url: str) -> None:
    from retake.store.engine import create_engine, migrate

    engine = create_engine(url)
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def redis_channel() -> str:
    return f"retake-bench-{uuid.uuid4().hex[:12]}"


def generator_env() -> dict[str, str]:
    """Environment of a load-generator child process: ``bench`` and ``retake`` importable from the checkout."""
    paths = [str(REPO), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def wait_until_quiet(max_busy: float, timeout: float, probe: float = 2.0) -> float:
    """Wait (at most ``timeout`` s) until the machine was less than ``max_busy`` % busy over ``probe`` seconds:
    other work on a shared machine moves every number here. Returns the last busy share seen."""
    deadline = time.monotonic() + timeout
    while True:
        before = system_ticks()
        time.sleep(probe)
        after = system_ticks()
        total = after[1] - before[1]
        busy = 100.0 * (after[0] - before[0]) / total if total else 0.0
        if busy < max_busy or time.monotonic() >= deadline:
            return busy


def install_uvloop() -> str:
    """The load generator runs on uvloop when it is there (it comes with ``uvicorn[standard]``): a cheaper
    event loop leaves more of the two cores to the server. Returns the loop's name for the report."""
    try:
        import uvloop
    except ImportError:
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"
