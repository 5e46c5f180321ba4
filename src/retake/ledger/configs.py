"""Named pool configurations of the research file (token-curve.md §7.2).

``CONFIG_A`` is the platform default: 1e9 tokens with 6 decimals, a single constant-product segment
from a 30 SOL to a 420 SOL market cap (≈ pump.fun economics, §10), graduation to DAMM v2 at
≈ 88.58 SOL in the curve, a constant 1 % fee collected in SOL, half of the trading fee to the creator.
The integers were produced by the SDK's ``build_curve_with_market_cap`` and are hard-coded because only
the stored integers are consensus (§12); the derived fields are recomputed and checked by the tests.

B, C and D are variants used to exercise the fee modes: an exponential scheduler plus dynamic fee (B),
fees taken in the token on buys (C) and the rate limiter (D).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from .constants import MAX_SQRT_PRICE
from .curve import CurvePoint
from .enums import ActivationType, BaseFeeMode, CollectFeeMode
from .fee_params import dynamic_fee_params, fee_scheduler_params, rate_limiter_params
from .fees import BaseFeeConfig
from .model import PoolConfig

LAMPORTS_PER_SOL: Final = 1_000_000_000

CONFIG_A: Final = PoolConfig(
    sqrt_start_price=101036979871026944,
    curve=(
        CurvePoint(378045756631117544, 108809054250951691824395042697966),
        CurvePoint(MAX_SQRT_PRICE, 3387813950849669548083223),
    ),
    migration_quote_threshold=88576623265,
    base_fee=BaseFeeConfig(10_000_000, 0, 0, 0, BaseFeeMode.LINEAR),
    collect_fee_mode=CollectFeeMode.QUOTE_TOKEN,
    creator_trading_fee_percentage=50,
    activation_type=ActivationType.TIMESTAMP,
    token_decimal=6,
    quote_decimal=9,
    fixed_token_supply=True,
    pre_migration_token_supply=1_000_000_000_000_000,
    post_migration_token_supply=1_000_000_000_000_000,
)
"""Platform default (config "A", §7.2)."""

CONFIG_B: Final = replace(
    CONFIG_A,
    # 5000 → 100 bps over 10 periods in 60 s = BaseFeeConfig(500000000, 10, 6, 3237, 1).
    base_fee=fee_scheduler_params(5000, 100, BaseFeeMode.EXPONENTIAL, 10, 60),
    dynamic_fee=dynamic_fee_params(100),
    creator_trading_fee_percentage=100,
)
"""Anti-sniper launch: exponential fee decay plus volatility fee (config "B", §7.2)."""

CONFIG_C: Final = replace(
    CONFIG_A,
    base_fee=BaseFeeConfig(20_000_000, 0, 0, 0, BaseFeeMode.LINEAR),
    collect_fee_mode=CollectFeeMode.OUTPUT_TOKEN,
    creator_trading_fee_percentage=0,
)
"""Flat 2 % taken from the output token (config "C", §7.2)."""

CONFIG_D: Final = replace(
    CONFIG_A,
    # 1 % + 1 % per extra SOL of a single buy during the first 60 s.
    base_fee=rate_limiter_params(100, 100, LAMPORTS_PER_SOL, 60),
)
"""Rate-limited launch (config "D", §7.2)."""

DEFAULT_CONFIG: Final = CONFIG_A

NAMED_CONFIGS: Final = {"A": CONFIG_A, "B": CONFIG_B, "C": CONFIG_C, "D": CONFIG_D}
