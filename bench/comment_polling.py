"""Comment polling: N agents each read their chat every few seconds, as the agent SDK's chat loop does.

    python -m bench.comment_polling                              # 1000 agents every 3 s (~333 req/s), SQLite
    python -m bench.comment_polling --agents 500,1000,2000 --seconds 30
    python -m bench.comment_polling --postgres                   # a throwaway database on 127.0.0.1:5432
    python -m bench.comment_polling --comments 0                 # empty chats: the request path without rows

Every agent sends ``GET /api/v1/agent/stream/comments?userDbId=<own id>&limit=50`` with its own access token
every ``--interval`` seconds (the SDK's pace, ``retake.agent.chat``) over its own keep-alive connection
(httpx, one ``AsyncClient`` with one connection per agent, like 1000 separate agent processes would hold).
Agents start at random phases, so the load is even (~agents/interval requests per second), and the schedule
is open-loop: a request is due at its time whatever happened to the previous one; if it is still running the
agent waits, and that wait shows as *late starts* (so a saturated generator or server cannot hide behind
a slower request rate). Requests are counted by when they were sent, so ``req/s`` is what the server got;
what is still due when the window ends is not sent (``not sent``). Latency is from just before the client call
to the parsed response.

Before the run each chat is seeded with ``--comments`` rows (default 50, i.e. every poll returns a full page of
50 comments, the SDK's ``limit``) written straight into ``chat_events`` (the same columns ``ChatService.send``
writes; seeding 50,000 rows through REST would take minutes). During the run ``--send-rate`` chat messages per
second (default 10) are sent through REST into random agents' chats, so reads meet a live writer as they would.

The pollers run in ``--workers`` processes (default 2) on uvloop; this process seeds, sends and reads
``/proc``: CPU of the server, of the generator (workers + this process) and of the whole machine over the
measurement window, after a warm-up of one interval.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import ssl
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    REPO,
    WALLET,
    CpuMeter,
    Histogram,
    Node,
    generator_env,
    install_uvloop,
    keep_logs,
    log_problems,
    machine_line,
    markdown_table,
    parse_server_gc,
    postgres_database,
    start_node,
    stop_node,
    wait_until_quiet,
)

PATH = "/api/v1/agent/stream/comments"


# -- pure helpers (smoke-tested by tests/unit/test_bench_realtime.py) ------------------------------------------


def agent_counts(spec: str) -> list[int]:
    counts = [int(part) for part in spec.split(",") if part.strip()]
    if not counts or any(c <= 0 for c in counts):
        raise ValueError(f"agent counts must be positive integers, got {spec!r}")
    return counts


def expected_rate(agents: int, interval: float) -> float:
    return agents / interval


def due_times(phase: float, interval: float, start: float, end: float) -> list[float]:
    """When one agent polls: ``phase`` after ``start`` and every ``interval`` after that, before ``end``."""
    times = []
    t = start + phase
    while t < end:
        times.append(t)
        t += interval
    return times


def seed_rows(streamers: Sequence[str], per_chat: int, now: Any) -> list[dict[str, Any]]:
    """``chat_events`` rows: ``per_chat`` messages in each chat, each from the next agent in the list."""
    rows = []
    for i, streamer in enumerate(streamers):
        sender = streamers[(i + 1) % len(streamers)]
        for k in range(per_chat):
            rows.append(
                {
                    "streamer_id": streamer,
                    "session_id": None,
                    "sender_user_id": sender,
                    "type": "message",
                    "text": f"seed message {k} for the polling benchmark, about as long as a chat line",
                    "tip_data": None,
                    "trade_data": None,
                    "created_at": now - timedelta(seconds=per_chat - k),
                    "deleted": False,
                }
            )
    return rows


# -- worker process: the pollers -------------------------------------------------------------------------------


async def worker_main(spec: dict[str, Any]) -> None:
    """Poll for the agents in ``spec`` from ``start`` to ``end`` (CLOCK_MONOTONIC, shared with the orchestrator);
    record what was due inside [measure_from, end); print one JSON line."""
    hist, lag = Histogram(), Histogram()
    statuses: dict[str, int] = {}
    skipped = 0
    interval = spec["interval"]
    start, measure_from, end = spec["start"], spec["measure_from"], spec["end"]
    context = ssl.create_default_context()  # shared: httpx would build one per client otherwise
    rng = random.Random(spec["seed"])
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def agent(token: str, user_id: str) -> None:
        nonlocal skipped
        headers = {"Authorization": f"Bearer {token}"}
        params = {"userDbId": user_id, "limit": "50"}
        async with httpx.AsyncClient(base_url=spec["base"], limits=limits, timeout=30, verify=context) as http:
            schedule = due_times(rng.uniform(0, interval), interval, start, end)
            for n, due in enumerate(schedule):
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                begin = time.monotonic()
                if begin >= end:  # the server fell behind: what is still due is not sent (bounded run)
                    skipped += len(schedule) - n
                    break
                try:
                    response = await http.get(PATH, params=params, headers=headers)
                    response.json()
                    status = str(response.status_code)
                except (httpx.HTTPError, ValueError) as exc:
                    status = type(exc).__name__
                if begin >= measure_from:  # counted by when it was sent: the throughput the server saw
                    hist.record((time.monotonic() - begin) * 1000)
                    lag.record((begin - due) * 1000)
                    statuses[status] = statuses.get(status, 0) + 1

    agents = spec["agents"]
    await asyncio.gather(*(agent(token, user_id) for token, user_id in agents))
    answer = {"hist": hist.to_json(), "lag": lag.to_json(), "statuses": statuses, "skipped": skipped}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    # Stay until the orchestrator has read /proc for the window (it closes stdin then).
    await asyncio.to_thread(sys.stdin.read)


# -- orchestrator ----------------------------------------------------------------------------------------------


async def register_agents(base: str, count: int, run: str) -> list[tuple[str, str]]:
    agents: list[tuple[str, str]] = []
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:

        async def one(i: int) -> None:
            body = {"agent_name": f"poll_{run}_{i}", "wallet_address": WALLET, "ticker": "POLL"}
            async with gate:
                reg = await http.post("/api/v1/agent/register", json=body)
            reg.raise_for_status()
            agents.append((reg.json()["access_token"], reg.json()["userDbId"]))

        await asyncio.gather(*(one(i) for i in range(count)))
    return agents


async def seed(database_url: str, streamers: Sequence[str], per_chat: int) -> None:
    from sqlalchemy import insert

    from retake.store.engine import create_engine
    from retake.store.tables import ChatEvent
    from retake.store.types import utcnow

    engine = create_engine(database_url)
    try:
        rows = seed_rows(streamers, per_chat, utcnow())
        async with engine.begin() as conn:
            for chunk in range(0, len(rows), 5000):
                await conn.execute(insert(ChatEvent), rows[chunk : chunk + 5000])
    finally:
        await engine.dispose()


async def chat_writer(base: str, agents: Sequence[tuple[str, str]], rate: float, until: float) -> dict[str, int]:
    """``rate`` REST chat messages per second into random agents' chats until ``until``."""
    statuses: dict[str, int] = {}
    if rate <= 0:
        return statuses
    rng = random.Random(7)
    pending: set[asyncio.Task[None]] = set()
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:

        async def send(i: int) -> None:
            token, _ = rng.choice(agents)
            _, target = rng.choice(agents)
            body = {"message": f"live message {i}", "destination_user_id": target}
            try:
                response = await http.post(
                    "/api/v1/agent/stream/chat/send", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                key = str(response.status_code)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
            statuses[key] = statuses.get(key, 0) + 1

        begin, i = time.monotonic(), 0
        while begin + i / rate < until:
            delay = begin + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(send(i))
            pending.add(task)
            task.add_done_callback(pending.discard)
            i += 1
        if pending:
            await asyncio.wait(pending, timeout=30)
    return statuses


async def run_step(
    args: argparse.Namespace, base: str, agents: Sequence[tuple[str, str]], server_pids: list[int], folder: Path
) -> dict[str, Any]:
    loop_start = time.monotonic()
    start = loop_start + 3.0 + len(agents) / 500  # time for the workers to start and build their clients
    measure_from = start + args.interval  # the first interval is the warm-up (connections, first requests)
    end = measure_from + args.seconds
    chunks = [list(agents[i :: args.workers]) for i in range(min(args.workers, len(agents)))]
    env = generator_env()
    workers = []
    for n, chunk in enumerate(chunks):
        spec_path = folder / f"poll-spec-{len(agents)}-{n}.json"
        spec = {"base": base, "agents": chunk, "interval": args.interval, "start": start}
        spec.update({"measure_from": measure_from, "end": end, "seed": n})
        spec_path.write_text(json.dumps(spec))
        argv = [sys.executable, "-m", "bench.comment_polling", "_worker", str(spec_path)]
        pipes = {"stdin": asyncio.subprocess.PIPE, "stdout": asyncio.subprocess.PIPE}
        workers.append(await asyncio.create_subprocess_exec(*argv, **pipes, cwd=REPO, env=env, limit=1 << 24))
    meter = CpuMeter({"server": server_pids, "generator": [os.getpid(), *(w.pid for w in workers)]})
    writer = asyncio.create_task(chat_writer(base, agents, args.send_rate, end))
    await asyncio.sleep(max(0.0, measure_from - time.monotonic()))
    before = meter.snapshot()
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    cpu = meter.delta(before, meter.snapshot())
    hist, lag = Histogram(), Histogram()
    statuses: dict[str, int] = {}
    skipped = 0
    for process in workers:
        assert process.stdout is not None and process.stdin is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), 120)
        except TimeoutError:
            process.kill()
            line = b""
        process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
        if not line:
            statuses["worker failed"] = statuses.get("worker failed", 0) + 1
            continue
        answer = json.loads(line)
        hist.merge(Histogram.from_json(answer["hist"]))
        lag.merge(Histogram.from_json(answer["lag"]))
        for key, n in answer["statuses"].items():
            statuses[key] = statuses.get(key, 0) + n
        skipped += int(answer.get("skipped", 0))
    writes = await writer
    errors = sum(n for key, n in statuses.items() if key != "200")
    return {
        "agents": len(agents),
        "target_rps": len(agents) / args.interval,
        "rps": hist.count / args.seconds,
        "requests": hist.count,
        "errors": errors,
        "skipped": skipped,
        "statuses": statuses,
        "p50_ms": hist.percentile(50),
        "p90_ms": hist.percentile(90),
        "p99_ms": hist.percentile(99),
        "max_ms": hist.max_ms,
        "late_p99_ms": lag.percentile(99),
        "writes": writes,
        "cpu server": cpu["server"],
        "cpu generator": cpu["generator"],
        "cpu machine busy": cpu["machine busy"],
        "cpu others": cpu["others"],
    }


