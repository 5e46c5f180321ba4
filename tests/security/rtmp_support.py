"""Hostile RTMP peers for the security tests: raw sockets, from any loopback address (127.0.0.0/8)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from retake.ingest.rtmp.chunk import MAX_CHUNK_SIZE
from tests.ingest.support import ScriptedClient

EIGHT_MIB = 8 * 1024 * 1024


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` (VmRSS in /proc/<pid>/status), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS line")


def connect_from(source: str, port: int, timeout: float = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.bind((source, 0))
    sock.connect(("127.0.0.1", port))
    return sock


def message_header(csid: int, length: int, type_id: int, stream_id: int = 0) -> bytes:
    """A type-0 chunk header [RTMP §5.3.1.2.1] claiming a message of ``length`` bytes."""
    return (
        bytes((csid,)) + b"\x00\x00\x00" + length.to_bytes(3, "big") + bytes((type_id,)) + struct.pack("<I", stream_id)
    )


def two_partial_messages() -> bytes:
    """Handshake, the largest chunk size, then two 8 MiB messages on two chunk streams, each one byte short:
    before ``connect`` a server that buffers what headers claim holds 16 MiB for this connection."""
    client = ScriptedClient()
    body = bytes(EIGHT_MIB - 1)
    return (
        client.handshake()
        + client.set_chunk_size(MAX_CHUNK_SIZE)
        + message_header(3, EIGHT_MIB, 20)
        + body
        + message_header(4, EIGHT_MIB, 20)
        + body
    )


def chunk_size_one_flood(seconds: float) -> bytes:
    """Handshake, Set Chunk Size 1, then audio messages (dropped before a publish) that are a chunk per byte,
    enough for a peer sending at loopback speed for about ``seconds``."""
    client = ScriptedClient()
    data = bytearray(client.handshake() + client.set_chunk_size(1))
    # Each payload byte is its own chunk: a type-3 basic header (0xC4 for csid 4) before every byte but the first.
    message = message_header(4, 60_000, 8) + b"\x00" + b"\xc4\x00" * (60_000 - 1)
    data += message * max(1, int(seconds * 20))
    return bytes(data)


class Sender(threading.Thread):
    """Sends ``data`` from ``source`` and then holds the socket open until :meth:`close`."""

    def __init__(self, source: str, port: int, data: bytes) -> None:
        super().__init__(daemon=True)
        self.source, self.port, self.data = source, port, data
        self.sock: socket.socket | None = None
        self.error: str | None = None
        self.sent_all = False

    def run(self) -> None:
        try:
            self.sock = connect_from(self.source, self.port, timeout=30)
            self.sock.sendall(self.data)
            self.sent_all = True
        except OSError as exc:  # the server cut us off: what a protected server does
            self.error = type(exc).__name__

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def sample_peak(pid: int, stop: threading.Event, out: list[float]) -> None:
    while not stop.is_set():
        out.append(rss_mb(pid))
        time.sleep(0.05)


def flood_process(port: int, seconds: float, connections: int = 4) -> subprocess.Popen[bytes]:
    """Senders of :func:`chunk_size_one_flood` in a child process, so they take no time (or GIL) from the
    server's loop under test; they stop on their own after about ``seconds``."""
    code = (
        "import sys, threading, time\n"
        "from tests.security.rtmp_support import Sender, chunk_size_one_flood\n"
        f"data = chunk_size_one_flood({seconds})\n"
        f"senders = [Sender(f'127.0.0.{{20 + i}}', {port}, data) for i in range({connections})]\n"
        "[s.start() for s in senders]\n"
        "print('started', flush=True)\n"
        f"time.sleep({seconds})\n"
        "[s.close() for s in senders]\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*sys.path, str(root)])}
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, cwd=root)
    assert process.stdout is not None
    process.stdout.readline()  # the flood data is built and the senders are connecting
    return process
