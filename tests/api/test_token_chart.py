"""``GET /tokens/:address/chart``: the start price, one point per trade (oldest first), holders and decimals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from retake.config import Settings
from tests.ledger.support import SOL, funded_viewer, launch, swap


@pytest.fixture
def settings_factory(settings_factory: Callable[..., Settings], database_url: str) -> Callable[..., Settings]:
    return lambda **overrides: settings_factory(**{"enable_airdrop": True, **overrides})


async def test_chart_follows_the_trades(client: httpx.AsyncClient, register: Any) -> None:
    _streamer, address = await launch(client, register)
    fresh = (await client.get(f"/api/v1/tokens/{address}/chart")).json()
    assert fresh["holders"] == 0 and fresh["trade_count"] == 0 and fresh["graduated"] is False
    assert fresh["token_decimals"] == 6 and fresh["quote_decimals"] == 9
    assert [p["side"] for p in fresh["points"]] == ["start"]
    assert fresh["points"][0]["price_sol"] == pytest.approx(fresh["price_sol"])

    alice = await funded_viewer(client, register, 10 * SOL)
    bob = await funded_viewer(client, register, 10 * SOL)
    assert (await swap(client, alice, address, side="buy", amount=str(SOL))).status_code == 200
    bought = (await swap(client, bob, address, side="buy", amount=str(2 * SOL))).json()
    sold = (await swap(client, alice, address, side="sell", amount="1000000")).json()

    chart = (await client.get(f"/api/v1/tokens/{address}/chart")).json()
    assert [p["side"] for p in chart["points"]] == ["start", "buy", "buy", "sell"]
    assert chart["holders"] == 2 and chart["trade_count"] == 3
    prices = [p["price_sol"] for p in chart["points"]]
    assert prices[0] < prices[1] < prices[2] and prices[3] < prices[2], "buys raise the price, a sell lowers it"
    assert chart["points"][2]["price_usd"] == pytest.approx(bought["price_usd"])
    assert chart["points"][2]["amount_sol"] == pytest.approx(2.0)
    assert chart["points"][3]["time"] == sold["timestamp"]
    stats = (await client.get(f"/api/v1/tokens/{address}/stats")).json()
    assert chart["price_usd"] == pytest.approx(stats["current_price"])

    # a limit below the trade count gives the latest trades, without the start point
    latest = (await client.get(f"/api/v1/tokens/{address}/chart", params={"limit": 2})).json()
    assert [p["side"] for p in latest["points"]] == ["buy", "sell"]


async def test_chart_errors(client: httpx.AsyncClient) -> None:
    missing = await client.get("/api/v1/tokens/11111111111111111111111111111111/chart")
    assert missing.status_code == 404 and missing.json()["code"] == "token_not_found"
    junk = await client.get("/api/v1/tokens/not-an-address/chart")
    assert junk.status_code == 404 and junk.json()["code"] == "token_not_found"
    too_many = await client.get("/api/v1/tokens/11111111111111111111111111111111/chart", params={"limit": 5000})
    assert too_many.status_code == 400
