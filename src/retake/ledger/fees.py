"""Trading fees: base fee (constant / linear / exponential scheduler / rate limiter), dynamic fee, the fee
on an amount and its inverse, and the fee split (token-curve.md §5).

Numerators are over ``FEE_DENOMINATOR`` (1e9). Roundings follow §5.3: the fee on an amount is rounded Up,
the inverse included amount is rounded Up, every share (protocol, referral, creator) is rounded Down and
the remainder goes to the other party.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import rate_limiter
from .constants import (
    BASIS_POINT_MAX,
    BIN_STEP_BPS_DEFAULT,
    BIN_STEP_BPS_U128_DEFAULT,
    DECAY_PERIOD_DEFAULT,
    DYNAMIC_FEE_ROUNDING_OFFSET,
    DYNAMIC_FEE_SCALING_FACTOR,
    FEE_DENOMINATOR,
    FILTER_PERIOD_DEFAULT,
    HOST_FEE_PERCENT,
    MAX_FEE_NUMERATOR,
    ONE_Q64,
    PROTOCOL_FEE_PERCENT,
    REDUCTION_FACTOR_DEFAULT,
    RESOLUTION,
    U16_MAX,
)
from .enums import BaseFeeMode, Side
from .errors import ClockBeforeActivation, MathOverflow
from .u128math import Rounding, checked_u64, mul_div, pow_q64


@dataclass(frozen=True, slots=True)
class BaseFeeConfig:
    """``BaseFeeConfig`` (§5.2). The three factors mean different things per mode:

    * schedulers (modes 0, 1): first = number_of_period, second = period_frequency, third = reduction_factor;
      ``period_frequency == 0`` means a constant ``cliff_fee_numerator``;
    * rate limiter (mode 2): first = fee_increment_bps, second = max_limiter_duration,
      third = reference_amount.
    """

    cliff_fee_numerator: int
    first_factor: int = 0
    second_factor: int = 0
    third_factor: int = 0
    base_fee_mode: BaseFeeMode = BaseFeeMode.LINEAR

    @property
    def is_rate_limiter(self) -> bool:
        return self.base_fee_mode is BaseFeeMode.RATE_LIMITER

    @property
    def is_zero_rate_limiter(self) -> bool:
        return self.first_factor == 0 and self.second_factor == 0 and self.third_factor == 0


@dataclass(frozen=True, slots=True)
class DynamicFeeConfig:
    """``DynamicFeeConfig`` (§5.4); ``None`` on a config means the dynamic fee is disabled."""

    max_volatility_accumulator: int
    variable_fee_control: int
    bin_step: int = BIN_STEP_BPS_DEFAULT
    filter_period: int = FILTER_PERIOD_DEFAULT
    decay_period: int = DECAY_PERIOD_DEFAULT
    reduction_factor: int = REDUCTION_FACTOR_DEFAULT
    bin_step_u128: int = BIN_STEP_BPS_U128_DEFAULT


@dataclass(frozen=True, slots=True)
class VolatilityTracker:
    """Per-pool dynamic-fee state (§5.4). All zero on a new pool."""

    last_update_timestamp: int = 0
    sqrt_price_reference: int = 0
    volatility_accumulator: int = 0
    volatility_reference: int = 0


# --- base fee (§5.2) --------------------------------------------------------------------------------


def fee_in_period(cliff_fee_numerator: int, reduction_factor: int, period: int, mode: BaseFeeMode) -> int:
    """Scheduler numerator after ``period`` whole periods."""
    if period > U16_MAX:
        raise MathOverflow("fee scheduler period above u16")
    if mode is BaseFeeMode.LINEAR:
        fee = cliff_fee_numerator - reduction_factor * period
        if fee < 0:
            raise MathOverflow("linear fee scheduler went below zero")
        return fee
    if mode is BaseFeeMode.EXPONENTIAL:
        if period == 0:
            return cliff_fee_numerator
        # cliff·(1 − r/10_000)^period in Q64.64, with the program's truncations (fee_math.rs).
        bps = (reduction_factor << RESOLUTION) // BASIS_POINT_MAX
        if bps > ONE_Q64:
            raise MathOverflow("reduction factor above 100 %")
        result = pow_q64(ONE_Q64 - bps, period)
        return checked_u64((result * cliff_fee_numerator) >> RESOLUTION, "fee numerator")
    raise MathOverflow(f"{mode!r} is not a fee scheduler")


def min_base_fee_numerator(config: BaseFeeConfig) -> int:
    """Lowest base fee of the config: the last scheduler period, or the limiter's cliff."""
    if config.is_rate_limiter:
        return config.cliff_fee_numerator
    return fee_in_period(config.cliff_fee_numerator, config.third_factor, config.first_factor, config.base_fee_mode)


def rate_limiter_applies(config: BaseFeeConfig, current_point: int, activation_point: int, side: Side) -> bool:
    """The limiter only prices buys, and only until ``activation_point + max_limiter_duration``."""
    if not config.is_rate_limiter or config.is_zero_rate_limiter or side is Side.SELL:
        return False
    return current_point <= activation_point + config.second_factor


