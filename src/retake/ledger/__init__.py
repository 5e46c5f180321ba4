"""Token ledger: a pure, integer-exact port of Meteora's Dynamic Bonding Curve (research file
token-curve.md). ``quote_swap`` prices a trade and returns the pool state after it; nothing here does I/O."""

from __future__ import annotations

from .configs import CONFIG_A, CONFIG_B, CONFIG_C, CONFIG_D, DEFAULT_CONFIG, NAMED_CONFIGS
from .curve import CurvePoint
from .derive import MigrationOption
from .enums import ActivationType, BaseFeeMode, CollectFeeMode, FeeToken, MigrationProgress, Side, SwapMode
from .errors import (
    ClockBeforeActivation,
    CurveError,
    InsufficientLiquidity,
    InsufficientLiquidityForMigration,
    InvalidAmount,
    InvalidConfig,
    LedgerError,
    MathOverflow,
    PoolCompleted,
    SlippageExceeded,
)
from .fees import BaseFeeConfig, DynamicFeeConfig, VolatilityTracker
from .model import FeeBreakdown, PoolConfig, PoolState, SwapResult, new_pool
from .stats import (
    bonding_progress_bps,
    display_market_cap,
    display_price,
    market_cap_lamports,
    pool_market_cap_lamports,
    price_fraction,
    price_lamports_per_token,
    trade_quote_volume,
)
from .swap import MigrationFeeSplit, SurplusSplit, migration_fee_split, quote_swap, surplus_split

__all__ = [
    "CONFIG_A",
    "CONFIG_B",
    "CONFIG_C",
    "CONFIG_D",
    "DEFAULT_CONFIG",
    "NAMED_CONFIGS",
    "ActivationType",
    "BaseFeeConfig",
    "BaseFeeMode",
    "ClockBeforeActivation",
    "CollectFeeMode",
    "CurveError",
    "CurvePoint",
    "DynamicFeeConfig",
    "FeeBreakdown",
    "FeeToken",
    "InsufficientLiquidity",
    "InsufficientLiquidityForMigration",
    "InvalidAmount",
    "InvalidConfig",
    "LedgerError",
    "MathOverflow",
    "MigrationFeeSplit",
    "MigrationOption",
    "MigrationProgress",
    "PoolCompleted",
    "PoolConfig",
    "PoolState",
    "Side",
    "SlippageExceeded",
    "SurplusSplit",
    "SwapMode",
    "SwapResult",
    "VolatilityTracker",
    "bonding_progress_bps",
    "display_market_cap",
    "display_price",
    "market_cap_lamports",
    "migration_fee_split",
    "new_pool",
    "pool_market_cap_lamports",
    "price_fraction",
    "price_lamports_per_token",
    "quote_swap",
    "surplus_split",
    "trade_quote_volume",
]
