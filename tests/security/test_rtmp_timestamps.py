"""Issue 12 item 10 (timestamps): a publisher whose timestamps start at or past 2^31 ms was dropped, and
±500 ms timestamp jitter doubled the recording's length.

ffmpeg's FLV muxer cannot send such timestamps (it keeps 31 bits), so a real ffmpeg recording (H.264 +
AAC) is replayed by a scripted RTMP publisher into a real ``retake serve``, in real time, with its
timestamps rewritten: started past 2^31 ms, started just before the 2^32 wrap, and jittered by ±500 ms.
The recording must last as long as the media (± 1.5 s)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from retake.ingest.rtmp.chunk import RtmpMessage
from retake.ingest.rtmp.messages import MessageType
from tests.e2e.conftest import Server
from tests.e2e.media_support import ffprobe, registered, status, wait_until
from tests.ingest.support import ScriptedClient, flv_tags, status_codes

SECONDS = 6
_TYPES = {"audio": MessageType.AUDIO, "video": MessageType.VIDEO, "script": MessageType.DATA_AMF0}
_JITTER = [500, -500, 250, -250, 0, 400, -400]


@pytest.fixture(scope="module")
def flv(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int, bytes]]:
    path = tmp_path_factory.mktemp("flv") / "source.flv"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30", "-f", "lavfi",
         "-i", "sine=frequency=440:sample_rate=44100", "-t", str(SECONDS), "-c:v", "libx264", "-preset",
         "ultrafast", "-g", "30", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv", str(path)],
        check=True, timeout=60,
    )  # fmt: skip
    return flv_tags(Path(path).read_bytes())


def _publish(port: int, key: str, tags: list[tuple[str, int, bytes]], rewrite: Callable[[str, int, int], int]) -> None:
    client = ScriptedClient()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(client.handshake() + client.connect() + client.publish_setup(key))
        messages: list[RtmpMessage] = []
        while not status_codes(messages):
            messages += client.receive(sock.recv(65536))
        assert status_codes(messages)[-1] == "NetStream.Publish.Start"
        began = time.monotonic()
        for index, (kind, timestamp, body) in enumerate(tags):
            delay = timestamp / 1000 - (time.monotonic() - began)
            if delay > 0:
                time.sleep(delay)  # real time, as an encoder sends
            sent = rewrite(kind, timestamp, index) & 0xFFFFFFFF
            csid = {"audio": 4, "video": 6, "script": 5}[kind]
            sock.sendall(client.message(RtmpMessage(_TYPES[kind], 1, sent, body, csid)))
        time.sleep(0.5)


CASES: dict[str, Callable[[str, int, int], int]] = {
    "start_past_2_31": lambda kind, ts, i: (1 << 31) + 5_000 + ts,
    "wraps_at_2_32": lambda kind, ts, i: (1 << 32) - 2_000 + ts,
    "jitter_500ms": lambda kind, ts, i: 10_000 + ts + (_JITTER[i % len(_JITTER)] if kind == "video" else 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_rewritten_timestamps_go_live_and_record_their_length(
    server: Server, flv: list[tuple[str, int, bytes]], case: str
) -> None:
    with httpx.Client(base_url=server.base, timeout=15) as http:
        _creds, auth = registered(http, f"Clock{case[:8]}")
        rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
        start = http.post("/api/v1/agent/stream/start", headers=auth).json()
        _publish(server.rtmp_port, rtmp["key"], flv, CASES[case])
        wait_until(lambda: status(http, auth)["session_id"] == start["session_id"], timeout=5)
        http.post("/api/v1/agent/stream/stop", headers=auth)
        recording = f"{server.base}/recordings/{start['session_id']}/index.m3u8"
        wait_until(lambda: httpx.get(recording).status_code == 200, timeout=10)
        duration = float(ffprobe(recording)["format"]["duration"])
    assert SECONDS - 1.5 <= duration <= SECONDS + 1.5, f"{case}: recorded {duration:.1f} s of {SECONDS} s"
