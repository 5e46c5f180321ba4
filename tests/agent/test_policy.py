"""The runtime's pure decisions: chat pace, viewer events, restart budget, comment order, message splitting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retake.agent.chat import split_message
from retake.agent.commands import Size, TextOverlay
from retake.agent.policy import (
    ChatPacer,
    RestartBudget,
    ViewerTracker,
    newer_than,
    newest_id,
    sender_name,
    tip_amount_sol,
)
from retake.agent.screen import Screen, sanitize
from retake.agent.types import Comment


def test_chat_pace_busy_normal_quiet() -> None:
    pacer = ChatPacer(base=3, busy=2, quiet=10, quiet_after=30)
    assert pacer.next_interval(0, had_messages=True) == 2
    assert pacer.next_interval(5, had_messages=False) == 3  # recent activity: the normal pace
    intervals = [pacer.next_interval(t, had_messages=False) for t in (31, 35, 40, 46, 53, 61, 70, 80, 90)]
    assert intervals == [4, 5, 6, 7, 8, 9, 10, 10, 10]  # one second slower per empty poll, capped
    assert pacer.next_interval(91, had_messages=True) == 2


def test_viewer_milestones_and_falling() -> None:
    tracker = ViewerTracker(milestones=(1, 5, 10))
    assert [e.event for e in tracker.update(0)] == []
    assert [(e.event, e.data["value"]) for e in tracker.update(6)] == [("milestone", 1), ("milestone", 5)]
    assert tracker.update(6) == []
    falling = tracker.update(3)
    assert [e.event for e in falling] == ["viewers_falling"]
    assert falling[0].data == {"viewers": 3, "peak": 6}
    assert tracker.update(2) == []  # said once per peak
    assert [e.event for e in tracker.update(12)] == ["milestone"]
    assert [e.event for e in tracker.update(5)] == ["viewers_falling"]


def test_one_viewer_leaving_is_not_news() -> None:
    tracker = ViewerTracker(milestones=(), falling_min_peak=2)
    tracker.update(1)
    assert tracker.update(0) == []


def test_restart_budget() -> None:
    budget = RestartBudget(limit=3, window=60)
    assert [budget.allow(t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert budget.allow(61) is True  # the first one left the window


def comment(cid: str, text: str = "hi", **extra: Any) -> Comment:
    body: dict[str, Any] = {"_id": cid, "chat_event_id": cid, "text": text, "type": "message", **extra}
    return body  # type: ignore[return-value]


def test_new_comments_by_numeric_id() -> None:
    page = [comment("1000"), comment("999"), comment("42")]  # newest first, as the platform sends them
    assert [c["_id"] for c in newer_than(page, "42")] == ["999", "1000"]  # "999" > "42" as numbers
    assert [c["_id"] for c in newer_than(page, None)] == ["42", "999", "1000"]
    assert newest_id(page) == "1000" and newest_id([], "7") == "7"


def test_comment_fields() -> None:
    assert sender_name(comment("1", sender_username="v1")) == "v1"
    assert sender_name(comment("1", author={"fusername": "skill_style"})) == "skill_style"
    assert tip_amount_sol(comment("1", type="tip", tip_data={"amount": 2.5})) == 2.5
    assert tip_amount_sol(comment("1", type="tip", tip_data={"amount": "x"})) is None
    assert tip_amount_sol(comment("1")) is None


def test_split_message() -> None:
    assert split_message("  short  ") == ["short"]
    long = " ".join(["word"] * 300)  # 1499 characters
    parts = split_message(long)
    assert len(parts) == 3 and all(1 <= len(p) <= 500 for p in parts)
    assert " ".join(parts) == long[: sum(len(p) + 1 for p in parts) - 1]
    assert split_message("x" * 1200) == ["x" * 500, "x" * 500, "x" * 200]
    assert split_message("") == []


def test_screen_sanitizes_and_mirrors(tmp_path: Path) -> None:
    assert sanitize("hi\x1b]0;pwned\x07 there\nnext") == "hi]0;pwned there next"
    overlay = TextOverlay(tmp_path / "overlay.txt", fontsize=20, margin=10, line_spacing=4)
    screen = Screen(tmp_path / "stream.log", overlay, Size(320, 180))
    cols, rows = screen.overlay_geometry()
    assert (cols, rows) == (24, 6)
    for n in range(10):
        screen.write(f"line {n} " + "y" * 30)
    assert screen.refresh_overlay() is True
    shown = (tmp_path / "overlay.txt").read_text().splitlines()
    assert len(shown) == rows and all(len(line) <= cols for line in shown)
    assert shown[-1].endswith("y" * 10)
    assert screen.refresh_overlay() is False  # unchanged log: no rewrite
