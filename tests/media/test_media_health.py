"""The stream health meter on synthetic tag bodies: windows, rates, frozen / black / silent, reconnects."""

from __future__ import annotations

from pathlib import Path

from retake.av.message import MediaMessage
from retake.media.health import SILENT_FRAME_BYTES, HealthConfig, HealthReport, HealthSink, StreamHealth
from retake.streams.media_bridge import Playback
from tests.media.conftest import ASC_LC_44100_STEREO, AVCC_320X240

T0 = 1_000_000.0  # an arbitrary Unix time; the meter only uses differences and whole seconds
FPS = 30
AAC_FPS = 43  # 44100 / 1024, rounded down


def video_config() -> MediaMessage:
    return MediaMessage("video", 0, bytes([0x17, 0, 0, 0, 0]) + AVCC_320X240)


def audio_config() -> MediaMessage:
    return MediaMessage("audio", 0, bytes([0xAF, 0]) + ASC_LC_44100_STEREO)


def frame(ts: int, size: int, key: bool) -> MediaMessage:
    """An AVC NALU tag body of exactly ``size`` bytes."""
    return MediaMessage("video", ts, bytes([0x17 if key else 0x27, 1, 0, 0, 0]) + b"\0" * (size - 5))


def aac(ts: int, size: int) -> MediaMessage:
    return MediaMessage("audio", ts, bytes([0xAF, 1]) + b"\0" * (size - 2))


class Feed:
    """A publisher in fake time: ``run(seconds)`` sends 30 fps video and ~43 fps AAC, stamped as they arrive."""

    def __init__(self, meter: StreamHealth, start: float = T0) -> None:
        self.meter = meter
        self.now = start
        self.media_ms = 0
        self.frame_no = 0
        self.audio_no = 0
        self.key_every = FPS

    def configs(self) -> None:
        self.meter.observe(video_config(), self.now)
        self.meter.observe(audio_config(), self.now)

    def run(
        self,
        seconds: float,
        *,
        key: int = 3000,
        inter: int = 1000,
        audio: int | None = 300,
        video: bool = True,
    ) -> None:
        end = self.now + seconds
        next_audio = self.now
        while self.now < end:
            if video:
                is_key = self.frame_no % self.key_every == 0
                # moving pictures differ frame to frame; keep sizes varying a little like an encoder's
                size = key if is_key else inter + (self.frame_no % 7)
                self.meter.observe(frame(self.media_ms, size, is_key), self.now)
            while audio is not None and next_audio <= self.now:
                self.meter.observe(aac(self.media_ms, audio), next_audio)
                next_audio += 1 / AAC_FPS
                self.audio_no += 1
            self.frame_no += 1
            self.now += 1 / FPS
            self.media_ms = round((self.frame_no) * 1000 / FPS)

    def report(self, later: float = 0.0) -> HealthReport:
        return self.meter.report(self.now + later)


def started(config: HealthConfig | None = None) -> Feed:
    meter = StreamHealth(config)
    feed = Feed(meter)
    meter.publish_started(feed.now)
    feed.configs()
    return feed


def kinds(report: HealthReport) -> list[str]:
    return [w.kind for w in report.warnings]


def test_codecs_resolution_rates_and_keyframe_interval() -> None:
    feed = started()
    feed.run(12.0)
    report = feed.report()
    assert (report.video_codec, report.audio_codec) == ("h264", "aac")
    assert report.codecs == "avc1.64000d,mp4a.40.2"
    assert (report.width, report.height) == (320, 240)
    assert (report.audio_sample_rate, report.audio_channels) == (44100, 2)
    assert report.frame_rate == 30.0
    assert report.keyframe_interval_seconds == 1.0
    # per second: 1 keyframe of 3000 B + 29 inter frames of ~1003 B, and 43 AAC frames of 300 B (one more
    # now and then: 44100/1024 is 43.07)
    video_kbps = (3000 + 29 * 1003) * 8 / 1000
    assert report.video_bitrate_kbps_10s is not None and abs(report.video_bitrate_kbps_10s - video_kbps) <= 3
    assert report.audio_bitrate_kbps_10s is not None and abs(report.audio_bitrate_kbps_10s - 103) <= 3
    assert report.bitrate_kbps_10s == report.video_bitrate_kbps_10s + report.audio_bitrate_kbps_10s
    assert report.bitrate_kbps_1s is not None and abs(report.bitrate_kbps_1s - report.bitrate_kbps_10s) <= 5
    assert report.warnings == () and not (report.frozen or report.black or report.silent or report.low_bitrate)
    assert (report.publishes, report.reconnects) == (1, 0)


