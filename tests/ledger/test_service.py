"""The ledger service below the API: persistence of pool state, error translation, token launch races, stats
windows, concurrent tips and chat announcements. Store tests run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from sqlalchemy import func, select, update

from retake.config import Settings
from retake.errors import Conflict, ValidationFailed
from retake.ledger import (
    CONFIG_B,
    ClockBeforeActivation,
    InsufficientLiquidity,
    InvalidAmount,
    InvalidConfig,
    MathOverflow,
    PoolCompleted,
    Side,
    SlippageExceeded,
    SwapMode,
    new_pool,
    quote_swap,
)
from retake.ledger.edge import parse_amount, translate
from retake.ledger.market import growth
from retake.ledger.records import state_from_json, state_to_json
from retake.ledger.results import Counts, Windowed
from retake.ledger.service import LedgerService
from retake.store.tables import Token, Trade, User
from retake.store.types import utcnow
from tests.ledger.support import SOL, platform_of

# -- pure ----------------------------------------------------------------------------------------------------


def test_pool_state_round_trips_through_json_as_digit_strings() -> None:
    state = new_pool(CONFIG_B, 1_700_000_000)
    for t, amount in ((0, 10**9), (7, 2 * 10**9)):  # exercises the dynamic-fee tracker too
        state = quote_swap(CONFIG_B, state, Side.BUY, amount, SwapMode.EXACT_IN, 1_700_000_000 + t).new_state
    stored = json.loads(json.dumps(state_to_json(state)))
    assert all(isinstance(v, str | bool | dict) for v in stored.values())
    assert stored["sqrt_price"] == str(state.sqrt_price) and stored["volatility_tracker"]["volatility_accumulator"]
    assert state_from_json(stored) == state


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 1), ("42", 42), (" 7 ", 7), (str(2**64 - 1), 2**64 - 1)],
)
def test_amounts_parse_from_integers_and_digit_strings(value: object, expected: int) -> None:
    assert parse_amount(value, "amount") == expected


@pytest.mark.parametrize("value", [0, -1, "0", "-1", "+1", "1.0", "1e3", "", "abc", 1.0, True, None, [], str(2**64)])
def test_bad_amounts_are_400(value: object) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_amount(value, "amount")
    assert caught.value.code == "invalid_amount" and caught.value.status == 400


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidAmount, 400),
        (MathOverflow, 400),
        (SlippageExceeded, 409),
        (InsufficientLiquidity, 409),
        (PoolCompleted, 409),
        (ClockBeforeActivation, 409),
        (InvalidConfig, 409),
    ],
)
def test_engine_errors_keep_their_code(error: type[Exception], status: int) -> None:
    translated = translate(error("why"))  # type: ignore[arg-type]
    assert (translated.status, translated.code, translated.message) == (status, error.code, "why")  # type: ignore[attr-defined]
    assert isinstance(translated, ValidationFailed if status == 400 else Conflict)


def test_growth_is_the_price_ratio() -> None:
    assert growth(2 << 64, 1 << 64) == 3.0 and growth(1 << 64, 1 << 64) == 0.0


def test_token_config_setting(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path, token_config="b").token_config == "B"
    with pytest.raises(pydantic.ValidationError):
        Settings(data_dir=tmp_path, token_config="Z")


# -- on the store ------------------------------------------------------------------------------------------


async def _user(client: httpx.AsyncClient, user_id: str) -> User:
    async with platform_of(client).sessions() as db:
        user = await db.get(User, user_id)
    assert user is not None
    return user


def _ledger(client: httpx.AsyncClient, **options: Any) -> LedgerService:
    platform = platform_of(client)
    return LedgerService(
        platform.sessions,
        platform.events,
        dialect=platform.engine.dialect.name,
        enable_airdrop=True,
        chat_gate=platform.moderation,
        **options,
    )


async def test_concurrent_first_streams_launch_one_token(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    ledger = _ledger(client)
    assert await ledger.ensure_token(agent.body["agent_id"]) is None, "not verified yet"
    assert await ledger.ensure_token("agent_unknown") is None
    await platform_of(client).agents.operator_verify(agent.name)
    infos = await asyncio.gather(*(ledger.ensure_token(agent.body["agent_id"]) for _ in range(8)))
    assert len({info.token_address for info in infos if info is not None}) == 1 and None not in infos
    async with platform_of(client).sessions() as db:
        assert await db.scalar(select(func.count()).select_from(Token)) == 1


async def test_token_config_is_chosen_at_launch(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    await platform_of(client).agents.operator_verify(agent.name)
    info = await _ledger(client, config_name="C").ensure_token(agent.body["agent_id"])
    assert info is not None
    quote = await platform_of(client).ledger.quote(info.token_address, "buy", 2 * SOL, "exact_in")  # type: ignore[union-attr]
    assert quote.fee_token == "base" and quote.amount_out == "61524661976710"  # §7.2 config C #1


async def test_opposite_concurrent_tips_neither_deadlock_nor_lose_money(
    client: httpx.AsyncClient, register: Any
) -> None:
    a, b = await register(), await register()
    ledger = _ledger(client)
    user_a, user_b = await _user(client, a.user_id), await _user(client, b.user_id)
    for user in (user_a, user_b):
        await ledger.airdrop(user, 5 * SOL)
    tips = [ledger.tip(user_a, b.user_id, 1000 + i) for i in range(10)]
    tips += [ledger.tip(user_b, a.user_id, 2000 + i) for i in range(10)]
    await asyncio.wait_for(asyncio.gather(*tips), timeout=30)
    sent_a, sent_b = sum(1000 + i for i in range(10)), sum(2000 + i for i in range(10))
    assert (await ledger.wallet(user_a)).sol == str(5 * SOL - sent_a + sent_b)
    assert (await ledger.wallet(user_b)).sol == str(5 * SOL - sent_b + sent_a)


async def test_stats_windows_follow_trade_times(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    await platform_of(client).agents.operator_verify(agent.name)
    ledger = _ledger(client)
    info = await ledger.ensure_token(agent.body["agent_id"])
    assert info is not None
    address = info.token_address
    trader = await _user(client, (await register()).user_id)
    await ledger.airdrop(trader, 10 * SOL)
    old = await ledger.swap(trader, address, side="buy", amount=SOL, mode="exact_in")
    middle = await ledger.swap(trader, address, side="buy", amount=SOL, mode="exact_in")
    new = await ledger.swap(trader, address, side="buy", amount=SOL, mode="exact_in")
    async with platform_of(client).sessions() as db:
        for record, age in ((old, timedelta(days=2)), (middle, timedelta(hours=3))):
            backdated = update(Trade).where(Trade.tx_hash == record.tx_hash).values(created_at=utcnow() - age)
            await db.execute(backdated)
        await db.commit()
    stats = await ledger.market.token_stats(address)
    now_sqrt, middle_sqrt = int(new.sqrt_price_after), int(middle.sqrt_price_after)
    old_sqrt = int(old.sqrt_price_after)
    # 1h: the last trade at or before now-1h is the 3 h old one; 6h and 24h: the 2 day old one (§8).
    assert stats.growth.hour == growth(now_sqrt, middle_sqrt)
    assert stats.growth.six_hours == stats.growth.day == growth(now_sqrt, old_sqrt)
    assert stats.volume_sol == Windowed(total=3.0, day=2.0) and stats.trade_count == Counts(total=3, day=2)
    assert stats.earnings_sol == Windowed(total=0.012, day=0.008)
    assert stats.all_time_high_sol == new.price_sol
    assert [t.trade_count for t in await ledger.market.top_by_trades("1h", 10, by="count")] == [1]
    assert [t.trade_count for t in await ledger.market.top_by_trades("7d", 10, by="volume")] == [3]
    trending = await ledger.market.trending(10)
    assert trending[0].address == address and trending[0].growth_24h == stats.growth.day


async def test_a_trade_is_announced_once_in_its_streamers_chat(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    await platform_of(client).agents.operator_verify(agent.name)
    ledger = _ledger(client)
    info = await ledger.ensure_token(agent.body["agent_id"])
    assert info is not None
    trader = await _user(client, (await register()).user_id)
    await ledger.airdrop(trader, SOL)
    trade = await ledger.swap(trader, info.token_address, side="buy", amount=SOL // 2, mode="exact_in")
    other = (await register()).user_id
    assert await ledger.confirm("trade", trade.tx_hash, other, agent.user_id) is None, "not the trader"
    assert await ledger.confirm("trade", trade.tx_hash, trader.id, other) is None, "not this token's chat"
    assert await ledger.confirm("tip", trade.tx_hash, trader.id, agent.user_id) is None
    data = await ledger.confirm("trade", trade.tx_hash, trader.id, agent.user_id)
    assert data == {
        "amount": 0.5, "type": "buy", "tx_hash": trade.tx_hash, "token_address": info.token_address,
        "token_ticker": "TST", "amount_tokens": trade.amount_tokens, "amount_usd": 75.0,
    }  # fmt: skip
    assert await ledger.confirm("trade", trade.tx_hash, trader.id, agent.user_id) is None, "only once"
