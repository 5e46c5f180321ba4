"""Issue 14 item 5 against a real server and a real encoder: HTTP-FLV and WebSocket-FLV viewers are written from
the publish path, whole FLV tags in each HTTP chunk / WebSocket frame; a viewer that stops reading is skipped to
the next keyframe (its connection stays open) and resumes with an FLV stream that decodes, while viewers that
keep reading lose nothing."""

from __future__ import annotations

import base64
import itertools
import os
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from retake.media.flv import FlvTag, VideoTagBody
from tests.e2e.conftest import Server
from tests.e2e.media_support import lavfi_publisher, registered, running, status, wait_until

PAUSE_SECONDS = 14.0  # well past the 4 s lag a viewer may have, once the kernel's buffers are full too
RESUMED_SECONDS = 5.0


@dataclass
class Viewer:
    """A raw-socket viewer: reads, stops reading for ``pause`` seconds, reads again; keeps what it got."""

    port: int
    path: str
    websocket: bool
    pause: float
    body: bytearray = field(default_factory=bytearray)
    closed_by_server: bool = False
    status_line: bytes = b""

    def run(self, start_pause_after: float, stop_at: float) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a small window: the server sees the stall
        sock.connect(("127.0.0.1", self.port))
        sock.sendall(self._request())
        sock.settimeout(0.5)
        head = b""
        paused = False
        pause_at = time.monotonic() + start_pause_after
        try:
            while time.monotonic() < stop_at:
                if self.pause and not paused and time.monotonic() >= pause_at:
                    paused = True
                    time.sleep(self.pause)
                try:
                    data = sock.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    self.closed_by_server = True
                    return
                if not self.status_line:
                    head += data
                    if b"\r\n\r\n" not in head:
                        continue
                    raw_head, _, data = head.partition(b"\r\n\r\n")
                    self.status_line = raw_head.split(b"\r\n", 1)[0]
                self.body += data
        finally:
            sock.close()

    def _request(self) -> bytes:
        lines = [f"GET {self.path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        if self.websocket:
            key = base64.b64encode(os.urandom(16)).decode()
            lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}"]
            lines += ["Sec-WebSocket-Version: 13"]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()

    def pieces(self) -> list[bytes]:
        """The complete HTTP chunks or WebSocket binary messages received (a cut-off last one left out)."""
        return websocket_messages(bytes(self.body)) if self.websocket else http_chunks(bytes(self.body))


def http_chunks(body: bytes) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            return out
        size = int(body[pos:end], 16)
        if size == 0 or end + 2 + size + 2 > len(body):
            return out
        out.append(body[end + 2 : end + 2 + size])
        assert body[end + 2 + size : end + 4 + size] == b"\r\n", "bad chunk framing"
        pos = end + 4 + size


def websocket_messages(body: bytes) -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    while pos + 2 <= len(body):
        first, length = body[pos], body[pos + 1] & 0x7F
        assert body[pos + 1] & 0x80 == 0, "server frames are not masked"
        header = 2
        if length == 126:
            if pos + 4 > len(body):
                break
            length, header = struct.unpack_from("!H", body, pos + 2)[0], 4
        elif length == 127:
            if pos + 10 > len(body):
                break
            length, header = struct.unpack_from("!Q", body, pos + 2)[0], 10
        if pos + header + length > len(body):
            break
        if first == 0x82:  # final binary frame; pings (0x89) are skipped
            out.append(body[pos + header : pos + header + length])
        else:
            assert first in (0x89, 0x88), f"unexpected frame 0x{first:02x}"
        pos += header + length
    return out


def whole_tags(piece: bytes, pos: int = 0) -> list[FlvTag]:
    """The FLV tags of one piece, which must hold whole tags and nothing else."""
    tags = []
    while pos < len(piece):
        tag, used = FlvTag.parse_prefix(piece, pos)
        assert tag is not None, f"a piece ends inside a tag ({len(piece)} bytes, tag at {pos})"
        tags.append(tag)
        pos += used
    return tags


def video(tags: list[FlvTag]) -> list[FlvTag]:
    return [t for t in tags if t.tag_type == 9 and t.payload[1] == 1]


def check_viewer(viewer: Viewer, tmp_path: Path, name: str) -> list[FlvTag]:
    assert viewer.status_line.split(b" ")[1] in (b"200", b"101"), viewer.status_line
    assert not viewer.closed_by_server, f"{name}: the server cut the viewer"
    pieces = viewer.pieces()
    assert pieces and pieces[0][:3] == b"FLV"
    tags = whole_tags(pieces[0], 13)  # the FLV header and the bootstrap (metadata, headers, cached GOP)
    later = [whole_tags(piece) for piece in pieces[1:]]  # each write: the frames of one ingest read
    assert len(later) > 100 and max(map(len, later)) < 20, f"{name}: writes of many frames"
    tags += [t for batch in later for t in batch]
    # What the viewer got decodes: H.264 + AAC from the start to the last complete tag, skip included.
    path = tmp_path / f"{name}.flv"
    path.write_bytes(b"".join(pieces))
    result = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "null", "-"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stderr == "", f"{name}: {result.stderr}"
    return tags


def test_slow_flv_viewers_skip_to_a_keyframe_and_resume(server: Server, tmp_path: Path) -> None:
    port = int(server.base.rsplit(":", 1)[1])
    with httpx.Client(base_url=server.base, timeout=15) as http:
        creds, auth = registered(http, "SlowViewers")
        rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
        http.post("/api/v1/agent/stream/start", headers=auth).raise_for_status()
        path = f"/live/{creds['userDbId']}.flv"
        with running(lavfi_publisher(f"{rtmp['url']}/{rtmp['key']}")):
            wait_until(lambda: status(http, auth)["is_live"], timeout=20)
            viewers = {
                "fast-http": Viewer(port, path, websocket=False, pause=0),
                "fast-ws": Viewer(port, path, websocket=True, pause=0),
                "slow-http": Viewer(port, path, websocket=False, pause=PAUSE_SECONDS),
                "slow-ws": Viewer(port, path, websocket=True, pause=PAUSE_SECONDS),
            }
            stop_at = time.monotonic() + 2.0 + PAUSE_SECONDS + RESUMED_SECONDS
            threads = [threading.Thread(target=v.run, args=(2.0, stop_at)) for v in viewers.values()]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=PAUSE_SECONDS + 40)
    tags = {name: check_viewer(v, tmp_path, name) for name, v in viewers.items()}
    for name in ("fast-http", "fast-ws"):
        times = [t.timestamp_ms for t in video(tags[name])]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert max(gaps) < 500, f"{name} lost frames: a {max(gaps)} ms gap"
        assert times[-1] - times[0] > 1000 * (PAUSE_SECONDS + RESUMED_SECONDS) - 3000
    live_edge = video(tags["fast-http"])[-1].timestamp_ms
    for name in ("slow-http", "slow-ws"):
        frames = video(tags[name])
        jumps = [i for i in range(1, len(frames)) if frames[i].timestamp_ms - frames[i - 1].timestamp_ms > 2000]
        assert jumps, f"{name} was never skipped ahead"
        assert all(VideoTagBody.parse(frames[i].payload).is_keyframe for i in jumps), f"{name} resumed mid-GOP"
        assert frames[-1].timestamp_ms > live_edge - 3000, f"{name} did not catch up with the live edge"
