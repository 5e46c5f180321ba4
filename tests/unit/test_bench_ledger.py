"""Smoke test of bench/ledger_swaps.py (the benchmark itself is not part of `make test`): it imports, and its pure
helpers (argument parsing, pool spreading, /proc and backend matching, the ledger invariants and the trade
replay, the closed loop's bookkeeping, the table) do what the benchmark relies on."""

from __future__ import annotations

import asyncio
import math
import os
import time
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from bench import ledger_swaps as bench

from retake.ledger import CONFIG_A, Side, SwapMode, new_pool, quote_swap

SOL = 1_000_000_000


def test_argument_parsing() -> None:
    assert bench.parse_databases("sqlite,postgres") == ["sqlite", "postgres"]
    assert bench.parse_databases("pg, sqlite,pg") == ["postgres", "sqlite"]
    with pytest.raises(ValueError):
        bench.parse_databases("mysql")
    with pytest.raises(ValueError):
        bench.parse_databases(",")
    assert bench.parse_counts("1,8,32") == [1, 8, 32]
    with pytest.raises(ValueError):
        bench.parse_counts("8,0")
    args = bench.parse_args(["--seconds", "15", "--db", "sqlite,postgres"])
    assert args.seconds == 15 and args.db == ["sqlite", "postgres"] and args.concurrency == [1, 8, 32]
    assert args.workloads == list(bench.WORKLOADS) and args.pools == 20
    with pytest.raises(SystemExit):
        bench.parse_args(["--workloads", "health,nope"])


def test_pool_spreading_covers_every_pool() -> None:
    for concurrency, pools in [(8, 20), (32, 20), (1, 20), (3, 1)]:
        seen = {bench.pool_index(c, k, concurrency, pools) for c in range(concurrency) for k in range(pools)}
        assert seen == set(range(pools))
    # At one moment (same round trip), 8 clients over 20 pools are all on different pools.
    assert len({bench.pool_index(c, 5, 8, 20) for c in range(8)}) == 8
    assert bench.pool_index(7, 0, 32, 1) == 0


def test_cpu_helpers() -> None:
    assert bench.ticks_between({1: 10, 2: 5}, {1: 25, 3: 100}) == 15  # pid 2 left, pid 3 came: neither counts
    # Sampled through the window: a backend first seen inside it started there (all its ticks count), one that
    # left counts up to its last sample.
    assert bench.sampled_ticks({1: 10, 2: 5}, {1: 25, 2: 9, 3: 100}) == 15 + 4 + 100
    assert bench.cpu_ms_per_request(50.0, 100.0) == 5.0  # half a core for 100 req/s: 5 ms each
    assert bench.cpu_ms_per_request(None, 100.0) is None
    assert math.isnan(bench.cpu_ms_per_request(10.0, 0.0) or 0.0)
    assert bench.ratio(50.0, 200.0) == 0.25 and math.isnan(bench.ratio(1.0, float("nan")))
    name = "retake_bench_ledger_0123456789"
    assert bench.database_name(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}") == name
    assert bench.is_backend_of(f"postgres: 15/main: postgres {name} 127.0.0.1(5) idle", name)
    assert bench.is_backend_of(f"postgres: postgres {name} 127.0.0.1(5) idle in transaction", name)
    assert not bench.is_backend_of("postgres: 15/main: checkpointer ", name)
    assert not bench.is_backend_of(f"postgres: 15/main: postgres {name}x 127.0.0.1(5) idle", name)
    assert not bench.is_backend_of(f"python -m bench {name}", name)


def _trade(result: Any, side: Side) -> SimpleNamespace:
    fees = result.fees
    return SimpleNamespace(
        is_buy=side is Side.BUY,
        mode="exact_in",
        amount_in=result.amount_in,
        amount_out=result.amount_out,
        sqrt_price_after=str(result.next_sqrt_price),
        fee_protocol=fees.protocol,
        fee_partner=fees.partner,
        fee_creator=fees.creator,
    )


