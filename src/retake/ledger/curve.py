"""Curve primitives and the four curve walks of the Dynamic Bonding Curve (token-curve.md §1, §3, §4).

The curve is piecewise concentrated liquidity: ``sqrt_start_price`` plus up to 16 points
``(sqrt_price_i, liquidity_i)``; segment *i* spans ``[previous point (or start), point i]`` with liquidity
``liquidity_i``. Prices are Q64.64 square roots, liquidity is Q64-scaled, amounts are integer atoms.

Every rounding direction follows the §3 table (always in the pool's favour). Segment capacities are
compared un-cast (the program uses U256 there); amounts that are paid or received are range-checked to
u64 exactly where the program casts them.

Decision (research ambiguity, §4 vs the SDK): a sell that reaches ``sqrt_start_price`` is clamped there
and the unfilled base is returned as ``amount_left`` (the research file's program version and its
PartialFill vector); exact-in callers turn a non-zero ``amount_left`` into ``InsufficientLiquidity``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .constants import RESOLUTION
from .errors import InsufficientLiquidity, MathOverflow
from .u128math import Rounding, checked_u64, checked_u128, div_rounding, mul_div


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One curve point: the segment ending at ``sqrt_price`` has liquidity ``liquidity``."""

    sqrt_price: int
    liquidity: int

    @property
    def is_empty(self) -> bool:
        # Unused slots of the 20-slot array are (0, 0) (§1, §12).
        return self.sqrt_price == 0 or self.liquidity == 0


@dataclass(frozen=True, slots=True)
class WalkResult:
    """Outcome of walking the curve: the other side's amount, where the price ends, what is unfilled."""

    amount: int
    next_sqrt_price: int
    amount_left: int = 0


# --- Δ amounts (§3) ---------------------------------------------------------------------------------


def delta_base_256(lower: int, upper: int, liquidity: int, rounding: Rounding) -> int:
    """``L·(upper − lower) / (lower·upper)`` without the u64 cast (a segment capacity)."""
    if upper < lower:
        raise MathOverflow("upper sqrt price below lower")
    denominator = lower * upper
    if denominator == 0:
        raise MathOverflow("zero sqrt price")
    return div_rounding(liquidity * (upper - lower), denominator, rounding)


def delta_base(lower: int, upper: int, liquidity: int, rounding: Rounding) -> int:
    return checked_u64(delta_base_256(lower, upper, liquidity, rounding), "base amount")


def delta_quote_256(lower: int, upper: int, liquidity: int, rounding: Rounding) -> int:
    """``L·(upper − lower) / 2^128`` without the u64 cast; Down is ``>> 128``, Up the ceiling."""
    if upper < lower:
        raise MathOverflow("upper sqrt price below lower")
    return div_rounding(liquidity * (upper - lower), 1 << (RESOLUTION * 2), rounding)


def delta_quote(lower: int, upper: int, liquidity: int, rounding: Rounding) -> int:
    return checked_u64(delta_quote_256(lower, upper, liquidity, rounding), "quote amount")


# --- next √P (§3) -----------------------------------------------------------------------------------


def next_sqrt_price_from_base_in(sqrt_price: int, liquidity: int, amount: int) -> int:
    """Sell exact-in: ``ceil(L·s / (L + Δx·s))`` — rounding up so the price falls less."""
    _check_price_and_liquidity(sqrt_price, liquidity)
    if amount == 0:
        return sqrt_price
    return checked_u128(mul_div(liquidity, sqrt_price, liquidity + amount * sqrt_price, Rounding.UP), "sqrt price")


