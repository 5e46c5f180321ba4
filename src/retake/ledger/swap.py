"""Swap quoting and application (token-curve.md §4, §5, §6).

``quote_swap`` follows the program's swap2 instruction step by step: amount and completion checks,
dynamic-fee reference update, fee mode, the exact-in / partial-fill / exact-out result, slippage,
``apply_swap_result`` and the completion check. It is pure: the returned ``SwapResult`` carries the new
``PoolState``; the caller persists it (or not).

Decisions where the research file leaves room:

* ``now`` is the point the fee schedule uses (unix seconds or slot per ``activation_type``); the dynamic
  fee and ``finish_curve_timestamp`` use ``timestamp`` (unix seconds), which defaults to ``now`` because the
  platform activates pools by timestamp (§12). The program reads both from the Solana clock.
* There is no general "not yet active" check, as in the program (its fixture pools are quoted at a slot
  before their activation point, §7.1(b)); only a fee scheduler that needs the elapsed time raises
  ``ClockBeforeActivation`` there.
* Exact-out rejection past the migration price and every "the curve cannot fill it" case raise
  ``InsufficientLiquidity`` (the program distinguishes several error names).
* Like the program, a tiny exact-in whose input is all fee quotes ``amount_out == 0`` without error; a
  service that wants to refuse that passes ``limit=1``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .constants import PARTNER_AND_CREATOR_SURPLUS_SHARE, U64_MAX
from .curve import (
    WalkResult,
    base_to_quote_from_amount_in,
    base_to_quote_from_amount_out,
    quote_to_base_from_amount_in,
    quote_to_base_from_amount_out,
)
from .enums import CollectFeeMode, FeeToken, MigrationProgress, Side, SwapMode
from .errors import (
    InsufficientLiquidity,
    InsufficientLiquidityForMigration,
    InvalidAmount,
    PoolCompleted,
    SlippageExceeded,
)
from .fees import (
    VolatilityTracker,
    base_fee_numerator,
    excluded_fee_amount,
    included_fee_amount,
    min_base_fee_numerator,
    split_fees,
    split_partner_and_creator,
    total_fee_numerator,
    update_after_swap,
    update_references,
)
from .model import FeeBreakdown, PoolConfig, PoolState, SwapResult
from .u128math import checked_u64


@dataclass(frozen=True, slots=True)
class _FeeMode:
    """Which amount carries the fee and in which token (§4 step 6; ``FeeMode::get_fee_mode``)."""

    on_input: bool
    on_base: bool
    has_referral: bool


def fee_mode(collect_fee_mode: CollectFeeMode, side: Side) -> tuple[bool, bool]:
    """``(fees_on_input, fees_on_base_token)`` for a trade (§7.1(c) 11, the FeeMode table)."""
    if collect_fee_mode is CollectFeeMode.QUOTE_TOKEN:
        return side is Side.BUY, False
    return False, side is Side.BUY


@dataclass(frozen=True, slots=True)
class _Context:
    config: PoolConfig
    pool: PoolState
    side: Side
    now: int
    tracker: VolatilityTracker
    mode: _FeeMode
    min_fee_first_swap: bool

    def numerator(self, amount: int, *, amount_includes_fee: bool) -> int:
        if self.min_fee_first_swap:
            # The creator's bundled first buy pays only the minimum base fee, no variable fee (§5.1).
            return min_base_fee_numerator(self.config.base_fee)
        base = base_fee_numerator(
            self.config.base_fee,
            self.now,
            self.pool.activation_point,
            self.side,
            amount,
            amount_includes_fee=amount_includes_fee,
        )
        return total_fee_numerator(base, self.config.dynamic_fee, self.tracker)


@dataclass(frozen=True, slots=True)
class _Raw:
    """The program's ``SwapResult2`` plus the numerator used."""

    included_in: int
    excluded_in: int
    amount_left: int
    out: int
    next_sqrt_price: int
    trading: int
    protocol: int
    referral: int
    numerator: int


