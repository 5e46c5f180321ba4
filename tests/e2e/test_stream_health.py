"""Stream health against a real ``retake serve`` and real ffmpeg publishers: a normal stream is measured right
and warned of nothing; a frozen picture, a black picture, silent audio and a 100 kb/s stream each get their own
warning in ``stream/status``; /metrics counts them without a label per stream; a reconnect is counted.

The windows are shortened (4 s picture and sound, 8 s bitrate) so the five streams run at once in ~30 s."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, start_server, stop_server
from tests.e2e.media_support import registered, running, status, wait_until
from tests.support import FakeOEmbed

HEALTH_ENV = {
    "RETAKE_STREAM_HEALTH_FROZEN_SECONDS": "4",
    "RETAKE_STREAM_HEALTH_BLACK_SECONDS": "4",
    "RETAKE_STREAM_HEALTH_SILENT_SECONDS": "4",
    "RETAKE_STREAM_HEALTH_LOW_BITRATE_SECONDS": "8",  # 300 kb/s stays the threshold
    "RETAKE_PREVIEW_INTERVAL_SECONDS": "0",  # no preview decoding competing for the two cores
}
HEALTH_KINDS = {"stream_frozen", "stream_black", "stream_silent", "low_bitrate"}
SINE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"]
SILENCE = ["-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=44100"]


def publisher(
    target: str, video: list[str], audio: list[str], video_kbps: int = 800, audio_kbps: int = 128
) -> list[str]:
    rate = f"{video_kbps}k"
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", *video, *audio,
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-b:v", rate, "-maxrate", rate, "-bufsize", f"{2 * video_kbps}k",
        "-pix_fmt", "yuv420p", "-g", "30", "-x264-params", "keyint=30",
        "-c:a", "aac", "-b:a", f"{audio_kbps}k", "-f", "flv", target,
    ]  # fmt: skip


def still_image(path: Path) -> Path:
    """One frame of ffmpeg's test pattern as a PNG: a real picture that never changes when looped."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360", "-frames:v", "1", str(path)],
        check=True,
        timeout=30,
    )
    return path


@pytest.fixture
def health_server(tmp_path: Path, oembed_server: FakeOEmbed) -> Iterator[Server]:
    srv = start_server(tmp_path, oembed_server.url, **HEALTH_ENV)
    yield srv
    stop_server(srv)
    print("---- retake serve log (tail) ----")
    print(srv.log()[-6000:])


class Streamer:
    def __init__(self, http: httpx.Client, name: str) -> None:
        self.http = http
        _, self.auth = registered(http, name)
        rtmp = http.post("/api/v1/agent/rtmp", headers=self.auth).json()
        self.target = f"{rtmp['url']}/{rtmp['key']}"
        self.session_id = http.post("/api/v1/agent/stream/start", headers=self.auth).json()["session_id"]

    def status(self) -> dict[str, Any]:
        return status(self.http, self.auth)

    def health_kinds(self) -> list[str]:
        body = self.status()
        return [w["kind"] for w in body["warnings"] if w["kind"] in HEALTH_KINDS]


