"""Token launch, quotes, swaps, stats and trade feeds over the API, on SQLite and PostgreSQL.

The numbers are the research file's config-A vectors (token-curve.md §7.2, swaps #1 and #2): a first 1 SOL
exact-in buy returns 32018850022319 atoms, and a following 5 SOL buy 135231055170688."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from retake.config import Settings
from retake.ledger import CONFIG_A, Side, SwapMode, new_pool, quote_swap
from retake.ledger.records import state_from_json
from retake.server.realtime.wire import wire_payload
from retake.store.tables import Token, Trade
from tests.ledger.support import (
    SOL,
    funded_viewer,
    is_base58_key,
    launch,
    platform_of,
    record_events,
    snapshot,
    swap,
)


@pytest.fixture
def settings_factory(settings_factory: Callable[..., Settings], database_url: str) -> Callable[..., Settings]:
    """The faucet is on in this module. ``database_url`` is named so pytest still sees the backend parameter
    behind the overridden fixture."""
    return lambda **overrides: settings_factory(**{"enable_airdrop": True, **overrides})


FIRST_BUY_OUT = "32018850022319"
SECOND_BUY_OUT = "135231055170688"


async def test_unverified_agents_get_no_token(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    start = (await client.post("/api/v1/agent/stream/start", headers=agent.headers)).json()
    assert start["token"]["tokenAddress"] == "" and start["token"]["poolAddress"] == ""
    assert (await client.get("/api/v1/tokens/top/")).json() == []


async def test_acceptance_path(client: httpx.AsyncClient, register: Any) -> None:
    events = record_events(client)
    streamer, address = await launch(client, register)
    start = (await client.post("/api/v1/agent/stream/start", headers=streamer.headers)).json()
    token = start["token"]
    assert token["tokenAddress"] == address, "a second start returns the same token"
    assert token["ticker"] == "TST" and token["name"] == streamer.name and token["tokenType"] == "meteora-dbc"
    assert is_base58_key(address) and is_base58_key(token["poolAddress"]) and token["poolAddress"] != address
    status = (await client.get("/api/v1/agent/stream/status", headers=streamer.headers)).json()
    assert status["token_address"] == address
    metadata = (await client.get(f"/api/v1/users/metadata/{streamer.user_id}")).json()
    assert metadata["token_address"] == address and metadata["ticker"] == "TST"

    viewer = await funded_viewer(client, register, 10 * SOL)
    quote = await client.get(f"/api/v1/tokens/{address}/quote", params={"side": "buy", "amount": str(SOL)})
    assert quote.status_code == 200, quote.text
    assert quote.json()["amount_out"] == FIRST_BUY_OUT and quote.json()["amount_in"] == str(SOL)
    assert quote.json()["fee"] == {
        "total": "10000000", "trading": "8000000", "protocol": "2000000", "creator": "4000000",
        "partner": "4000000", "referral": "0",
    }  # fmt: skip

    response = await swap(client, viewer, address, side="buy", amount=str(SOL), mode="exact_in", min_out=FIRST_BUY_OUT)
    assert response.status_code == 200, response.text
    trade = response.json()
    assert trade["amount_out"] == FIRST_BUY_OUT and trade["amount_in"] == str(SOL) and trade["is_buy"] is True
    assert trade["token_atoms"] == FIRST_BUY_OUT and trade["sol_lamports"] == str(SOL)
    assert trade["amount_sol"] == 1.0 and trade["amount_tokens"] == 32018850.022319
    assert trade["amount_in_usd"] == 150.0 and trade["token_ticker"] == "TST"
    assert trade["sqrt_price_after"] == "104133041550551950"
    assert is_base58_key(trade["tx_hash"], 64) and trade["timestamp"].endswith("Z")
    assert trade["buyer_address"] == trade["trader_address"] and trade["seller_address"] == token["poolAddress"]

    second = await client.get(f"/api/v1/tokens/{address}/quote", params={"side": "buy", "amount": str(5 * SOL)})
    assert second.json()["amount_out"] == SECOND_BUY_OUT

    wallet = (await client.get("/api/v1/wallet", headers=viewer.headers)).json()
    assert wallet["sol"] == str(9 * SOL)
    assert [(t["address"], t["amount"]) for t in wallet["tokens"]] == [(address, FIRST_BUY_OUT)]
    assert wallet["wallet_address"] == trade["trader_address"]

    stats = (await client.get(f"/api/v1/tokens/{address}/stats")).json()
    pool = stats["pool"]
    assert pool["quote_reserve"] == "990000000" and pool["base_reserve"] == "967981149977681"
    assert pool["creator_quote_fee"] == "4000000" and pool["protocol_quote_fee"] == "2000000"
    assert stats["volume_sol"] == {"total": 1.0, "24h": 1.0} and stats["trade_count"] == {"total": 1, "24h": 1}
    assert stats["earnings_sol"] == {"total": 0.004, "24h": 0.004}
    assert stats["bonding_progress"] == 990000000 / 88576623265 and stats["graduated"] is False
    assert stats["price_sol"] == trade["price_sol"] and stats["market_cap_sol"] == trade["market_cap_sol"]
    assert stats["all_time_high_sol"] == trade["price_sol"] and stats["current_price"] == trade["price_usd"]
    growth = (104133041550551950 / 101036979871026944) ** 2 - 1
    assert all(abs(stats["growth"][w] - growth) < 1e-12 for w in ("1h", "6h", "24h"))

    recent = (await client.get("/api/v1/trades/recent/")).json()
    assert recent["next_cursor"] is None and recent["trades"] == [trade]
    assert (await client.get(f"/api/v1/trades/recent/{address}/")).json()["trades"] == [trade]
    top = (await client.get("/api/v1/tokens/top/")).json()
    assert top[0]["address"] == address and top[0]["rank"] == 1
    assert top[0]["current_market_cap"] == stats["current_market_cap"]
    trending = (await client.get("/api/v1/tokens/trending/")).json()
    assert trending[0]["address"] == address and trending[0]["growth_24h"] == stats["growth"]["24h"]
    for path in ("/api/v1/trades/top-volume/", "/api/v1/trades/top-count/"):
        ranked = (await client.get(path, params={"window": "1h"})).json()
        assert ranked[0]["address"] == address and ranked[0]["trade_count"] == 1 and ranked[0]["volume_sol"] == 1.0

    assert [e.room for e in events.named("newtrade")] == ["trades", f"trades_{address}"]
    newtrade = wire_payload(events.named("newtrade")[0])
    assert newtrade["address"] == address and newtrade["action"] == "buy" and newtrade["tokenTicker"] == "TST"
    assert newtrade["usdAmount"] == 150.0
    assert [(e.room, wire_payload(e)) for e in events.named("rawtrade")] == [("trades", trade)]

    # Selling everything back: the seller gets the quoted SOL, the holding goes to zero.
    sell_quote = await client.get(f"/api/v1/tokens/{address}/quote", params={"side": "sell", "amount": FIRST_BUY_OUT})
    sold = (await swap(client, viewer, address, side="sell", amount=FIRST_BUY_OUT, mode="exact_in")).json()
    assert sold["amount_out"] == sell_quote.json()["amount_out"] and sold["is_buy"] is False
    assert sold["seller_address"] == trade["trader_address"]
    wallet = (await client.get("/api/v1/wallet", headers=viewer.headers)).json()
    assert wallet["tokens"] == [] and wallet["sol"] == str(9 * SOL + int(sold["amount_out"]))


async def test_trade_feed_pages_with_cursor(client: httpx.AsyncClient, register: Any) -> None:
    _streamer, address = await launch(client, register)
    viewer = await funded_viewer(client, register)
    hashes = []
    for _ in range(5):
        hashes.append((await swap(client, viewer, address, side="buy", amount="1000000")).json()["tx_hash"])
    first = (await client.get("/api/v1/trades/recent/", params={"limit": 2})).json()
    second = (await client.get("/api/v1/trades/recent/", params={"limit": 2, "cursor": first["next_cursor"]})).json()
    third = (await client.get(f"/api/v1/trades/recent/{address}/", params={"cursor": second["next_cursor"]})).json()
    seen = [t["tx_hash"] for page in (first, second, third) for t in page["trades"]]
    assert seen == hashes[::-1] and third["next_cursor"] is None
    assert (await client.get("/api/v1/trades/recent/", params={"limit": 101})).status_code == 400
    assert (await client.get("/api/v1/trades/recent/", params={"cursor": "x"})).json()["code"] == "invalid_cursor"
    assert (await client.get("/api/v1/trades/top-volume/", params={"window": "2d"})).status_code == 400
    assert (await client.get(f"/api/v1/trades/recent/{'1' * 32}/")).status_code == 404


async def test_concurrent_swaps_serialize_exactly(client: httpx.AsyncClient, register: Any) -> None:
    _streamer, address = await launch(client, register)
    viewers = [await funded_viewer(client, register, 50 * SOL) for _ in range(4)]
    # Seed each viewer with tokens so sells run concurrently with buys.
    for viewer in viewers:
        assert (await swap(client, viewer, address, side="buy", amount=str(SOL))).status_code == 200
    jobs = []
    for i in range(20):
        viewer = viewers[i % 4]
        if i % 5 == 4:
            jobs.append(swap(client, viewer, address, side="sell", amount=str(10**12)))
        elif i % 5 == 3:
            jobs.append(swap(client, viewer, address, side="buy", amount=str(10**13), mode="exact_out"))
        else:
            jobs.append(swap(client, viewer, address, side="buy", amount=str((i + 1) * SOL // 10)))
    responses = await asyncio.gather(*jobs)
    assert [r.status_code for r in responses] == [200] * 20, [r.text for r in responses if r.status_code != 200]

    platform = platform_of(client)
    async with platform.sessions() as db:
        token = await db.get(Token, address)
        assert token is not None
        trades = (await db.execute(Trade.__table__.select().order_by(Trade.id))).all()
    state = state_from_json(token.state)
    wallets = [(await client.get("/api/v1/wallet", headers=v.headers)).json() for v in viewers]
    lamports = sum(int(w["sol"]) for w in wallets)
    atoms = sum(int(t["amount"]) for w in wallets for t in w["tokens"])
    fees = state.protocol_quote_fee + state.partner_quote_fee + state.creator_quote_fee
    assert lamports + state.quote_reserve + fees == 4 * 50 * SOL, "SOL is conserved"
    assert atoms + state.base_reserve == CONFIG_A.initial_base_supply, "tokens are conserved"
    assert state.total_trading_quote_fee == state.partner_quote_fee + state.creator_quote_fee
    assert sum(t.fee_protocol for t in trades) == state.protocol_quote_fee
    assert sum(t.fee_creator for t in trades) == state.creator_quote_fee
    assert len(trades) == 24

    # Replaying the stored trades one after another from a fresh pool reproduces every result and the final
    # state exactly: each trade saw the state its predecessor left (no lost update).
    replay = new_pool(CONFIG_A, state.activation_point)
    for row in trades:
        mode = {"exact_in": SwapMode.EXACT_IN, "exact_out": SwapMode.EXACT_OUT}[row.mode]
        amount = row.amount_out if mode is SwapMode.EXACT_OUT else row.amount_in
        side = Side.BUY if row.is_buy else Side.SELL
        result = quote_swap(CONFIG_A, replay, side, amount, mode, state.activation_point)
        assert (result.amount_in, result.amount_out, str(result.next_sqrt_price)) == (
            row.amount_in,
            row.amount_out,
            row.sqrt_price_after,
        )
        replay = result.new_state
    assert replay.to_dict() == state.to_dict()


async def test_bad_input_is_refused_and_changes_nothing(client: httpx.AsyncClient, register: Any) -> None:
    _streamer, address = await launch(client, register)
    viewer = await funded_viewer(client, register, 2 * SOL)
    assert (await swap(client, viewer, address, side="buy", amount=str(SOL))).status_code == 200
    before = await snapshot(client)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"side": "buy", "amount": "-1"}, 400, "invalid_amount"),
        ({"side": "buy", "amount": -1}, 400, "invalid_amount"),
        ({"side": "buy", "amount": "0"}, 400, "invalid_amount"),
        ({"side": "buy", "amount": 0}, 400, "invalid_amount"),
        ({"side": "buy", "amount": "abc"}, 400, "invalid_amount"),
        ({"side": "buy", "amount": "1.5"}, 400, "invalid_amount"),
        ({"side": "buy", "amount": "1e9"}, 400, "invalid_amount"),
        ({"side": "buy", "amount": ""}, 400, "invalid_amount"),
        ({"side": "buy", "amount": str(2**64)}, 400, "invalid_amount"),
        ({"side": "buy", "amount": 1.5}, 400, "validation_error"),
        ({"side": "buy", "amount": True}, 400, "validation_error"),
        ({"side": "buy"}, 400, "missing_field"),
        ({"side": "hold", "amount": "1"}, 400, "validation_error"),
        ({"side": "buy", "amount": "1", "mode": "market"}, 400, "validation_error"),
        ({"side": "buy", "amount": str(5 * SOL)}, 400, "insufficient_balance"),
        ({"side": "buy", "amount": str(5 * SOL), "mode": "partial_fill"}, 400, "insufficient_balance"),
        ({"side": "buy", "amount": str(10**14), "mode": "exact_out"}, 400, "insufficient_balance"),
        ({"side": "sell", "amount": str(10**14)}, 400, "insufficient_balance"),
        ({"side": "buy", "amount": "100", "min_out": "-3"}, 400, "invalid_amount"),
        ({"side": "buy", "amount": str(SOL // 2), "min_out": "10000000000000000"}, 409, "slippage_exceeded"),
        ({"side": "buy", "amount": str(10**12), "mode": "exact_out", "max_in": "1000"}, 409, "slippage_exceeded"),
        ({"side": "sell", "amount": str(10**12), "min_out": str(SOL)}, 409, "slippage_exceeded"),
        ({"side": "buy", "amount": "1"}, 400, "amount_too_small"),
    ]
    for body, status, code in cases:
        response = await swap(client, viewer, address, **body)
        assert (response.status_code, response.json()["code"]) == (status, code), (body, response.text)
    assert (await client.post(f"/api/v1/tokens/{address}/swap", json={"side": "buy", "amount": "1"})).status_code == 401
    missing = await swap(client, viewer, "1" * 32, side="buy", amount="1000")
    assert (missing.status_code, missing.json()["code"]) == (404, "token_not_found")
    for params in ({"side": "buy", "amount": "-5"}, {"side": "buy", "amount": "x"}, {"side": "up", "amount": "5"}):
        assert (await client.get(f"/api/v1/tokens/{address}/quote", params=params)).status_code == 400
    assert (await client.get(f"/api/v1/tokens/{'1' * 32}/stats")).status_code == 404
    # Never reaches the database (PostgreSQL refuses NUL in text): a NUL in the URL is refused up front.
    for junk, status in (("abc%00def", 400), ("0OIl" * 8, 404)):
        assert (await client.get(f"/api/v1/tokens/{junk}/stats")).status_code == status
        assert (await client.get(f"/api/v1/trades/recent/{junk}/")).status_code == status
        assert (await swap(client, viewer, junk, side="buy", amount="1000")).status_code == status
    assert await snapshot(client) == before


async def test_graduation_refuses_further_swaps(client: httpx.AsyncClient, register: Any) -> None:
    _streamer, address = await launch(client, register)
    whale = await funded_viewer(client, register, 100 * SOL)
    crossing = await swap(client, whale, address, side="buy", amount=str(100 * SOL))
    assert (crossing.status_code, crossing.json()["code"]) == (409, "insufficient_liquidity")
    filled = await swap(client, whale, address, side="buy", amount=str(100 * SOL), mode="partial_fill")
    assert filled.status_code == 200, filled.text
    trade = filled.json()
    assert trade["completed"] is True and trade["bonding_progress"] == 1.0 and int(trade["amount_left"]) > 0
    wallet = (await client.get("/api/v1/wallet", headers=whale.headers)).json()
    assert int(wallet["sol"]) == 100 * SOL - int(trade["amount_in"]), "the unfilled part stays in the wallet"
    stats = (await client.get(f"/api/v1/tokens/{address}/stats")).json()
    assert stats["graduated"] is True and stats["bonding_progress"] == 1.0
    for side, amount in (("buy", str(SOL)), ("sell", "1000000")):
        refused = await swap(client, whale, address, side=side, amount=amount)
        assert (refused.status_code, refused.json()["code"]) == (409, "pool_completed")
    quote = await client.get(f"/api/v1/tokens/{address}/quote", params={"side": "sell", "amount": "1000000"})
    assert (quote.status_code, quote.json()["code"]) == (409, "pool_completed")


async def test_live_users_show_the_market_cap(client: httpx.AsyncClient, register: Any) -> None:
    streamer, address = await launch(client, register)
    platform = platform_of(client)
    session_id = (await client.get("/api/v1/agent/stream/status", headers=streamer.headers)).json()["session_id"]
    platform.live.media_started(session_id, streamer.user_id)
    live = (await client.get("/api/v1/users/live/")).json()
    stats = (await client.get(f"/api/v1/tokens/{address}/stats")).json()
    assert live[0]["token_address"] == address and live[0]["market_cap"] == stats["market_cap"] > 0
