"""Ledger throughput: swaps per second through the real HTTP API, on SQLite and PostgreSQL (issue 5).

    python -m bench.ledger_swaps --seconds 15 --db sqlite,postgres
    python -m bench.ledger_swaps --seconds 5 --db sqlite --concurrency 8     # a quick look

For each database a fresh ``retake serve`` runs on free loopback ports (``RETAKE_ENABLE_AIRDROP=1``, token config
A; PostgreSQL: a throwaway database on 127.0.0.1:5432, dropped afterwards). Setup goes through the same doors a
user would: ``--pools`` agents register, are verified by the operator (``platform.agents.operator_verify``, what
``retake admin verify NAME`` runs) and call ``stream/start``, which launches their tokens; one viewer per client
registers and funds itself with ``POST /api/v1/wallet/airdrop``.

Then, for every concurrency in ``--concurrency``, four closed-loop workloads of ``--seconds`` each (after
``--warmup`` seconds whose requests are not counted): every client is one viewer with its own
``httpx.AsyncClient`` and one keep-alive connection, and sends its next request when the previous one answered.

- ``health``: ``GET /health`` (routing, JSON, one ``SELECT 1``): the HTTP floor of this server;
- ``quote``: ``GET /api/v1/tokens/<hot>/quote?side=buy&amount=…``: one token read plus the curve math, no write;
- ``swap, 1 hot pool``: every client trades the same token;
- ``swap, N pools``: client ``i``'s ``k``-th round trip goes to pool ``(i + k·c) mod N``, so the clients spread
  over all pools and rarely meet.

A swap client alternates ``POST /tokens/<a>/swap`` buys of ``--buy-lamports`` (exact in) with a sell of exactly
the atoms that buy returned, so the pools neither drain nor graduate and every request is a real trade. Only
answers 200 count as swaps; anything else is reported as an error. The phases are bounded by time and by
``--max-requests`` each.

After the phases the benchmark reads the database and checks the ledger (docs/ledger.md "Consistency"):
Σ wallet lamports + Σ pool quote reserves and quote fees = Σ airdrops; per pool Σ token balances + base reserve
(+ base fees) = supply; the trades table has exactly as many rows as the clients saw 200 answers; the pools'
fee accumulators equal the sums over their trades; and replaying each pool's trades in id order from a fresh pool
reproduces its stored state (no lost update). A run that fails the check says so and exits 1.

CPU over each measurement window comes from ``/proc``: the server process, PostgreSQL's backends for the
benchmark's database, this (generator) process, and the whole machine, so ledger cost can be told from HTTP
cost and from the load generator's; ``CPU ms/req`` (CPU share ÷ rate) is the figure least moved by other load on
a shared machine. ``new DB conns`` counts database connections opened inside the window (PostgreSQL: new
backends; SQLite: new server threads, aiosqlite runs one per connection): SQLAlchemy's pool closes an overflow
connection when it returns to a full pool, so more requests in flight than ``pool_size`` means reconnecting all
the time. PostgreSQL CPU is sampled every 0.2 s and misses backends that lived between two samples, so with
connection churn it is only printed as a lower bound (``≥``) and left out of the table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    WALLET,
    Histogram,
    Node,
    fmt,
    install_uvloop,
    log_problems,
    machine_line,
    markdown_table,
    postgres_available,
    postgres_database,
    proc_ticks,
    start_node,
    stop_node,
    system_ticks,
    wait_until_quiet,
)

SOL = 1_000_000_000
AIRDROP = 1_000 * SOL  # the most one faucet call gives (ledger.service.MAX_AIRDROP_LAMPORTS)
DATABASES = ("sqlite", "postgres")
WORKLOADS = ("health", "quote", "swap-hot", "swap-pools")
WORKLOAD_NAMES = {
    "health": "GET /health",
    "quote": "GET quote",
    "swap-hot": "swap, 1 hot pool",
    "swap-pools": "swap, {pools} pools",
}


# -- pure helpers (smoke-tested by tests/unit/test_bench_ledger.py) ---------------------------------------------


def parse_databases(spec: str) -> list[str]:
    """``"sqlite,postgres"`` → ``["sqlite", "postgres"]`` (``pg`` is accepted for ``postgres``)."""
    out: list[str] = []
    for part in spec.split(","):
        name = {"pg": "postgres", "postgresql": "postgres"}.get(part.strip().lower(), part.strip().lower())
        if not name:
            continue
        if name not in DATABASES:
            raise ValueError(f"unknown database {part!r}: use sqlite and/or postgres")
        if name not in out:
            out.append(name)
    if not out:
        raise ValueError("no database given")
    return out


def parse_counts(spec: str) -> list[int]:
    counts = [int(part) for part in spec.split(",") if part.strip()]
    if not counts or any(c <= 0 for c in counts):
        raise ValueError(f"expected positive integers, got {spec!r}")
    return counts


def pool_index(client: int, round_trip: int, concurrency: int, pools: int) -> int:
    """The pool of client ``client``'s ``round_trip``-th buy/sell pair in the many-pools workload: the clients
    start on different pools and step by ``concurrency``, so together they cover every pool and two clients are
    on the same pool only when ``concurrency`` exceeds ``pools`` or their steps wrap onto each other."""
    return (client + round_trip * concurrency) % pools


def ticks_between(before: Mapping[int, int], after: Mapping[int, int]) -> int:
    """CPU ticks spent by the processes seen at both ends of a window (a process that came or went in between
    is left out rather than counted whole)."""
    return sum(after[pid] - before[pid] for pid in after if pid in before)


def sampled_ticks(first: Mapping[int, int], last: Mapping[int, int]) -> int:
    """CPU ticks of processes sampled through a window: ``first`` are the ticks at the window's start, ``last`` the
    last ones seen; a process first seen later started inside the window, so all its ticks count. (Ticks after a
    process's last sample, and processes that lived between two samples, are missed: a lower bound.)"""
    return sum(ticks - first.get(pid, 0) for pid, ticks in last.items())


def is_backend_of(cmdline: str, database: str) -> bool:
    """A PostgreSQL backend serving ``database``. Its title is ``postgres: USER DATABASE HOST(PORT) STATE``, on
    Debian with the cluster first: ``postgres: 15/main: USER DATABASE …``."""
    parts = cmdline.replace("\x00", " ").split()
    if not parts or parts[0] != "postgres:":
        return False
    parts = parts[1:]
    if parts and parts[0].endswith(":"):  # the cluster name
        parts = parts[1:]
    return len(parts) >= 3 and parts[1] == database


def database_name(url: str) -> str:
    return url.rsplit("/", 1)[-1].split("?", 1)[0]


@dataclass
class PoolCheck:
    """One pool as stored: its state (``PoolState``-like), the supply of its config, the atoms all users hold,
    and its trades' fee sums."""

    address: str
    state: Any
    supply: int
    held_atoms: int
    trade_fees: Mapping[str, int] = field(default_factory=dict)  # protocol, partner, creator (quote fees)


def ledger_problems(
    airdropped: int, wallet_lamports: int, pools: Sequence[PoolCheck], trades: int, swaps_ok: int
) -> list[str]:
    """What breaks the ledger's invariants (docs/ledger.md "Consistency"), for pools that collect fees in SOL;
    empty when everything adds up."""
    problems = []
    in_pools = 0
    for pool in pools:
        s = pool.state
        in_pools += s.quote_reserve + s.protocol_quote_fee + s.partner_quote_fee + s.creator_quote_fee
        base_fees = s.protocol_base_fee + s.partner_base_fee + s.creator_base_fee
        if pool.held_atoms + s.base_reserve + base_fees != pool.supply:
            problems.append(
                f"pool {pool.address}: held {pool.held_atoms} + reserve {s.base_reserve} + base fees {base_fees} "
                f"!= supply {pool.supply}"
            )
        for name in ("protocol", "partner", "creator"):
            if name in pool.trade_fees and pool.trade_fees[name] != getattr(s, f"{name}_quote_fee"):
                problems.append(
                    f"pool {pool.address}: {name} fees of its trades {pool.trade_fees[name]} "
                    f"!= accumulated {getattr(s, f'{name}_quote_fee')}"
                )
    if wallet_lamports + in_pools != airdropped:
        problems.append(
            f"SOL: wallets {wallet_lamports} + pools {in_pools} = {wallet_lamports + in_pools} "
            f"!= airdropped {airdropped} (off by {wallet_lamports + in_pools - airdropped})"
        )
    if trades != swaps_ok:
        problems.append(f"{trades} trades stored but the clients saw {swaps_ok} successful swaps")
    return problems


def replay_problems(config: Any, activation_point: int, trades: Iterable[Any], final_state: Any) -> list[str]:
    """Replay ``trades`` (rows with is_buy, mode, amount_in, amount_out, sqrt_price_after; id order) from a fresh
    pool; every trade must have seen the state its predecessor left and the end must be ``final_state``."""
    from retake.ledger import Side, SwapMode, new_pool, quote_swap

    modes = {"exact_in": SwapMode.EXACT_IN, "exact_out": SwapMode.EXACT_OUT}
    state = new_pool(config, activation_point)
    for n, row in enumerate(trades):
        if row.mode not in modes:
            return [f"trade #{n}: cannot replay mode {row.mode!r} (the benchmark trades exact_in only)"]
        mode = modes[row.mode]
        amount = row.amount_out if mode is SwapMode.EXACT_OUT else row.amount_in
        side = Side.BUY if row.is_buy else Side.SELL
        result = quote_swap(config, state, side, amount, mode, activation_point)
        got = (result.amount_in, result.amount_out, str(result.next_sqrt_price))
        want = (row.amount_in, row.amount_out, str(row.sqrt_price_after))
        if got != want:
            return [f"trade #{n}: replay gives (in, out, sqrt price) {got}, stored {want}"]
        state = result.new_state
    if state.to_dict() != final_state.to_dict():
        return ["replaying the trades does not end in the stored pool state"]
    return []


@dataclass
class PhaseStats:
    """One closed-loop phase: latencies and statuses of requests answered inside the window, and the 200s of
    the whole phase (warm-up and tail too: those trades are in the database)."""

    window: float
    hist: Histogram = field(default_factory=Histogram)
    statuses: dict[str, int] = field(default_factory=dict)
    ok_total: int = 0
    sent: int = 0

    def record(self, status: str, ms: float, counted: bool) -> None:
        if status == "200":
            self.ok_total += 1
        if counted:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == "200":
                self.hist.record(ms)

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status != "200")

    @property
    def rate(self) -> float:
        return self.ok / self.window if self.window > 0 else float("nan")