def quote_swap(
    config: PoolConfig,
    pool_state: PoolState,
    side: Side,
    amount: int,
    mode: SwapMode,
    now: int,
    *,
    limit: int | None = None,
    has_referral: bool = False,
    bundled_with_pool_init: bool = False,
    timestamp: int | None = None,
) -> SwapResult:
    """Quote one swap and compute the pool state after it.

    ``amount`` is the input for ``EXACT_IN``/``PARTIAL_FILL`` and the wanted output for ``EXACT_OUT``.
    ``limit`` is the minimum output (exact-in, partial fill) or the maximum input (exact-out); ``None``
    skips the slippage check. ``bundled_with_pool_init`` marks the creator's first buy in the pool-creation
    transaction, which pays the minimum fee if the config enables it and there is no referral (§4 step 3).
    """
    side, mode = Side(side), SwapMode(mode)  # accept the raw values a service may have stored
    if not 0 < amount <= U64_MAX:
        raise InvalidAmount("amount must be a positive u64")
    if limit is not None and not 0 <= limit <= U64_MAX:
        raise InvalidAmount("limit must be a u64")
    if pool_state.is_completed(config):
        raise PoolCompleted("the bonding curve is complete")
    clock = now if timestamp is None else timestamp
    tracker = pool_state.volatility_tracker
    if config.dynamic_fee is not None:
        tracker = update_references(config.dynamic_fee, tracker, pool_state.sqrt_price, clock)
    on_input, on_base = fee_mode(config.collect_fee_mode, side)
    ctx = _Context(
        config=config,
        pool=pool_state,
        side=side,
        now=now,
        tracker=tracker,
        mode=_FeeMode(on_input, on_base, has_referral),
        min_fee_first_swap=(
            config.enable_first_swap_with_min_fee
            and not pool_state.has_swap
            and bundled_with_pool_init
            and not has_referral
        ),
    )
    if mode is SwapMode.EXACT_OUT:
        raw = _from_exact_output(ctx, amount)
        if limit is not None and raw.included_in > limit:
            raise SlippageExceeded(f"input {raw.included_in} above the maximum {limit}")
    else:
        raw = _from_input(ctx, amount, partial=mode is SwapMode.PARTIAL_FILL)
        if limit is not None and raw.out < limit:
            raise SlippageExceeded(f"output {raw.out} below the minimum {limit}")
    new_state, fees = _apply(ctx, raw, tracker, clock)
    return SwapResult(
        side=side,
        mode=mode,
        amount_in=raw.included_in,
        amount_in_excluding_fee=raw.excluded_in,
        amount_out=raw.out,
        amount_left=raw.amount_left,
        fees=fees,
        next_sqrt_price=raw.next_sqrt_price,
        new_state=new_state,
        completed=new_state.is_completed(config),
    )


def _walk_in(ctx: _Context, amount: int) -> WalkResult:
    config, pool = ctx.config, ctx.pool
    if ctx.side is Side.BUY:
        return quote_to_base_from_amount_in(config.curve, pool.sqrt_price, amount, config.migration_sqrt_price)
    return base_to_quote_from_amount_in(config.curve, config.sqrt_start_price, pool.sqrt_price, amount)


def _from_input(ctx: _Context, amount_in: int, *, partial: bool) -> _Raw:
    """ExactIn / PartialFill (``get_swap_result_from_exact_input`` / ``_partial_input``, §4)."""
    has_referral = ctx.mode.has_referral
    numerator = ctx.numerator(amount_in, amount_includes_fee=True)
    trading = protocol = referral = 0
    excluded_in = amount_in
    if ctx.mode.on_input:
        excluded_in, fee = excluded_fee_amount(numerator, amount_in)
        trading, protocol, referral = split_fees(fee, has_referral)
    walk = _walk_in(ctx, excluded_in)
    included_in = amount_in
    if walk.amount_left != 0:
        if not partial:
            raise InsufficientLiquidity("the trade would cross the curve's end; use a partial fill")
        # Only what the curve absorbed is charged; an input fee is recomputed from that amount.
        excluded_in -= walk.amount_left
        included_in = excluded_in
        if ctx.mode.on_input:
            numerator = ctx.numerator(excluded_in, amount_includes_fee=False)
            included_in, fee = included_fee_amount(numerator, excluded_in)
            trading, protocol, referral = split_fees(fee, has_referral)
    out = walk.amount
    if not ctx.mode.on_input:
        # Fee on the output uses the numerator of the original input (§12).
        out, fee = excluded_fee_amount(numerator, walk.amount)
        trading, protocol, referral = split_fees(fee, has_referral)
    return _Raw(
        included_in,
        excluded_in,
        walk.amount_left,
        out,
        walk.next_sqrt_price,
        trading,
        protocol,
        referral,
        numerator,
    )


def _from_exact_output(ctx: _Context, amount_out: int) -> _Raw:
    """ExactOut (``get_swap_result_from_exact_output``, §4): gross up the output fee, walk backwards,
    then gross up the input fee."""
    config, pool, has_referral = ctx.config, ctx.pool, ctx.mode.has_referral
    trading = protocol = referral = numerator = 0
    gross_out = amount_out
    if not ctx.mode.on_input:
        numerator = ctx.numerator(amount_out, amount_includes_fee=False)
        gross_out, fee = included_fee_amount(numerator, amount_out)
        trading, protocol, referral = split_fees(fee, has_referral)
    if ctx.side is Side.BUY:
        walk = quote_to_base_from_amount_out(config.curve, pool.sqrt_price, gross_out)
    else:
        walk = base_to_quote_from_amount_out(config.curve, config.sqrt_start_price, pool.sqrt_price, gross_out)
    if walk.next_sqrt_price > config.migration_sqrt_price:
        raise InsufficientLiquidity("the trade would cross the migration price")
    excluded_in = included_in = walk.amount
    if ctx.mode.on_input:
        numerator = ctx.numerator(excluded_in, amount_includes_fee=False)
        included_in, fee = included_fee_amount(numerator, excluded_in)
        trading, protocol, referral = split_fees(fee, has_referral)
    return _Raw(included_in, excluded_in, 0, amount_out, walk.next_sqrt_price, trading, protocol, referral, numerator)


