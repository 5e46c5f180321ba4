"""Read side of the ledger: token stats, rankings and trade feeds, all computed from the same ``tokens`` and
``trades`` rows the swaps write (API.md: "stats, top, trending and top-volume read the same rows").

Definitions follow token-curve.md §8: price = sqrt_price²/2^128 · 10^(base_dec − quote_dec); market cap = price ×
total supply; bonding progress = quote_reserve / migration_quote_threshold; per-trade volume as ``Trade.sol_amount``;
streamer earnings = the creator's trading-fee share (quote fees, plus base fees valued at the current price; the
surplus and migration-fee shares are not modelled because pools do not migrate here); ATH = the highest price after
any trade (the start price before the first); growth over a window = price now / price after the last trade at or
before now − window − 1, with the start price when there is no such trade.

Money-valued human fields without a suffix are USD at ``RETAKE_SOL_PRICE_USD``; ``*_sol`` twins are in SOL.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction
from typing import Final

from sqlalchemy import Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from retake.errors import NotFound, ValidationFailed
from retake.store.tables import Token, Trade, User
from retake.store.types import iso, utcnow

from .edge import looks_like_address
from .records import Pricing, config_of, state_from_json, trade_record
from .results import (
    Counts,
    Growth,
    PoolView,
    TokenActivity,
    TokenStats,
    TopToken,
    TradesPage,
    TrendingToken,
    Windowed,
)

WINDOWS: Final = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
GROWTH_WINDOWS: Final = ("1h", "6h", "24h")


def parse_window(value: str | None) -> timedelta:
    window = WINDOWS.get(value or "24h")
    if window is None:
        raise ValidationFailed("window must be one of 1h, 6h, 24h, 7d", code="invalid_window")
    return window


def parse_trade_cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        raise ValidationFailed("cursor must be a trade id from next_cursor", code="invalid_cursor")
    return int(value)


def growth(now_sqrt: int, then_sqrt: int) -> float:
    """price_now / price_then − 1; price ∝ sqrt_price², so the decimals cancel (§8)."""
    return float(Fraction(now_sqrt * now_sqrt, then_sqrt * then_sqrt) - 1)


class Market:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], sol_price_usd: float) -> None:
        self._sessions = sessions
        self._sol_price_usd = sol_price_usd

    def _pricing(self, token: Token) -> Pricing:
        return Pricing(config_of(token), self._sol_price_usd)

    async def _reference_sqrt(self, db: AsyncSession, cutoff: datetime, address: str | None) -> dict[str, int]:
        """sqrt price after the last trade at or before ``cutoff``, per token. Trade ids grow in commit order per
        pool (swaps on a pool are serialized), so the largest id is the last trade."""
        last = select(func.max(Trade.id)).where(Trade.created_at <= cutoff)
        if address is not None:
            last = last.where(Trade.token_address == address)
        rows = await db.execute(
            select(Trade.token_address, Trade.sqrt_price_after).where(Trade.id.in_(last.group_by(Trade.token_address)))
        )
        return {addr: int(sqrt) for addr, sqrt in rows.all()}

    def _growth(self, token: Token, reference: int | None) -> float:
        then = reference if reference is not None else config_of(token).sqrt_start_price
        return growth(int(token.sqrt_price), then)

    # -- per token --------------------------------------------------------------------------------------

    async def token_stats(self, address: str) -> TokenStats:
        now = utcnow()
        day_ago = now - WINDOWS["24h"]
        async with self._sessions() as db:
            token = await db.get(Token, address) if looks_like_address(address) else None
            if token is None:
                raise NotFound(f"no token with address '{address}'", code="token_not_found")
            references = {
                name: (await self._reference_sqrt(db, now - WINDOWS[name], address)).get(address)
                for name in GROWTH_WINDOWS
            }
            volume_total, count_total = await self._volume(db, address, None)
            volume_day, count_day = await self._volume(db, address, day_ago)
            creator_day = (
                await db.execute(
                    select(Trade.fee_token, func.coalesce(func.sum(Trade.fee_creator), 0))
                    .where(Trade.token_address == address, Trade.created_at >= day_ago)
                    .group_by(Trade.fee_token)
                )
            ).all()
        pricing = self._pricing(token)
        state = state_from_json(token.state)
        sqrt = state.sqrt_price
        ath = int(token.ath_sqrt_price)
        fees_by_token = {fee_token: int(total) for fee_token, total in creator_day}
        earnings_total = state.creator_quote_fee + pricing.base_value(state.creator_base_fee, sqrt)
        earnings_day = fees_by_token.get("quote", 0) + pricing.base_value(fees_by_token.get("base", 0), sqrt)
        market_cap = pricing.market_cap(sqrt)
        config = pricing.config
        return TokenStats(
            address=token.address,
            pool_address=token.pool_address,
            user_id=token.user_id,
            name=token.name,
            ticker=token.ticker,
            current_price=pricing.price_usd(sqrt),
            price_sol=pricing.price_sol(sqrt),
            market_cap=pricing.usd(market_cap),
            current_market_cap=pricing.usd(market_cap),
            market_cap_sol=pricing.sol(market_cap),
            all_time_high=pricing.price_usd(ath),
            all_time_high_sol=pricing.price_sol(ath),
            growth=Growth(
                hour=self._growth(token, references["1h"]),
                six_hours=self._growth(token, references["6h"]),
                day=self._growth(token, references["24h"]),
            ),
            volume=Windowed(pricing.usd(volume_total), pricing.usd(volume_day)),
            volume_sol=Windowed(pricing.sol(volume_total), pricing.sol(volume_day)),
            trade_count=Counts(count_total, count_day),
            earnings=Windowed(pricing.usd(earnings_total), pricing.usd(earnings_day)),
            earnings_sol=Windowed(pricing.sol(earnings_total), pricing.sol(earnings_day)),
            bonding_progress=pricing.progress(state.quote_reserve),
            graduated=token.completed,
            pool=PoolView(
                config=token.config_name,
                sqrt_price=str(sqrt),
                base_reserve=str(state.base_reserve),
                quote_reserve=str(state.quote_reserve),
                migration_quote_threshold=str(config.migration_quote_threshold),
                protocol_quote_fee=str(state.protocol_quote_fee),
                partner_quote_fee=str(state.partner_quote_fee),
                creator_quote_fee=str(state.creator_quote_fee),
                protocol_base_fee=str(state.protocol_base_fee),
                partner_base_fee=str(state.partner_base_fee),
                creator_base_fee=str(state.creator_base_fee),
            ),
            created_at=iso(token.created_at),
        )

    @staticmethod
    async def _volume(db: AsyncSession, address: str, since: datetime | None) -> tuple[int, int]:
        query = select(func.coalesce(func.sum(Trade.sol_amount), 0), func.count(Trade.id)).where(
            Trade.token_address == address
        )
        if since is not None:
            query = query.where(Trade.created_at >= since)
        volume, count = (await db.execute(query)).one()
        return int(volume), int(count)

    # -- rankings ---------------------------------------------------------------------------------------

    async def top_tokens(self, limit: int) -> list[TopToken]:
        async with self._sessions() as db:
            tokens = (
                await db.scalars(
                    select(Token)
                    .order_by(Token.market_cap_lamports.desc(), Token.created_at, Token.address)
                    .limit(limit)
                )
            ).all()
        out = []
        for rank, token in enumerate(tokens, start=1):
            pricing = self._pricing(token)
            out.append(
                TopToken(
                    user_id=token.user_id,
                    name=token.name,
                    ticker=token.ticker,
                    address=token.address,
                    current_market_cap=pricing.usd(token.market_cap_lamports),
                    market_cap_sol=pricing.sol(token.market_cap_lamports),
                    graduated=token.completed,
                    rank=rank,
                )
            )
        return out

    async def trending(self, limit: int) -> list[TrendingToken]:
        """Every token ranked by 24 h growth, then market cap (one pass over the token table; fine at the scale of
        one platform's agents, and a materialized ranking can replace it later without changing the contract)."""
        async with self._sessions() as db:
            rows = (await db.execute(select(Token, User.username).join(User, User.id == Token.user_id))).all()
            references = await self._reference_sqrt(db, utcnow() - WINDOWS["24h"], None)
        ranked = sorted(
            ((self._growth(token, references.get(token.address)), token, username) for token, username in rows),
            key=lambda item: (-item[0], -item[1].market_cap_lamports, item[1].address),
        )
        out = []
        for growth_24h, token, username in ranked[:limit]:
            pricing = self._pricing(token)
            out.append(
                TrendingToken(
                    user_id=token.user_id,
                    username=username,
                    ticker=token.ticker,
                    token_ticker=token.ticker,
                    address=token.address,
                    growth_24h=growth_24h,
                    market_cap=pricing.usd(token.market_cap_lamports),
                    market_cap_sol=pricing.sol(token.market_cap_lamports),
                )
            )
        return out

    async def top_by_trades(self, window: str | None, limit: int, *, by: str) -> list[TokenActivity]:
        """Tokens ranked by quote volume (``by="volume"``) or trade count (``by="count"``) within the window."""
        since = utcnow() - parse_window(window)
        volume = func.coalesce(func.sum(Trade.sol_amount), 0)
        count = func.count(Trade.id)
        buys = func.coalesce(func.sum(case((Trade.is_buy, 1), else_=0)), 0)
        order = (volume.desc(), count.desc()) if by == "volume" else (count.desc(), volume.desc())
        async with self._sessions() as db:
            grouped = (
                await db.execute(
                    select(Trade.token_address, volume, count, buys)
                    .where(Trade.created_at >= since)
                    .group_by(Trade.token_address)
                    .order_by(*order, Trade.token_address)
                    .limit(limit)
                )
            ).all()
            addresses = [row[0] for row in grouped]
            tokens = {
                token.address: (token, username)
                for token, username in (
                    await db.execute(
                        select(Token, User.username)
                        .join(User, User.id == Token.user_id)
                        .where(Token.address.in_(addresses))
                    )
                ).all()
            }
        out = []
        for rank, (address, lamports, trades, buy_count) in enumerate(grouped, start=1):
            token, username = tokens[address]
            pricing = self._pricing(token)
            out.append(
                TokenActivity(
                    rank=rank,
                    address=address,
                    token_address=address,
                    user_id=token.user_id,
                    username=username,
                    name=token.name,
                    ticker=token.ticker,
                    volume=pricing.usd(int(lamports)),
                    volume_sol=pricing.sol(int(lamports)),
                    volume_lamports=str(int(lamports)),
                    trade_count=int(trades),
                    buy_count=int(buy_count),
                    sell_count=int(trades) - int(buy_count),
                    market_cap=pricing.usd(token.market_cap_lamports),
                    market_cap_sol=pricing.sol(token.market_cap_lamports),
                )
            )
        return out

    # -- feeds ------------------------------------------------------------------------------------------

    async def recent_trades(self, token_address: str | None, limit: int, cursor: str | None) -> TradesPage:
        """Newest first; ``next_cursor`` is the id of the last trade shown (older trades have smaller ids)."""
        before = parse_trade_cursor(cursor)
        async with self._sessions() as db:
            if token_address is not None and (
                not looks_like_address(token_address) or await db.get(Token, token_address) is None
            ):
                raise NotFound(f"no token with address '{token_address}'", code="token_not_found")
            query: Select[tuple[Trade, Token]] = select(Trade, Token).join(Token, Token.address == Trade.token_address)
            if token_address is not None:
                query = query.where(Trade.token_address == token_address)
            if before is not None:
                query = query.where(Trade.id < before)
            rows = (await db.execute(query.order_by(Trade.id.desc()).limit(limit + 1))).all()
        trades = tuple(trade_record(trade, token, self._pricing(token)) for trade, token in rows[:limit])
        return TradesPage(trades, trades[-1].id if len(rows) > limit else None)

    async def market_caps_usd(self, addresses: list[str]) -> dict[str, float]:
        """Market cap (USD) per token address, for ``/users/live/``."""
        if not addresses:
            return {}
        async with self._sessions() as db:
            tokens = (await db.scalars(select(Token).where(Token.address.in_(addresses)))).all()
        return {token.address: self._pricing(token).usd(token.market_cap_lamports) for token in tokens}
