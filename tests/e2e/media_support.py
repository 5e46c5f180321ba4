"""Real peers for the media tests: Xvfb, the skill's exact ffmpeg command, ffprobe."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

SKILL_FFMPEG_ARGS = [
    "-thread_queue_size", "512",
    "-f", "x11grab", "-video_size", "1280x720", "-framerate", "30", "-i", "{display}",
    "-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=44100",
    "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
    "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k",
    "-pix_fmt", "yuv420p", "-g", "60",
    "-c:a", "aac", "-b:a", "128k",
    "-f", "flv",
]  # fmt: skip


def skill_ffmpeg(display: str, target: str) -> list[str]:
    """The skill's go-live command, word for word, with the display and RTMP target filled in."""
    args = [a.replace("{display}", display) for a in SKILL_FFMPEG_ARGS]
    return ["ffmpeg", "-hide_banner", "-loglevel", "error", *args, target]


def lavfi_publisher(target: str, seconds: float | None = None, size: str = "640x360") -> list[str]:
    """A cheap real-time publisher (``-re``) with the skill's codec settings."""
    duration = ["-t", str(seconds)] if seconds else []
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate=30",
        "-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=44100",
        *duration,
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", "800k",
        "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac", "-b:a", "128k", "-f", "flv", target,
    ]  # fmt: skip


@contextmanager
def xvfb() -> Iterator[str]:
    """A virtual display as the skill sets it up (1280x720x24, -ac); yields ":<n>"."""
    read_fd, write_fd = os.pipe()
    process = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x720x24", "-ac", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        assert number.isdigit(), "Xvfb did not report its display number"
        yield f":{number}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def running(command: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()


def ffprobe(url: str, *extra: str, timeout: float = 30) -> dict[str, Any]:
    result = subprocess.run(
        ["ffprobe", "-v", "error", *extra, "-show_streams", "-show_format", "-of", "json", url],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"ffprobe failed on {url}: {result.stderr}"
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def decode_errors(url: str, *input_args: str, seconds: float = 3, timeout: float = 60) -> str:
    """Decode ``seconds`` of ``url`` fully; returns what ffmpeg printed at level error (empty = clean)."""
    result = subprocess.run(
        ["ffmpeg", "-v", "error", *input_args, "-i", url, "-t", str(seconds), "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return result.stderr if result.returncode == 0 else f"exit {result.returncode}: {result.stderr}"


def codecs(probe: dict[str, Any]) -> set[str]:
    return {s["codec_name"] for s in probe["streams"]}


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> float:
    """Poll ``predicate`` until true; returns the seconds it took, fails after ``timeout``."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def status(http: httpx.Client, auth: dict[str, str]) -> dict[str, Any]:
    response = http.get("/api/v1/agent/stream/status", headers=auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def registered(http: httpx.Client, name: str) -> tuple[dict[str, Any], dict[str, str]]:
    body = {"agent_name": name, "wallet_address": "11111111111111111111111111111111", "ticker": "LIVE"}
    creds: dict[str, Any] = http.post("/api/v1/agent/register", json=body).json()
    return creds, {"Authorization": f"Bearer {creds['access_token']}"}


def save(path: Path, url: str, seconds: float) -> None:
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", url, "-t", str(seconds), "-c", "copy", str(path)],
        capture_output=True,
        timeout=seconds + 30,
        check=True,
    )