def _pool_after_round_trips(n: int) -> tuple[Any, list[SimpleNamespace], int]:
    """A pool after ``n`` buy/sell pairs of 0.01 SOL, its trades, and the lamports the trader ends with of 1 SOL."""
    state = new_pool(CONFIG_A, 1000)
    trades, lamports = [], SOL
    for _ in range(n):
        buy = quote_swap(CONFIG_A, state, Side.BUY, SOL // 100, SwapMode.EXACT_IN, 1000)
        trades.append(_trade(buy, Side.BUY))
        sell = quote_swap(CONFIG_A, buy.new_state, Side.SELL, buy.amount_out, SwapMode.EXACT_IN, 1000)
        trades.append(_trade(sell, Side.SELL))
        lamports += sell.amount_out - buy.amount_in
        state = sell.new_state
    return state, trades, lamports


def test_ledger_invariants_hold_for_real_trades_and_catch_a_lost_lamport() -> None:
    state, trades, lamports = _pool_after_round_trips(3)
    fees = {name: sum(getattr(t, f"fee_{name}") for t in trades) for name in ("protocol", "partner", "creator")}
    supply = CONFIG_A.pre_migration_token_supply
    pool = bench.PoolCheck("T", state, supply, supply - state.base_reserve, fees)
    assert bench.ledger_problems(SOL, lamports, [pool], trades=6, swaps_ok=6) == []
    problems = bench.ledger_problems(SOL, lamports - 1, [pool], trades=6, swaps_ok=5)
    assert any("off by -1" in p for p in problems) and any("6 trades stored" in p for p in problems)
    leaky = bench.PoolCheck("T", state, supply, supply - state.base_reserve + 1, {**fees, "creator": 0})
    problems = bench.ledger_problems(SOL, lamports, [leaky], trades=6, swaps_ok=6)
    assert any("supply" in p for p in problems) and any("creator fees" in p for p in problems)


def test_replay_reproduces_the_pool_and_catches_a_lost_update() -> None:
    state, trades, _ = _pool_after_round_trips(4)
    assert bench.replay_problems(CONFIG_A, 1000, trades, state) == []
    # Two trades that both saw the same state (a lost update) do not replay.
    assert bench.replay_problems(CONFIG_A, 1000, [trades[0], trades[0]], state)
    assert bench.replay_problems(CONFIG_A, 1000, trades[:-1], state) != []
    assert bench.replay_problems(CONFIG_A, 1000, [replace_mode(trades[0], "partial_fill")], state)


def replace_mode(trade: SimpleNamespace, mode: str) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(trade), "mode": mode})


def test_phase_stats_and_table() -> None:
    stats = bench.PhaseStats(window=2.0)
    stats.record("200", 5.0, counted=True)
    stats.record("200", 7.0, counted=False)  # warm-up: a trade in the database, not in the rate
    stats.record("409", 3.0, counted=True)
    assert (stats.ok, stats.ok_total, stats.errors, stats.rate) == (1, 2, 1, 0.5)
    assert stats.hist.count == 1 and stats.hist.percentile(50) == 5.0
    row = {
        "db": "SQLite", "workload": "GET /health", "concurrency": 8, "rate": 100.0, "vs_health": 1.0, "errors": 0,
        "p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 3.0, "new_connections": 0, "cpu_server": 50.0, "server_ms": 5.0,
        "cpu_postgres": None, "postgres_ms": None, "cpu_generator": 10.0, "cpu_machine": 60.0,
    }  # fmt: skip
    table = bench.result_table([row], postgres=False).splitlines()
    assert table[0].startswith("| db | workload | clients | ok/s | ÷ health |") and "postgres" not in table[0]
    assert (
        table[2] == "| SQLite | GET /health | 8 | 100.0 | 1.00 | 0 | 1.0 | 2.0 | 3.0 | 0 | 50.0 | 5.00 | 10.0 | 60.0 |"
    )
    assert "| – | – |" in bench.result_table([row], postgres=True)


def test_closed_loop_counts_only_the_window_and_stops_at_the_cap() -> None:
    calls: list[int] = []

    def step(client: int) -> bench.RequestFn:
        async def request(_http: httpx.AsyncClient, n: int) -> str:
            calls.append(client)
            await asyncio.sleep(0.001)
            return "200" if n % 10 else "500"

        return request

    clients: list[Any] = [None, None]
    capped = asyncio.run(bench.closed_loop(clients, step, warmup=0.0, seconds=5.0, max_requests=40))
    assert capped.sent == 40 and len(calls) == 40 and set(calls) == {0, 1}
    assert capped.ok_total == 36 and capped.ok + capped.errors == 40 and capped.statuses["500"] == 4
    timed = asyncio.run(bench.closed_loop(clients, step, warmup=0.05, seconds=0.1, max_requests=10**6))
    assert 0 < timed.ok + timed.errors < timed.sent  # the warm-up's answers are not in the window
    assert timed.rate == timed.ok / 0.1


def test_swap_step_alternates_buy_and_sell_of_what_was_bought() -> None:
    sent: list[tuple[str, dict[str, Any]]] = []

    class FakeHttp:
        async def post(self, path: str, json: dict[str, Any], headers: dict[str, str]) -> httpx.Response:
            sent.append((path, json))
            answer = {"is_buy": json["side"] == "buy", "amount_out": "777"}
            return httpx.Response(200, json=answer)

    viewers = [bench.Viewer("t0", "u0"), bench.Viewer("t1", "u1")]
    request = bench.swap_step(viewers, ["A", "B", "C"], concurrency=2, lamports=123)(1)
    for n in range(4):
        assert asyncio.run(request(FakeHttp(), n)) == "200"  # type: ignore[arg-type]
    assert [(p.split("/")[4], b["side"], b["amount"]) for p, b in sent] == [
        ("B", "buy", "123"), ("B", "sell", "777"), ("A", "buy", "123"), ("A", "sell", "777"),
    ]  # fmt: skip


def test_connection_watch_sees_new_threads_of_a_process() -> None:
    import threading

    watch = bench.ConnectionWatch(os.getpid(), None, interval=0.01)
    watch.start()
    started = threading.Event()
    done = threading.Event()

    def work() -> None:
        started.set()
        done.wait(5)

    worker = threading.Thread(target=work)
    worker.start()
    started.wait(5)
    time.sleep(0.05)
    done.set()
    worker.join()
    side = watch.stop()
    assert side["postgres_ticks"] is None and side["new_connections"] >= 1
