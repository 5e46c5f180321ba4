"""Builders for fee parameters, the integer equivalents of the TypeScript SDK's config helpers
(``getFeeSchedulerParams``, ``getDynamicFeeParams``; token-curve.md §5.2, §5.4, §7.1(d) 12, §7.2 config B).

These are not consensus math (only the resulting integers are stored in a config), but they are computed
exactly here instead of with the SDK's floating/decimal arithmetic, and they reproduce its published
numbers: 2777777 and 383 (§7.1(d) 12), ``BaseFeeConfig(500000000, 10, 6, 3237, 1)`` and
``variable_fee_control`` 956 (config B).
"""

from __future__ import annotations

from .constants import (
    BASIS_POINT_MAX,
    BIN_STEP_BPS_DEFAULT,
    BIN_STEP_BPS_U128_DEFAULT,
    DECAY_PERIOD_DEFAULT,
    DYNAMIC_FEE_ROUNDING_OFFSET,
    DYNAMIC_FEE_SCALING_FACTOR,
    FILTER_PERIOD_DEFAULT,
    MAX_DYNAMIC_FEE_PERCENT,
    ONE_Q64,
    REDUCTION_FACTOR_DEFAULT,
    RESOLUTION,
)
from .enums import BaseFeeMode
from .errors import InvalidConfig
from .fees import BaseFeeConfig, DynamicFeeConfig
from .rate_limiter import to_numerator
from .u128math import sqrt_u256


def fee_scheduler_params(
    starting_fee_bps: int,
    ending_fee_bps: int,
    mode: BaseFeeMode,
    number_of_period: int,
    total_duration: int,
) -> BaseFeeConfig:
    """A scheduler that decays from ``starting_fee_bps`` to ``ending_fee_bps`` over ``number_of_period``
    periods spread over ``total_duration`` points.

    Linear: ``reduction = (start_num − end_num) // periods``. Exponential: ``reduction =
    floor(10_000·(1 − (end/start)^(1/periods)))``, computed as ``10_000 − ceil(10_000·q)`` where the
    ceiling is the smallest integer ``y`` with ``y^periods·start >= 10_000^periods·end``.
    """
    if mode is BaseFeeMode.RATE_LIMITER:
        raise InvalidConfig("use rate_limiter_params for the rate limiter")
    cliff = to_numerator(starting_fee_bps)
    if starting_fee_bps == ending_fee_bps:
        return BaseFeeConfig(cliff, 0, 0, 0, mode)
    if number_of_period <= 0 or total_duration <= 0 or ending_fee_bps > starting_fee_bps or ending_fee_bps <= 0:
        raise InvalidConfig("a fee schedule needs periods, a duration and a lower, positive ending fee")
    period_frequency = total_duration // number_of_period
    if mode is BaseFeeMode.LINEAR:
        reduction = (cliff - to_numerator(ending_fee_bps)) // number_of_period
        return BaseFeeConfig(cliff, number_of_period, period_frequency, reduction, mode)
    target = BASIS_POINT_MAX**number_of_period * ending_fee_bps
    lo, hi = 0, BASIS_POINT_MAX
    while lo < hi:
        mid = (lo + hi) // 2
        if mid**number_of_period * starting_fee_bps >= target:
            hi = mid
        else:
            lo = mid + 1
    return BaseFeeConfig(cliff, number_of_period, period_frequency, BASIS_POINT_MAX - lo, mode)


def rate_limiter_params(
    base_fee_bps: int, fee_increment_bps: int, reference_amount: int, max_limiter_duration: int
) -> BaseFeeConfig:
    """A rate limiter: ``base_fee_bps`` for the first ``reference_amount``, +``fee_increment_bps`` per
    further ``reference_amount`` of a single buy, during ``max_limiter_duration`` points (§5.2)."""
    return BaseFeeConfig(
        to_numerator(base_fee_bps),
        fee_increment_bps,
        max_limiter_duration,
        reference_amount,
        BaseFeeMode.RATE_LIMITER,
    )


def max_volatility_accumulator(max_price_change_bps: int = 1500) -> int:
    """Accumulator that corresponds to a ``max_price_change_bps`` price move (§7.1(c) 8: 15 % → 14460000)."""
    sqrt_ratio_q64 = sqrt_u256(((BASIS_POINT_MAX + max_price_change_bps) << (2 * RESOLUTION)) // BASIS_POINT_MAX)
    delta_bin_id = (sqrt_ratio_q64 - ONE_Q64) // BIN_STEP_BPS_U128_DEFAULT * 2
    return delta_bin_id * BASIS_POINT_MAX


def dynamic_fee_params(base_fee_bps: int, max_price_change_bps: int = 1500) -> DynamicFeeConfig:
    """SDK default dynamic fee: the variable part reaches 20 % of the base fee at the maximum volatility."""
    max_va = max_volatility_accumulator(max_price_change_bps)
    square_vfa_bin = (max_va * BIN_STEP_BPS_DEFAULT) ** 2
    max_dynamic_fee_numerator = to_numerator(base_fee_bps) * MAX_DYNAMIC_FEE_PERCENT // 100
    vfc_numerator = max_dynamic_fee_numerator * DYNAMIC_FEE_SCALING_FACTOR - DYNAMIC_FEE_ROUNDING_OFFSET
    return DynamicFeeConfig(
        max_volatility_accumulator=max_va,
        variable_fee_control=vfc_numerator // square_vfa_bin,
        bin_step=BIN_STEP_BPS_DEFAULT,
        filter_period=FILTER_PERIOD_DEFAULT,
        decay_period=DECAY_PERIOD_DEFAULT,
        reduction_factor=REDUCTION_FACTOR_DEFAULT,
        bin_step_u128=BIN_STEP_BPS_U128_DEFAULT,
    )
