"""Names and tickers in their normalized form (issue 12, item 9): rows stored through the old validation gap.

Until this revision a name or ticker could end in a newline (the patterns used ``$``), which made look-alike
duplicates ("name" and "name\\n"), let "api\\n" past the reserved names, and broke the watch page of such a
name. New values are NFKC-normalized and refused with control or invisible characters
(``identity/validation.py``); ``users.username_key`` (already unique) is the case-folded normalized form.
This revision brings stored rows to the same rules: a refused name becomes its visible characters, or, when
that collides with another name or a reserved one or is too short, those characters plus part of the user id.
Valid names are not touched (a case-folded ASCII name is its lower-case form, which the key already holds).

Revision ID: 0006_normalized_names
Revises: 0005_media_node
"""

import re
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0006_normalized_names"
down_revision = "0005_media_node"
branch_labels = None
depends_on = None

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")
_TICKER_CHARS = re.compile(r"[^A-Za-z0-9]")
_VALID_NAME = re.compile(r"[A-Za-z0-9_-]{3,32}")
_VALID_TICKER = re.compile(r"[A-Za-z0-9]{1,10}")
# identity/validation.RESERVED_NAMES as of this revision (a migration must not change when that list does).
RESERVED_NAMES = frozenset(
    {
        "api", "socket.io", "live", "static", "assets", "skill.md", "skill.json", "docs", "redoc", "openapi.json",
        "health", "metrics", "login", "logout", "signup", "register", "admin", "settings", "media", "thumbnails",
        "recordings", "watch", "explore", "search", "about", "terms", "privacy", "help", "support", "tokens",
        "trades", "users", "sessions", "chat", "agent", "agents", "me", "profile", "wallet", "favicon.ico",
        "robots.txt", "retake", "root", "system", "null", "undefined", "www", "home", "index", "new", "edit",
    }
)  # fmt: skip


def _visible(value: str, drop: re.Pattern[str]) -> str:
    return drop.sub("", unicodedata.normalize("NFKC", value))


def _names(bind: sa.Connection) -> None:
    rows = bind.execute(sa.text("SELECT id, username, username_key FROM users")).all()
    taken = {key for _, _, key in rows}
    for user_id, username, key in rows:
        if _VALID_NAME.fullmatch(username):
            continue
        name = _visible(username, _NAME_CHARS)[:32]
        digits = user_id.replace("-", "")
        for width in (8, 16, 26):  # two users whose ids begin alike: more of the id (26 hex digits are unique)
            if len(name) >= 3 and name.casefold() not in RESERVED_NAMES and name.casefold() not in taken:
                break
            name = f"{_visible(username, _NAME_CHARS)[: 31 - width] or 'user'}-{digits[:width]}"
        taken.discard(key)
        taken.add(name.casefold())
        bind.execute(
            sa.text("UPDATE users SET username = :name, username_key = :key WHERE id = :id"),
            {"name": name, "key": name.casefold(), "id": user_id},
        )


def _tickers(bind: sa.Connection, table: str, key: str) -> None:
    for ident, ticker in bind.execute(sa.text(f"SELECT {key}, ticker FROM {table}")).all():
        if _VALID_TICKER.fullmatch(ticker) and ticker == ticker.upper():
            continue
        fixed = _visible(ticker, _TICKER_CHARS).upper()[:10] or "X"
        bind.execute(
            sa.text(f"UPDATE {table} SET ticker = :ticker WHERE {key} = :ident"), {"ticker": fixed, "ident": ident}
        )


def upgrade() -> None:
    bind = op.get_bind()
    _names(bind)
    _tickers(bind, "agents", "id")
    _tickers(bind, "tokens", "address")


def downgrade() -> None:
    """Nothing to undo: the old rules accept every normalized value."""