def ratio(value: float, base: float) -> float:
    return value / base if base and base == base and value == value else float("nan")


def cpu_ms_per_request(cpu_percent: float | None, rate: float) -> float | None:
    """CPU time per answered request: % of one core over the window ÷ requests per second. Less sensitive to
    other load on the machine than the rate itself (a starved server answers fewer requests, not cheaper ones)."""
    if cpu_percent is None:
        return None
    return cpu_percent * 10 / rate if rate > 0 else float("nan")


def result_table(rows: Sequence[Mapping[str, Any]], postgres: bool = True) -> str:
    columns = [
        ("db", "db"),
        ("workload", "workload"),
        ("concurrency", "clients"),
        ("rate", "ok/s"),
        ("vs_health", "÷ health"),
        ("errors", "errors"),
        ("p50_ms", "p50 ms"),
        ("p99_ms", "p99 ms"),
        ("max_ms", "max ms"),
        ("new_connections", "new DB conns"),
        ("cpu_server", "CPU server %"),
        ("server_ms", "server CPU ms/req"),
    ]
    if postgres:
        columns += [("cpu_postgres", "CPU postgres %"), ("postgres_ms", "postgres CPU ms/req")]
    columns += [("cpu_generator", "CPU generator %"), ("cpu_machine", "machine busy %")]
    two = ("vs_health", "server_ms", "postgres_ms")  # two decimals; markdown_table gives floats one
    shown = [{**row, **{k: fmt(row.get(k), 2) for k in two}} for row in rows]
    return markdown_table(shown, columns)


