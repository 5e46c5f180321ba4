"""Smoke test of bench/realtime_fanout.py, bench/comment_polling.py and bench/harness.py (the benchmarks are not
part of `make test`): they import, and the pure helpers they rely on (percentiles, histograms, rate steps, the
minimal WebSocket/Engine.IO client's framing, /proc parsing) do what the numbers depend on."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from bench import comment_polling, harness, realtime_fanout


def test_percentiles_and_histograms_agree() -> None:
    values = [float(v) for v in range(1, 101)]
    assert harness.percentile(values, 50) == 50.0
    assert harness.percentile(values, 99) == 99.0
    assert harness.percentile([3.0, 1.0, 2.0], 100) == 3.0
    assert math.isnan(harness.percentile([], 50))
    a, b = harness.Histogram(), harness.Histogram()
    for v in values[:50]:
        a.record(v)
    for v in values[50:]:
        b.record(v)
    merged = harness.Histogram.from_json(a.to_json()).merge(harness.Histogram.from_json(b.to_json()))
    assert merged.count == 100 and merged.max_ms == 100.0 and merged.mean == pytest.approx(50.5)
    assert merged.percentile(50) == 50.0 and merged.percentile(99) == 99.0
    assert math.isnan(harness.Histogram().percentile(50))


def test_histogram_buckets_stay_within_one_percent() -> None:
    for ms in (0.05, 1.234, 42.0, 99.99, 250.7, 1234.5, 9999.0, 25_000.0):
        edge = harness.bucket_of(ms) / 10
        assert edge <= ms and ms - edge <= max(0.1, ms / 100)
    assert harness.bucket_of(-1.0) == 0


def test_rate_steps_and_the_held_rate() -> None:
    assert harness.rate_steps("10,25,50") == [10.0, 25.0, 50.0]
    assert harness.rate_steps("..100") == [10.0, 25.0, 50.0, 100.0]
    assert harness.rate_steps("auto")[:4] == [10.0, 25.0, 50.0, 100.0]
    with pytest.raises(ValueError):
        harness.rate_steps("10,-1")
    rows = [
        {"rate": 10.0, "p99_ms": 40.0, "ok": True},
        {"rate": 25.0, "p99_ms": 120.0, "ok": True},
        {"rate": 50.0, "p99_ms": 900.0, "ok": True},
        {"rate": 100.0, "p99_ms": 100.0, "ok": True},  # above a failure: not held
    ]
    assert harness.highest_held(rows, 250) == 25.0
    assert harness.highest_held(rows, 100) == 10.0
    assert harness.highest_held([{"rate": 10.0, "p99_ms": 5.0, "ok": False}], 250) is None
    assert harness.highest_held([{"rate": 10.0, "p99_ms": math.nan}], 250) is None
    assert harness.send_offsets(4, 1) == [0.0, 0.25, 0.5, 0.75]
    assert len(harness.send_offsets(50, 15)) == 750


def test_proc_parsing_and_tables() -> None:
    stat = "4242 (retake serve (x)) S 1 1 1 0 -1 4194624 10 0 0 0 150 25 3 4 20 0 1 0 9 1 2"
    assert harness.parse_proc_stat(stat) == 175
    assert harness.parse_system_stat("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n") == (150, 1000)
    assert harness.cpu_percent(harness.CLK_TCK * 3, 30.0) == pytest.approx(10.0)
    table = harness.markdown_table([{"a": 1.25, "b": None}], [("a", "A"), ("b", "B")])
    assert table.splitlines() == ["| A | B |", "|---|---|", "| 1.2 | – |"]


def test_marker_travels_in_the_chat_text() -> None:
    text = realtime_fanout.make_text("ab12cd34", 3, 17, 1234.5678901)
    frame = b'42["message",{"_id":"9","text":"' + text.encode() + b'","type":"message"}]'
    assert realtime_fanout.parse_marker(frame, b"ab12cd34") == (3, 17, pytest.approx(1234.567890))
    assert realtime_fanout.parse_marker(frame, b"otherrun") is None
    assert realtime_fanout.parse_marker(b'42["message",{"text":"hello"}]', b"ab12cd34") is None


def test_websocket_frames_round_trip() -> None:
    mask = b"\x01\x02\x03\x04"
    for size in (0, 5, 125, 126, 700, 70_000):
        payload = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
        frame = realtime_fanout.ws_frame(payload, mask=mask)
        frames, used = realtime_fanout.parse_frames(frame + b"\x81")  # and the first byte of the next frame
        assert frames == [(True, 1, payload)] and used == len(frame)
        assert realtime_fanout.parse_frames(frame[:-1] if size else frame[:1]) == ([], 0)
    server = b"\x81\x05hello\x81\x7e\x00\x80" + b"x" * 128 + b"\x89\x00"
    frames, used = realtime_fanout.parse_frames(server)
    assert [(op, len(p)) for _, op, p in frames] == [(1, 5), (1, 128), (9, 0)] and used == len(server)


def test_handshake_and_packets() -> None:
    request = realtime_fanout.handshake_request("127.0.0.1", 8000, "dGhlIHNhbXBsZSBub25jZQ==")
    assert request.startswith(b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n")
    assert request.endswith(b"\r\n\r\n") and b"Sec-WebSocket-Version: 13" in request
    assert realtime_fanout.accept_for("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455
    assert realtime_fanout.join_packet("room-1") == b'42["joinRoom",{"roomId":"room-1"}]'
    assert realtime_fanout.split_clients(1000, 2) == [500, 500]
    assert realtime_fanout.split_clients(5, 3) == [2, 2, 1]
    assert realtime_fanout.split_clients(1, 4) == [1]


async def test_engineio_session_joins_answers_pings_and_hands_over_events() -> None:
    sent: list[bytes] = []
    seen: list[bytes] = []
    session = realtime_fanout.EioSession("r1", sent.append, lambda payload, _now: seen.append(payload))
    session.on_text(b'0{"sid":"x","pingInterval":25000,"pingTimeout":20000}', 0.0)
    session.on_text(b'40{"sid":"y"}', 0.0)
    assert sent == [b"40", b'42["joinRoom",{"roomId":"r1"}]']
    session.on_text(b'42["joinedRoom",{"roomId":"r1"}]', 0.0)
    assert await session.joined is True
    session.on_text(b"2", 0.0)
    session.on_text(b'42["message",{"text":"hi"}]', 1.0)
    assert sent[-1] == b"3" and seen == [b'42["message",{"text":"hi"}]']
    session.on_text(b"41", 2.0)
    assert session.closed


def test_comment_polling_helpers() -> None:
    assert comment_polling.agent_counts("500,1000") == [500, 1000]
    with pytest.raises(ValueError):
        comment_polling.agent_counts("0")
    assert comment_polling.expected_rate(1000, 3.0) == pytest.approx(333.3, abs=0.1)
    assert comment_polling.due_times(0.5, 3.0, 100.0, 107.0) == [100.5, 103.5, 106.5]
    now = datetime(2026, 1, 1, tzinfo=UTC)
    rows = comment_polling.seed_rows(["a", "b"], 3, now)
    assert len(rows) == 6 and {r["streamer_id"] for r in rows} == {"a", "b"}
    assert all(r["sender_user_id"] != r["streamer_id"] for r in rows)
    assert rows[0]["created_at"] < rows[2]["created_at"] <= now and rows[0]["deleted"] is False


def test_fan_out_spans_merge_over_workers() -> None:
    spans: dict[str, list[float]] = {}
    realtime_fanout.merge_spans(spans, {"1": [10.0, 10.020, 10.050], "2": [11.0, 11.010, 11.015]})
    realtime_fanout.merge_spans(spans, {"1": [10.0, 10.015, 10.040], "3": [12.0, 12.5, 12.5]})
    assert spans["1"] == [10.0, 10.015, 10.050]
    first, spread = realtime_fanout.span_histograms(spans)
    assert first.count == spread.count == 3
    assert first.percentile(50) == pytest.approx(15.0, abs=0.11) and first.max_ms == pytest.approx(500.0)
    assert spread.percentile(100) == pytest.approx(35.0, abs=0.11) and spread.percentile(1) == 0.0


def test_server_gc_experiment_command_lines() -> None:
    assert harness.serve_argv()[1:] == ["-m", "retake", "serve"]
    tuned = harness.serve_argv(harness.parse_server_gc("freeze, 50000,20,100"))
    assert tuned[1] == "-c" and "gc.freeze()" in tuned[2] and "gc.set_threshold(50000, 20, 100)" in tuned[2]
    assert tuned[2].index("gc.freeze()") < tuned[2].index("app()")
    assert "gc.freeze()" not in harness.serve_argv(harness.parse_server_gc("50000"))[2]
    for bad in ("", "x", "1,2,3,4", "freeze,a"):
        with pytest.raises(ValueError):
            harness.parse_server_gc(bad)
