"""Issue 12 item 9: JSON nested 10,000 deep is 400 ``invalid_json`` on every endpoint that takes a body, with
or without an ``Authorization`` header — never a 500.

Before, Python's parser raised RecursionError, a 500 on 9 of 15 JSON endpoints without the header (the token
lookup in the body) and on others with it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.security.conftest import in_process, sqlite_settings
from tests.support import VALID_WALLET

DEEP = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


async def test_deep_json_is_400_invalid_json_on_every_body_endpoint(tmp_path: Path) -> None:
    async with in_process(sqlite_settings(tmp_path, enable_airdrop=True)) as http:
        registered = await http.post(
            "/api/v1/agent/register",
            json={
                "agent_name": "deepjson",
                "agent_description": "d",
                "image_url": "https://example.com/a.png",
                "wallet_address": VALID_WALLET,
                "ticker": "dj",
            },
        )
        assert registered.status_code == 200, registered.text
        token = registered.json()["access_token"]
        schema = (await http.get("/openapi.json")).json()
        endpoints = [
            (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
            for path, operations in schema["paths"].items()
            for method, operation in operations.items()
            if method in {"post", "put", "patch", "delete"}
            and "multipart/form-data" not in operation.get("requestBody", {}).get("content", {})
        ]
        assert len(endpoints) >= 25
        wrong = []
        for method, path in endpoints:
            for headers in ({}, {"Authorization": f"Bearer {token}"}):
                for body in (DEEP, DEEP_OBJECT):
                    response = await http.request(
                        method, path, content=body, headers={**headers, "Content-Type": "application/json"}
                    )
                    if response.status_code != 400 or response.json().get("code") != "invalid_json":
                        wrong.append(
                            f"{method} {path} auth={bool(headers)}: {response.status_code} {response.text[:80]}"
                        )
        assert not wrong, f"{len(wrong)} of {len(endpoints) * 4} answers:\n" + "\n".join(wrong)
        ordinary = await http.patch(
            "/api/v1/users/me/bio", json={"bio": "[[[" * 50 + "]]]" * 50}, headers={"Authorization": f"Bearer {token}"}
        )
        assert ordinary.status_code == 200, "brackets inside strings are not nesting"


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"[" * 65 + b"]" * 65, True),
        (b"[" * 64 + b"]" * 64, False),
        (b'{"a": "' + b"[" * 5000 + b'"}', False),
        (b"[" + b"[]," * 100_000 + b"[]]", False),
        (b"[" * 10_000, True),  # never closed: the parser would still recurse into every bracket
        (b'["\\"' + b"[" * 100 + b'"]', False),
    ],
)
def test_depth_scan(body: bytes, deep: bool) -> None:
    from retake.server.admission import too_deep  # here, so the module still runs against older code

    assert too_deep(body, 64) is deep