def test_stream_health_measures_and_warns(health_server: Server, tmp_path: Path) -> None:
    still = still_image(tmp_path / "still.png")
    moving_360 = ["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"]
    with httpx.Client(base_url=health_server.base, timeout=15) as http, ExitStack() as stack:
        normal, frozen, black, silent, low = (
            Streamer(http, name) for name in ("HealthyBot", "FrozenBot", "BlackBot", "SilentBot", "ThinBot")
        )
        expected = {"HealthyBot": [], "FrozenBot": ["stream_frozen"], "BlackBot": ["stream_black"]}
        expected |= {"SilentBot": ["stream_silent"], "ThinBot": ["low_bitrate"]}
        commands = {
            normal: publisher(
                normal.target, ["-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30"], SINE, video_kbps=1000
            ),
            frozen: publisher(frozen.target, ["-loop", "1", "-framerate", "30", "-i", str(still)], SINE),
            black: publisher(black.target, ["-f", "lavfi", "-i", "color=c=black:size=640x360:rate=30"], SINE),
            silent: publisher(silent.target, moving_360, SILENCE),
            low: publisher(low.target, moving_360, SINE, video_kbps=100, audio_kbps=64),
        }
        encoders = {s: stack.enter_context(running(c)) for s, c in commands.items()}
        streamers = {"HealthyBot": normal, "FrozenBot": frozen, "BlackBot": black, "SilentBot": silent}
        streamers["ThinBot"] = low
        wait_until(lambda: all(s.status()["is_live"] for s in streamers.values()), timeout=30)
        live_at = time.monotonic()

        # every unhealthy stream gets its own warning, and only it, within 30 s of going live
        pending = {name for name, kinds in expected.items() if kinds}
        while pending and time.monotonic() - live_at < 30:
            pending = {name for name in pending if streamers[name].health_kinds() != expected[name]}
            time.sleep(0.5)
        assert not pending, {name: streamers[name].health_kinds() for name in pending}
        took = time.monotonic() - live_at
        # past every window (8 s bitrate): the healthy stream has stayed clean
        time.sleep(max(0.0, 10.0 - took))
        for name, streamer in streamers.items():
            assert streamer.health_kinds() == expected[name], name

        body = normal.status()
        health = body["health"]
        assert (health["video_codec"], health["audio_codec"]) == ("h264", "aac")
        assert health["codecs"].startswith("avc1.") and health["codecs"].endswith(",mp4a.40.2")
        assert (health["width"], health["height"]) == (1280, 720)
        assert 25 <= health["frame_rate"] <= 32, health
        assert health["keyframe_interval_seconds"] == pytest.approx(1.0, abs=0.05)
        assert (health["audio_sample_rate"], health["audio_channels"]) == (44100, 1)  # lavfi sine is mono
        pushed = 1000 + 128
        assert 0.75 * pushed <= health["bitrate_kbps_10s"] <= 1.25 * pushed, health  # x264 ABR, ~10 s in
        assert health["bitrate_kbps_1s"] > 0 and health["publishes"] == 1 and health["reconnects"] == 0
        assert not (health["frozen"] or health["black"] or health["silent"] or health["low_bitrate"])

        frozen_body = frozen.status()
        warning = next(w for w in frozen_body["warnings"] if w["kind"] == "stream_frozen")
        assert warning["session_id"] == frozen.session_id and warning["created_at"].endswith("Z")
        assert "has not changed" in warning["reason"] and frozen_body["health"]["frozen"] is True
        assert frozen.status()["warnings"][0]["id"] == warning["id"], "an episode keeps its id"
        assert low.status()["health"]["bitrate_kbps_10s"] < 300
        assert silent.status()["health"]["silent"] is True

        metrics = http.get("/metrics").text
        assert 'retake_stream_health_streams{condition="black"} 1.0' in metrics
        assert 'retake_stream_health_streams{condition="silent"} 1.0' in metrics
        assert _gauge(metrics, 'retake_stream_health_streams{condition="frozen"}') >= 1  # black is frozen too
        assert _gauge(metrics, 'retake_stream_health_streams{condition="low_bitrate"}') >= 1
        assert _gauge(metrics, "retake_stream_bitrate_kbps_gcount") == 5
        assert _gauge(metrics, 'retake_stream_bitrate_kbps_bucket{le="300.0"}') >= 1
        assert "HealthyBot" not in metrics and normal.session_id not in metrics

        # the healthy encoder drops and comes back: the session counts a second publish
        encoder = encoders[normal]
        encoder.terminate()
        encoder.wait(timeout=10)
        stack.enter_context(running(commands[normal]))
        wait_until(lambda: (normal.status()["health"] or {}).get("reconnects") == 1, timeout=20)
        assert normal.status()["health"]["publishes"] == 2


def _gauge(metrics: str, name: str) -> float:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in /metrics")
