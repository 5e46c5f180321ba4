"""Issue 12 items 9 and 10: request heads are bounded (16 KiB, 100 headers) and have a deadline; silent,
trickling and idle connections are closed.

Before, 30 MB of headers were accepted, and a connection that sent nothing, or a header byte now and then,
stayed open indefinitely (uvicorn arms its keep-alive timer only after a response).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.conftest import Server
from tests.security.conftest import address, closed_within, serve

DEADLINE = 2.0
KEEP_ALIVE = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(
        tmp_path_factory.mktemp("heads"),
        RETAKE_REQUEST_TIMEOUT_SECONDS=str(DEADLINE),
        RETAKE_KEEP_ALIVE_SECONDS=str(KEEP_ALIVE),
    )


def _exchange(server: Server, head: bytes, body_after: int = 0) -> bytes:
    """Send ``head`` (in a thread: the server may stop reading) and return what the server answered."""
    with socket.create_connection(address(server)) as sock:
        sent_all = threading.Event()

        def send() -> None:
            try:
                view = memoryview(head)
                for start in range(0, len(view), 1 << 20):
                    sock.sendall(view[start : start + (1 << 20)])
                sent_all.set()
            except OSError:
                pass  # refused part-way: the answer (or the reset) tells

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        sock.settimeout(20)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                    break
        except OSError:
            pass
        sender.join(5)
        return answer


def test_thirty_megabytes_of_headers_are_refused(server: Server) -> None:
    huge = b"GET /api/v1/users/newest/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (30 * 1024 * 1024) + b"\r\n\r\n"
    answer = _exchange(server, huge)
    assert not answer.startswith((b"HTTP/1.1 200", b"HTTP/1.1 404")), "30 MB of headers were accepted"
    assert answer.startswith(b"HTTP/1.1 431"), answer[:300]
    assert b'"code": "headers_too_large"' in answer


def test_header_count_and_size_limits(server: Server) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
    answer = _exchange(server, b"GET /health HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:300]
    just_over = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (16 * 1024) + b"\r\n\r\n"
    assert _exchange(server, just_over).startswith(b"HTTP/1.1 431")
    # What real clients send is far below both limits.
    headers = {f"x-h{i}": "v" * 100 for i in range(90)}
    assert httpx.get(f"{server.base}/health", headers=headers, timeout=5).status_code == 200


def test_silent_trickling_and_idle_connections_are_closed(server: Server) -> None:
    silent = socket.create_connection(address(server))
    trickling = socket.create_connection(address(server))
    idle = socket.create_connection(address(server))
    try:
        idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        answer = b""
        trickling.settimeout(0.3)
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            try:
                trickling.sendall(bytes([byte]))
            except OSError:
                break
            with contextlib.suppress(TimeoutError):
                answer += trickling.recv(4096)
            if answer:
                break
        assert answer.startswith(b"HTTP/1.1 408"), f"a head trickled for {time.monotonic() - start:.1f} s: {answer!r}"
        assert closed_within(silent, DEADLINE + 3) is not None, "a connection that sends nothing stayed open"
        assert closed_within(idle, KEEP_ALIVE + 3) is not None, "an idle keep-alive connection stayed open"
    finally:
        for sock in (silent, trickling, idle):
            sock.close()