# -- load generation -------------------------------------------------------------------------------------------


@dataclass
class Viewer:
    token: str
    user_id: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


RequestFn = Callable[[httpx.AsyncClient, int], Awaitable[str]]


async def closed_loop(
    clients: Sequence[httpx.AsyncClient],
    step: Callable[[int], RequestFn],
    warmup: float,
    seconds: float,
    max_requests: int,
) -> PhaseStats:
    """Every client runs ``step(client)`` back to back until the window ends or ``max_requests`` were sent; the
    request's latency counts when it is answered inside [start + warmup, start + warmup + seconds)."""
    start = time.monotonic()
    measure_from, end = start + warmup, start + warmup + seconds
    stats = PhaseStats(seconds)

    async def run(i: int) -> None:
        request = step(i)
        http = clients[i]
        while stats.sent < max_requests:
            began = time.monotonic()
            if began >= end:
                return
            stats.sent += 1
            try:
                status = await request(http, stats.sent)
            except (httpx.HTTPError, ValueError, KeyError) as exc:
                status = type(exc).__name__
            done = time.monotonic()
            stats.record(status, (done - began) * 1000, measure_from <= done < end)

    await asyncio.gather(*(run(i) for i in range(len(clients))))
    return stats


def health_step(_client: int) -> RequestFn:
    async def request(http: httpx.AsyncClient, _n: int) -> str:
        response = await http.get("/health")
        response.json()
        return str(response.status_code)

    return request


