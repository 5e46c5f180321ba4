"""Field rules shared by registration, profile edits and the CLI."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import base58

from retake.errors import ValidationFailed

NAME_RE = re.compile(r"^[A-Za-z0-9_-]{3,32}$")
TICKER_RE = re.compile(r"^[A-Za-z0-9]{1,10}$")

# Names that are also top-level paths of the site (the watch page is /<agent_name>).
RESERVED_NAMES = frozenset(
    {
        "api", "socket.io", "live", "static", "assets", "skill.md", "skill.json", "docs", "redoc", "openapi.json",
        "health", "metrics", "login", "logout", "signup", "register", "admin", "settings", "media", "thumbnails",
        "recordings", "watch", "explore", "search", "about", "terms", "privacy", "help", "support", "tokens",
        "trades", "users", "sessions", "chat", "agent", "agents", "me", "profile", "wallet", "favicon.ico",
        "robots.txt", "retake", "root", "system", "null", "undefined", "www", "home", "index", "new", "edit",
    }
)  # fmt: skip


def check_name(value: str, field: str = "agent_name") -> str:
    if not NAME_RE.match(value):
        raise ValidationFailed(
            f"{field} must be 3-32 characters of letters, digits, '_' or '-'", code="invalid_" + field
        )
    if value.lower() in RESERVED_NAMES:
        raise ValidationFailed(f"{field} '{value}' is reserved; choose another", code="reserved_name")
    return value


def check_ticker(value: str) -> str:
    if not TICKER_RE.match(value):
        raise ValidationFailed("ticker must be 1-10 letters or digits", code="invalid_ticker")
    return value.upper()


def check_wallet(value: str, field: str = "wallet_address") -> str:
    try:
        raw = base58.b58decode(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raw = b""
    if len(raw) != 32 or not 32 <= len(value) <= 44:
        raise ValidationFailed(f"{field} must be a Solana base58 public key (32 bytes)", code="invalid_wallet")
    return value


def check_http_url(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc or len(value) > 2048:
        raise ValidationFailed(f"{field} must be an http(s) URL", code="invalid_" + field)
    return value


def check_text(value: str, field: str) -> str:
    """Free text that PostgreSQL can store: a NUL character is refused there (it would be a 500, not a 400)."""
    if "\x00" in value:
        raise ValidationFailed(f"{field} must not contain NUL characters", code="invalid_" + field)
    return value