def test_nothing_is_known_in_the_first_second() -> None:
    feed = started()
    feed.run(0.5)
    report = feed.report()
    assert report.frame_rate is None and report.bitrate_kbps_1s is None and report.bitrate_kbps_10s is None
    assert report.width == 320 and report.warnings == ()


def test_the_1s_window_follows_a_change_the_10s_window_averages_it() -> None:
    feed = started()
    feed.run(10.0, key=3000, inter=2000, audio=20)
    before = feed.report()
    feed.run(1.0, key=600, inter=200, audio=20)
    after = feed.report()
    assert after.bitrate_kbps_1s is not None and before.bitrate_kbps_1s is not None
    assert after.bitrate_kbps_1s < before.bitrate_kbps_1s / 5
    assert after.bitrate_kbps_10s is not None and before.bitrate_kbps_10s is not None
    # nine seconds as before and one tenth as much: the average falls by under a tenth
    assert 0.85 * before.bitrate_kbps_10s < after.bitrate_kbps_10s < 0.95 * before.bitrate_kbps_10s


def test_a_stall_reads_as_no_bitrate_and_no_verdict_on_the_picture() -> None:
    feed = started(HealthConfig(frozen_seconds=3, silent_seconds=3))
    feed.run(5.0)
    report = feed.report(later=12.0)  # nothing arrived for 12 s
    assert report.bitrate_kbps_1s == 0 and report.bitrate_kbps_10s == 0 and report.frame_rate == 0
    assert not report.frozen and not report.silent  # no frames arrive: nothing to judge


def test_frozen_after_the_window_of_static_frames_and_motion_clears_it() -> None:
    feed = started(HealthConfig(frozen_seconds=5))
    feed.run(3.0)  # moving
    feed.run(4.5, key=3000, inter=40)  # static: all-skip inter frames, same-size keyframes
    assert not feed.report().frozen, "static for 4.5 s < 5 s"
    feed.run(1.0, key=3000, inter=40)
    report = feed.report()
    assert report.frozen and kinds(report) == ["stream_frozen"]
    warning = report.warnings[0]
    assert "not changed for 6 s" in warning.reason  # the last moving frame came at 3.0 s, now is 8.5 s
    assert abs(warning.since - (T0 + 3.0 + 5.0)) < 0.1  # since when it counts as frozen
    feed.run(0.1, key=3000, inter=3000)  # something moved
    assert not feed.report().frozen


def test_the_frame_after_a_keyframe_is_not_judged_and_a_still_picture_is_not_low_bitrate() -> None:
    meter = StreamHealth(HealthConfig(frozen_seconds=3, low_bitrate_seconds=3))
    meter.publish_started(T0)
    meter.observe(video_config(), T0)
    for n in range(FPS * 6):
        index = n % FPS
        # x264 refines a still keyframe in the next frame (900 B > 3000/16), then codes all-skip frames
        size = 3000 if index == 0 else 900 if index == 1 else 40
        meter.observe(frame(n * 33, size, index == 0), T0 + n / FPS)
    report = meter.report(T0 + 6.0)
    assert report.frozen and report.low_bitrate
    assert kinds(report) == ["stream_frozen"], "the low bitrate of a still picture is the frozen warning's"


def test_a_keyframe_of_a_different_size_is_motion() -> None:
    feed = started(HealthConfig(frozen_seconds=3))
    feed.run(4.0, key=3000, inter=40)
    assert feed.report().frozen
    feed.run(1.0, key=6000, inter=40)  # a new picture at the keyframe, static frames around it
    assert not feed.report().frozen
    feed.run(3.5, key=6000, inter=40)
    assert feed.report().frozen


def test_a_still_picture_needs_more_than_one_keyframe_to_be_frozen() -> None:
    # An encoder with a 10 s GOP: one keyframe in the window says nothing about the next picture.
    feed = started(HealthConfig(frozen_seconds=3))
    feed.key_every = 10 * FPS
    feed.run(6.0, key=3000, inter=40)
    assert not feed.report().frozen


def test_black_is_tiny_keyframes_and_replaces_the_frozen_warning() -> None:
    feed = started(HealthConfig(frozen_seconds=3, black_seconds=3))
    feed.run(2.0)
    feed.run(4.0, key=60, inter=30)  # 320x240 = 300 macroblocks: a keyframe of 60 B is a flat picture
    report = feed.report()
    assert report.black and report.frozen
    assert kinds(report) == ["stream_black"]
    feed.run(1.0, key=3000, inter=1000)
    report = feed.report()
    assert not report.black and kinds(report) == []