def quote_step(address: str, lamports: int) -> Callable[[int], RequestFn]:
    params = {"side": "buy", "amount": str(lamports)}

    def make(_client: int) -> RequestFn:
        async def request(http: httpx.AsyncClient, _n: int) -> str:
            response = await http.get(f"/api/v1/tokens/{address}/quote", params=params)
            response.json()
            return str(response.status_code)

        return request

    return make


def swap_step(
    viewers: Sequence[Viewer], addresses: Sequence[str], concurrency: int, lamports: int
) -> Callable[[int], RequestFn]:
    """Client ``i`` buys ``lamports`` of its pool, then sells exactly what it got, then moves to its next pool
    (with one address: always the same pool)."""

    def make(i: int) -> RequestFn:
        headers = viewers[i].headers
        pair = 0
        holding: tuple[str, str] | None = None  # (address, atoms) bought and not yet sold

        async def request(http: httpx.AsyncClient, _n: int) -> str:
            nonlocal pair, holding
            if holding is None:
                address = addresses[pool_index(i, pair, concurrency, len(addresses))]
                pair += 1
                body = {"side": "buy", "amount": str(lamports), "mode": "exact_in"}
            else:
                address, atoms = holding
                holding = None
                body = {"side": "sell", "amount": atoms, "mode": "exact_in"}
            response = await http.post(f"/api/v1/tokens/{address}/swap", json=body, headers=headers)
            answer = response.json()
            if response.status_code == 200 and answer["is_buy"]:
                holding = (address, answer["amount_out"])
            return str(response.status_code)

        return request

    return make


# -- setup through the API -------------------------------------------------------------------------------------


async def register(http: httpx.AsyncClient, name: str) -> dict[str, Any]:
    body = {"agent_name": name, "wallet_address": WALLET, "ticker": "LSW", "agent_description": "ledger bench"}
    response = await http.post("/api/v1/agent/register", json=body)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


async def operator_verify(data_dir: Path, database_url: str | None, names: Sequence[str]) -> None:
    """What ``retake admin verify NAME`` does, once for all names (one Platform start instead of one per name)."""
    from retake.config import Settings
    from retake.server.platform import Platform

    settings = Settings(data_dir=data_dir, database_url=database_url)
    platform = await Platform.start(settings)
    try:
        for name in names:
            await platform.agents.operator_verify(name)
    finally:
        await platform.close()


async def launch_tokens(node: Node, database_url: str | None, count: int, run: str) -> list[str]:
    names = [f"lsw_{run}_s{i}" for i in range(count)]
    async with httpx.AsyncClient(base_url=node.base, timeout=60) as http:
        agents = [await register(http, name) for name in names]
        await operator_verify(node.data_dir, database_url, names)
        addresses = []
        for agent in agents:
            headers = {"Authorization": f"Bearer {agent['access_token']}"}
            start = await http.post("/api/v1/agent/stream/start", headers=headers)
            start.raise_for_status()
            address = start.json()["token"]["tokenAddress"]
            if not address:
                raise RuntimeError(f"stream/start launched no token: {start.text}")
            addresses.append(address)
    return addresses


async def funded_viewers(node: Node, count: int, run: str) -> list[Viewer]:
    viewers = []
    async with httpx.AsyncClient(base_url=node.base, timeout=60) as http:
        for i in range(count):
            answer = await register(http, f"lsw_{run}_v{i}")
            viewer = Viewer(answer["access_token"], answer["userDbId"])
            funded = await http.post("/api/v1/wallet/airdrop", json={"lamports": str(AIRDROP)}, headers=viewer.headers)
            if funded.status_code != 200:
                raise RuntimeError(f"airdrop refused ({funded.status_code}): {funded.text}")
            viewers.append(viewer)
    return viewers


