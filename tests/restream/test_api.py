"""REST shapes of /api/v1/agent/restreams on both databases: add, list, remove, the 5-limit, bad input, and the
destination key: sealed at rest, never answered (only its last 4 characters), never logged."""

from __future__ import annotations

import logging
import stat
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from retake.server.platform import Platform
from retake.store.tables import Restream

KEY = "live_123456789_SecretStreamKeyWXYZ"
TWITCH = {"name": "twitch", "url": "rtmp://live.twitch.tv/app", "key": KEY}


def platform_of(client: httpx.AsyncClient) -> Platform:
    platform: Platform = client.app.state.platform  # type: ignore[attr-defined]
    return platform


async def test_add_list_remove(client: httpx.AsyncClient, register: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    agent = await register()
    added = await client.post("/api/v1/agent/restreams", headers=agent.headers, json=TWITCH)
    assert added.status_code == 201, added.text
    body = added.json()
    assert set(body) == {"id", "name", "url", "key_last4", "created_at", "status", "last_error", "bytes_sent",
                         "uptime_seconds"}  # fmt: skip
    assert body["name"] == "twitch" and body["url"] == TWITCH["url"] and body["key_last4"] == "WXYZ"
    assert body["status"] == "idle" and body["bytes_sent"] == 0 and body["id"].isdigit()
    listed = (await client.get("/api/v1/agent/restreams", headers=agent.headers)).json()
    assert listed == {"restreams": [body]}
    assert KEY not in added.text and KEY not in str(listed)

    # Sealed at rest with the node key in <data-dir>/keys/ (owner-only), bound to the row.
    platform = platform_of(client)
    async with platform.sessions() as db:
        row = (await db.scalars(select(Restream))).one()
    assert KEY not in row.sealed_key and row.key_last4 == "WXYZ"
    key_file = platform.settings.data_dir / "keys" / "restream.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    restreams = platform.restreams
    assert restreams._keys.open(row.sealed_key, f"restream:{row.id}") == KEY
    with pytest.raises(ValueError):
        restreams._keys.open(row.sealed_key, f"restream:{row.id + 1}")

    # Another agent neither sees nor removes it.
    other = await register()
    assert (await client.get("/api/v1/agent/restreams", headers=other.headers)).json() == {"restreams": []}
    gone = await client.delete(f"/api/v1/agent/restreams/{body['id']}", headers=other.headers)
    assert gone.status_code == 404 and gone.json()["code"] == "restream_not_found"

    # The stream status shows the pushes on this node (none: not live).
    status = (await client.get("/api/v1/agent/stream/status", headers=agent.headers)).json()
    assert status["restreams"] == []

    deleted = await client.delete(f"/api/v1/agent/restreams/{body['id']}", headers=agent.headers)
    assert deleted.status_code == 200 and deleted.json() == {"deleted": True}
    assert (await client.get("/api/v1/agent/restreams", headers=agent.headers)).json() == {"restreams": []}
    again = await client.delete(f"/api/v1/agent/restreams/{body['id']}", headers=agent.headers)
    assert again.status_code == 404
    assert KEY not in caplog.text


async def test_at_most_five(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    for i in range(5):
        dest = {"name": f"d{i}", "url": f"rtmps://a{i}.example.com/live2", "key": f"k{i}-abcd"}
        assert (await client.post("/api/v1/agent/restreams", headers=agent.headers, json=dest)).status_code == 201
    sixth = await client.post("/api/v1/agent/restreams", headers=agent.headers, json=TWITCH)
    assert sixth.status_code == 409 and sixth.json()["code"] == "restream_limit"
    listed = (await client.get("/api/v1/agent/restreams", headers=agent.headers)).json()["restreams"]
    assert [d["name"] for d in listed] == ["d0", "d1", "d2", "d3", "d4"]
    assert [d["key_last4"] for d in listed] == ["abcd"] * 5


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({**TWITCH, "url": "http://live.twitch.tv/app"}, "invalid_url"),
        ({**TWITCH, "url": "rtmp://live.twitch.tv"}, "invalid_url"),
        ({**TWITCH, "url": "rtmp:///app"}, "invalid_url"),
        ({**TWITCH, "url": "rtmp://live.twitch.tv:99999/app"}, "invalid_url"),
        ({**TWITCH, "url": "rtmp://user:pw@live.twitch.tv/app"}, "invalid_url"),
        ({**TWITCH, "url": "rtmp://127.0.0.1/live"}, "invalid_url"),  # private addresses: off by default
        ({**TWITCH, "url": "rtmp://localhost/live"}, "invalid_url"),
        ({**TWITCH, "name": "  "}, "invalid_name"),
        ({**TWITCH, "key": ""}, "invalid_key"),
        ({**TWITCH, "key": " spaced "}, "invalid_key"),
        ({"name": "x", "url": "rtmp://a.example.com/live"}, None),  # key missing: schema validation
    ],
)
async def test_bad_input(client: httpx.AsyncClient, register: Any, body: dict[str, str], code: str | None) -> None:
    agent = await register()
    response = await client.post("/api/v1/agent/restreams", headers=agent.headers, json=body)
    assert response.status_code == 400, response.text
    assert set(response.json()) >= {"error", "code"}
    if code is not None:
        assert response.json()["code"] == code
    if body.get("key"):
        assert str(body["key"]) not in response.text


async def test_bad_ids_and_auth(client: httpx.AsyncClient, register: Any) -> None:
    agent = await register()
    bad = await client.delete("/api/v1/agent/restreams/abc", headers=agent.headers)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_id"
    missing = await client.delete("/api/v1/agent/restreams/999999", headers=agent.headers)
    assert missing.status_code == 404
    assert (await client.get("/api/v1/agent/restreams")).status_code == 401
