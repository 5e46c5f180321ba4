"""Pool configuration, pool state and swap results (token-curve.md §1, §4, §6).

Everything is a frozen dataclass: a quote computes a complete new ``PoolState`` without touching the old
one, so a service can persist the result atomically (or drop it) after checking it.

``PoolConfig`` validates itself and computes the three fields ``create_config`` derives on chain
(``migration_sqrt_price``, ``swap_base_amount``, ``migration_base_threshold``), so a config can never carry
derived values that disagree with its curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .constants import (
    BASIS_POINT_MAX,
    MAX_CURVE_POINT,
    MAX_CURVE_POINT_CONFIG,
    MAX_FEE_NUMERATOR,
    MAX_MIGRATION_FEE_PERCENTAGE,
    MAX_RATE_LIMITER_DURATION_SECONDS,
    MAX_RATE_LIMITER_DURATION_SLOTS,
    MAX_SQRT_PRICE,
    MIN_FEE_NUMERATOR,
    MIN_SQRT_PRICE,
    U64_MAX,
)
from .curve import CurvePoint
from .derive import (
    MigrationOption,
    base_token_for_swap,
    migration_base_amount,
    migration_quote_amount,
    migration_threshold_price,
    swap_amount_with_buffer,
)
from .enums import ActivationType, BaseFeeMode, CollectFeeMode, FeeToken, MigrationProgress, Side, SwapMode
from .errors import CurveError, InvalidConfig
from .fees import BaseFeeConfig, DynamicFeeConfig, VolatilityTracker, min_base_fee_numerator

_EMPTY_POINT = CurvePoint(0, 0)


@dataclass(frozen=True, slots=True)
class PoolConfig:
    """Partner-level curve and fee configuration (the program's ``PoolConfig``).

    ``curve`` may be given with 1..16 points; it is stored padded to the program's 20 slots with (0, 0)
    because the walks iterate the padded array (§1, §12). ``quote_decimal`` is not on chain; it only feeds
    display helpers. ``migrated_compounding`` stands for a DAMM v2 target whose migrated fee mode is
    compounding, which changes the migration base formula (§6). ``locked_vesting_total`` is the sum of the
    locked vesting schedule (its timing is not modelled).
    """

    sqrt_start_price: int
    curve: tuple[CurvePoint, ...]
    migration_quote_threshold: int
    base_fee: BaseFeeConfig
    dynamic_fee: DynamicFeeConfig | None = None
    collect_fee_mode: CollectFeeMode = CollectFeeMode.QUOTE_TOKEN
    creator_trading_fee_percentage: int = 0
    activation_type: ActivationType = ActivationType.TIMESTAMP
    token_decimal: int = 6
    quote_decimal: int = 9
    migration_option: MigrationOption = MigrationOption.DAMM_V2
    migrated_compounding: bool = False
    migration_fee_percentage: int = 0
    creator_migration_fee_percentage: int = 0
    fixed_token_supply: bool = False
    pre_migration_token_supply: int = 0
    post_migration_token_supply: int = 0
    locked_vesting_total: int = 0
    enable_first_swap_with_min_fee: bool = False
    migration_sqrt_price: int = field(init=False)
    swap_base_amount: int = field(init=False)
    migration_base_threshold: int = field(init=False)

    def __post_init__(self) -> None:
        curve = tuple(self.curve)
        if len(curve) > MAX_CURVE_POINT_CONFIG:
            raise InvalidConfig(f"at most {MAX_CURVE_POINT_CONFIG} curve slots")
        object.__setattr__(self, "curve", curve + (_EMPTY_POINT,) * (MAX_CURVE_POINT_CONFIG - len(curve)))
        _validate_curve(self)
        _validate_fees(self)
        _validate_shares(self)
        try:
            msp = migration_threshold_price(self.migration_quote_threshold, self.sqrt_start_price, self.curve)
            swap_base = base_token_for_swap(self.sqrt_start_price, msp, self.curve)
            quote_amount = migration_quote_amount(self.migration_quote_threshold, self.migration_fee_percentage)
            migration_base = migration_base_amount(
                quote_amount, msp, self.migration_option, compounding=self.migrated_compounding
            )
        except CurveError as exc:
            raise InvalidConfig(f"cannot derive the migration fields: {exc.message}") from exc
        if msp > self.curve_points[-1].sqrt_price or swap_base == 0 or swap_base > U64_MAX:
            raise InvalidConfig("the migration price must be reachable and sell a u64 amount of base")
        object.__setattr__(self, "migration_sqrt_price", msp)
        object.__setattr__(self, "swap_base_amount", swap_base)
        object.__setattr__(self, "migration_base_threshold", migration_base)
        _validate_supply(self)

    @property
    def curve_points(self) -> tuple[CurvePoint, ...]:
        """The configured points without the padding."""
        return tuple(p for p in self.curve if not p.is_empty)

    @property
    def migration_quote_amount(self) -> int:
        return migration_quote_amount(self.migration_quote_threshold, self.migration_fee_percentage)

    @property
    def initial_base_supply(self) -> int:
        """Base minted into the pool at creation (``get_initial_base_supply``, §1)."""
        if self.fixed_token_supply:
            return self.pre_migration_token_supply
        buffered = swap_amount_with_buffer(self.swap_base_amount, self.sqrt_start_price, self.curve)
        return buffered + self.migration_base_threshold + self.locked_vesting_total


def _validate_curve(config: PoolConfig) -> None:
    points = config.curve_points
    if not 1 <= len(points) <= MAX_CURVE_POINT:
        raise InvalidConfig(f"the curve needs 1..{MAX_CURVE_POINT} points")
    if any(p.is_empty for p in config.curve[: len(points)]):
        raise InvalidConfig("empty curve slots are only allowed after the last point")
    if not MIN_SQRT_PRICE <= config.sqrt_start_price < MAX_SQRT_PRICE:
        raise InvalidConfig("sqrt_start_price out of range")
    previous = config.sqrt_start_price
    for point in points:
        if point.sqrt_price <= previous or point.sqrt_price > MAX_SQRT_PRICE:
            raise InvalidConfig("curve prices must increase strictly and stay <= MAX_SQRT_PRICE")
        if point.liquidity <= 0:
            raise InvalidConfig("curve liquidity must be positive")
        previous = point.sqrt_price
    if not 0 < config.migration_quote_threshold <= U64_MAX:
        raise InvalidConfig("migration_quote_threshold must be a positive u64")


def _validate_fees(config: PoolConfig) -> None:
    base = config.base_fee
    if not 0 < base.cliff_fee_numerator <= MAX_FEE_NUMERATOR:
        raise InvalidConfig("cliff fee numerator out of range")
    factors = (base.first_factor, base.second_factor, base.third_factor)
    if any(f < 0 for f in factors):
        raise InvalidConfig("negative base fee factor")
    if base.base_fee_mode is BaseFeeMode.RATE_LIMITER:
        max_duration = (
            MAX_RATE_LIMITER_DURATION_SECONDS
            if config.activation_type is ActivationType.TIMESTAMP
            else MAX_RATE_LIMITER_DURATION_SLOTS
        )
        if config.collect_fee_mode is not CollectFeeMode.QUOTE_TOKEN:
            raise InvalidConfig("the rate limiter requires fees collected in quote")
        if not base.is_zero_rate_limiter and (
            0 in factors or base.first_factor > BASIS_POINT_MAX or base.second_factor > max_duration
        ):
            raise InvalidConfig("rate limiter parameters out of range")
    elif any(factors) and not all(factors):
        raise InvalidConfig("fee scheduler factors must be all zero or all non-zero")
    try:
        minimum = min_base_fee_numerator(base)
    except CurveError as exc:
        raise InvalidConfig(f"invalid fee schedule: {exc.message}") from exc
    if minimum < MIN_FEE_NUMERATOR:
        raise InvalidConfig("the minimum base fee is below 0.25 %")
    dynamic = config.dynamic_fee
    if dynamic is not None and (
        dynamic.bin_step <= 0
        or dynamic.bin_step_u128 <= 0
        or dynamic.filter_period >= dynamic.decay_period
        or not 0 <= dynamic.reduction_factor <= BASIS_POINT_MAX
        or dynamic.max_volatility_accumulator < 0
        or dynamic.variable_fee_control < 0
    ):
        raise InvalidConfig("dynamic fee parameters out of range")


def _validate_shares(config: PoolConfig) -> None:
    if not 0 <= config.creator_trading_fee_percentage <= 100:
        raise InvalidConfig("creator_trading_fee_percentage must be 0..100")
    if not 0 <= config.migration_fee_percentage <= MAX_MIGRATION_FEE_PERCENTAGE:
        raise InvalidConfig("migration_fee_percentage must be 0..99")
    if not 0 <= config.creator_migration_fee_percentage <= 100:
        raise InvalidConfig("creator_migration_fee_percentage must be 0..100")
    if not 6 <= config.token_decimal <= 9:
        raise InvalidConfig("token_decimal must be 6..9")
    if config.locked_vesting_total < 0:
        raise InvalidConfig("negative locked vesting")


def _validate_supply(config: PoolConfig) -> None:
    if not config.fixed_token_supply:
        return
    needed = config.swap_base_amount + config.migration_base_threshold + config.locked_vesting_total
    buffered = swap_amount_with_buffer(config.swap_base_amount, config.sqrt_start_price, config.curve)
    pre, post = config.pre_migration_token_supply, config.post_migration_token_supply
    if not needed <= post <= pre <= U64_MAX:
        raise InvalidConfig("fixed supply must cover swap + migration + vesting, and post <= pre")
    if buffered + config.migration_base_threshold + config.locked_vesting_total > pre:
        raise InvalidConfig("fixed supply must cover the swap buffer")


@dataclass(frozen=True, slots=True)
class PoolState:
    """Per-token pool (the program's ``VirtualPool``). Fees are accumulated outside the reserves (§1)."""

    sqrt_price: int
    base_reserve: int
    quote_reserve: int
    activation_point: int
    protocol_base_fee: int = 0
    protocol_quote_fee: int = 0
    partner_base_fee: int = 0
    partner_quote_fee: int = 0
    creator_base_fee: int = 0
    creator_quote_fee: int = 0
    total_protocol_base_fee: int = 0
    total_protocol_quote_fee: int = 0
    total_trading_base_fee: int = 0
    total_trading_quote_fee: int = 0
    volatility_tracker: VolatilityTracker = field(default_factory=VolatilityTracker)
    has_swap: bool = False
    migration_progress: MigrationProgress = MigrationProgress.PRE_BONDING_CURVE
    finish_curve_timestamp: int = 0

    def is_completed(self, config: PoolConfig) -> bool:
        """The curve is complete once the quote reserve reaches the threshold (§6)."""
        return self.quote_reserve >= config.migration_quote_threshold

    def to_dict(self) -> dict[str, Any]:
        """Plain ints/bools/dict, for persistence (enums as their integer values)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, VolatilityTracker):
                value = {t.name: getattr(value, t.name) for t in fields(value)}
            elif isinstance(value, MigrationProgress):
                value = int(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PoolState:
        values = dict(data)
        values["volatility_tracker"] = VolatilityTracker(**values.get("volatility_tracker", {}))
        values["migration_progress"] = MigrationProgress(values.get("migration_progress", 0))
        values["has_swap"] = bool(values.get("has_swap", False))
        return cls(**values)


def new_pool(config: PoolConfig, activation_point: int) -> PoolState:
    """A freshly created pool: all base minted to the reserve, no quote, price at the start (§1)."""
    return PoolState(
        sqrt_price=config.sqrt_start_price,
        base_reserve=config.initial_base_supply,
        quote_reserve=0,
        activation_point=activation_point,
    )


@dataclass(frozen=True, slots=True)
class FeeBreakdown:
    """Where one trade's fee goes. ``total = trading + protocol + referral``; ``trading = partner +
    creator``; ``protocol`` is after the referral's cut (§5.3)."""

    total: int
    trading: int
    protocol: int
    creator: int
    partner: int
    referral: int
    token: FeeToken
    numerator: int


@dataclass(frozen=True, slots=True)
class SwapResult:
    """A quote, plus the pool state that applying it produces.

    ``amount_in`` is what the trader pays (fee included when the fee is on the input),
    ``amount_in_excluding_fee`` what reaches the curve, ``amount_out`` what the trader receives, and
    ``amount_left`` the part of a partial fill's input that is not used (the trader keeps it).
    """

    side: Side
    mode: SwapMode
    amount_in: int
    amount_in_excluding_fee: int
    amount_out: int
    amount_left: int
    fees: FeeBreakdown
    next_sqrt_price: int
    new_state: PoolState
    completed: bool
