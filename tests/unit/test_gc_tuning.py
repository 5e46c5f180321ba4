"""RETAKE_GC_THRESHOLD / RETAKE_GC_FREEZE (config.py parses, server/gc_tuning.py applies)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from retake.config import Settings, parse_gc_threshold
from retake.server import gc_tuning


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("50000,20,100", (50000, 20, 100)), ("1000", (1000,)), (" 700, 10 ", (700, 10)), ("default", None), ("", None)],
)
def test_thresholds_are_read(text: str, expected: tuple[int, ...] | None) -> None:
    assert parse_gc_threshold(text) == expected


@pytest.mark.parametrize("text", ["0,10,10", "a,b", "1,2,3,4", "-5", "50000;20"])
def test_bad_thresholds_are_refused_at_start(text: str) -> None:
    with pytest.raises(ValueError, match="gc_threshold"):
        parse_gc_threshold(text)
    with pytest.raises(ValidationError, match="gc_threshold"):
        Settings(data_dir=Path("/nonexistent"), gc_threshold=text)


@pytest.mark.usefixtures("restore_gc")
def test_apply_sets_thresholds_and_freezes() -> None:
    gc_tuning.apply("12345,11,12", freeze=True)
    assert gc.get_threshold() == (12345, 11, 12)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restore_gc")
def test_default_leaves_the_interpreter_alone() -> None:
    gc.set_threshold(701, 11, 11)
    gc_tuning.apply("default", freeze=False)
    assert gc.get_threshold() == (701, 11, 11)
    assert gc.get_freeze_count() == 0
