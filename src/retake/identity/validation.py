"""Field rules shared by registration, profile edits and the CLI."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

import base58

from retake.errors import ValidationFailed

# ``\Z``, not ``$``: ``$`` also matches before a final newline, which let "api\n" past both patterns.
NAME_RE = re.compile(r"^[A-Za-z0-9_-]{3,32}\Z")
TICKER_RE = re.compile(r"^[A-Za-z0-9]{1,10}\Z")
# Longer input is refused before normalizing: NFKC can multiply a string's length, and no valid value is near this.
MAX_RAW = 256
# Unicode categories that never belong in a name: controls (Cc), format characters such as zero-width spaces and
# joiners (Cf), surrogates (Cs), private use (Co) and unassigned code points (Cn).
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})

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


def normalized(value: str, field: str) -> str:
    """NFKC form of a name-like value (full-width and other compatibility forms become their plain letters);
    control and invisible characters are refused rather than dropped, so what is stored is what was shown."""
    if len(value) > MAX_RAW:
        raise ValidationFailed(f"{field} is too long", code="invalid_" + field)
    value = unicodedata.normalize("NFKC", value)
    if any(unicodedata.category(ch) in _INVISIBLE for ch in value):
        raise ValidationFailed(f"{field} must not contain control or invisible characters", code="invalid_" + field)
    return value


def name_key(value: str) -> str:
    """The form names are unique in (``users.username_key``) and looked up by: NFKC, then case-folded."""
    return unicodedata.normalize("NFKC", value).casefold()


def check_name(value: str, field: str = "agent_name") -> str:
    """The name to store (use the return value: it is the normalized form)."""
    value = normalized(value, field)
    if not NAME_RE.match(value):
        raise ValidationFailed(
            f"{field} must be 3-32 characters of letters, digits, '_' or '-'", code="invalid_" + field
        )
    if name_key(value) in RESERVED_NAMES:
        raise ValidationFailed(f"{field} '{value}' is reserved; choose another", code="reserved_name")
    return value


def check_ticker(value: str) -> str:
    value = normalized(value, "ticker")
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