def _apply(ctx: _Context, raw: _Raw, tracker: VolatilityTracker, clock: int) -> tuple[PoolState, FeeBreakdown]:
    """``apply_swap_result`` and the post-swap completion check (§4 step 8)."""
    config, pool = ctx.config, ctx.pool
    partner, creator = split_partner_and_creator(raw.trading, config.creator_trading_fee_percentage)
    fees = FeeBreakdown(
        total=raw.trading + raw.protocol + raw.referral,
        trading=raw.trading,
        protocol=raw.protocol,
        creator=creator,
        partner=partner,
        referral=raw.referral,
        token=FeeToken.BASE if ctx.mode.on_base else FeeToken.QUOTE,
        numerator=raw.numerator,
    )

    def add(current: int, delta: int) -> int:
        return checked_u64(current + delta, "fee accumulator")

    if ctx.mode.on_base:
        accumulated = replace(
            pool,
            partner_base_fee=add(pool.partner_base_fee, partner),
            protocol_base_fee=add(pool.protocol_base_fee, raw.protocol),
            creator_base_fee=add(pool.creator_base_fee, creator),
            total_protocol_base_fee=add(pool.total_protocol_base_fee, raw.protocol),
            total_trading_base_fee=add(pool.total_trading_base_fee, raw.trading),
        )
    else:
        accumulated = replace(
            pool,
            partner_quote_fee=add(pool.partner_quote_fee, partner),
            protocol_quote_fee=add(pool.protocol_quote_fee, raw.protocol),
            creator_quote_fee=add(pool.creator_quote_fee, creator),
            total_protocol_quote_fee=add(pool.total_protocol_quote_fee, raw.protocol),
            total_trading_quote_fee=add(pool.total_trading_quote_fee, raw.trading),
        )
    # With the fee on the output, the fee leaves the reserve too (it is accumulated separately, §1).
    gross_out = raw.out if ctx.mode.on_input else raw.out + fees.total
    if ctx.side is Side.SELL:
        base_reserve = checked_u64(pool.base_reserve + raw.excluded_in, "base reserve")
        quote_reserve = pool.quote_reserve - gross_out
    else:
        quote_reserve = checked_u64(pool.quote_reserve + raw.excluded_in, "quote reserve")
        base_reserve = pool.base_reserve - gross_out
    if base_reserve < 0 or quote_reserve < 0:
        raise InsufficientLiquidity("the pool's reserve cannot pay this output")
    if config.dynamic_fee is not None:
        tracker = update_after_swap(config.dynamic_fee, tracker, pool.sqrt_price, raw.next_sqrt_price, clock)
    state = replace(
        accumulated,
        sqrt_price=raw.next_sqrt_price,
        base_reserve=base_reserve,
        quote_reserve=quote_reserve,
        volatility_tracker=tracker,
        has_swap=True,
    )
    if state.is_completed(config):
        # The base vault holds reserve + unclaimed base fees; it must still cover the migration seed,
        # the unclaimed base fees and the locked vesting, i.e. the reserve alone covers seed + vesting.
        if state.base_reserve < config.migration_base_threshold + config.locked_vesting_total:
            raise InsufficientLiquidityForMigration("not enough base left to seed the migration pool")
        progress = (
            MigrationProgress.POST_BONDING_CURVE if config.locked_vesting_total else MigrationProgress.LOCKED_VESTING
        )
        state = replace(state, finish_curve_timestamp=clock, migration_progress=progress)
    return state, fees


@dataclass(frozen=True, slots=True)
class SurplusSplit:
    """Quote collected above the migration threshold and who may claim it (§6)."""

    total: int
    partner: int
    creator: int
    protocol: int


def surplus_split(config: PoolConfig, pool_state: PoolState) -> SurplusSplit:
    """80 % of the surplus to partner + creator (split like the trading fee), 20 % to the protocol."""
    if not pool_state.is_completed(config):
        return SurplusSplit(0, 0, 0, 0)
    total = pool_state.quote_reserve - config.migration_quote_threshold
    partner_and_creator = total * PARTNER_AND_CREATOR_SURPLUS_SHARE // 100
    partner, creator = split_partner_and_creator(partner_and_creator, config.creator_trading_fee_percentage)
    return SurplusSplit(total, partner, creator, total - partner_and_creator)


@dataclass(frozen=True, slots=True)
class MigrationFeeSplit:
    """The optional migration fee taken from the threshold before seeding the AMM (§6)."""

    quote_to_pool: int
    total: int
    partner: int
    creator: int


def migration_fee_split(config: PoolConfig) -> MigrationFeeSplit:
    quote_amount = config.migration_quote_amount
    total = config.migration_quote_threshold - quote_amount
    creator = total * config.creator_migration_fee_percentage // 100
    return MigrationFeeSplit(quote_amount, total, total - creator, creator)
