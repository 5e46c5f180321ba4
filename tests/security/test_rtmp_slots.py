"""Issue 12 item 3: the 256-connection cap was global, so idle sockets (from one address or a few) kept any
new encoder out ("Connection reset by peer"), and the refusals wrote 4,602 warning lines in 25 s.

Against a real ``retake serve``: strangers keep the server full with idle sockets (re-opening whatever the
server closes), five per loopback address; a ninth connection from one address is refused by the
per-address limit; a real ffmpeg publisher with a valid key still gets in and goes live, and the refusals (about a
hundred a second) leave only a few log lines."""

from __future__ import annotations

import socket
import threading
import time

import httpx

from tests.e2e.conftest import Server
from tests.e2e.media_support import lavfi_publisher, registered, running, status, wait_until
from tests.security.rtmp_support import connect_from

IDLE = 300  # more than the default cap of 256
FLOOD_SECONDS = 12.0


class IdleFlood(threading.Thread):
    """Holds ``IDLE`` idle sockets open, five per address, re-opening every one the server closes."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.stop = threading.Event()
        self.sockets: dict[int, socket.socket | None] = dict.fromkeys(range(IDLE))
        self.opened = 0

    def source(self, slot: int) -> str:
        return f"127.0.{10 + slot // 250}.{1 + (slot % 250) // 5}"

    def run(self) -> None:
        while not self.stop.is_set():
            for slot, sock in self.sockets.items():
                if sock is not None and _alive(sock):
                    continue
                if sock is not None:
                    sock.close()
                try:
                    self.sockets[slot] = connect_from(self.source(slot), self.port, timeout=2)
                    self.opened += 1
                except OSError:
                    self.sockets[slot] = None
            self.stop.wait(0.05)
        for sock in self.sockets.values():
            if sock is not None:
                sock.close()


def _alive(sock: socket.socket) -> bool:
    try:
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        finally:
            sock.setblocking(True)
    except OSError:
        return False


def test_idle_strangers_cannot_keep_a_publisher_out(server: Server) -> None:
    flood = IdleFlood(server.rtmp_port)
    log_start = len(server.log())
    with httpx.Client(base_url=server.base, timeout=15) as http:
        _creds, auth = registered(http, "SlotSeeker")
        rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
        http.post("/api/v1/agent/stream/start", headers=auth)
        one_address = [connect_from("127.0.9.1", server.rtmp_port) for _ in range(9)]
        time.sleep(0.5)
        alive = sum(1 for sock in one_address if _alive(sock))
        for sock in one_address:
            sock.close()
        assert alive == 8, f"{alive} connections from one address held (limit 8)"
        flood.start()
        try:
            time.sleep(2.0)  # the server is full of idle strangers
            with running(lavfi_publisher(f"{rtmp['url']}/{rtmp['key']}", seconds=15)) as encoder:
                wait_until(lambda: status(http, auth)["is_live"], timeout=10)
                time.sleep(FLOOD_SECONDS - 2.5 - 2.0)  # live while the flood goes on
                assert encoder.poll() is None, "the publisher was cut off"
                assert status(http, auth)["is_live"]
        finally:
            flood.stop.set()
            flood.join(timeout=10)
    lines = [
        line
        for line in server.log()[log_start:].splitlines()
        if "rtmp connection refused" in line or "rtmp shed" in line
    ]
    print(f"{flood.opened} idle connections opened, {len(lines)} refusal/shed log lines")
    assert flood.opened > IDLE, "the flood never had to re-open a socket"
    assert len(lines) <= 30, f"{len(lines)} refusal lines in {FLOOD_SECONDS:.0f} s"