WRK_SCRIPT = """\
-- retake comment polling, closed loop: each request is the next agent's poll (token and user id from a file).
local agents = {}
local n = 0

function init(args)
  for line in io.lines(args[1]) do
    local token, user = line:match("(%S+) (%S+)")
    agents[#agents + 1] = {token, user}
  end
  n = math.random(#agents)
end

function request()
  n = n % #agents + 1
  local a = agents[n]
  return wrk.format("GET", "/api/v1/agent/stream/comments?userDbId=" .. a[2] .. "&limit=50",
    {["Authorization"] = "Bearer " .. a[1]})
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "status": %d, "timeout": %d, "connect": %d, "read": %d, "write": %d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.status, e.timeout, e.connect, e.read, e.write))
end
"""


def wrk_argv(base: str, connections: int, seconds: float, script: Path, agents_file: Path) -> list[str]:
    """wrk 4 (Debian's ``wrk``) closed loop: ``connections`` connections, each sending its next request as soon as
    the previous one is answered; one thread (the generator must leave the cores to the server)."""
    return [
        "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "30s",
        "-s", str(script), base, "--", str(agents_file),
    ]  # fmt: skip


def parse_wrk(output: str) -> dict[str, Any] | None:
    for line in output.splitlines():
        if line.startswith("WRK "):
            data: dict[str, Any] = json.loads(line[4:])
            return data
    return None


