"""Timestamp repair: monotonic per track, one shared offset, restarts continue the timeline."""

from __future__ import annotations

import itertools

from retake.av.message import MediaMessage
from retake.media.timestamps import TimestampRepair, is_config_payload


def video(ts: int, cts: int = 0, key: bool = False) -> MediaMessage:
    return MediaMessage("video", ts, bytes([0x17 if key else 0x27, 1]) + cts.to_bytes(3, "big") + b"nal")


def audio(ts: int) -> MediaMessage:
    return MediaMessage("audio", ts, b"\xaf\x01aac")


def run(repair: TimestampRepair, messages: list[MediaMessage]) -> list[int]:
    return [repair.repair(m).timestamp_ms for m in messages]


def test_clean_input_passes_unchanged() -> None:
    repair = TimestampRepair()
    messages = [video(0, key=True), audio(0), audio(23), video(33), audio(46), video(67)]
    for message in messages:
        assert repair.repair(message) is message


def test_small_backward_steps_are_clamped_per_track() -> None:
    repair = TimestampRepair()
    out = run(repair, [video(100, key=True), video(133), video(120), video(166)])
    assert out == [100, 133, 134, 166]
    # Tracks are independent: audio behind video is normal interleaving, not an error.
    assert run(repair, [audio(90), audio(113)]) == [90, 113]


def test_clamped_video_keeps_presentation_time() -> None:
    repair = TimestampRepair()
    repair.repair(video(100, key=True))
    repaired = repair.repair(video(95, cts=40))
    assert repaired.timestamp_ms == 101
    assert int.from_bytes(repaired.payload[2:5], "big") == 34  # 95 + 40 == 101 + 34
    assert repaired.payload[5:] == b"nal"


def test_publisher_restart_continues_monotonic_and_aligned() -> None:
    repair = TimestampRepair()
    run(repair, [video(5000, key=True), audio(5000), video(5033), audio(5023), audio(5046)])
    # The encoder restarts at 0: both tracks move by the same offset, just after the newest output.
    out = run(repair, [video(0, key=True), audio(0), video(33), audio(23)])
    assert out[0] == 5046 + 33  # newest output of either track + one video frame
    assert out == [out[0], out[0], out[0] + 33, out[0] + 23]
    assert repair.discontinuities == 1


def test_forward_jump_is_closed() -> None:
    repair = TimestampRepair(max_forward_gap_ms=5000)
    out = run(repair, [video(0, key=True), video(33), video(60_000), video(60_033)])
    assert out == [0, 33, 66, 99]


def test_mark_discontinuity_reanchors_even_small_steps() -> None:
    repair = TimestampRepair()
    run(repair, [video(0, key=True), video(33), video(66)])
    repair.mark_discontinuity()
    assert run(repair, [video(40, key=True), video(73)]) == [99, 132]


def test_config_packets_take_current_time() -> None:
    repair = TimestampRepair()
    header = MediaMessage("video", 0, b"\x17\x00\x00\x00\x00avcc")
    script = MediaMessage("script", 0, b"\x02\x00\x0aonMetaData")
    assert is_config_payload(header) and is_config_payload(script)
    assert not is_config_payload(video(0))
    run(repair, [video(1000, key=True), video(1033)])
    assert repair.repair(header).timestamp_ms == 1033
    assert repair.repair(script).timestamp_ms == 1033
    assert repair.repair(video(1066)).timestamp_ms == 1066


def test_negative_start_is_shifted_to_zero() -> None:
    repair = TimestampRepair()
    assert run(repair, [video(-50, key=True), audio(-40), video(-17)]) == [0, 10, 33]


def _span(out: list[int]) -> int:
    return max(out) - min(out)


def test_start_past_2_31_is_rebased_and_continuous() -> None:
    start = (1 << 31) + 12_345
    repair = TimestampRepair()
    out = run(repair, [video(start + 33 * i, key=i == 0) for i in range(100)])
    assert out == [33 * i for i in range(100)]
    assert repair.discontinuities == 0


def test_wrap_at_2_32_is_a_small_step() -> None:
    start = (1 << 32) - 1000  # wraps after one second
    repair = TimestampRepair()
    messages = []
    for i in range(90):  # 3 s of 30 fps video with audio
        messages.append(video((start + 33 * i) & 0xFFFFFFFF, key=i % 30 == 0))
        messages.append(audio((start + 33 * i + 5) & 0xFFFFFFFF))
    out = run(repair, messages)
    assert repair.discontinuities == 0
    video_out = out[0::2]
    assert video_out == [33 * i for i in range(90)]
    assert all(b - a == 33 for a, b in itertools.pairwise(video_out))


def test_wrap_of_a_timeline_already_at_0_continues() -> None:
    repair = TimestampRepair()
    first = run(repair, [video(0, key=True), video(33)])
    assert first == [0, 33]
    repair._raw = (1 << 32) - 10  # as if 49.7 days had passed
    repair._unwrapped = (1 << 32) - 10
    repair._last = {"video": (1 << 32) - 10}
    assert run(repair, [video(23)]) == [(1 << 32) + 23]


def test_500_ms_jitter_does_not_stretch_the_timeline() -> None:
    # 60 s at 30 fps, each frame displaced by ±500 ms around its true time (deterministic pattern)
    offsets = [500, -500, 250, -250, 0, 400, -400]
    messages = [video(1000 + 33 * i + offsets[i % len(offsets)], key=i % 30 == 0) for i in range(1800)]
    repair = TimestampRepair()
    out = run(repair, messages)
    true_span = 33 * 1799
    assert _span(out) <= true_span + 1000, f"{_span(out)} ms of output for {true_span} ms of input"
    assert repair.discontinuities == 0
    assert all(b > a for a, b in itertools.pairwise(out))