def test_silence_is_tiny_aac_frames_for_the_window() -> None:
    feed = started(HealthConfig(silent_seconds=4))
    feed.run(2.0)
    feed.run(3.5, audio=8)
    assert not feed.report().silent
    feed.run(1.0, audio=SILENT_FRAME_BYTES)  # the largest frame still counted as silence
    report = feed.report()
    assert report.silent and kinds(report) == ["stream_silent"]
    assert "silent for 5 s" in report.warnings[0].reason  # the last sound came at 2.0 s, now is 6.5 s
    feed.run(0.1, audio=SILENT_FRAME_BYTES + 1)
    assert not feed.report().silent


def test_no_audio_track_is_not_silence() -> None:
    meter = StreamHealth(HealthConfig(silent_seconds=2))
    feed = Feed(meter)
    meter.publish_started(feed.now)
    meter.observe(video_config(), feed.now)
    feed.run(5.0, audio=None)
    report = feed.report()
    assert not report.silent and report.audio_codec is None and report.audio_bitrate_kbps_10s is None


def test_low_bitrate_needs_the_whole_window() -> None:
    feed = started(HealthConfig(low_bitrate_kbps=300, low_bitrate_seconds=6))
    # ~ (2000 + 29 * 300) * 8 + 43 * 20 * 8 ≈ 92 kb/s
    feed.run(6.0, key=2000, inter=300, audio=20)
    assert not feed.report().low_bitrate, "connected for under one full window"
    feed.run(1.5, key=2000, inter=300, audio=20)
    report = feed.report()
    assert report.low_bitrate and "low_bitrate" in kinds(report)
    assert "below 300 kb/s for 6 s" in next(w.reason for w in report.warnings if w.kind == "low_bitrate")
    feed.run(6.0, key=8000, inter=2000)  # ~ 540 kb/s
    assert not feed.report().low_bitrate


def test_the_default_low_bitrate_window_is_30_s() -> None:
    assert (HealthConfig().low_bitrate_kbps, HealthConfig().low_bitrate_seconds) == (300, 30)
    feed = started()
    feed.run(29.0, key=2000, inter=300, audio=20)
    assert not feed.report().low_bitrate
    feed.run(2.5, key=2000, inter=300, audio=20)
    assert feed.report().low_bitrate


def test_reconnects_are_counted_and_judged_afresh() -> None:
    feed = started(HealthConfig(frozen_seconds=3))
    feed.run(4.0, key=3000, inter=40)
    assert feed.report().frozen
    for _ in range(2):
        feed.now += 2.0  # the encoder was away
        feed.meter.publish_started(feed.now)
        feed.configs()
        feed.run(1.0, key=3000, inter=40)
    report = feed.report()
    assert (report.publishes, report.reconnects) == (3, 2)
    assert not report.frozen, "a new publisher's picture is judged from its own frames"


def test_a_clock_stepping_back_loses_no_bytes() -> None:
    meter = StreamHealth()
    meter.publish_started(T0)
    meter.observe(frame(0, 1000, True), T0 + 0.5)
    meter.observe(frame(33, 1000, False), T0 + 1.2)
    meter.observe(frame(66, 1000, False), T0 + 0.9)  # counted into the current second
    assert meter.report(T0 + 2.0).bitrate_kbps_1s == 16


def test_sink_stamps_arrival_times_from_its_clock() -> None:
    meter = StreamHealth()
    times = iter([T0, T0 + 0.5, T0 + 1.1])
    meter.publish_started(T0)
    sink = HealthSink(meter, lambda: next(times))
    for ts in (0, 33, 66):
        sink.push(frame(ts, 1000, ts == 0))
    sink.end()
    assert meter.report(T0 + 2.0).bitrate_kbps_1s == 8  # the frame of second T0+1 alone


def test_playback_measures_what_it_plays(tmp_path: Path) -> None:
    clock = [T0]
    playback = Playback(tmp_path, clock=lambda: clock[0])
    playback.begin("user-1", "session-1")
    stream = playback.live_stream("user-1")
    assert stream is not None
    stream.publish(video_config())
    stream.publish(audio_config())
    for i in range(60):
        clock[0] = T0 + i / FPS
        stream.publish(frame(i * 33, 3000 if i % 30 == 0 else 1000, i % 30 == 0))
    playback.begin("user-1", "session-1")  # the encoder reconnects
    clock[0] = T0 + 2.5
    report = playback.health("user-1")
    assert report is not None
    assert (report.width, report.height, report.reconnects) == (320, 240, 1)
    assert report.frame_rate == 30.0
    assert [r.publishes for r in playback.health_reports()] == [2]
    assert playback.health("someone-else") is None
    playback.close_all()
    assert playback.health("user-1") is None


def test_playback_without_health_measures_nothing(tmp_path: Path) -> None:
    playback = Playback(tmp_path, health=None)
    playback.begin("user-1", "session-1")
    assert playback.health("user-1") is None and playback.health_reports() == []
    playback.close_all()
