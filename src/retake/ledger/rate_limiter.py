"""Fee rate limiter, base fee mode 2 (token-curve.md §5.2 "Mode 2", §7.1(c) 5).

The fee grows with the size of a single buy: the first ``x0`` (reference amount) pays the cliff fee
``c``, every further ``x0`` slice pays ``i`` more (``i`` = fee increment as a numerator) until the
99 % cap; the remainder of a partial slice pays that slice's rate. The effective numerator is the total
fee (rounded Up to an atom) divided back by the input, rounded Up.

The inverse (numerator from an amount *excluding* the fee, needed by exact-out and partial-fill) solves
the quadratic of the linear part with an integer square root, then prices the remainder at its slice's
rate; the result is only guaranteed to be >= the cliff (the program says as much), so exact-out and
exact-in can differ by a few atoms under the limiter.
"""

from __future__ import annotations

from .constants import BASIS_POINT_MAX, FEE_DENOMINATOR, MAX_FEE_NUMERATOR, U64_MAX
from .errors import CurveError, MathOverflow
from .u128math import Rounding, div_rounding, mul_div, sqrt_u256


def to_numerator(bps: int) -> int:
    """Basis points to a fee numerator over 1e9 (``to_numerator``; floor)."""
    return mul_div(bps, FEE_DENOMINATOR, BASIS_POINT_MAX, Rounding.DOWN)


def max_index(cliff_fee_numerator: int, fee_increment_bps: int) -> int:
    """Number of full increments before the fee would pass the 99 % cap."""
    if cliff_fee_numerator > MAX_FEE_NUMERATOR:
        raise MathOverflow("cliff fee numerator above the maximum")
    increment = to_numerator(fee_increment_bps)
    if increment == 0:
        raise MathOverflow("zero fee increment")
    return (MAX_FEE_NUMERATOR - cliff_fee_numerator) // increment


def fee_numerator_from_included(
    cliff_fee_numerator: int, reference_amount: int, fee_increment_bps: int, included_amount: int
) -> int:
    """Effective numerator for an input that includes the fee (§5.2 formula)."""
    c, x0 = cliff_fee_numerator, reference_amount
    if included_amount <= x0:
        return c
    a, b = divmod(included_amount - x0, x0)
    top = max_index(c, fee_increment_bps)
    i = to_numerator(fee_increment_bps)
    if a < top:
        total = x0 * (c + c * a + i * a * (a + 1) // 2) + b * (c + i * (a + 1))
    else:
        # Slices past the cap all pay MAX_FEE_NUMERATOR.
        total = x0 * (c + c * top + i * top * (top + 1) // 2) + ((a - top) * x0 + b) * MAX_FEE_NUMERATOR
    trading_fee = div_rounding(total, FEE_DENOMINATOR, Rounding.UP)
    return mul_div(trading_fee, FEE_DENOMINATOR, included_amount, Rounding.UP)


def excluded_amount(
    cliff_fee_numerator: int, reference_amount: int, fee_increment_bps: int, included_amount: int
) -> int:
    """Input left after the limiter's fee: ``included − ceil(included·num/1e9)``."""
    num = fee_numerator_from_included(cliff_fee_numerator, reference_amount, fee_increment_bps, included_amount)
    return included_amount - mul_div(included_amount, num, FEE_DENOMINATOR, Rounding.UP)


def fee_numerator_from_excluded(
    cliff_fee_numerator: int, reference_amount: int, fee_increment_bps: int, excluded: int
) -> int:
    """Effective numerator for an amount that excludes the fee (the limiter's inverse)."""
    c, x0, d = cliff_fee_numerator, reference_amount, FEE_DENOMINATOR
    if excluded <= excluded_amount(c, x0, fee_increment_bps, x0):
        return c

    top = max_index(c, fee_increment_bps)
    cap_input = (top + 1) * x0
    if cap_input <= U64_MAX:
        checked_in, overflow = cap_input, False
    else:
        checked_in, overflow = U64_MAX, True
    checked_ex = excluded_amount(c, x0, fee_increment_bps, checked_in)

    if excluded == checked_ex:
        return fee_numerator_from_included(c, x0, fee_increment_bps, checked_in)

    if excluded < checked_ex:
        # ex = in − in·(2c·x0 + i·(in − x0)) / (2·d·x0)  ⇒  i·in² − y·in + z = 0 with the y, z below;
        # the smaller root is the input, floor-rounded, then the remainder is priced at its slice's rate.
        i = to_numerator(fee_increment_bps)
        y = 2 * d * x0 + i * x0 - 2 * c * x0
        z = 2 * excluded * d * x0
        discriminant = y * y - 4 * i * z
        if discriminant < 0:
            raise MathOverflow("rate limiter inverse has no root")
        included = (y - sqrt_u256(discriminant)) // (2 * i)
        a_plus_one = included // x0
        remaining_ex = excluded - excluded_amount(c, x0, fee_increment_bps, included)
        if remaining_ex < 0:
            raise MathOverflow("rate limiter inverse overshot")
        remaining_num = c + i * a_plus_one
        included += mul_div(remaining_ex, d, d - remaining_num, Rounding.UP)
    else:
        if overflow:
            raise MathOverflow("rate limiter input above u64")
        included = checked_in + mul_div(excluded - checked_ex, d, d - MAX_FEE_NUMERATOR, Rounding.UP)

    trading_fee = included - excluded
    numerator = mul_div(trading_fee, d, included, Rounding.UP)
    if numerator < c:
        raise CurveError("rate limiter numerator fell below the cliff fee")
    return numerator