async def wrk_probe(
    args: argparse.Namespace, base: str, agents: Sequence[tuple[str, str]], server_pids: list[int], folder: Path
) -> dict[str, Any]:
    """The server's capacity for this request with a generator that costs almost nothing (wrk is C): closed
    loop, ``--wrk`` connections, for ``--seconds``."""
    script, agents_file = folder / "polling.lua", folder / "agents.txt"
    script.write_text(WRK_SCRIPT)
    agents_file.write_text("".join(f"{token} {user}\n" for token, user in agents))
    argv = wrk_argv(base, args.wrk, args.seconds, script, agents_file)
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    meter = CpuMeter({"server": server_pids, "generator": [process.pid]})
    await asyncio.sleep(1.0)  # connections opened; the first second is not in the CPU window
    before = meter.snapshot()
    await asyncio.sleep(max(0.5, args.seconds - 2.0))
    cpu = meter.delta(before, meter.snapshot())
    try:
        out, _ = await asyncio.wait_for(process.communicate(), args.seconds + 60)
    except TimeoutError:
        process.kill()
        out, _ = await process.communicate()
    result = parse_wrk(out.decode(errors="replace"))
    if result is None:
        raise RuntimeError(f"wrk gave no result:\n{out.decode(errors='replace')[-2000:]}")
    errors = sum(int(result[k]) for k in ("status", "timeout", "connect", "read", "write"))
    return {
        "agents": f"wrk -c{args.wrk}",
        "target_rps": None,
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "requests": result["requests"],
        "errors": errors,
        "skipped": None,
        "p50_ms": result["p50_us"] / 1000,
        "p90_ms": result["p90_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
        "late_p99_ms": None,
        "cpu server": cpu["server"],
        "cpu generator": cpu["generator"],
        "cpu others": cpu["others"],
    }


def result_table(rows: Sequence[dict[str, Any]]) -> str:
    columns = [
        ("agents", "agents"),
        ("target_rps", "target req/s"),
        ("rps", "req/s"),
        ("errors", "errors"),
        ("skipped", "not sent"),
        ("p50_ms", "p50 ms"),
        ("p90_ms", "p90 ms"),
        ("p99_ms", "p99 ms"),
        ("max_ms", "max ms"),
        ("late_p99_ms", "late start p99 ms"),
        ("cpu server", "CPU server %"),
        ("cpu generator", "CPU generator %"),
        ("cpu others", "CPU others %"),
    ]
    return markdown_table(rows, columns)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=agent_counts, default=[1000], help="agents per step, e.g. 500,1000,2000")
    parser.add_argument("--interval", type=float, default=3.0, help="seconds between one agent's polls (default 3)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measurement window per step (default 30)")
    parser.add_argument("--comments", type=int, default=50, help="rows seeded into every chat (default 50)")
    parser.add_argument("--send-rate", type=float, default=10.0, help="REST chat messages/s during the run")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes (default 2)")
    parser.add_argument("--wrk", type=int, default=0, metavar="C", help="after the steps, a capacity probe: wrk "
                        "(apt-get install wrk) in a closed loop with C connections for --seconds")  # fmt: skip
    parser.add_argument("--postgres", action="store_true", help="a throwaway database on 127.0.0.1:5432")
    parser.add_argument("--database-url", help="run the node on this database")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--keep-logs", type=Path, metavar="DIR", help="copy the server log(s) here")
    gc_help = "experiment: start the server(s) after gc.freeze() and/or gc.set_threshold(N, …) (CPython 700,10,10)"
    parser.add_argument("--server-gc", type=parse_server_gc, metavar="[freeze,]N[,N,N]", help=gc_help)
    parser.add_argument("--wait-quiet", type=float, default=0, metavar="PCT", help="first wait (5 min at most) "
                        "until the machine is less than PCT %% busy (other work moves every number)")  # fmt: skip
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["_worker"]:
        install_uvloop()
        asyncio.run(worker_main(json.loads(Path(argv[1]).read_text())))
        return 0
    args = parse_args(argv)
    loop_name = install_uvloop()
    db = "PostgreSQL" if args.postgres or (args.database_url or "").startswith("postgres") else "SQLite"
    setup = (
        f"one node, {db}, {args.comments} comments per chat, {args.send_rate:g} chat writes/s, "
        f"every {args.interval:g} s, httpx in {args.workers} workers on {loop_name}"
    )
    if args.server_gc:
        setup += f", server gc {args.server_gc}"
    if args.wait_quiet:
        print(f"machine {wait_until_quiet(args.wait_quiet, 300):.0f}% busy when the run started")
    print(machine_line())
    print(f"setup: {setup}", flush=True)
    nodes: list[Node] = []
    rows: list[dict[str, Any]] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="retake-polling-")))
        stack.callback(lambda: [stop_node(n) for n in nodes])
        database_url = args.database_url or (stack.enter_context(postgres_database()) if args.postgres else None)
        env = {"RETAKE_DATABASE_URL": database_url} if database_url else {}
        nodes.append(start_node("A", folder / "A", env, server_gc=args.server_gc))
        node = nodes[0]
        run = uuid.uuid4().hex[:6]

        async def prepare() -> list[tuple[str, str]]:
            began = time.monotonic()
            agents = await register_agents(node.base, max(args.agents), run)
            print(f"registered {len(agents)} agents in {time.monotonic() - began:.1f} s", flush=True)
            if args.comments > 0:
                began = time.monotonic()
                url = database_url or f"sqlite+aiosqlite:///{(node.data_dir / 'retake.db').resolve()}"
                await seed(url, [user_id for _, user_id in agents], args.comments)
                print(f"seeded {args.comments} comments into each chat in {time.monotonic() - began:.1f} s")
            return agents

        agents = asyncio.run(prepare())
        for count in args.agents:
            row = asyncio.run(run_step(args, node.base, agents[:count], [node.pid], folder))
            rows.append(row)
            print(
                f"{count} agents: {row['rps']:.0f} req/s, p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, "
                f"max {row['max_ms']:.1f} ms, statuses {row['statuses']}, late p99 {row['late_p99_ms']:.0f} ms, "
                f"CPU server {row['cpu server']:.0f}% generator {row['cpu generator']:.0f}% "
                f"others {row['cpu others']:.0f}%, writes {row['writes']}",
                flush=True,
            )
        if args.wrk:
            row = asyncio.run(wrk_probe(args, node.base, agents, [node.pid], folder))
            rows.append(row)
            print(f"wrk closed loop, {args.wrk} connections: {row['rps']:.0f} req/s, p50 {row['p50_ms']:.1f} ms, "
                  f"p99 {row['p99_ms']:.1f} ms, errors {row['errors']}, CPU server {row['cpu server']:.0f}% "
                  f"wrk {row['cpu generator']:.0f}% others {row['cpu others']:.0f}%", flush=True)  # fmt: skip
        problems = log_problems(node.log())
        keep_logs(nodes, args.keep_logs)
    print()
    print(result_table(rows))
    if problems:
        print("server log:", *problems, sep="\n  ")
    if args.json:
        args.json.write_text(json.dumps({"setup": setup, "rows": rows}, indent=1))
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
