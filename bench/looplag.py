"""Event-loop stalls, bench-only: how late a 10 ms timer fires, and what the loop's thread was doing meanwhile.

``Monitor`` runs in any asyncio (or uvloop) loop: a task sleeps 10 ms and records how much later than asked it
woke; a watchdog thread notices when that task has not run for ``STALL_MS`` and takes the loop thread's Python
stack (``sys._current_frames``: an in-process ``py-spy dump`` taken during the stall itself). Garbage collections
are timed through ``gc.callbacks``. ``server_argv`` starts ``retake serve`` with a monitor that writes a JSON
report to a file when the server stops (``bench.webhooks --loop-lag``). Not part of retake.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import json
import sys
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

from bench.harness import REPO

TICK_S = 0.010
STALL_MS = 100.0
KEEP_STACKS = 60


class Monitor:
    def __init__(self) -> None:
        self.lags_ms: list[float] = []
        self.stalls: list[dict[str, Any]] = []  # {at, stack}: the loop thread's stack while late
        self.gc_ms: Counter[int] = Counter()
        self.gc_long: list[tuple[int, float]] = []  # (generation, ms) of collections over 20 ms
        self._beat = time.monotonic()
        self._thread_id = threading.get_ident()
        self._gc_started = 0.0
        self._stop = threading.Event()
        self.statement_ms: dict[str, list[float]] = {}  # how long each statement kind took, as the loop saw it
        self.db_connects = 0  # new database connections opened (a pool that opens and closes them per burst)

    def start(self) -> asyncio.Task[None]:
        self._thread_id = threading.get_ident()
        gc.callbacks.append(self._on_gc)
        threading.Thread(target=self._watch, name="looplag-watchdog", daemon=True).start()
        return asyncio.ensure_future(self._tick())

    def stop(self) -> None:
        self._stop.set()

    async def _tick(self) -> None:
        while not self._stop.is_set():
            asked = time.monotonic()
            await asyncio.sleep(TICK_S)
            now = time.monotonic()
            self._beat = now
            self.lags_ms.append((now - asked - TICK_S) * 1000)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        ms = (time.perf_counter() - self._gc_started) * 1000
        self.gc_ms[info["generation"]] += round(ms)
        if ms > 20:
            self.gc_long.append((info["generation"], round(ms, 1)))

    def _watch(self) -> None:
        sampled_beat = 0.0
        while not self._stop.wait(0.02):
            beat = self._beat
            late_ms = (time.monotonic() - beat) * 1000
            if late_ms < STALL_MS or beat == sampled_beat or len(self.stalls) >= KEEP_STACKS:
                continue
            sampled_beat = beat  # one stack per stall (the first moment it is over STALL_MS)
            frame = sys._current_frames().get(self._thread_id)
            stack = traceback.format_stack(frame)[-14:] if frame is not None else []
            self.stalls.append({"at": time.time(), "late_ms": round(late_ms), "stack": "".join(stack)})

    def summary(self) -> dict[str, Any]:
        lags = sorted(self.lags_ms)

        def pct(p: float) -> float:
            return round(lags[min(len(lags) - 1, int(p / 100 * len(lags)))], 1) if lags else 0.0

        return {
            "ticks": len(lags),
            "db_connects": self.db_connects,
            "statements": {k: _spread(v) for k, v in self.statement_ms.items()},
            "p50_ms": pct(50),
            "p99_ms": pct(99),
            "max_ms": round(lags[-1], 1) if lags else 0.0,
            "over_100ms": sum(1 for v in lags if v > 100),
            "gc_ms_by_generation": dict(self.gc_ms),
            "gc_long": self.gc_long[:50],
            "stalls": self.stalls,
        }


def _spread(values: list[float]) -> str:
    ordered = sorted(values)

    def at(pct: float) -> float:
        return ordered[min(len(ordered) - 1, int(pct / 100 * len(ordered)))]

    return f"n={len(ordered)} p50 {at(50):.1f} p99 {at(99):.1f} max {ordered[-1]:.1f} ms"


def _time_calls(monitor: Monitor) -> None:
    """How long the webhook path's steps take (enqueue until committed, one POST, a lane's finish, commits)."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from retake.webhooks.outbox import Outbox
    from retake.webhooks.worker import DeliveryWorker

    def timed(owner: Any, name: str) -> None:
        inner = getattr(owner, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            began = time.perf_counter()
            try:
                return await inner(*args, **kwargs)
            finally:
                ms = (time.perf_counter() - began) * 1000
                monitor.statement_ms.setdefault(f"{owner.__name__}.{name}", []).append(ms)

        setattr(owner, name, call)

    for owner, name in ((Outbox, "enqueue"), (Outbox, "finish"), (DeliveryWorker, "send"), (AsyncSession, "commit")):
        timed(owner, name)


def install_in_server(report: str) -> None:
    """Wrap ``retake serve``'s server coroutine so a monitor runs in its loop; the report is written at exit."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import Pool

    from retake.server import runner

    monitor = Monitor()

    def connected(*_args: Any) -> None:
        monitor.db_connects += 1

    event.listen(Pool, "connect", connected)
    started: dict[int, float] = {}

    def before(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        started[id(cursor)] = time.perf_counter()

    def after(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        ms = (time.perf_counter() - started.pop(id(cursor), time.perf_counter())) * 1000
        monitor.statement_ms.setdefault(statement.split(None, 1)[0].upper(), []).append(ms)

    event.listen(Engine, "before_cursor_execute", before)
    event.listen(Engine, "after_cursor_execute", after)
    _time_calls(monitor)
    original = runner._Server.serve

    async def serve(self: Any, *args: Any, **kwargs: Any) -> None:
        monitor.start()
        await original(self, *args, **kwargs)

    runner._Server.serve = serve  # type: ignore[method-assign]
    atexit.register(lambda: Path(report).write_text(json.dumps(monitor.summary(), indent=1)))


def server_argv(report: str) -> list[str]:
    lines = [
        "import sys",
        f"sys.path.insert(0, {str(REPO)!r})",
        "import bench.looplag",
        f"bench.looplag.install_in_server({report!r})",
        "sys.argv = ['retake', 'serve']",
        "from retake.cli import app",
        "app()",
    ]
    return [sys.executable, "-c", "\n".join(lines)]


def describe(name: str, summary: dict[str, Any]) -> list[str]:
    lines = [
        f"{name} loop lag (10 ms timer): p50 {summary['p50_ms']} / p99 {summary['p99_ms']} / max "
        f"{summary['max_ms']} ms, {summary['over_100ms']} ticks over 100 ms of {summary['ticks']}; "
        f"{summary['db_connects']} database connections opened; "
        f"gc ms by generation {summary['gc_ms_by_generation']}, long collections {summary['gc_long'][:10]}"
    ]
    lines += [f"  {kind}: {spread}" for kind, spread in summary.get("statements", {}).items()]
    return lines
