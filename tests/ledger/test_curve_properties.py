"""Property tests of the curve engine (token-curve.md §3 "every rounding is in the pool's favour", §5.3,
§7.1(c) 10, §7.1(e)). Pools are driven through random trade histories on the named configs A–D."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from retake.ledger import (
    CONFIG_C,
    NAMED_CONFIGS,
    FeeToken,
    InsufficientLiquidity,
    PoolCompleted,
    PoolConfig,
    PoolState,
    Side,
    SwapMode,
    SwapResult,
    new_pool,
    quote_swap,
)
from retake.ledger.constants import FEE_DENOMINATOR, MAX_FEE_NUMERATOR, MIN_FEE_NUMERATOR, U64_MAX
from retake.ledger.curve import delta_quote
from retake.ledger.fees import excluded_fee_amount, included_fee_amount
from retake.ledger.u128math import Rounding

T0 = 1_700_000_000
SOL = 1_000_000_000
# Pure-Python big-int math: keep the example counts modest so the ledger suite stays well under 30 s.
FAST = settings(max_examples=40, deadline=None)


@dataclass(frozen=True)
class Market:
    config: PoolConfig
    pool: PoolState
    now: int

    @property
    def held_base(self) -> int:
        """Upper bound of the base outside the reserve (what traders could sell back)."""
        return self.config.initial_base_supply - self.pool.base_reserve


@st.composite
def markets(draw: st.DrawFn, names: tuple[str, ...] = ("A", "B", "C", "D")) -> Market:
    """A pool after a random history of partial-fill buys and sells (partial fills never overshoot)."""
    config = NAMED_CONFIGS[draw(st.sampled_from(names))]
    pool = new_pool(config, T0)
    now = T0
    history = draw(st.lists(st.tuples(st.booleans(), st.integers(1, 10_000), st.integers(0, 40)), max_size=5))
    for is_buy, size, elapsed in history:
        now += elapsed
        if pool.is_completed(config):
            break
        if is_buy:
            side, amount = Side.BUY, size * 2_000_000  # up to 20 SOL
        else:
            side, amount = Side.SELL, (config.initial_base_supply - pool.base_reserve) * size // 10_000
            if amount == 0:
                continue
        pool = quote_swap(config, pool, side, amount, SwapMode.PARTIAL_FILL, now).new_state
    return Market(config, pool, now)


def ideal_quote_reserve(config: PoolConfig, sqrt_price: int) -> int:
    """Quote the curve holds between the start price and ``sqrt_price`` with exact (rounded-down) math."""
    total, lower = 0, config.sqrt_start_price
    for point in config.curve_points:
        upper = min(point.sqrt_price, sqrt_price)
        if upper <= lower:
            break
        total += delta_quote(lower, upper, point.liquidity, Rounding.DOWN)
        lower = point.sqrt_price
    return total


def check_fee_breakdown(result: SwapResult) -> None:
    fees = result.fees
    assert min(fees.total, fees.trading, fees.protocol, fees.creator, fees.partner, fees.referral) >= 0
    assert fees.total == fees.trading + fees.protocol + fees.referral
    assert fees.trading == fees.partner + fees.creator
    assert 0 <= fees.numerator <= MAX_FEE_NUMERATOR
    assert result.amount_in >= result.amount_in_excluding_fee >= 0
    assert result.amount_out >= 0 and result.amount_left >= 0


trades = st.tuples(
    st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from([SwapMode.EXACT_IN, SwapMode.PARTIAL_FILL, SwapMode.EXACT_OUT]),
    st.integers(1, 10_000),
    st.booleans(),
)


def trade_amount(market: Market, side: Side, mode: SwapMode, size: int) -> int:
    """An amount of the right token for the trade, scaled by ``size``/10_000 of a sensible maximum."""
    if mode is SwapMode.EXACT_OUT:
        top = market.pool.base_reserve // 10 if side is Side.BUY else market.pool.quote_reserve
    else:
        top = 30 * SOL if side is Side.BUY else market.held_base
    return max(1, top * size // 10_000)


@FAST
@given(markets(), trades)
def test_fees_never_negative_and_add_up(market: Market, trade: tuple[Side, SwapMode, int, bool]) -> None:
    side, mode, size, referral = trade
    amount = trade_amount(market, side, mode, size)
    try:
        result = quote_swap(market.config, market.pool, side, amount, mode, market.now, has_referral=referral)
    except (InsufficientLiquidity, PoolCompleted):
        assume(False)
        return
    check_fee_breakdown(result)
    if result.fees.token is FeeToken.QUOTE and side is Side.BUY:
        assert result.amount_in - result.amount_in_excluding_fee == result.fees.total
    if not referral:
        assert result.fees.referral == 0


@FAST
@given(markets(), st.integers(1, 10_000), st.booleans())
def test_pool_never_pays_out_more_than_its_reserve(market: Market, size: int, referral: bool) -> None:
    config, pool = market.config, market.pool
    assert pool.quote_reserve >= ideal_quote_reserve(config, pool.sqrt_price)
    assume(not pool.is_completed(config) and market.held_base > 0)
    # Selling back everything that left the reserve (partial fill clamps at the start price) must succeed.
    sell = quote_swap(config, pool, Side.SELL, market.held_base, SwapMode.PARTIAL_FILL, market.now)
    paid = sell.amount_out + (sell.fees.total if sell.fees.token is FeeToken.QUOTE else 0)
    assert paid <= pool.quote_reserve
    assert sell.new_state.quote_reserve >= ideal_quote_reserve(config, sell.new_state.sqrt_price)
    buy = quote_swap(
        config, pool, Side.BUY, size * SOL // 100, SwapMode.PARTIAL_FILL, market.now, has_referral=referral
    )
    taken = buy.amount_out + (buy.fees.total if buy.fees.token is FeeToken.BASE else 0)
    assert taken <= pool.base_reserve
    assert buy.new_state.base_reserve >= 0 and buy.new_state.quote_reserve >= 0


@settings(max_examples=200, deadline=None)
@given(st.integers(MIN_FEE_NUMERATOR, MAX_FEE_NUMERATOR), st.integers(0, U64_MAX // 100))
def test_included_and_excluded_fee_are_inverse(numerator: int, amount: int) -> None:
    included, fee = included_fee_amount(numerator, amount)
    assert included - fee == amount
    assert excluded_fee_amount(numerator, included) == (amount, fee)
    # The fee is never less than the exact proportional fee on the included amount.
    assert fee * FEE_DENOMINATOR >= included * numerator


@FAST
@given(markets(), st.integers(1, 10_000), st.booleans())
def test_buy_then_sell_never_profits(market: Market, size: int, referral: bool) -> None:
    config = market.config
    assume(not market.pool.is_completed(config))
    spent = size * 3 * SOL // 1_000  # up to 30 SOL
    buy = quote_swap(config, market.pool, Side.BUY, spent, SwapMode.PARTIAL_FILL, market.now, has_referral=referral)
    assume(buy.amount_out > 0 and not buy.completed)
    sell = quote_swap(
        config, buy.new_state, Side.SELL, buy.amount_out, SwapMode.EXACT_IN, market.now, has_referral=referral
    )
    assert sell.amount_out <= buy.amount_in


@FAST
@given(markets(("A", "B", "C")), st.sampled_from([Side.BUY, Side.SELL]), st.integers(1, 10_000))
def test_exact_out_is_consistent_with_exact_in(market: Market, side: Side, size: int) -> None:
    # Config D is left out on purpose: under the rate limiter the inverse fee is approximate and the
    # program itself lets exact-out and exact-in differ (§5.2).
    config, pool = market.config, market.pool
    assume(not pool.is_completed(config))
    wanted = trade_amount(market, side, SwapMode.EXACT_OUT, size)
    try:
        exact_out = quote_swap(config, pool, side, wanted, SwapMode.EXACT_OUT, market.now)
    except InsufficientLiquidity:
        assume(False)
        return
    assert exact_out.amount_out == wanted
    exact_in = quote_swap(config, pool, side, exact_out.amount_in, SwapMode.EXACT_IN, market.now)
    assert exact_in.amount_out >= wanted
    # Spending the quoted input moves the price at least as far as the exact-out quote said it would.
    if side is Side.BUY:
        assert exact_in.next_sqrt_price >= exact_out.next_sqrt_price
    else:
        assert exact_in.next_sqrt_price <= exact_out.next_sqrt_price


@FAST
@given(markets(("C",)), st.integers(1, 10_000), st.booleans())
def test_fee_in_base_buy_accounting(market: Market, size: int, referral: bool) -> None:
    """§7.1(e): with collect_fee_mode 1 a buy leaves the quote fees alone, the quote reserve grows by the
    input, and the base reserve shrinks by what the user and the fee takers receive."""
    pre = market.pool
    assume(not pre.is_completed(CONFIG_C))
    result = quote_swap(
        CONFIG_C, pre, Side.BUY, size * SOL // 500, SwapMode.PARTIAL_FILL, market.now, has_referral=referral
    )
    post = result.new_state
    assert (post.partner_quote_fee, post.protocol_quote_fee, post.creator_quote_fee) == (
        pre.partner_quote_fee,
        pre.protocol_quote_fee,
        pre.creator_quote_fee,
    )
    assert post.quote_reserve - result.amount_in == pre.quote_reserve
    delta_fees = (
        post.partner_base_fee - pre.partner_base_fee
        + post.protocol_base_fee - pre.protocol_base_fee
        + post.creator_base_fee - pre.creator_base_fee
    )  # fmt: skip
    assert pre.base_reserve - post.base_reserve == result.amount_out + delta_fees + result.fees.referral


@FAST
@given(markets(("A", "B", "D")), st.integers(1, 10_000))
def test_partial_fill_equals_exact_in_when_it_fits(market: Market, size: int) -> None:
    config = market.config
    assume(not market.pool.is_completed(config))
    amount = size * SOL // 1_000
    partial = quote_swap(config, market.pool, Side.BUY, amount, SwapMode.PARTIAL_FILL, market.now)
    assume(partial.amount_left == 0)
    exact = quote_swap(config, market.pool, Side.BUY, amount, SwapMode.EXACT_IN, market.now)
    assert (exact.amount_out, exact.fees, exact.new_state) == (
        partial.amount_out,
        partial.fees,
        partial.new_state,
    )


@FAST
@given(markets())
def test_state_round_trips_through_a_dict(market: Market) -> None:
    assert PoolState.from_dict(market.pool.to_dict()) == market.pool
