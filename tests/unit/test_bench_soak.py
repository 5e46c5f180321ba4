"""The soak benchmark's pure helpers: the RSS slope and the lost-message count it reports are what the
issue's goal is judged on, so they are checked against hand-computed values."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.soak import after_warmup, chat_text, lost_messages, parse_chat_text, publisher_argv, rss_slope_mb_per_hour


def test_slope_of_a_steady_leak_is_its_rate_per_hour() -> None:
    samples = [(t, 100 + t / 3600 * 12) for t in range(0, 600, 10)]  # 12 MiB an hour
    assert rss_slope_mb_per_hour(samples) == pytest.approx(12)


def test_flat_memory_has_zero_slope_and_too_few_samples_none() -> None:
    assert rss_slope_mb_per_hour([(0, 50), (10, 50), (20, 50)]) == pytest.approx(0)
    assert rss_slope_mb_per_hour([(0, 50)]) is None
    assert rss_slope_mb_per_hour([(5, 50), (5, 60)]) is None


def test_warmup_samples_are_left_out() -> None:
    assert after_warmup([(0, 1), (59, 2), (60, 3), (61, 4)], 60) == [(60, 3), (61, 4)]


def test_chat_markers_round_trip_and_foreign_text_is_ignored() -> None:
    assert parse_chat_text(chat_text("r1", 42), "r1") == 42
    assert parse_chat_text(chat_text("r1", 42), "r2") is None
    assert parse_chat_text("soak:r1:²", "r1") is None
    assert parse_chat_text("hello", "r1") is None


def test_lost_counts_what_each_client_missed_in_its_own_room() -> None:
    sent = {"a": {1, 2, 3}, "b": {4}}
    received = {0: {1, 2, 3}, 1: {1, 3}, 2: set()}
    rooms = {0: "a", 1: "a", 2: "b"}
    assert lost_messages(sent, received, rooms) == 2


def test_publisher_loops_and_copies() -> None:
    argv = publisher_argv(Path("/in.flv"), "rtmp://h/live/k")
    assert argv[argv.index("-stream_loop") + 1] == "-1"
    assert argv[argv.index("-c") + 1] == "copy"
    assert argv[-1] == "rtmp://h/live/k"
