"""Protocol constants of the Dynamic Bonding Curve (research file token-curve.md §2).

They are consensus values of the reference program; changing any of them changes every quote.
"""

from __future__ import annotations

from typing import Final

U16_MAX: Final = (1 << 16) - 1
U64_MAX: Final = (1 << 64) - 1
U128_MAX: Final = (1 << 128) - 1

RESOLUTION: Final = 64
ONE_Q64: Final = 1 << RESOLUTION

# √P bounds shared with DAMM v2, the graduation target (§0, §2).
MIN_SQRT_PRICE: Final = 4295048016
MAX_SQRT_PRICE: Final = 79226673521066979257578248091

# Fees are numerators over 1e9 (§2, §5.1).
FEE_DENOMINATOR: Final = 1_000_000_000
MAX_FEE_NUMERATOR: Final = 990_000_000
MIN_FEE_NUMERATOR: Final = 2_500_000
BASIS_POINT_MAX: Final = 10_000
PROTOCOL_FEE_PERCENT: Final = 20
HOST_FEE_PERCENT: Final = 20  # the referral ("host") share, taken out of the protocol fee (§5.3)
PARTNER_AND_CREATOR_SURPLUS_SHARE: Final = 80
SWAP_BUFFER_PERCENTAGE: Final = 25
MAX_CURVE_POINT: Final = 16
MAX_CURVE_POINT_CONFIG: Final = 20

# Dynamic fee defaults (§2, §5.4).
BIN_STEP_BPS_DEFAULT: Final = 1
BIN_STEP_BPS_U128_DEFAULT: Final = 1844674407370955
FILTER_PERIOD_DEFAULT: Final = 10
DECAY_PERIOD_DEFAULT: Final = 120
REDUCTION_FACTOR_DEFAULT: Final = 5000
MAX_DYNAMIC_FEE_PERCENT: Final = 20
MAX_VOLATILITY_ACCUMULATOR: Final = 14460000
SQUARE_VFA_BIN: Final = 209091600000000
DYNAMIC_FEE_SCALING_FACTOR: Final = 100_000_000_000
DYNAMIC_FEE_ROUNDING_OFFSET: Final = 99_999_999_999

MAX_MIGRATION_FEE_PERCENTAGE: Final = 99
# Rate limiter window cap: 12 h in seconds (activation by timestamp) or slots (activation by slot).
MAX_RATE_LIMITER_DURATION_SECONDS: Final = 43_200
MAX_RATE_LIMITER_DURATION_SLOTS: Final = 108_000
