"""Issue 12 item 4 (images): decoding and re-encoding uploads never runs on the event loop, images over
16 megapixels (decompression bombs included) are 413, and uploads beyond the worker pool's queue are 503.

Before, a guest uploading a 116 KB, 40-megapixel PNG avatar in a loop took ``/health`` p50 from 0.04 s to
0.66 s: the whole decode and re-encode ran on the loop.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import Server
from tests.security.conftest import in_process, serve, sqlite_settings


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(out, format="PNG", optimize=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("images"))


def _upload_loop(server: Server, image: bytes, stop: threading.Event, statuses: list[int]) -> None:
    with httpx.Client(base_url=server.base, timeout=30) as http:
        jwt = http.post("/api/v1/auth/guest").json()["token"]
        while not stop.is_set():
            response = http.patch(
                "/api/v1/users/me/pfp",
                files={"image": ("a.png", image, "image/png")},
                headers={"Authorization": f"Bearer {jwt}"},
            )
            statuses.append(response.status_code)


def _health_p99(server: Server, samples: int = 150, at_most: float = 15.0) -> float:
    latencies = []
    give_up = time.monotonic() + at_most  # a stalled loop must fail the test, not time it out
    with httpx.Client(base_url=server.base, timeout=10) as http:
        for _ in range(samples):
            if time.monotonic() > give_up and len(latencies) >= 2:
                break
            start = time.perf_counter()
            assert http.get("/health").status_code == 200
            latencies.append(time.perf_counter() - start)
            time.sleep(0.01)
    return statistics.quantiles(latencies, n=100)[98]


def _health_p99_while_uploading(server: Server, image: bytes) -> tuple[float, list[int]]:
    stop, statuses = threading.Event(), []
    uploader = threading.Thread(target=_upload_loop, args=(server, image, stop, statuses), daemon=True)
    uploader.start()
    try:
        while not statuses:  # the loop is running
            time.sleep(0.05)
        return _health_p99(server), statuses
    finally:
        stop.set()
        uploader.join(60)


@pytest.fixture(scope="module")
def budget(server: Server) -> float:
    """The goal is p99 < 50 ms; the machine's own tail without any upload (several test runs share two cores
    here) is added, so the bound measures what the uploads cost."""
    return GOAL + _health_p99(server)


GOAL = 0.05


def test_forty_megapixel_pngs_are_refused_and_health_stays_fast(server: Server, budget: float) -> None:
    bomb = png(8000, 5000)
    assert len(bomb) < 200_000  # a small upload that decodes to 120 MB
    p99, statuses = _health_p99_while_uploading(server, bomb)
    print(f"/health p99 {p99 * 1000:.0f} ms while uploading 40 Mpx (bound {budget * 1000:.0f} ms)")
    assert p99 < budget, f"/health p99 {p99 * 1000:.0f} ms while 40-megapixel PNGs were uploaded"
    assert set(statuses) == {413}, statuses
    with httpx.Client(base_url=server.base, timeout=30) as http:
        jwt = http.post("/api/v1/auth/guest").json()["token"]
        refused = http.patch(
            "/api/v1/users/me/pfp", files={"image": ("a.png", bomb)}, headers={"Authorization": f"Bearer {jwt}"}
        )
    assert refused.json() == {"error": refused.json()["error"], "code": "image_too_large"}


def test_images_under_the_limit_are_decoded_off_the_loop(server: Server, budget: float) -> None:
    p99, statuses = _health_p99_while_uploading(server, png(3000, 3000))  # 9 megapixels, decoded and re-encoded
    print(f"/health p99 {p99 * 1000:.0f} ms while uploading 9 Mpx (bound {budget * 1000:.0f} ms)")
    assert 200 in statuses, statuses
    assert p99 < budget, f"/health p99 {p99 * 1000:.0f} ms while 9-megapixel PNGs were re-encoded"


async def test_uploads_beyond_the_queue_are_503_overloaded(tmp_path: Path) -> None:
    image = png(4000, 3900)
    async with in_process(sqlite_settings(tmp_path, image_workers=1, image_queue=0)) as http:
        jwt = (await http.post("/api/v1/auth/guest")).json()["token"]

        async def upload() -> httpx.Response:
            return await http.patch(
                "/api/v1/users/me/pfp", files={"image": ("a.png", image)}, headers={"Authorization": f"Bearer {jwt}"}
            )

        answers = await asyncio.gather(*(upload() for _ in range(4)))
        codes = sorted(r.status_code for r in answers)
        assert codes[0] == 200 and codes[-1] == 503, codes
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.json()["code"] == "overloaded" and int(busy.headers["Retry-After"]) >= 1
        assert (await upload()).status_code == 200, "the pool is free again"
