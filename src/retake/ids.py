"""Numeric ids and cursors from a query string or path: ASCII digits only, for every package that reads one."""

from __future__ import annotations

import re

from retake.errors import ValidationFailed

# ``str.isdigit()`` also accepts "²" and "①", which ``int()`` then refuses (a 500), and "٣", which it reads as 3.
# 1-18 digits always fit a signed 64-bit column; ``\Z`` because ``$`` would also match before a final newline.
ID_DIGITS_RE = re.compile(r"^[0-9]{1,18}\Z")


def parse_id(value: str, field: str, *, code: str, message: str) -> int:
    """``value`` as an int, or 400 ``code`` with "<field> <message>"."""
    if not ID_DIGITS_RE.match(value):
        raise ValidationFailed(f"{field} {message}", code=code)
    return int(value)
