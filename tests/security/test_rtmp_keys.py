"""Issue 12 item 8: wrong stream keys were not throttled (153 attempts/s), and a key used as the RTMP app name
had 32 of its 35 characters logged at INFO."""

from __future__ import annotations

import asyncio
import time

import httpx

from retake.ingest.admission import Admission, AdmissionLimits
from tests.e2e.conftest import Server
from tests.e2e.media_support import lavfi_publisher, registered, running, status, wait_until
from tests.ingest.conftest import ServerFactory
from tests.ingest.support import FakeHooks
from tests.ingest.test_server import Publisher

ATTEMPT_SECONDS = 6.0


async def _try_key(port: int, key: str) -> str:
    """One publish attempt: its status code, or what happened instead."""
    try:
        publisher = await Publisher.open(port)
    except OSError:
        return "connect_failed"
    try:
        return await publisher.publish(key)
    except (OSError, TimeoutError):
        return "cut_off"
    finally:
        publisher.writer.close()


async def test_wrong_keys_back_off_then_the_address_is_refused(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    results: list[str] = []
    end = time.monotonic() + ATTEMPT_SECONDS
    # eight at a time, as fast as the server answers (the issue measured 153 attempts per second)
    while time.monotonic() < end:
        results += await asyncio.gather(*(_try_key(server.port, f"sk_wrong{i}") for i in range(8)))
    checked = sum(1 for name, _ in hooks.calls if name == "publish")
    print(f"{len(results)} attempts in {ATTEMPT_SECONDS:.0f} s, {checked} keys checked")
    assert checked <= 10, f"{checked} wrong keys checked in {ATTEMPT_SECONDS} s"
    assert server.admission.blocked("127.0.0.1")
    assert await _try_key(server.port, "good") != "NetStream.Publish.Start"  # blocked for a while, even for a good key


class _SlowHooks(FakeHooks):
    """Key checks that take a while (a database round trip under load), so parallel publishes overlap."""

    async def on_publish(self, app: str, key: str) -> object:
        await asyncio.sleep(0.2)
        return await super().on_publish(app, key)


async def test_many_good_keys_at_once_from_one_address_all_go_live(make_server: ServerFactory) -> None:
    """bench.media starts 50 publishers from 127.0.0.1 at once: every attempt in flight used to count as a
    failure, so the address was blocked after 10 and the other 40 were refused as ``key_failures``."""
    count = 24
    hooks = _SlowHooks(keys={f"sk_good{i}": f"sess-{i}" for i in range(count)})
    server = await make_server(hooks, max_connections_per_ip=count + 4)
    results = await asyncio.gather(*(_try_key(server.port, f"sk_good{i}") for i in range(count)))
    assert results == ["NetStream.Publish.Start"] * count
    assert not server.admission.blocked("127.0.0.1")


def test_parallel_attempts_of_a_failing_address_back_off_and_block() -> None:
    now = [0.0]
    admission = Admission(AdmissionLimits(), clock=lambda: now[0])
    assert admission.key_attempt("a") == 0.0
    admission.key_refused("a")
    delays = [admission.key_attempt("a") for _ in range(12)]
    assert delays[:2] == [0.0, 0.0]  # failures + attempts in flight still within the free ones
    assert delays[2:8] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert None in delays and admission.blocked("a")  # the tenth in flight blocks; the rest are refused unchecked
    other = [admission.key_attempt("b") for _ in range(30)]  # a clean address is not a suspect
    assert other == [0.0] * 30
    for _ in range(30):
        admission.key_accepted("b")
    assert not admission.blocked("b")


def test_abandoned_attempts_do_not_count_as_failures() -> None:
    admission = Admission(AdmissionLimits(), clock=lambda: 0.0)
    admission.key_attempt("a")
    admission.key_refused("a")
    for _ in range(20):  # clients that leave during their back-off
        if admission.key_attempt("a") is not None:
            admission.key_abandoned("a")
    assert not admission.blocked("a")
    assert admission.key_attempt("a") == 0.0  # one failure, one attempt in flight


def _fragments(key: str, size: int = 8) -> set[str]:
    return {key[i : i + size] for i in range(len(key) - size + 1)}


def test_no_part_of_a_stream_key_is_logged(tmp_path: object, oembed_server: object) -> None:
    from pathlib import Path

    from tests.e2e.conftest import start_server, stop_server

    assert isinstance(tmp_path, Path)
    server: Server = start_server(tmp_path, oembed_server.url, RETAKE_LOG_LEVEL="debug")  # type: ignore[attr-defined]
    try:
        with httpx.Client(base_url=server.base, timeout=15) as http:
            _creds, auth = registered(http, "KeyPaster")
            rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
            http.post("/api/v1/agent/stream/start", headers=auth)
            key = rtmp["key"]
            base = f"rtmp://127.0.0.1:{server.rtmp_port}"
            # the key pasted as the app (server URL "rtmp://host/<key>"), as app and name, and as a
            # wrong-app name: all refused
            for target in (f"{base}/{key}", f"{base}/{key}/{key}", f"{base}/{key}x/live"):
                with running(lavfi_publisher(target, seconds=2)) as encoder:
                    encoder.wait(timeout=20)
                    assert encoder.returncode != 0, target
            # and the right way, which goes live
            with running(lavfi_publisher(f"{rtmp['url']}/{key}", seconds=6)):
                wait_until(lambda: status(http, auth)["is_live"], timeout=15)
        log = server.log()
    finally:
        stop_server(server)
    assert "rtmp connected" in log and "publish accepted" in log  # the ingest did log these connections
    leaked = sorted(fragment for fragment in _fragments(key) if fragment in log)
    assert not leaked, f"parts of the stream key in the log: {leaked[:5]}"
