"""Smoke test of bench/glass_to_glass.py (the benchmark itself is not part of `make test`): the burnt-in clock
survives a draw → read round trip, a misread is rejected, and the statistics the tables rest on are right."""

from __future__ import annotations

import pytest
from bench import glass_to_glass as g

NOW_MS = 1_795_000_000_123  # late 2026


def test_clock_code_round_trip_and_crc() -> None:
    raw = g.encode_clock(NOW_MS)
    assert raw >> g.BITS == 0 and len(g.code_bits(raw)) == g.BITS
    assert g.decode_clock(raw) == NOW_MS % g.MODULUS
    for bit in (0, 7, 8, 30, 47):  # any single flipped block is caught
        assert g.decode_clock(raw ^ (1 << bit)) is None
    assert g.decode_clock(-1) is None and g.decode_clock(1 << g.BITS) is None
    assert g.crc8(b"123456789") == 0xF4  # the CRC-8 (poly 0x07) check value


def test_levels_threshold() -> None:
    assert g.raw_from_levels([0, 255, 255, 0], 60, 195) == 0b0110
    assert g.raw_from_levels([0, 128, 255], 60, 195) is None  # a grey block: unreadable, not guessed


def test_paint_then_read_a_frame() -> None:
    frame = bytearray([100]) * (g.WIDTH * g.HEIGHT * 3 // 2)
    g.prepare_background(frame)
    g.paint_clock(frame, NOW_MS)
    assert g.read_clock(bytes(frame), g.WIDTH) == NOW_MS % g.MODULUS
    assert g.read_clock(memoryview(frame), g.WIDTH) == NOW_MS % g.MODULUS
    # chroma under the band is neutral, so the browser's YUV → RGB keeps the blocks grey-scale
    u_row = g.WIDTH * g.HEIGHT + (g.Y0 // 2) * (g.WIDTH // 2)
    assert frame[u_row + g.X0 // 2] == 0x80
    levels = g.block_levels(bytes(frame), g.WIDTH)
    assert set(levels) == {float(g.BLACK_Y), float(g.WHITE_Y)}
    blank = bytearray([100]) * (g.WIDTH * g.HEIGHT * 3 // 2)
    assert g.read_clock(bytes(blank), g.WIDTH) is None


def test_latency_wraps_around_the_modulus() -> None:
    value = NOW_MS % g.MODULUS
    assert g.latency_ms(value, NOW_MS + 750.5) == pytest.approx(750.5)
    assert g.latency_ms(value, NOW_MS - 3) == pytest.approx(-3)  # clock skew shows as a small negative
    assert g.latency_ms(g.MODULUS - 10, g.MODULUS * 5 + 20) == pytest.approx(30)  # across a wrap


def test_page_points_clock_rate_and_settle() -> None:
    def sample(t_ms: float, latency: float, rate: float = 1.0, media: float = 0.0) -> list[object]:
        bits = g.code_bits(g.encode_clock(int(t_ms - latency)))
        return [t_ms, [255 if b else 0 for b in bits], 0.6, rate, media]

    samples = [sample(NOW_MS + i * 33.3, 1200 - 10 * i, media=i * 0.0333 * 0.9) for i in range(60)]
    samples.insert(5, [NOW_MS + 170, [128] * g.BITS, 0.6, 1.0, 0.15])  # an unreadable frame
    points, unreadable = g.page_points(samples)
    assert unreadable == 1 and len(points) == 60
    assert points[0].latency_ms == pytest.approx(1200, abs=1) and points[0].buffer_ms == pytest.approx(600)
    assert g.media_clock_rate(points) == pytest.approx(0.9, abs=0.01)  # the element's clock ran at 0.9×
    assert not g.clock_ok(g.media_clock_rate(points)) and g.clock_ok(1.004) and g.clock_ok(None)
    fast = [sample(NOW_MS + i * 33.3, 900, rate=1.1, media=i * 0.0333 * 1.1) for i in range(10)]
    assert g.media_clock_rate(g.page_points(fast)[0]) == pytest.approx(1.0, abs=0.01)  # playbackRate taken out
    assert g.settle_s(points, 1000) == pytest.approx(20 * 33.3 / 1000, abs=0.05)  # last frame above: i = 20
    assert g.settle_s(points, 2000) == 0.0 and g.settle_s(points, 500) is None and g.settle_s([], 1) is None
    s = g.summary([p.latency_ms for p in points])
    assert s["n"] == 60 and s["max"] == pytest.approx(1200, abs=1) and s["p95"] >= s["median"]


def test_command_lines_page_and_table() -> None:
    argv = g.publisher_argv("rtmp://127.0.0.1:1/live/k")
    for flag, value in [
        ("-b:v", "1500k"),
        ("-g", "60"),
        ("-tune", "zerolatency"),
        ("-framerate", "30"),
        ("-i", "pipe:0"),
    ]:
        assert argv[argv.index(flag) + 1] == value
    assert "anullsrc=channel_layout=stereo:sample_rate=44100" in argv and argv[-1] == "rtmp://127.0.0.1:1/live/k"
    silent = g.publisher_argv("rtmp://x/live/k", audio=False)
    assert "-an" in silent and "-c:a" not in silent and not any("anullsrc" in a for a in silent)
    assert "__LAYOUT__" not in g.probe_script() and "requestVideoFrameCallback" in g.probe_script()
    assert "liveSyncDurationCount" not in g.EXPERIMENTS["hls-holdback"]
    assert g.EXPERIMENTS["hls-catchup"]["maxLiveSyncPlaybackRate"] > 1
    page = g.experiment_page("/live/u/index.m3u8", g.EXPERIMENTS["hls-holdback"])
    assert '"/live/u/index.m3u8"' in page and '"lowLatencyMode": true' in page
    wide = g.FLV_EXPERIMENTS["flv-wide"]  # the band player.ts had before issue 14, as the FLV peer
    assert (wide["liveSyncMaxLatency"], wide["liveSyncTargetLatency"], wide["liveBufferLatencyMaxLatency"]) == (
        0.9,
        0.5,
        1.2,
    )
    flv_page = g.flv_experiment_page("/live/u.flv", wide)
    assert '"/live/u.flv"' in flv_page and "mpegts.createPlayer" in flv_page and '"liveSyncMaxLatency": 0.9' in flv_page
    assert (
        set(g.BARE_PAGES) == {"hls-holdback", "hls-catchup", "flv-wide", "flv-fast"} and g.GOALS_MS["flv-wide"] == 400
    )
    result = g.PathResult("flv", frames=600, latency=g.summary([700.0, 800.0, 900.0]), first_frame_ms=[1000, 1200])
    table = g.result_table([result, g.PathResult("probe")])
    assert "| 800 / 900 / 900 | ≤ 0.4 s: missed |" in table and "1.10 / 1.20 (≤ 1 s: missed)" in table
    assert "| never | 0 (0) / 0 (0) |" in table and table.count("\n") == 3
    fast = g.PathResult(
        "hls", latency=g.summary([1000.0, 1100.0]), first_frame_ms=[800, 700, 1500], freezes=2, freeze_ms=150
    )
    row = g.result_table([fast]).splitlines()[-1]
    assert "| ≤ 1.2 s: met |" in row and "0.80 / 1.50 (≤ 1 s: met)" in row and "| 0 (0) / 2 (150) |" in row


def test_freezes_count_gaps_between_presented_frames() -> None:
    def point(t_ms: float) -> g.Point:
        return g.Point(t_ms, 300.0, 200.0, 1.0, t_ms / 1000)

    times = [i * 33.3 for i in range(30)]
    assert g.freezes([point(t) for t in times]) == (0, 0.0)
    times[10:] = [t + 250 for t in times[10:]]  # one 283 ms gap: 250 ms more than a frame interval
    times[20:] = [t + 90 for t in times[20:]]  # 123 ms: a short freeze
    count, lost = g.freezes([point(t) for t in times])
    assert count == 2 and lost == pytest.approx(250 + 90, abs=0.1)
    assert g.freezes([]) == (0, 0.0) and g.freezes([point(0)]) == (0, 0.0)
