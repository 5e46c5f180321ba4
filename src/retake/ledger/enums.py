"""Small enumerations shared by the ledger modules. Integer values are the on-chain encodings (§1, §4)."""

from __future__ import annotations

import enum


class Side(enum.Enum):
    """Trade direction: ``BUY`` is the program's QuoteToBase, ``SELL`` its BaseToQuote (§1)."""

    BUY = "buy"
    SELL = "sell"


class SwapMode(enum.IntEnum):
    """``swap_mode`` of the swap2 instruction (§4)."""

    EXACT_IN = 0
    PARTIAL_FILL = 1
    EXACT_OUT = 2


class CollectFeeMode(enum.IntEnum):
    """0: every fee is taken in quote; 1: fees are taken from the output token (§4 step 6)."""

    QUOTE_TOKEN = 0
    OUTPUT_TOKEN = 1


class ActivationType(enum.IntEnum):
    """What ``now``/activation points count: Solana slots or unix seconds (§12: locally use seconds)."""

    SLOT = 0
    TIMESTAMP = 1


class FeeToken(enum.Enum):
    """The token a trade's fee is paid in."""

    BASE = "base"
    QUOTE = "quote"


class MigrationProgress(enum.IntEnum):
    """Pool lifecycle after the curve (§4 step 8)."""

    PRE_BONDING_CURVE = 0
    POST_BONDING_CURVE = 1
    LOCKED_VESTING = 2
    CREATED_POOL = 3


class BaseFeeMode(enum.IntEnum):
    """``base_fee_mode`` (§5.2)."""

    LINEAR = 0
    EXPONENTIAL = 1
    RATE_LIMITER = 2
