"""Config-derived fields computed once by ``create_config`` (token-curve.md §6 "Config derivation").

* ``migration_threshold_price``: the √P reached once ``migration_quote_threshold`` quote has been swapped in
  from the start price (each segment's capacity rounded Up, the last partial step rounded Down as in a buy).
* ``base_token_for_swap``: Σ Δbase (rounded Up) from the start price up to a given √P.
* ``migration_base_amount``: the base needed to seed the graduation pool at the migration price.

A DAMM v2 pool whose migrated fee mode is *compounding* is seeded like a constant-product pool (the DAMM v1
formula); ``PoolConfig.migrated_compounding`` selects that.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from .constants import MAX_SQRT_PRICE, MIN_SQRT_PRICE, RESOLUTION, SWAP_BUFFER_PERCENTAGE
from .curve import CurvePoint, delta_base, delta_base_256, delta_quote_256, next_sqrt_price_from_quote_in
from .errors import InvalidConfig
from .u128math import Rounding, checked_u64, div_rounding, mul_div


class MigrationOption(enum.IntEnum):
    """Graduation target; the on-chain ``migration_option`` byte."""

    DAMM_V1 = 0
    DAMM_V2 = 1


def migration_threshold_price(
    migration_quote_threshold: int, sqrt_start_price: int, curve: Sequence[CurvePoint]
) -> int:
    """√P after buying exactly ``migration_quote_threshold`` quote from the start (fees excluded)."""
    points = [p for p in curve if not p.is_empty]
    if not points:
        raise InvalidConfig("empty curve")
    first = points[0]
    total = delta_quote_256(sqrt_start_price, first.sqrt_price, first.liquidity, Rounding.UP)
    if total > migration_quote_threshold:
        return next_sqrt_price_from_quote_in(sqrt_start_price, first.liquidity, migration_quote_threshold)
    left = migration_quote_threshold - total
    current = first.sqrt_price
    for point in points[1:]:
        max_amount = delta_quote_256(current, point.sqrt_price, point.liquidity, Rounding.UP)
        if max_amount > left:
            return next_sqrt_price_from_quote_in(current, point.liquidity, left)
        left -= max_amount
        current = point.sqrt_price
    if left != 0:
        raise InvalidConfig("the curve cannot absorb the migration quote threshold")
    return current


def base_token_for_swap(sqrt_start_price: int, sqrt_upper: int, curve: Sequence[CurvePoint]) -> int:
    """Base sold by the curve between the start price and ``sqrt_upper`` (each segment rounded Up)."""
    total = 0
    lower = sqrt_start_price
    for point in curve:
        if point.is_empty:
            break
        if point.sqrt_price > sqrt_upper:
            total += delta_base_256(lower, sqrt_upper, point.liquidity, Rounding.UP)
            break
        total += delta_base_256(lower, point.sqrt_price, point.liquidity, Rounding.UP)
        lower = point.sqrt_price
    return total


def migration_quote_amount(migration_quote_threshold: int, migration_fee_percentage: int) -> int:
    """Quote that goes into the graduation pool: ``ceil(threshold·(100 − fee%)/100)`` (§6)."""
    return mul_div(migration_quote_threshold, 100 - migration_fee_percentage, 100, Rounding.UP)


def migration_base_amount(
    quote_amount: int, migration_sqrt_price: int, option: MigrationOption, *, compounding: bool = False
) -> int:
    """Base that pairs with ``quote_amount`` at the migration price in the graduation pool (§6)."""
    if option is MigrationOption.DAMM_V2 and not compounding:
        # Full-range concentrated position: L from the quote side over [MIN, msp], base over [msp, MAX].
        liquidity = (quote_amount << (RESOLUTION * 2)) // (migration_sqrt_price - MIN_SQRT_PRICE)
        return delta_base(migration_sqrt_price, MAX_SQRT_PRICE, liquidity, Rounding.UP)
    # Constant product (DAMM v1, DAMM v2 compounding): base = quote / price, rounded Up.
    return checked_u64(
        div_rounding(quote_amount << (RESOLUTION * 2), migration_sqrt_price**2, Rounding.UP),
        "migration base amount",
    )


def swap_amount_with_buffer(swap_base_amount: int, sqrt_start_price: int, curve: Sequence[CurvePoint]) -> int:
    """Base minted for the curve: 25 % over the swap amount, capped by what the whole curve can sell."""
    buffered = swap_base_amount + swap_base_amount * SWAP_BUFFER_PERCENTAGE // 100
    whole_curve = base_token_for_swap(sqrt_start_price, MAX_SQRT_PRICE, curve)
    return checked_u64(min(buffered, whole_curve), "swap amount with buffer")
