"""Secrets handed to agents. Only SHA-256 digests are stored; lookups compare digests in constant time."""

from __future__ import annotations

import hashlib
import hmac
import secrets

ACCESS_TOKEN_PREFIX = "rtk_"
STREAM_KEY_PREFIX = "sk_"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_access_token() -> str:
    # 32 random bytes → 43 URL-safe chars, above API.md's 32-char floor.
    return ACCESS_TOKEN_PREFIX + secrets.token_urlsafe(32)


def new_stream_key() -> str:
    return STREAM_KEY_PREFIX + secrets.token_urlsafe(24)


def new_agent_id() -> str:
    return "agent_" + secrets.token_urlsafe(12)


def looks_like_access_token(value: str) -> bool:
    return value.startswith(ACCESS_TOKEN_PREFIX) and 32 <= len(value) - len(ACCESS_TOKEN_PREFIX) <= 128


def matches(secret: str, stored_digest: str) -> bool:
    """Constant-time check of a presented secret against a stored digest."""
    return hmac.compare_digest(digest(secret), stored_digest)
