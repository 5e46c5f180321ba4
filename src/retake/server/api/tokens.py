"""Token endpoints: public rankings, stats and quotes; swaps for signed-in users (API.md "Tokens, trades and tips")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query

from retake.ledger import results
from retake.ledger.service import LedgerService
from retake.server.api.deps import PlatformDep, UserDep
from retake.server.api.ledger_schemas import (
    DIGITS,
    LEDGER_ERRORS,
    Mode,
    QuoteOut,
    Side,
    SwapIn,
    TokenStats,
    TopToken,
    TradeOut,
    TrendingToken,
)

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], responses=LEDGER_ERRORS)


async def get_ledger(platform: PlatformDep) -> LedgerService:  # async: no thread-pool hop (see deps.py)
    return platform.ledger


LedgerDep = Annotated[LedgerService, Depends(get_ledger)]
AddressPath = Annotated[str, Path(max_length=64, description="the token's base58 address")]
LimitQuery = Annotated[int, Query(ge=1, le=100, description="at most 100")]


@router.get("/top/", response_model=list[TopToken])
async def top(ledger: LedgerDep, limit: LimitQuery = 50) -> list[results.TopToken]:
    """Tokens by market cap (USD), largest first."""
    return await ledger.market.top_tokens(limit)


@router.get("/trending/", response_model=list[TrendingToken])
async def trending(ledger: LedgerDep, limit: LimitQuery = 50) -> list[results.TrendingToken]:
    """Tokens by 24 h price growth (``growth_24h`` 0.25 = +25 %), fastest first."""
    return await ledger.market.trending(limit)


@router.get("/{address}/stats", response_model=TokenStats)
async def stats(ledger: LedgerDep, address: AddressPath) -> results.TokenStats:
    """Price, market cap, all-time high, growth, volume and creator earnings (token-curve.md §8)."""
    return await ledger.market.token_stats(address)


@router.get("/{address}/quote", response_model=QuoteOut)
async def quote(
    ledger: LedgerDep,
    address: AddressPath,
    side: Side,
    amount: Annotated[str, Query(max_length=40, json_schema_extra={"pattern": DIGITS})],
    mode: Mode = "exact_in",
) -> results.Quote:
    """What a swap would do now. ``amount`` is lamports (buy) or token atoms (sell): the input for ``exact_in`` and
    ``partial_fill``, the wanted output for ``exact_out``. 409 ``insufficient_liquidity`` when the curve cannot fill
    it, ``pool_completed`` after graduation."""
    return await ledger.quote(address, side, amount, mode)


@router.post("/{address}/swap", response_model=TradeOut)
async def swap(body: SwapIn, user: UserDep, ledger: LedgerDep, address: AddressPath) -> results.TradeRecord:
    """Trade against the pool from your wallet; the answer is the trade record. 400 ``invalid_amount`` or
    ``insufficient_balance``; 409 ``slippage_exceeded`` (``min_out``/``max_in``), ``insufficient_liquidity`` or
    ``pool_completed``."""
    return await ledger.swap(
        user, address, side=body.side, amount=body.amount, mode=body.mode, min_out=body.min_out, max_in=body.max_in
    )