def next_sqrt_price_from_quote_in(sqrt_price: int, liquidity: int, amount: int) -> int:
    """Buy exact-in: ``s + floor((Δy << 128) / L)`` — rounding down so the price rises less."""
    _check_price_and_liquidity(sqrt_price, liquidity)
    return checked_u128(sqrt_price + (amount << (RESOLUTION * 2)) // liquidity, "sqrt price")


def next_sqrt_price_from_quote_out(sqrt_price: int, liquidity: int, amount: int) -> int:
    """Sell exact-out: ``s − ceil((Δy << 128) / L)`` — the price moves down at least enough."""
    _check_price_and_liquidity(sqrt_price, liquidity)
    quotient = div_rounding(amount << (RESOLUTION * 2), liquidity, Rounding.UP)
    if quotient > sqrt_price:
        raise MathOverflow("sqrt price underflow")
    return sqrt_price - quotient


def next_sqrt_price_from_base_out(sqrt_price: int, liquidity: int, amount: int) -> int:
    """Buy exact-out: ``ceil(L·s / (L − Δx·s))`` — the price moves up at least enough."""
    _check_price_and_liquidity(sqrt_price, liquidity)
    if amount == 0:
        return sqrt_price
    denominator = liquidity - amount * sqrt_price
    if denominator <= 0:
        raise MathOverflow("base output exceeds the segment's liquidity")
    return checked_u128(mul_div(liquidity, sqrt_price, denominator, Rounding.UP), "sqrt price")


def _check_price_and_liquidity(sqrt_price: int, liquidity: int) -> None:
    if sqrt_price <= 0:
        raise MathOverflow("sqrt price must be positive")
    if liquidity <= 0:
        raise MathOverflow("liquidity must be positive")


# --- walks (§4 "Curve walks") -----------------------------------------------------------------------


def quote_to_base_from_amount_in(
    curve: Sequence[CurvePoint], sqrt_price: int, amount_in: int, stop_sqrt_price: int
) -> WalkResult:
    """Buy with ``amount_in`` quote (fees already removed), never past ``stop_sqrt_price``.

    Whatever cannot be spent below the stop price is returned as ``amount_left``.
    """
    if amount_in == 0:
        return WalkResult(0, sqrt_price, 0)
    total_out = 0
    current = sqrt_price
    left = amount_in
    for point in curve:
        if point.is_empty:
            break
        reference = min(stop_sqrt_price, point.sqrt_price)
        if reference <= current:
            continue
        max_in = delta_quote_256(current, reference, point.liquidity, Rounding.UP)
        if left < max_in:
            nxt = next_sqrt_price_from_quote_in(current, point.liquidity, left)
            total_out += delta_base(current, nxt, point.liquidity, Rounding.DOWN)
            current = nxt
            left = 0
            break
        total_out += delta_base(current, reference, point.liquidity, Rounding.DOWN)
        current = reference
        left -= max_in
        if reference == stop_sqrt_price:
            break
    return WalkResult(checked_u64(total_out, "output amount"), current, left)


def base_to_quote_from_amount_in(
    curve: Sequence[CurvePoint], sqrt_start_price: int, sqrt_price: int, amount_in: int
) -> WalkResult:
    """Sell ``amount_in`` base: walk segments downward, clamped at ``sqrt_start_price``.

    Going down, the segment below point *i* is the one ending at point *i+1*, so its liquidity is
    ``curve[i+1].liquidity``; below ``curve[0]`` it is ``curve[0].liquidity`` (§4, §12).
    """
    if amount_in == 0:
        return WalkResult(0, sqrt_price, 0)
    total_out = 0
    current = sqrt_price
    left = amount_in
    for i in range(len(curve) - 2, -1, -1):
        point = curve[i]
        if point.is_empty or point.sqrt_price >= current:
            continue
        liquidity = curve[i + 1].liquidity
        max_in = delta_base_256(point.sqrt_price, current, liquidity, Rounding.UP)
        if left < max_in:
            nxt = next_sqrt_price_from_base_in(current, liquidity, left)
            total_out += delta_quote(nxt, current, liquidity, Rounding.DOWN)
            return WalkResult(checked_u64(total_out, "output amount"), nxt, 0)
        total_out += delta_quote(point.sqrt_price, current, liquidity, Rounding.DOWN)
        current = point.sqrt_price
        left -= max_in
    if left > 0 and current > sqrt_start_price:
        liquidity = curve[0].liquidity
        max_in = delta_base_256(sqrt_start_price, current, liquidity, Rounding.UP)
        if left < max_in:
            nxt = next_sqrt_price_from_base_in(current, liquidity, left)
            total_out += delta_quote(nxt, current, liquidity, Rounding.DOWN)
            current = nxt
            left = 0
        else:
            total_out += delta_quote(sqrt_start_price, current, liquidity, Rounding.DOWN)
            current = sqrt_start_price
            left -= max_in
    return WalkResult(checked_u64(total_out, "output amount"), current, left)


def quote_to_base_from_amount_out(curve: Sequence[CurvePoint], sqrt_price: int, amount_out: int) -> WalkResult:
    """Buy exactly ``amount_out`` base; ``amount`` is the quote to pay before fees.

    The walk may go past the migration price; the caller rejects that (§4 ExactOut).
    """
    total_in = 0
    current = sqrt_price
    left = amount_out
    for point in curve:
        if point.is_empty:
            break
        if point.sqrt_price <= current:
            continue
        max_out = delta_base_256(current, point.sqrt_price, point.liquidity, Rounding.DOWN)
        if left < max_out:
            nxt = next_sqrt_price_from_base_out(current, point.liquidity, left)
            total_in += delta_quote(current, nxt, point.liquidity, Rounding.UP)
            current = nxt
            left = 0
            break
        total_in += delta_quote(current, point.sqrt_price, point.liquidity, Rounding.UP)
        current = point.sqrt_price
        left -= max_out
    if left != 0:
        raise InsufficientLiquidity("the curve cannot deliver that much base")
    return WalkResult(checked_u64(total_in, "input amount"), current, 0)


def base_to_quote_from_amount_out(
    curve: Sequence[CurvePoint], sqrt_start_price: int, sqrt_price: int, amount_out: int
) -> WalkResult:
    """Sell for exactly ``amount_out`` quote; ``amount`` is the base to pay. Never below the start price."""
    total_in = 0
    current = sqrt_price
    left = amount_out
    for i in range(len(curve) - 2, -1, -1):
        point = curve[i]
        if point.is_empty or point.sqrt_price >= current:
            continue
        liquidity = curve[i + 1].liquidity
        max_out = delta_quote_256(point.sqrt_price, current, liquidity, Rounding.DOWN)
        if left < max_out:
            nxt = next_sqrt_price_from_quote_out(current, liquidity, left)
            total_in += delta_base(nxt, current, liquidity, Rounding.UP)
            return WalkResult(checked_u64(total_in, "input amount"), nxt, 0)
        total_in += delta_base(point.sqrt_price, current, liquidity, Rounding.UP)
        current = point.sqrt_price
        left -= max_out
    if left != 0:
        liquidity = curve[0].liquidity
        quotient = div_rounding(left << (RESOLUTION * 2), liquidity, Rounding.UP)
        if quotient > current or current - quotient < sqrt_start_price:
            raise InsufficientLiquidity("the curve cannot pay that much quote above its start price")
        nxt = current - quotient
        total_in += delta_base(nxt, current, liquidity, Rounding.UP)
        current = nxt
    return WalkResult(checked_u64(total_in, "input amount"), current, 0)