def base_fee_numerator(
    config: BaseFeeConfig,
    current_point: int,
    activation_point: int,
    side: Side,
    amount: int,
    *,
    amount_includes_fee: bool,
) -> int:
    """Base fee numerator of one trade; ``amount`` only matters for the rate limiter."""
    if config.is_rate_limiter:
        if not rate_limiter_applies(config, current_point, activation_point, side):
            return config.cliff_fee_numerator
        args = (config.cliff_fee_numerator, config.third_factor, config.first_factor, amount)
        if amount_includes_fee:
            return rate_limiter.fee_numerator_from_included(*args)
        return rate_limiter.fee_numerator_from_excluded(*args)
    period_frequency = config.second_factor
    if period_frequency == 0:
        return config.cliff_fee_numerator
    if current_point < activation_point:
        raise ClockBeforeActivation(f"point {current_point} precedes activation point {activation_point}")
    period = min((current_point - activation_point) // period_frequency, config.first_factor)
    return fee_in_period(config.cliff_fee_numerator, config.third_factor, period, config.base_fee_mode)


# --- dynamic fee (§5.4) -----------------------------------------------------------------------------


def variable_fee_numerator(dynamic: DynamicFeeConfig | None, tracker: VolatilityTracker) -> int:
    """``ceil((volatility_accumulator·bin_step)² · variable_fee_control / 1e11)``."""
    if dynamic is None:
        return 0
    square_vfa_bin = (tracker.volatility_accumulator * dynamic.bin_step) ** 2
    return (square_vfa_bin * dynamic.variable_fee_control + DYNAMIC_FEE_ROUNDING_OFFSET) // DYNAMIC_FEE_SCALING_FACTOR


def total_fee_numerator(base_numerator: int, dynamic: DynamicFeeConfig | None, tracker: VolatilityTracker) -> int:
    """Base + variable fee, capped at 99 % (§5.1)."""
    return min(base_numerator + variable_fee_numerator(dynamic, tracker), MAX_FEE_NUMERATOR)


def delta_bin_id(bin_step_u128: int, sqrt_price_a: int, sqrt_price_b: int) -> int:
    """How many price bins separate two √P: ``((max<<64)//min − 1) // bin_step · 2`` (√P ratio → price)."""
    upper, lower = max(sqrt_price_a, sqrt_price_b), min(sqrt_price_a, sqrt_price_b)
    if lower == 0:
        raise MathOverflow("zero sqrt price in the volatility tracker")
    return ((upper << RESOLUTION) // lower - ONE_Q64) // bin_step_u128 * 2


def update_references(
    dynamic: DynamicFeeConfig, tracker: VolatilityTracker, sqrt_price: int, now: int
) -> VolatilityTracker:
    """Pre-swap: after ``filter_period`` of calm, re-anchor the reference price and decay the volatility."""
    elapsed = max(0, now - tracker.last_update_timestamp)
    if elapsed < dynamic.filter_period:
        return tracker
    if elapsed < dynamic.decay_period:
        reference = tracker.volatility_accumulator * dynamic.reduction_factor // BASIS_POINT_MAX
    else:
        reference = 0
    return replace(tracker, sqrt_price_reference=sqrt_price, volatility_reference=reference)


def update_after_swap(
    dynamic: DynamicFeeConfig, tracker: VolatilityTracker, old_sqrt_price: int, new_sqrt_price: int, now: int
) -> VolatilityTracker:
    """Post-swap: the accumulator measures the distance from the reference price; the clock only moves
    when the swap itself crossed a bin (so tiny trades cannot keep the volatility alive)."""
    delta = delta_bin_id(dynamic.bin_step_u128, new_sqrt_price, tracker.sqrt_price_reference)
    accumulator = min(tracker.volatility_reference + delta * BASIS_POINT_MAX, dynamic.max_volatility_accumulator)
    last_update = tracker.last_update_timestamp
    if delta_bin_id(dynamic.bin_step_u128, old_sqrt_price, new_sqrt_price) > 0:
        last_update = now
    return replace(tracker, volatility_accumulator=accumulator, last_update_timestamp=last_update)


# --- fee on an amount and the split (§5.3) ----------------------------------------------------------


def excluded_fee_amount(numerator: int, included_amount: int) -> tuple[int, int]:
    """``(amount − fee, fee)`` with ``fee = ceil(amount·num/1e9)``."""
    fee = mul_div(included_amount, numerator, FEE_DENOMINATOR, Rounding.UP)
    return included_amount - fee, fee


def included_fee_amount(numerator: int, excluded_amount: int) -> tuple[int, int]:
    """``(included, fee)`` with ``included = ceil(excluded·1e9/(1e9 − num))``; the inverse of the above."""
    included = checked_u64(
        mul_div(excluded_amount, FEE_DENOMINATOR, FEE_DENOMINATOR - numerator, Rounding.UP), "included amount"
    )
    return included, included - excluded_amount


def split_fees(fee: int, has_referral: bool) -> tuple[int, int, int]:
    """``(trading, protocol, referral)``: protocol takes floor 20 %, the referral floor 20 % of that."""
    protocol = fee * PROTOCOL_FEE_PERCENT // 100
    trading = fee - protocol
    referral = protocol * HOST_FEE_PERCENT // 100 if has_referral else 0
    return trading, protocol - referral, referral


def split_partner_and_creator(amount: int, creator_percentage: int) -> tuple[int, int]:
    """``(partner, creator)``: the creator gets floor(amount·p/100), the partner the rest (§5.3, §6)."""
    creator = amount * creator_percentage // 100
    return amount - creator, creator
