"""Where each media message's cost goes: retake serve under N real-time ffmpeg publishers (the input and
publishers of ``bench.media``) and one HTTP-FLV viewer, profiled with py-spy (``--native``: Python and C frames)
and perf (kernel stacks), the samples attributed to categories and turned into µs of CPU per message.

    python -m bench.costs --streams 10 --seconds 30 --out /tmp/costs

A message is one RTMP audio or video message; the rate is the input's (30 video + 43 AAC frames a second per
stream, ~73). The CPU of the window comes from /proc (utime + stime of the server), py-spy's samples split it
into categories (its non-idle samples are the CPU time: its rate is fixed), and perf gives the split kernel /
interpreter / libraries of the same load in a second window (py-spy cannot see into the kernel, so a syscall's
time shows under the C function that made it: ``recv`` is "kernel read"). Each tool runs alone in its window.
Not part of ``make test``; ``tests/unit/test_bench_costs.py`` runs the pure helpers.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from bench.media import (
    RetakeServer,
    prepare_input,
    read_tags,
    start_publishers,
    stop_process,
    tree_cpu_seconds,
    wait_for,
)
from bench.rtmp_client import Arrivals

# Categories, in the order of the table. A stack goes to the first rule that matches, walking from the leaf
# (innermost frame) to the root: the code that ran, not the code that called it. GC and previews win wherever
# they appear in the stack (a collection runs inside whatever allocated; previews run on worker threads).
CATEGORIES = (
    "kernel read",
    "kernel write",
    "kernel other",
    "thread wake-ups",
    "loop dispatch",
    "timers",
    "chunk parse",
    "media parse",
    "FLV",
    "CMAF part",
    "recorder",
    "previews",
    "HTTP viewer",
    "database",
    "GC",
    "other",
)

# A thread waiting (for work, a lock, the GIL, epoll) is not CPU: py-spy --native reports such threads as
# active, with the wait at the leaf.
_WAITS = frozenset(
    {
        "pthread_cond_timedwait", "pthread_cond_wait", "PyThread_acquire_lock_timed", "sem_wait", "sem_timedwait",
        "sem_clockwait", "epoll_wait", "epoll_pwait", "take_gil", "poll", "select", "nanosleep", "clock_nanosleep",
        "futex_wait",
    }
)  # fmt: skip
_READ_CALLS = frozenset({"recv", "__libc_recv", "read", "__libc_read", "readv", "recvfrom", "recvmsg"})
_WRITE_CALLS = frozenset({"send", "__libc_send", "write", "__libc_write", "writev", "sendmsg", "sendto"})
_GC = re.compile(r"^(gc_collect_main|gc_collect_with_callback|gc_collect_generations|_PyObject_GC_Alloc|collect)\b")
_TIMER = re.compile(r"uv__run_timers|TimerHandle|\bcall_at\b|\bcall_later\b|_on_timer|_arm_timer|timer_cb")
_PY_RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("previews", re.compile(r"retake/(streams/previews|media/preview|images)\.py|[(/]av/video/|[(/]PIL/")),
    ("recorder", re.compile(r"retake/media/(recording|journal|writer)\.py")),
    ("CMAF part", re.compile(r"retake/media/(cmaf|fmp4|hls|playlist)\.py")),
    ("FLV", re.compile(r"retake/media/(flv|stream|timestamps)\.py|retake/server/playback\.py")),
    ("media parse", re.compile(r"retake/av/|retake/media/health\.py")),
    ("chunk parse", re.compile(r"retake/ingest/rtmp/")),
    ("database", re.compile(r"[(/](sqlalchemy|aiosqlite|asyncpg|sqlite3)/|retake/store/")),
    ("HTTP viewer", re.compile(r"retake/server/|[(/](starlette|uvicorn|h11|httptools|fastapi)/")),
    ("loop dispatch", re.compile(r"retake/ingest/|retake/streams/media_bridge\.py|asyncio/|uvloop/|selectors\.py")),
)


def frame_name(frame: str) -> str:
    """``func (file:line)`` → ``func``; a native frame is its bare symbol."""
    return frame.split(" (", 1)[0].strip()


def classify(stack: Sequence[str]) -> str:
    """The category of one py-spy stack (root first, as py-spy writes them)."""
    names = [frame_name(f) for f in stack]
    if any(n in _WAITS for n in names[-4:]):
        return "idle"
    if any(_GC.match(n) for n in names):
        return "GC"
    if any(_PY_RULES[0][1].search(f) for f in stack):
        return "previews"
    for frame, name in zip(reversed(stack), reversed(names), strict=True):
        if name in _READ_CALLS:
            return "kernel read"
        if name in _WRITE_CALLS:
            return "kernel write"
        if _TIMER.search(frame):
            return "timers"
        for category, pattern in _PY_RULES:
            if pattern.search(frame):
                return category
    if any("uv_run" in n or "uv__io_poll" in n for n in names):
        return "loop dispatch"
    return "other"


def parse_raw(lines: Iterable[str]) -> Iterable[tuple[list[str], int]]:
    """py-spy ``-f raw`` lines (``frame;frame;... count``) → (stack, count)."""
    for line in lines:
        line = line.rstrip("\n")
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            yield stack.split(";"), int(count)


def attribute(raw: Iterable[str], thread: str | None = None) -> collections.Counter[str]:
    """py-spy's non-idle samples by category; only ``thread``'s (a Python thread name) if given."""
    totals: collections.Counter[str] = collections.Counter()
    for stack, count in parse_raw(raw):
        if stack and stack[0].startswith("process "):
            stack = stack[1:]
        if stack and stack[0].startswith("thread "):
            if thread is not None and stack[0].split(": ", 1)[-1] != thread:
                continue
            stack = stack[1:]
        category = classify(stack)
        if category != "idle":
            totals[category] += count
    return totals


_GC_SYMBOLS = re.compile(
    r"^(gc_collect|collect|visit_decref|visit_reachable|subtract_refs|move_unreachable|update_refs|"
    r"deduce_unreachable|move_legacy_finalizers|dict_traverse|list_traverse|tupletraverse|subtype_traverse|"
    r"func_traverse|frame_traverse|type_traverse|visit_move|handle_legacy_finalizers|delete_garbage)"
)
_SYSCALL = re.compile(r"(?:__(?:x64|se|do)_sys_|ksys_)(\w+)")
_KERNEL_READ = frozenset({"recvfrom", "recvmsg", "read", "readv", "recvmmsg"})
_KERNEL_WRITE = frozenset({"sendto", "sendmsg", "write", "writev", "sendmmsg"})
_KERNEL_POLL = frozenset({"epoll_wait", "epoll_pwait", "epoll_ctl", "poll", "select", "pselect6", "ppoll"})


def parse_perf_script(lines: Iterable[str]) -> Iterable[tuple[int, list[tuple[str, str]]]]:
    """``perf script -F tid,ip,sym,dso`` (with call chains) → (tid, [(symbol, binary), ...] leaf first)."""
    tid: int | None = None
    frames: list[tuple[str, str]] = []
    for line in lines:
        if not line.strip():
            if tid is not None:
                yield tid, frames
            tid, frames = None, []
        elif not line.startswith("\t"):  # "<tid> " (padded), then one tab-indented line per frame
            tid, frames = int(line.split()[0]), []
        else:
            match = re.match(r"\s*[0-9a-f]+ (.*) \((.*)\)$", line)
            if match:
                frames.append((match.group(1), match.group(2)))
    if tid is not None:
        yield tid, frames


def perf_category(frames: Sequence[tuple[str, str]], thread: str) -> str:
    """One perf sample → a category, or ``user`` (interpreted code, split by py-spy's share of it).

    ``thread`` is the Python name of the sampled thread (from py-spy): the recorder's writer thread and the
    executor threads (previews decode there) are theirs whatever they run; the database's threads are "other".
    """
    if thread == "retake-file-writer":
        return "recorder"
    if thread.startswith(("uvloop_", "asyncio_")):
        return "previews"
    if not thread.startswith("MainThread"):
        return "other"
    if not frames:
        return "user"
    leaf, binary = frames[0]
    if "kernel" in binary:
        for symbol, _ in frames:
            match = _SYSCALL.match(symbol)
            if match is None:
                continue
            call = match.group(1)
            if call in _KERNEL_READ:
                return "kernel read"
            if call in _KERNEL_WRITE:
                return "kernel write"
            if call in _KERNEL_POLL:
                return "loop dispatch"
            if call == "futex":
                return "thread wake-ups"  # waking (or waiting for) another thread: the GIL, a queue
            return "kernel other"
        return "kernel other"  # interrupts: network receive, ACKs, scheduler ticks
    if _GC_SYMBOLS.match(leaf):
        return "GC"
    return "user"


def thread_names(raw: Iterable[str]) -> dict[int, str]:
    """tid → Python thread name, from py-spy's ``--threads`` stacks (``thread (tid): name;...``)."""
    names: dict[int, str] = {}
    for line in raw:
        match = re.match(r"thread \((\d+)\): ([^;]*)", line)
        if match:
            names[int(match.group(1))] = match.group(2)
    return names


def combine(perf: Mapping[str, int], spy: Mapping[str, int]) -> dict[str, float]:
    """perf's categories, its ``user`` samples split like py-spy's samples of the main thread's own code."""
    out = collections.defaultdict(float, {k: float(v) for k, v in perf.items() if k != "user"})
    python = {k: v for k, v in spy.items() if k not in ("kernel read", "kernel write", "GC")}
    python_total = sum(python.values())
    user = perf.get("user", 0)
    for category, count in python.items():
        out[category] += user * count / python_total
    if python_total == 0:
        out["other"] += user
    return dict(out)


def perf_split(report: Iterable[str]) -> dict[str, float]:
    """``perf report --sort dso --stdio`` lines → % by part (kernel, interpreter, libc, uvloop, other)."""
    parts: collections.defaultdict[str, float] = collections.defaultdict(float)
    for line in report:
        match = re.match(r"\s*([\d.]+)%\s+(\S.*)$", line)
        if not match:
            continue
        pct, dso = float(match.group(1)), match.group(2).strip()
        if "kernel" in dso:
            parts["kernel"] += pct
        elif "python3" in dso or "libpython" in dso:
            parts["interpreter"] += pct
        elif dso.startswith("libc"):
            parts["libc"] += pct
        elif "loop.cpython" in dso or "uvloop" in dso:
            parts["uvloop"] += pct
        else:
            parts["other libraries"] += pct
    return dict(parts)


def table(cpu_pct: float, totals: Mapping[str, float], messages_per_s: float) -> str:
    """Markdown rows: category, % of the server's CPU, µs per message."""
    samples = sum(totals.values()) or 1
    rows = ["| category | % of server CPU | µs / message |", "|---|---|---|"]
    for category in CATEGORIES:
        share = totals.get(category, 0) / samples
        us = share * cpu_pct / 100 / messages_per_s * 1e6 if messages_per_s else 0.0
        rows.append(f"| {category} | {100 * share:.1f} | {us:.2f} |")
    total_us = cpu_pct / 100 / messages_per_s * 1e6 if messages_per_s else 0.0
    rows.append(f"| **total** ({cpu_pct:.1f} % of a core) | 100 | {total_us:.2f} |")
    return "\n".join(rows)


# -- the run -------------------------------------------------------------------------------------------------


def _window_cpu(pid: int, seconds: float, tool: list[str] | None) -> float:
    """CPU % of one core used by ``pid`` over ``seconds``, with ``tool`` (a profiler) running meanwhile."""
    cpu0, t0 = tree_cpu_seconds([pid]), time.monotonic()
    if tool is not None:
        subprocess.run(tool, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:
        time.sleep(seconds)
    return 100 * (tree_cpu_seconds([pid]) - cpu0) / (time.monotonic() - t0)


def run(streams: int, seconds: int, out: Path, env: dict[str, str]) -> str:
    source = prepare_input(seconds * 3 + 60)
    tags = read_tags(source)
    duration_s = (tags[-1].timestamp_ms - tags[0].timestamp_ms) / 1000
    per_stream = sum(t.kind in (8, 9) for t in tags) / duration_s
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="retake-costs-") as root:
        server = RetakeServer(Path(root), env)
        publishers: list[subprocess.Popen[bytes]] = []
        stop = threading.Event()
        try:
            publishers += start_publishers(source, server.targets(streams))
            if wait_for(lambda: server.live_count() >= streams, timeout=30 + streams, interval=0.2) is None:
                raise RuntimeError(f"only {server.live_count()}/{streams} went live")
            threading.Thread(target=server.viewer, args=(0, Arrivals(), stop), daemon=True).start()
            time.sleep(5)
            pid = server.process.pid
            load = [os.getloadavg()[0]]
            plain = _window_cpu(pid, seconds, None)
            raw = out / "pyspy.txt"
            spy = [str(Path(sys.executable).parent / "py-spy"), "record", "--native", "--threads", "--rate", "250"]
            spy += ["-p", str(pid), "-d", str(seconds), "-f", "raw", "-o", str(raw)]
            spied = _window_cpu(pid, seconds, spy)
            load.append(os.getloadavg()[0])
            perf_data = out / "perf.data"
            perf = ["perf", "record", "-F", "999", "-g", "-p", str(pid), "-o", str(perf_data), "--", "sleep"]
            _window_cpu(pid, seconds, [*perf, str(seconds)])
            load.append(os.getloadavg()[0])
        finally:
            stop.set()
            for process in publishers:
                stop_process(process, timeout=5)
            server.close()
    meta = {"streams": streams, "per_stream": per_stream, "cpu": plain, "cpu_profiled": spied, "load": load}
    (out / "meta.json").write_text(json.dumps(meta | {"pid": pid}))
    return analyze(out)


def analyze(out: Path) -> str:
    """The table from a run's files in ``out`` (meta.json, pyspy.txt, perf.data)."""
    meta = json.loads((out / "meta.json").read_text())
    perf_data = out / "perf.data"
    report = subprocess.run(
        ["perf", "report", "-i", str(perf_data), "--no-children", "--sort", "dso", "--stdio"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (out / "perf-dso.txt").write_text(report)
    script = subprocess.run(
        ["perf", "script", "-i", str(perf_data), "-F", "tid,ip,sym,dso"], capture_output=True, text=True, check=True
    ).stdout
    spy_lines = (out / "pyspy.txt").read_text().splitlines()
    names = thread_names(spy_lines)
    perf_counts: collections.Counter[str] = collections.Counter()
    for tid, frames in parse_perf_script(script.splitlines()):
        perf_counts[perf_category(frames, names.get(tid, "MainThread" if tid == meta["pid"] else "?"))] += 1
    totals = combine(perf_counts, attribute(spy_lines, "MainThread"))
    streams, per_stream, plain, load = meta["streams"], meta["per_stream"], meta["cpu"], meta["load"]
    messages = per_stream * streams
    split = perf_split(report.splitlines())
    loads = ", ".join(f"{x:.1f}" for x in load)
    lines = [
        f"{streams} streams, {messages:.0f} messages/s ({per_stream:.1f} per stream); server CPU "
        f"{plain:.1f} % of a core (profiled window {meta['cpu_profiled']:.1f} %); load average {loads}",
        "",
        table(plain, totals, messages),
        "",
        "perf, by binary: " + ", ".join(f"{k} {v:.1f} %" for k, v in sorted(split.items(), key=lambda kv: -kv[1])),
        "perf samples by category: " + ", ".join(f"{k} {v}" for k, v in perf_counts.most_common()),
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "retake-costs")
    parser.add_argument("--retake-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--analyze", action="store_true", help="only make the table again from --out's files")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.retake_env)
    text = analyze(args.out) if args.analyze else run(args.streams, args.seconds, args.out, env)
    with contextlib.suppress(OSError):
        (args.out / "table.md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
