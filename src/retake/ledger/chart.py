"""Read side for a token's price chart on the watch page: the price after each of its latest trades, the holder
count, and the decimals a client needs to turn quotes (raw atoms and lamports) into human amounts.

Read from the same ``tokens``, ``trades`` and ``token_balances`` rows the swaps write, so the chart, the stats and
the trade feed always agree. A trade's price is its ``sqrt_price_after`` (token-curve.md §8), the first point is
the pool's start price at the token's creation: a chart of a token nobody traded yet is a flat line, not empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.errors import NotFound
from retake.store.tables import Token, TokenBalance, Trade
from retake.store.types import iso

from .edge import looks_like_address
from .records import Pricing, config_of

MAX_POINTS = 1000


@dataclass(frozen=True, slots=True)
class PricePoint:
    time: str | None
    price_sol: float
    price_usd: float
    side: str  # "start" for the pool's start price, else "buy" or "sell"
    amount_sol: float


@dataclass(frozen=True, slots=True)
class PriceHistory:
    address: str
    ticker: str
    token_decimals: int
    quote_decimals: int
    sol_price_usd: float
    price_sol: float
    price_usd: float
    holders: int
    trade_count: int
    graduated: bool
    points: tuple[PricePoint, ...]


async def price_history(
    sessions: async_sessionmaker[AsyncSession], sol_price_usd: float, address: str, limit: int
) -> PriceHistory:
    """Oldest first: the start price (when all of the token's trades fit in ``limit``), then one point a trade."""
    limit = max(1, min(limit, MAX_POINTS))
    async with sessions() as db:
        token = await db.get(Token, address) if looks_like_address(address) else None
        if token is None:
            raise NotFound(f"no token with address '{address}'", code="token_not_found")
        rows = (
            await db.execute(
                select(Trade.created_at, Trade.sqrt_price_after, Trade.is_buy, Trade.sol_amount)
                .where(Trade.token_address == address)
                .order_by(Trade.id.desc())
                .limit(limit)
            )
        ).all()
        trade_count = int(await db.scalar(select(func.count(Trade.id)).where(Trade.token_address == address)) or 0)
        holders = int(
            await db.scalar(
                select(func.count())
                .select_from(TokenBalance)
                .where(TokenBalance.token_address == address, TokenBalance.atoms > 0)
            )
            or 0
        )
    config = config_of(token)
    pricing = Pricing(config, sol_price_usd)
    points = [
        PricePoint(
            time=iso(created_at),
            price_sol=pricing.price_sol(int(sqrt)),
            price_usd=pricing.price_usd(int(sqrt)),
            side="buy" if is_buy else "sell",
            amount_sol=pricing.sol(int(sol_amount)),
        )
        for created_at, sqrt, is_buy, sol_amount in reversed(rows)
    ]
    if trade_count <= limit:
        start = config.sqrt_start_price
        points.insert(
            0, PricePoint(iso(token.created_at), pricing.price_sol(start), pricing.price_usd(start), "start", 0.0)
        )
    sqrt_now = int(token.sqrt_price)
    return PriceHistory(
        address=token.address,
        ticker=token.ticker,
        token_decimals=config.token_decimal,
        quote_decimals=config.quote_decimal,
        sol_price_usd=sol_price_usd,
        price_sol=pricing.price_sol(sqrt_now),
        price_usd=pricing.price_usd(sqrt_now),
        holders=holders,
        trade_count=trade_count,
        graduated=token.completed,
        points=tuple(points),
    )
