"""Issue 12 item 2: requests whose body never comes must not hold the node's request slots.

300 sockets send ``POST /api/v1/agent/register`` with ``Content-Length: 1000`` and never the body. Before, they
filled ``RETAKE_MAX_INFLIGHT_REQUESTS`` (256) and every API and page request was answered 503 for as long as
they stayed open. Now a request counts only once its body is in, and the body has a deadline (here 4 s).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.security.conftest import address, closed_within, serve

SLOW = 300
DEADLINE = 4.0
HEAD = (
    b"POST /api/v1/agent/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("slow"), RETAKE_REQUEST_TIMEOUT_SECONDS=str(DEADLINE))


def test_bodies_that_never_come_hold_no_slot_and_are_cut(server: Server) -> None:
    slow: list[socket.socket] = []
    try:
        opened = time.monotonic()
        for _ in range(SLOW):
            sock = socket.create_connection(address(server))
            sock.sendall(HEAD)
            slow.append(sock)
        time.sleep(0.5)  # every head has reached the app
        statuses = []
        with httpx.Client(base_url=server.base, timeout=5) as http:
            for _ in range(10):
                statuses.append(http.get("/api/v1/users/newest/").status_code)
                statuses.append(http.get("/").status_code)
        refused = sum(status == 503 for status in statuses)
        assert refused == 0, f"{refused} of {len(statuses)} normal requests answered 503 while slow bodies were open"
        assert set(statuses) == {200}, statuses
        # Each slow request is answered 408 and its connection closed once the deadline has passed.
        waited = [closed_within(sock, DEADLINE + 5 - (time.monotonic() - opened)) for sock in slow]
        still_open = sum(w is None for w in waited)
        assert still_open == 0, f"{still_open} of {SLOW} slow requests still open {DEADLINE + 5:.0f} s later"
    finally:
        for sock in slow:
            sock.close()
    with httpx.Client(base_url=server.base, timeout=5) as http:
        assert http.get("/api/v1/users/newest/").status_code == 200


def test_a_slow_request_is_answered_408_in_the_error_shape(server: Server) -> None:
    with socket.create_connection(address(server)) as sock:
        sock.sendall(HEAD + b"{")  # one byte of the thousand
        sock.settimeout(DEADLINE + 5)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b'"code": "request_timeout"' in answer
