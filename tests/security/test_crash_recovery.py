"""Issue 12 item 5: ``kill -9`` of a real ``retake serve`` mid-stream, restarted on the same data folder and
database (SQLite and a throwaway PostgreSQL database), recovers what the node held.

(a) the orphaned session enters the reconnect grace and is closed after it; its recording, finished from
    the segments on disk, plays as VOD with the duration of the media pushed before the kill;
(b) a republish within the grace resumes the same session; the VOD holds both parts (a discontinuity
    between them) and no file of the first part was overwritten;
(c) the key's ``publishing`` flag does not survive the crash: a new ``/agent/rtmp`` revokes the old key.

"Pushed" is what ffmpeg's ``-progress`` said it had muxed into the RTMP connection (``out_time``).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Server, launch_server, stop_server
from tests.e2e.media_support import ffprobe, lavfi_publisher, registered, running, status, wait_until
from tests.support import FakeOEmbed, free_port, new_db_name, pg_available, pg_create, pg_drop

pytestmark = pytest.mark.e2e

GRACE = 3.0


@dataclass
class Node:
    """One node's identity across restarts: ports (so its public URL stays the same), data folder, database."""

    tmp: Path
    oembed_url: str
    database_url: str | None
    port: int = field(default_factory=free_port)
    rtmp_port: int = field(default_factory=free_port)
    runs: int = 0

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    def start(self, grace: float = GRACE) -> Server:
        self.runs += 1
        env = {
            **os.environ,
            "RETAKE_PORT": str(self.port),
            "RETAKE_RTMP_PORT": str(self.rtmp_port),
            "RETAKE_DATA_DIR": str(self.data_dir),
            "RETAKE_OEMBED_URL": self.oembed_url,
            "RETAKE_REGISTER_RATE": "1000/minute",
            "RETAKE_RECONNECT_GRACE_SECONDS": str(grace),
            "RETAKE_PREVIEW_INTERVAL_SECONDS": "0",
        }
        if self.database_url:
            env["RETAKE_DATABASE_URL"] = self.database_url
        log_path = self.tmp / f"server{self.runs}.log"
        return launch_server(env, self.port, self.rtmp_port, self.data_dir, log_path, poll=0.1)


@pytest.fixture(params=["sqlite", "postgres"])
def node(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Node]:
    name = None
    url = None
    if request.param == "postgres":
        if not pg_available():
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); run `make services`")
        name = new_db_name("retake_crash")
        url = pg_create(name)
    try:
        with FakeOEmbed().running() as oembed:
            yield Node(tmp_path, oembed.url, url)
    finally:
        if name is not None:
            pg_drop(name)
        for log in sorted(tmp_path.glob("server*.log")):  # shown by pytest when the test failed
            print(f"---- {log.name} (tail) ----\n{log.read_text(errors='replace')[-3000:]}")


class Publisher:
    """A real-time lavfi ffmpeg publisher whose ``pushed`` seconds come from its own ``-progress`` report."""

    def __init__(self, target: str) -> None:
        argv = lavfi_publisher(target)
        argv[1:1] = ["-progress", "pipe:1", "-stats_period", "0.1"]
        quiet = subprocess.DEVNULL
        self.process = subprocess.Popen(argv, stdin=quiet, stdout=subprocess.PIPE, stderr=quiet)
        self.pushed = 0.0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(b"out_time_us=") and line[12:].strip().isdigit():
                self.pushed = int(line[12:]) / 1e6

    def wait_pushed(self, seconds: float) -> None:
        wait_until(lambda: self.pushed >= seconds, timeout=seconds + 20)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        self.process.wait(timeout=10)
        self._reader.join(timeout=5)


def _kill_mid_stream(server: Server, publisher: Publisher) -> float:
    """SIGKILL the server while ``publisher`` streams; the media it had pushed by then, in seconds."""
    pushed = publisher.pushed
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    publisher.stop()
    return pushed


@dataclass
class Crashed:
    user: str
    auth: dict[str, str]
    key: str
    session: str
    pushed: float  # seconds of media the publisher had pushed when the server was killed


def _stream_and_kill(node: Node, http: httpx.Client, name: str, seconds: float) -> Crashed:
    """A first run of the node: an agent goes live and the server is SIGKILLed after ``seconds`` of media."""
    server = node.start(grace=60)
    creds, auth = registered(http, name)
    key = http.post("/api/v1/agent/rtmp", headers=auth).json()["key"]
    publisher = Publisher(f"rtmp://127.0.0.1:{node.rtmp_port}/live/{key}")
    try:
        wait_until(lambda: status(http, auth)["is_live"], timeout=20)
        session = status(http, auth)["session_id"]
        publisher.wait_pushed(seconds)
        pushed = _kill_mid_stream(server, publisher)
    finally:
        publisher.stop()
        stop_server(server, signal.SIGKILL)
    return Crashed(creds["userDbId"], auth, key, session, pushed)


def _recorded(http: httpx.Client, user: str, timeout: float) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def ended() -> bool:
        found[:] = http.get(f"/api/v1/sessions/recorded/{user}/").json()["sessions"]
        return bool(found)

    try:
        wait_until(ended, timeout=timeout, interval=0.25)
    except AssertionError:
        raise AssertionError(f"no ended session of {user} listed as recorded after {timeout:.0f} s") from None
    return found[0]