# -- CPU accounting --------------------------------------------------------------------------------------------


def backend_pids(database: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_text(errors="replace")
        except OSError:
            continue
        if is_backend_of(cmdline, database):
            pids.append(int(entry.name))
    return pids


def task_ids(pid: int) -> set[int]:
    try:
        return {int(entry.name) for entry in Path(f"/proc/{pid}/task").iterdir()}
    except OSError:
        return set()


class ConnectionWatch:
    """Samples the database side every ``interval`` seconds through a window, in a thread: PostgreSQL's backends
    for the benchmark's database (their CPU, and how many were started: SQLAlchemy's pool closes an overflow
    connection when it comes back to a full pool, so a server with more requests in flight than ``pool_size``
    opens new ones all the time), or with SQLite the server's threads (aiosqlite runs one per connection)."""

    def __init__(self, server_pid: int, database: str | None, interval: float = 0.2) -> None:
        self.server_pid, self.database, self.interval = server_pid, database, interval
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.threads_first: set[int] = set()
        self.threads_seen: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="connection-watch", daemon=True)

    def _backends(self) -> dict[int, int]:
        if self.database is None:
            return {}
        return {pid: t for pid in backend_pids(self.database) if (t := proc_ticks(pid)) is not None}

    def _sample(self) -> None:
        self.last.update(self._backends())
        self.threads_seen |= task_ids(self.server_pid)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> None:
        self.first = self._backends()
        self.last = dict(self.first)
        self.threads_first = task_ids(self.server_pid)
        self.threads_seen = set(self.threads_first)
        self._thread.start()

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join()
        self._sample()
        if self.database is None:
            return {"postgres_ticks": None, "new_connections": len(self.threads_seen - self.threads_first)}
        return {
            "postgres_ticks": sampled_ticks(self.first, self.last),
            "new_connections": len(set(self.last) - set(self.first)),
        }


@dataclass
class CpuWindow:
    groups: dict[str, Callable[[], list[int]]]
    at: float = 0.0
    ticks: dict[str, dict[int, int]] = field(default_factory=dict)
    system: tuple[int, int] = (0, 0)

    def take(self) -> CpuWindow:
        snap = CpuWindow(self.groups, time.monotonic(), {}, system_ticks())
        for name, pids in self.groups.items():
            snap.ticks[name] = {pid: t for pid in pids() if (t := proc_ticks(pid)) is not None}
        return snap

    def since(self, before: CpuWindow) -> dict[str, float]:
        wall = self.at - before.at
        clk = os.sysconf("SC_CLK_TCK")
        out = {name: 100.0 * ticks_between(before.ticks[name], self.ticks[name]) / clk / wall for name in self.groups}
        busy, total = self.system[0] - before.system[0], self.system[1] - before.system[1]
        out["machine"] = 100.0 * busy / total if total else float("nan")
        return out


# -- the ledger check ------------------------------------------------------------------------------------------


