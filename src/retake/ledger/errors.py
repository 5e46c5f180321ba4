"""The ledger's exception tree.

Every error carries a snake_case ``code`` so the service edge can translate it into an API error without
string matching. The tree mirrors the failure points of the reference program (research file
token-curve.md §4, §12): the engine raises where the on-chain program would abort the transaction.
The pure engine imports nothing above it, so these do not derive from ``retake.errors``; the service
layer maps them in one place.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every error raised by ``retake.ledger``."""

    code: str = "ledger_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidAmount(LedgerError):
    """An amount is zero, negative or does not fit the u64 the reference program uses."""

    code = "invalid_amount"


class CurveError(LedgerError):
    """The curve math cannot proceed (bad configuration or an out-of-range intermediate)."""

    code = "curve_error"


class InvalidConfig(CurveError):
    """A pool configuration breaks one of the create_config validation rules (§5.2, §6)."""

    code = "invalid_config"


class MathOverflow(CurveError):
    """A value left the u64/u128 range where the reference program would fail a checked cast (§3)."""

    code = "math_overflow"


class ClockBeforeActivation(CurveError):
    """The current point precedes the pool's activation point while a fee scheduler needs the
    elapsed time (§12: ``current_point < activation_point`` is an error)."""

    code = "clock_before_activation"


class InsufficientLiquidity(LedgerError):
    """The trade cannot be filled: an exact-in buy would cross the migration price, a sell would go
    below the start price, or the reserves cannot pay the output (§4, §12)."""

    code = "insufficient_liquidity"


class InsufficientLiquidityForMigration(LedgerError):
    """The curve completed but the base reserve cannot seed the migration pool (§4 step 8)."""

    code = "insufficient_liquidity_for_migration"


class PoolCompleted(LedgerError):
    """The pool reached its migration quote threshold; no more swaps (§4 step 4)."""

    code = "pool_completed"


class SlippageExceeded(LedgerError):
    """The output is below the caller's minimum (exact-in/partial) or the input above its maximum
    (exact-out)."""

    code = "slippage_exceeded"


__all__ = [
    "ClockBeforeActivation",
    "CurveError",
    "InsufficientLiquidity",
    "InsufficientLiquidityForMigration",
    "InvalidAmount",
    "InvalidConfig",
    "LedgerError",
    "MathOverflow",
    "PoolCompleted",
    "SlippageExceeded",
]
