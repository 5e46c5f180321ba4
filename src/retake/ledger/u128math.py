"""Integer helpers that reproduce the reference program's fixed-width math (token-curve.md §3).

The program multiplies in U256/U512 and range-checks every cast back to u64/u128. Python integers never
overflow, so the checks are explicit here: ``checked_u64``/``checked_u128`` raise ``MathOverflow`` at the
places where the program's ``try_into``/``safe_*`` would fail. Rounding is always explicit because every
rounding direction in the curve is chosen in the pool's favour (§3 table).
"""

from __future__ import annotations

import enum
import math

from .constants import ONE_Q64, RESOLUTION, U64_MAX, U128_MAX
from .errors import MathOverflow


class Rounding(enum.Enum):
    UP = "up"
    DOWN = "down"


def checked_u64(value: int, what: str = "value") -> int:
    if value < 0 or value > U64_MAX:
        raise MathOverflow(f"{what} does not fit u64: {value}")
    return value


def checked_u128(value: int, what: str = "value") -> int:
    if value < 0 or value > U128_MAX:
        raise MathOverflow(f"{what} does not fit u128: {value}")
    return value


def div_rounding(numerator: int, denominator: int, rounding: Rounding) -> int:
    """Non-negative integer division; ``UP`` is ruint's ``div_ceil`` = ``(n + d - 1) // d``."""
    if denominator <= 0:
        raise MathOverflow("division by zero")
    if numerator < 0:
        raise MathOverflow("negative numerator")
    if rounding is Rounding.UP:
        return -(-numerator // denominator)
    return numerator // denominator


def mul_div(x: int, y: int, denominator: int, rounding: Rounding) -> int:
    """``x * y / denominator`` with the requested rounding (``u128x128_math.rs`` mul_div, §3)."""
    return div_rounding(x * y, denominator, rounding)


def sqrt_u256(value: int) -> int:
    """Floor square root (``utils_math.rs`` sqrt_u256; §7.1(c) 6: 0,1,1,1,2 for 0..4)."""
    if value < 0:
        raise MathOverflow("square root of a negative number")
    return math.isqrt(value)


_MAX_EXPONENTIAL = 0x80000


def pow_q64(base: int, exp: int) -> int:
    """Q64.64 ``base ** exp`` with the program's truncation (``fee_math.rs`` pow, §5.2 mode 1).

    Square-and-multiply over the 19 low bits of ``exp``, each product truncated with ``>> 64`` in u128;
    a base >= 1 is inverted first (``u128::MAX / base``) so intermediate values stay below one. The
    exact sequence of truncations matters: the exponential fee scheduler's numerators depend on it.
    """
    if exp == 0:
        return ONE_Q64
    invert = exp < 0
    e = -exp if invert else exp
    if e >= _MAX_EXPONENTIAL:
        raise MathOverflow("exponent too large for pow")
    squared_base = base
    result = ONE_Q64
    if squared_base >= result:
        if squared_base == 0:
            raise MathOverflow("pow of zero")
        squared_base = U128_MAX // squared_base
        invert = not invert
    for bit in range(19):
        if bit > 0:
            squared_base = checked_u128(squared_base * squared_base, "pow square") >> RESOLUTION
        if e & (1 << bit):
            result = checked_u128(result * squared_base, "pow product") >> RESOLUTION
    if result == 0:
        raise MathOverflow("pow underflowed to zero")
    if invert:
        result = U128_MAX // result
    return result