async def check_ledger(database_url: str, airdropped: int, swaps_ok: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from retake.ledger.records import config_of, state_from_json
    from retake.store.engine import create_engine, session_factory
    from retake.store.tables import Token, TokenBalance, Trade, Wallet

    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as db:
            lamports = int(await db.scalar(select(func.coalesce(func.sum(Wallet.lamports), 0))) or 0)
            per_token = select(TokenBalance.token_address, func.sum(TokenBalance.atoms))
            held: dict[str, int] = {
                address: int(atoms or 0)
                for address, atoms in (await db.execute(per_token.group_by(TokenBalance.token_address))).all()
            }
            tokens = (await db.execute(select(Token))).scalars().all()
            trades = (await db.execute(select(Trade).order_by(Trade.id))).scalars().all()
    finally:
        await engine.dispose()
    by_pool: dict[str, list[Any]] = {}
    for trade in trades:
        by_pool.setdefault(trade.token_address, []).append(trade)
    pools, replay = [], []
    for token in tokens:
        state, config = state_from_json(token.state), config_of(token)
        mine = by_pool.get(token.address, [])
        fees = {
            "protocol": sum(t.fee_protocol for t in mine),
            "partner": sum(t.fee_partner for t in mine),
            "creator": sum(t.fee_creator for t in mine),
        }
        pools.append(
            PoolCheck(token.address, state, config.pre_migration_token_supply, held.get(token.address, 0), fees)
        )
        replay += replay_problems(config, state.activation_point, mine, state)
    problems = ledger_problems(airdropped, lamports, pools, len(trades), swaps_ok) + replay
    return {"trades": len(trades), "swaps_ok": swaps_ok, "pools": len(tokens), "problems": problems}


# -- orchestration ---------------------------------------------------------------------------------------------


async def run_database(db: str, args: argparse.Namespace, node: Node, database_url: str | None) -> dict[str, Any]:
    run = uuid.uuid4().hex[:6]
    began = time.monotonic()
    addresses = await launch_tokens(node, database_url, args.pools, run)
    viewers = await funded_viewers(node, max(args.concurrency), run)
    print(
        f"[{db}] {len(addresses)} tokens, {len(viewers)} funded viewers in {time.monotonic() - began:.1f} s", flush=True
    )
    groups: dict[str, Callable[[], list[int]]] = {"server": lambda: [node.pid], "generator": lambda: [os.getpid()]}
    meter = CpuWindow(groups)
    pg_name = database_name(database_url) if database_url else None
    rows: list[dict[str, Any]] = []
    swaps_ok = 0
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    for concurrency in args.concurrency:
        steps: dict[str, Callable[[int], RequestFn]] = {
            "health": health_step,
            "quote": quote_step(addresses[0], args.buy_lamports),
            "swap-hot": swap_step(viewers, addresses[:1], concurrency, args.buy_lamports),
            "swap-pools": swap_step(viewers, addresses, concurrency, args.buy_lamports),
        }
        health_rate = float("nan")
        async with AsyncExitStack() as stack:
            clients = [
                await stack.enter_async_context(
                    httpx.AsyncClient(base_url=node.base, limits=limits, timeout=args.timeout)
                )
                for _ in range(concurrency)
            ]
            for workload in args.workloads:
                # The CPU window is the measurement window: the warm-up runs before it, the tail after it.
                task = asyncio.create_task(
                    closed_loop(clients, steps[workload], args.warmup, args.seconds, args.max_requests)
                )
                await asyncio.sleep(args.warmup)
                before = meter.take()
                watch = ConnectionWatch(node.pid, pg_name)
                watch.start()
                await asyncio.sleep(args.seconds)
                side = watch.stop()
                after = meter.take()
                cpu = after.since(before)
                if side["postgres_ticks"] is not None:
                    cpu["postgres"] = 100.0 * side["postgres_ticks"] / os.sysconf("SC_CLK_TCK") / (after.at - before.at)
                # Backends that came and went between two samples are missed: with connection churn the sampled
                # PostgreSQL CPU is only a lower bound, printed but left out of the table.
                pg_exact = "postgres" in cpu and side["new_connections"] == 0
                stats = await task
                if workload.startswith("swap"):
                    swaps_ok += stats.ok_total
                if workload == "health":
                    health_rate = stats.rate
                row = {
                    "db": "SQLite" if db == "sqlite" else "PostgreSQL",
                    "workload": WORKLOAD_NAMES[workload].format(pools=len(addresses)),
                    "concurrency": concurrency,
                    "rate": stats.rate,
                    "vs_health": ratio(stats.rate, health_rate),
                    "errors": stats.errors,
                    "statuses": stats.statuses,
                    "p50_ms": stats.hist.percentile(50),
                    "p90_ms": stats.hist.percentile(90),
                    "p99_ms": stats.hist.percentile(99),
                    "max_ms": stats.hist.max_ms,
                    "cpu_server": cpu["server"],
                    "server_ms": cpu_ms_per_request(cpu["server"], stats.rate),
                    "new_connections": side["new_connections"],
                    "cpu_postgres": cpu["postgres"] if pg_exact else None,
                    "postgres_ms": cpu_ms_per_request(cpu["postgres"], stats.rate) if pg_exact else None,
                    "cpu_postgres_at_least": cpu.get("postgres"),
                    "cpu_generator": cpu["generator"],
                    "cpu_machine": cpu["machine"],
                }
                rows.append(row)
                print(
                    f"[{db}] {row['workload']:<18} c={concurrency:<3} {row['rate']:7.1f}/s  p50 {row['p50_ms']:6.1f} "
                    f"p99 {row['p99_ms']:7.1f} max {row['max_ms']:7.1f} ms  statuses {stats.statuses}  "
                    f"CPU server {cpu['server']:.0f}% "
                    + (f"postgres {'' if pg_exact else '≥'}{cpu['postgres']:.0f}% " if "postgres" in cpu else "")
                    + f"generator {cpu['generator']:.0f}% machine {cpu['machine']:.0f}%, "
                    + f"{side['new_connections']} new DB connections",
                    flush=True,
                )
    url = database_url or f"sqlite+aiosqlite:///{(node.data_dir / 'retake.db').resolve()}"
    check = await check_ledger(url, AIRDROP * len(viewers), swaps_ok)
    return {"rows": rows, "check": check}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", type=parse_databases, default=["sqlite"], help="sqlite, postgres or both (sqlite)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measurement window per phase (15)")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds before each window (2)")
    parser.add_argument("--concurrency", type=parse_counts, default=[1, 8, 32], help="clients per phase (1,8,32)")
    parser.add_argument("--pools", type=int, default=20, help="tokens for the many-pools workload (20)")
    parser.add_argument("--buy-lamports", type=int, default=SOL // 100, help="lamports per buy (0.01 SOL)")
    parser.add_argument("--max-requests", type=int, default=100_000, help="requests per phase at most (100000)")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds (30)")
    parser.add_argument(
        "--workloads",
        type=lambda s: [w for w in s.split(",") if w],
        default=list(WORKLOADS),
        help="subset of " + ",".join(WORKLOADS),
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="PCT",
        help="before each database, wait (5 min at most) until the machine is less than PCT %% busy",
    )
    parser.add_argument("--json", type=Path, help="also write the rows and checks here")
    args = parser.parse_args(argv)
    if unknown := set(args.workloads) - set(WORKLOADS):
        parser.error(f"unknown workloads {sorted(unknown)}")
    if args.pools < 1:
        parser.error("--pools must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    loop_name = install_uvloop()
    print(machine_line())
    print(
        f"setup: one retake serve per database, config A, {args.pools} pools, buys of {args.buy_lamports} lamports, "
        f"closed loop at {','.join(map(str, args.concurrency))} clients, {args.warmup:g} s warm-up + "
        f"{args.seconds:g} s per phase, httpx {httpx.__version__} on {loop_name}",
        flush=True,
    )
    if "postgres" in args.db and not postgres_available():
        print("PostgreSQL is not reachable on 127.0.0.1:5432 (make services); leaving it out", file=sys.stderr)
        args.db = [d for d in args.db if d != "postgres"]
        if not args.db:
            return 2
    results: dict[str, Any] = {}
    failed = False
    for db in args.db:
        if args.wait_quiet:
            busy = wait_until_quiet(args.wait_quiet, 300)
            print(f"[{db}] machine {busy:.0f}% busy, load average {os.getloadavg()[0]:.2f} at the start", flush=True)
        with ExitStack() as stack:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"retake-ledger-{db}-")))
            database_url = stack.enter_context(postgres_database("retake_bench_ledger")) if db == "postgres" else None
            env = {"RETAKE_ENABLE_AIRDROP": "1", "RETAKE_TOKEN_CONFIG": "A"}
            if database_url:
                env["RETAKE_DATABASE_URL"] = database_url
            node = start_node(db, folder / db, env)
            stack.callback(stop_node, node)
            result = asyncio.run(run_database(db, args, node, database_url))
            result["log"] = log_problems(node.log())
        check = result["check"]
        verdict = "consistent" if not check["problems"] else "INCONSISTENT"
        print(
            f"[{db}] ledger {verdict}: {check['trades']} trades stored, {check['swaps_ok']} swaps answered 200, "
            f"{check['pools']} pools replayed",
            flush=True,
        )
        for problem in check["problems"]:
            print(f"  {problem}")
        for line in result["log"]:
            print(f"  server log: {line}")
        failed = failed or bool(check["problems"])
        results[db] = result
    rows = [row for result in results.values() for row in result["rows"]]
    print()
    print(result_table(rows, postgres="postgres" in results))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, **results}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
