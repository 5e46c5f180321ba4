"""Issue 12 item 9: every body over ``RETAKE_MAX_BODY_BYTES`` (6 MB) is 413 ``payload_too_large``, whether
it announces its length or comes chunked. Before, a 7 MB chunked body got 400 (the limit raised inside the
framework's body parsing, which turned it into "error parsing the body")."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from tests.security.conftest import in_process, sqlite_settings

SEVEN_MB = 7 * 1024 * 1024


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    yield b'{"agent_name": "'
    sent = 0
    while sent < total:
        yield b"a" * size
        sent += size
    yield b'"}'


async def test_oversized_bodies_are_413_chunked_or_not(tmp_path: Path) -> None:
    async with in_process(sqlite_settings(tmp_path)) as http:
        guest = await http.post("/api/v1/auth/guest")
        jwt = guest.json()["token"]
        cases = {
            "chunked JSON": await http.post(
                "/api/v1/agent/register", content=_chunks(SEVEN_MB), headers={"Content-Type": "application/json"}
            ),
            "chunked multipart": await http.patch(
                "/api/v1/users/me/pfp",
                content=_chunks(SEVEN_MB),
                headers={"Content-Type": "multipart/form-data; boundary=x", "Authorization": f"Bearer {jwt}"},
            ),
            "with Content-Length": await http.post(
                "/api/v1/agent/register", content=b"a" * SEVEN_MB, headers={"Content-Type": "application/json"}
            ),
        }
        for name, response in cases.items():
            assert response.status_code == 413, f"{name}: {response.status_code} {response.text[:100]}"
            assert response.json()["code"] == "payload_too_large", name
        small = await http.post(
            "/api/v1/agent/register", content=_chunks(1024), headers={"Content-Type": "application/json"}
        )
        assert small.status_code == 400 and small.json()["code"] != "payload_too_large", small.text
