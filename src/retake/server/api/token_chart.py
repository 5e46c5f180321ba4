"""``GET /api/v1/tokens/:address/chart``: what the watch page's token panel draws (API.md "Tokens, trades and tips").

Our own addition, not in the skill: ``/trades/recent/`` pages 100 full trade records at a time, newest first, while
a chart wants the prices of many trades oldest first, plus the holder count and the decimals that turn a quote's
raw atoms and lamports into human amounts. A module of its own so the ledger routes stay as the skill has them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from retake.ledger.chart import MAX_POINTS, PriceHistory, price_history
from retake.server.api.deps import PlatformDep
from retake.server.api.ledger_schemas import LEDGER_ERRORS

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses=LEDGER_ERRORS)


class PricePointOut(BaseModel):
    time: str | None
    price_sol: float
    price_usd: float
    side: str = Field(description="buy, sell, or start (the pool's start price when the token was created)")
    amount_sol: float = Field(description="the trade's quote volume in SOL")


class PriceHistoryOut(BaseModel):
    address: str
    ticker: str
    token_decimals: int = Field(description="token atoms per whole token: 10^token_decimals")
    quote_decimals: int = Field(description="lamports per SOL: 10^quote_decimals")
    sol_price_usd: float
    price_sol: float
    price_usd: float
    holders: int = Field(description="users holding a non-zero balance")
    trade_count: int
    graduated: bool
    points: list[PricePointOut] = Field(description="oldest first")


@router.get("/{address}/chart", response_model=PriceHistoryOut)
async def chart(
    platform: PlatformDep,
    address: Annotated[str, Path(max_length=64, description="the token's base58 address")],
    limit: Annotated[int, Query(ge=1, le=MAX_POINTS, description=f"latest trades, at most {MAX_POINTS}")] = 500,
) -> PriceHistory:
    """The price after each of the latest ``limit`` trades (and the start price when they are all of them)."""
    return await price_history(platform.sessions, platform.settings.sol_price_usd, address, limit)
