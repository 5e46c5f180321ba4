"""Wallet sign-in messages and ed25519 signature checks (pure: no I/O, no clock of its own).

The message follows the shape of Sign-In With Solana / EIP-4361 so that wallets show the user a readable text
naming the site, the address, the nonce and the expiry, instead of an opaque blob.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlsplit

import base58
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import VerifyKey

from retake.errors import ValidationFailed
from retake.store.types import iso

SIGNATURE_BYTES = 64


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def sign_in_message(public_url: str, wallet_address: str, nonce: str, issued: datetime, expires: datetime) -> str:
    host = urlsplit(public_url).netloc or public_url
    return (
        f"{host} wants you to sign in with your Solana account:\n"
        f"{wallet_address}\n"
        "\n"
        "Sign in to retake. This request will not trigger a blockchain transaction or cost any fees.\n"
        "\n"
        f"URI: {public_url}\n"
        f"Nonce: {nonce}\n"
        f"Issued At: {iso(issued)}\n"
        f"Expiration Time: {iso(expires)}"
    )


def decode_signature(signature: str) -> bytes:
    """Base58 text → the 64 signature bytes, or 400 ``invalid_signature``."""
    try:
        raw = base58.b58decode(signature.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != SIGNATURE_BYTES:
        raise ValidationFailed("signature must be a base58 ed25519 signature (64 bytes)", code="invalid_signature")
    return raw


def signature_matches(wallet_address: str, message: str, signature: bytes) -> bool:
    """Whether ``signature`` is the wallet key's ed25519 signature of the UTF-8 ``message``."""
    try:
        VerifyKey(base58.b58decode(wallet_address)).verify(message.encode("utf-8"), signature)
    except (BadSignatureError, CryptoError, ValueError):
        return False
    return True
