"""Prices, market cap and platform stats derived from pool state (token-curve.md §1, §8).

``sqrt_price²/2^128`` is the price in quote atoms per base atom, so integer helpers need no decimals for
atom-denominated values: a market cap in lamports is ``floor(sqrt_price² · supply_atoms / 2^128)``.
``price_fraction`` gives the exact rational price per whole token. Floats appear only in the
``display_*`` helpers, which exist for UI text and must never feed money math (ARCHITECTURE convention 4).
"""

from __future__ import annotations

from fractions import Fraction

from .constants import BASIS_POINT_MAX, RESOLUTION
from .enums import FeeToken, Side
from .model import PoolConfig, PoolState, SwapResult
from .u128math import Rounding, mul_div

_Q128 = 1 << (2 * RESOLUTION)


def price_lamports_per_token(sqrt_price: int, token_decimal: int, rounding: Rounding = Rounding.DOWN) -> int:
    """Quote atoms (lamports) per whole token: ``sqrt_price² · 10^token_decimal / 2^128``."""
    return mul_div(sqrt_price * sqrt_price, 10**token_decimal, _Q128, rounding)


def market_cap_lamports(sqrt_price: int, total_supply_atoms: int, rounding: Rounding = Rounding.DOWN) -> int:
    """Price × total supply, in quote atoms (§8: the SDK's market cap uses the total supply)."""
    return mul_div(sqrt_price * sqrt_price, total_supply_atoms, _Q128, rounding)


def price_fraction(sqrt_price: int, token_decimal: int, quote_decimal: int) -> Fraction:
    """Exact price in whole quote units per whole token (§1 ``getPriceFromSqrtPrice``)."""
    return Fraction(sqrt_price * sqrt_price * 10**token_decimal, _Q128 * 10**quote_decimal)


def total_supply(config: PoolConfig) -> int:
    """Token supply in atoms used for market cap: the fixed supply or what the pool minted."""
    return config.initial_base_supply


def pool_market_cap_lamports(config: PoolConfig, state: PoolState) -> int:
    return market_cap_lamports(state.sqrt_price, total_supply(config))


def bonding_progress_bps(config: PoolConfig, state: PoolState) -> int:
    """``quote_reserve / migration_quote_threshold`` in basis points, capped at 10_000 (§8)."""
    progress = state.quote_reserve * BASIS_POINT_MAX // config.migration_quote_threshold
    return min(progress, BASIS_POINT_MAX)


def trade_quote_volume(result: SwapResult) -> int:
    """Quote volume of a trade (§8): a buy counts the quote paid; a sell the gross quote leaving the curve
    (what the seller got plus the fee when the fee is in quote)."""
    if result.side is Side.BUY:
        return result.amount_in
    if result.fees.token is FeeToken.QUOTE:
        return result.amount_out + result.fees.total
    return result.amount_out


def display_price(sqrt_price: int, token_decimal: int, quote_decimal: int) -> float:
    """Price per whole token in whole quote units, as a float — for display only."""
    return float(price_fraction(sqrt_price, token_decimal, quote_decimal))


def display_market_cap(sqrt_price: int, total_supply_atoms: int, quote_decimal: int) -> float:
    """Market cap in whole quote units (e.g. SOL), as a float — for display only."""
    return float(Fraction(market_cap_lamports(sqrt_price, total_supply_atoms), 10**quote_decimal))
