"""The SQLite fast paths of chat pages give what SQLAlchemy's column types would (chat/pages.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.dialects.sqlite import DATETIME
from sqlalchemy.dialects.sqlite import dialect as sqlite_dialect

from retake.chat.pages import _json, _sqlite_iso
from retake.store.types import iso

_STORE = DATETIME().bind_processor(sqlite_dialect())  # type: ignore[no-untyped-call]


@given(st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 31)))
def test_stored_timestamps_read_back_as_iso(naive_utc: datetime) -> None:
    assert _STORE is not None
    stored = _STORE(naive_utc)
    assert _sqlite_iso(stored) == iso(naive_utc.replace(tzinfo=UTC))


def test_timestamps_in_other_shapes_go_through_the_parser() -> None:
    assert _sqlite_iso("2026-11-27 14:20:00") == "2026-11-27T14:20:00.000Z"
    assert _sqlite_iso("2026-11-27 14:20:00.5") == "2026-11-27T14:20:00.500Z"


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8))  # fmt: skip
def test_json_text_decodes_like_the_json_type(value: Any) -> None:
    stored = json.dumps(value)  # what SQLAlchemy's JSON type writes
    assert _json(stored) == value
    assert _json(None) is None
