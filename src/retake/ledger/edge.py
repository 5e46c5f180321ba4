"""The ledger service's edge: parsing client amounts, minting addresses and signatures, and translating the pure
engine's ``LedgerError`` tree into ``retake.errors`` (ARCHITECTURE convention 5: one place, by ``code``)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import base58
from nacl.signing import SigningKey

from retake.errors import Conflict, RetakeError, ValidationFailed

from .constants import U64_MAX
from .enums import Side, SwapMode
from .errors import (
    ClockBeforeActivation,
    InsufficientLiquidity,
    InsufficientLiquidityForMigration,
    InvalidAmount,
    LedgerError,
    MathOverflow,
    PoolCompleted,
    SlippageExceeded,
)

I64_MAX: Final = (1 << 63) - 1
"""Balances live in signed BIGINT columns; a credit that would pass this is refused, never wrapped."""

_DIGITS = re.compile(r"^[0-9]{1,20}$")
_ADDRESS = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{32,44}$")  # base58 alphabet, 32-byte keys (token-curve.md §11)
_SIGNATURE = re.compile(r"^[1-9A-HJ-NP-Za-km-z]{64,90}$")  # base58 of 64 bytes is 64..88 characters

_MODES: Final = {"exact_in": SwapMode.EXACT_IN, "partial_fill": SwapMode.PARTIAL_FILL, "exact_out": SwapMode.EXACT_OUT}
MODE_NAMES: Final = {mode: name for name, mode in _MODES.items()}


def parse_amount(value: object, field: str, *, minimum: int = 1, maximum: int = U64_MAX) -> int:
    """A raw on-chain quantity from a client: a JSON integer or a string of decimal digits (API.md: raw quantities
    travel as digit strings). Booleans, floats, signs and exponents are refused rather than guessed at."""
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, str) and _DIGITS.match(value.strip()):
        number = int(value.strip())
    else:
        number = None
    if number is None:
        raise ValidationFailed(f"{field} must be a whole number of atoms/lamports, as digits", code="invalid_amount")
    if not minimum <= number <= maximum:
        raise ValidationFailed(f"{field} must be between {minimum} and {maximum}", code="invalid_amount")
    return number


def looks_like_address(value: str) -> bool:
    """Cheap shape check before a lookup, so junk (NUL bytes included, which PostgreSQL text refuses) is a plain
    404 and never reaches the database."""
    return bool(_ADDRESS.match(value))


def looks_like_signature(value: str) -> bool:
    return bool(_SIGNATURE.match(value))


def parse_side(value: str) -> Side:
    try:
        return Side(value)
    except ValueError:
        raise ValidationFailed("side must be 'buy' or 'sell'", code="invalid_side") from None


def parse_mode(value: str) -> SwapMode:
    mode = _MODES.get(value)
    if mode is None:
        raise ValidationFailed("mode must be exact_in, partial_fill or exact_out", code="invalid_mode")
    return mode


def new_address() -> str:
    """Base58 public key of a fresh ed25519 keypair (API.md: a token address is a new keypair per token). The
    secret half is dropped: no signature is ever needed on this local ledger."""
    return str(base58.b58encode(bytes(SigningKey.generate().verify_key)).decode("ascii"))


def new_signature() -> str:
    """A transaction id shaped like a Solana signature: 64 bytes, base58 (API.md conventions)."""
    return str(base58.b58encode(secrets.token_bytes(64)).decode("ascii"))


def insufficient_balance(what: str, needed: int, available: int) -> ValidationFailed:
    return ValidationFailed(
        f"insufficient {what}: needs {needed}, the wallet holds {available}", code="insufficient_balance"
    )


_ERRORS: Final[tuple[tuple[type[LedgerError], type[RetakeError]], ...]] = (
    # The client's own input: 400.
    (InvalidAmount, ValidationFailed),
    (MathOverflow, ValidationFailed),
    # What the pool's current state refuses: 409 (API.md: slippage errors are 409; pool_completed after graduation).
    (SlippageExceeded, Conflict),
    (InsufficientLiquidity, Conflict),
    (InsufficientLiquidityForMigration, Conflict),
    (PoolCompleted, Conflict),
    (ClockBeforeActivation, Conflict),
)


def translate(exc: LedgerError) -> RetakeError:
    """Engine error → API error, keeping the engine's snake_case ``code``. Anything unlisted is a curve refusal
    of the current state, hence a conflict."""
    for kind, error in _ERRORS:
        if isinstance(exc, kind):
            return error(exc.message, code=exc.code)
    return Conflict(exc.message, code=exc.code)


@contextmanager
def ledger_errors() -> Iterator[None]:
    try:
        yield
    except LedgerError as exc:
        raise translate(exc) from exc
