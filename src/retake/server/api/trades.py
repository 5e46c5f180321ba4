"""Public trade feeds and volume rankings, read from the ledger's trade rows."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from retake.ledger import results
from retake.server.api.ledger_schemas import LEDGER_ERRORS, TokenActivity, TradesPage
from retake.server.api.tokens import LedgerDep, LimitQuery

router = APIRouter(prefix="/api/v1/trades", tags=["trades"], responses=LEDGER_ERRORS)

CursorQuery = Annotated[str | None, Query(max_length=32, description="next_cursor of the previous page")]
WindowQuery = Annotated[Literal["1h", "6h", "24h", "7d"], Query(description="default 24h")]


@router.get("/recent/", response_model=TradesPage)
async def recent(ledger: LedgerDep, limit: LimitQuery = 50, cursor: CursorQuery = None) -> results.TradesPage:
    """Latest trades platform-wide, newest first."""
    return await ledger.market.recent_trades(None, limit, cursor)


@router.get("/recent/{token_address}/", response_model=TradesPage)
async def recent_for_token(
    ledger: LedgerDep,
    token_address: Annotated[str, Path(max_length=64)],
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> results.TradesPage:
    return await ledger.market.recent_trades(token_address, limit, cursor)


@router.get("/top-volume/", response_model=list[TokenActivity])
async def top_volume(
    ledger: LedgerDep, limit: LimitQuery = 50, window: WindowQuery = "24h"
) -> list[results.TokenActivity]:
    """Tokens by traded SOL within the window (USD in ``volume``)."""
    return await ledger.market.top_by_trades(window, limit, by="volume")


@router.get("/top-count/", response_model=list[TokenActivity])
async def top_count(
    ledger: LedgerDep, limit: LimitQuery = 50, window: WindowQuery = "24h"
) -> list[results.TokenActivity]:
    """Tokens by number of trades within the window."""
    return await ledger.market.top_by_trades(window, limit, by="count")
