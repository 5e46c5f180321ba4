"""EVM (Ethereum, Base) wallet addresses, as clients of the first API send them (``research/v1-api.md``).

An address is ``0x`` and 40 hex digits. EIP-55 puts a checksum in the case of the letters: a letter is upper-case
when the matching nibble of keccak-256(lower-case hex) is 8 or more. An all-lower-case or all-upper-case address
carries no checksum and is accepted as it is; a mixed-case one must carry the right one (a typo in a hand-copied
address is then caught). Keccak-256 is Ethereum's pre-standard padding of SHA-3: ``hashlib.sha3_256`` gives other
digests, hence pycryptodome's implementation.
"""

from __future__ import annotations

import re

from Crypto.Hash import keccak

from retake.errors import ValidationFailed
from retake.identity.validation import check_wallet

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}\Z")


def keccak256(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


def checksummed(address: str) -> str:
    """The EIP-55 form of a well-formed ``0x`` address (any case in, the checksummed case out)."""
    hex_digits = address[2:].lower()
    nibbles = keccak256(hex_digits.encode("ascii")).hex()
    return "0x" + "".join(ch.upper() if int(n, 16) >= 8 else ch for ch, n in zip(hex_digits, nibbles, strict=False))


def check_evm_wallet(value: str, field: str = "wallet_address") -> str:
    """The address in its checksummed form (one stored form per address), or ``ValidationFailed``."""
    if not _ADDRESS_RE.match(value):
        raise ValidationFailed(f"{field} must be 0x followed by 40 hex digits (an EVM address)", code="invalid_wallet")
    digits = value[2:]
    canonical = checksummed(value)
    if digits not in (digits.lower(), digits.upper()) and value != canonical:
        raise ValidationFailed(
            f"{field} has mixed case but not its EIP-55 checksum: check the address, or send it all lower-case",
            code="invalid_wallet_checksum",
        )
    return canonical


def check_v1_wallet(value: str, field: str = "wallet_address") -> str:
    """The first API's wallet: an EVM address (what its clients send), or a Solana key as on ``/api/v1``. A base58
    key never starts with ``0x`` (``0`` is not in its alphabet), so the prefix decides which rule applies."""
    if value.startswith("0x"):
        return check_evm_wallet(value, field)
    return check_wallet(value, field)