def _vod_seconds(recording_url: str | None) -> float:
    assert recording_url, "the session ended without a recording"
    return float(ffprobe(recording_url)["format"]["duration"])


def _media_files(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    return {
        p.name: (p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes())
        for p in folder.iterdir()
        if p.suffix in (".mp4", ".m4s")
    }


def test_orphaned_session_is_closed_after_the_grace_and_its_recording_plays(node: Node) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{node.port}", timeout=15) as http:
        crashed = _stream_and_kill(node, http, "CrashedOnce", seconds=4)
        user, auth, session, pushed = crashed.user, crashed.auth, crashed.session, crashed.pushed

        server = node.start(grace=GRACE)
        try:
            took = time.monotonic()
            item = _recorded(http, user, timeout=GRACE + 10)
            took = time.monotonic() - took
            assert item["session_id"] == session
            assert took >= GRACE - 1.5, f"closed after {took:.1f} s, before the reconnect grace"
            assert status(http, auth)["session_id"] is None  # closed, not open forever
            vod = _vod_seconds(item["recording_url"])
            print(f"figures: pushed {pushed:.2f} s, VOD {vod:.2f} s, duration_seconds {item['duration_seconds']}")
            assert vod == pytest.approx(pushed, abs=1.0), f"VOD {vod:.2f} s of {pushed:.2f} s pushed"
            assert item["duration_seconds"] == pytest.approx(vod, abs=1.0)
        finally:
            stop_server(server)


def test_republish_within_the_grace_resumes_and_keeps_both_parts(node: Node) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{node.port}", timeout=15) as http:
        crashed = _stream_and_kill(node, http, "CrashResumer", seconds=3)
        user, auth, key, session, first = crashed.user, crashed.auth, crashed.key, crashed.session, crashed.pushed
        folder = node.data_dir / "recordings" / session
        before = _media_files(folder)
        assert before, "nothing was recorded before the kill"

        server = node.start(grace=30)
        publisher = Publisher(f"rtmp://127.0.0.1:{node.rtmp_port}/live/{key}")
        try:
            wait_until(lambda: status(http, auth)["is_live"], timeout=20)
            assert status(http, auth)["session_id"] == session  # resumed, not a new session
            publisher.wait_pushed(3)
            second = publisher.pushed
            assert http.post("/api/v1/agent/stream/stop", headers=auth).status_code == 200
            publisher.stop()
            item = _recorded(http, user, timeout=10)
            vod = _vod_seconds(item["recording_url"])
        finally:
            publisher.stop()
            stop_server(server)

    assert item["session_id"] == session
    after = _media_files(folder)
    rewritten = sorted(n for n in before if n in after and after[n][:2] != before[n][:2])
    total = first + second
    print(
        f"figures: pushed {first:.2f} + {second:.2f} s, VOD {vod:.2f} s, "
        f"duration_seconds {item['duration_seconds']}, pre-crash files rewritten {rewritten}"
    )
    assert set(before) <= set(after), "files of the first part are gone"
    # At most a part half-written at the kill may be cut off the open segment; nothing else changes.
    assert len(rewritten) <= 1 and all(before[n][2].startswith(after[n][2]) for n in rewritten), rewritten
    assert set(after) - set(before), "the resumed part wrote no new files"
    playlist = (folder / "index.m3u8").read_text()
    assert playlist.count("#EXT-X-DISCONTINUITY") >= 1
    # Each segment a byte range of its recorder's media file (media.m4s, then r1-media.m4s), none listed twice.
    listed = re.findall(r"^#EXT-X-BYTERANGE:(\S+)\n(\S+\.m4s)$", playlist, re.MULTILINE)
    assert len(listed) == len(set(listed)) == playlist.count("#EXTINF:")
    assert any(n in before for _, n in listed) and any(n not in before for _, n in listed)
    assert vod == pytest.approx(total, abs=1.0), f"VOD {vod:.2f} s of {first:.2f} + {second:.2f} s pushed"
    assert item["duration_seconds"] == pytest.approx(vod, abs=1.0)


def test_new_stream_key_after_a_crash_revokes_the_old_one(node: Node) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{node.port}", timeout=15) as http:
        crashed = _stream_and_kill(node, http, "CrashKeyed", seconds=2)
        auth, old_key = crashed.auth, crashed.key

        server = node.start(grace=30)
        try:
            new_key = http.post("/api/v1/agent/rtmp", headers=auth).json()["key"]
            with running(lavfi_publisher(f"rtmp://127.0.0.1:{node.rtmp_port}/live/{old_key}", seconds=2)) as old:
                old.wait(timeout=20)
            assert old.returncode != 0, "the pre-crash key still publishes after a new /agent/rtmp"
            assert status(http, auth)["is_live"] is False
            with running(lavfi_publisher(f"rtmp://127.0.0.1:{node.rtmp_port}/live/{new_key}")):
                wait_until(lambda: status(http, auth)["is_live"], timeout=20)
        finally:
            stop_server(server)
