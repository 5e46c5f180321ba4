"""Item 10 of issue 12 (files): the data folder is owner-only (0700), the SQLite files 0600, and a deleted
session's recording is no longer served.

Before: the data folder was created 0755 and ``retake.db`` 0644 (world-readable); ``DELETE /sessions/:id``
removed the row but ``/recordings/<id>/`` kept serving the recording. Both databases (the file modes of the
database itself only apply to SQLite)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from retake.config import Settings
from retake.server.app import create_app
from tests.identity.support import guest


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _run_once(settings: Settings) -> dict[str, int]:
    """Start a node, write through it, report the modes seen while it runs."""
    app = create_app(settings)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.post("/api/v1/auth/guest", json={})).status_code == 200
            folder = settings.data_dir
            seen = {"data": mode(folder)}
            for name in ("retake.db", "retake.db-wal", "retake.db-shm"):
                if (folder / name).exists():
                    seen[name] = mode(folder / name)
            return seen


async def test_data_folder_and_database_files_are_private(
    settings_factory: Callable[..., Settings], database_url: str, tmp_path: Path
) -> None:
    data = tmp_path / "private-data"
    sqlite = database_url.startswith("sqlite")
    url = f"sqlite+aiosqlite:///{data / 'retake.db'}" if sqlite else database_url
    settings = settings_factory(data_dir=data, database_url=url)
    old_umask = os.umask(0o022)  # the common default: what made the folder 0755 and the database 0644
    try:
        first = await _run_once(settings)
        expected = {"data": 0o700} | (
            {n: 0o600 for n in ("retake.db", "retake.db-wal", "retake.db-shm")} if sqlite else {}
        )
        assert first == expected
        # A data folder and database left world-readable by an older version are tightened at the next start.
        os.chmod(data, 0o755)
        if sqlite:
            os.chmod(data / "retake.db", 0o644)
        assert await _run_once(settings) == expected
    finally:
        os.umask(old_umask)


async def test_deleted_sessions_recording_is_not_served(client: httpx.AsyncClient) -> None:
    owner = await guest(client)
    started = await client.post("/api/v1/sessions/start", json={"title": "To delete"}, headers=owner.headers)
    sid = started.json()["session_id"]
    assert (await client.post(f"/api/v1/sessions/{sid}/end", headers=owner.headers)).status_code == 200
    # The files the recorder leaves for a session (media/recording.py writes <recordings>/<session_id>/).
    folder = client.app.state.platform.settings.data_dir / "recordings" / sid  # type: ignore[attr-defined]
    folder.mkdir(parents=True)
    (folder / "index.m3u8").write_text("#EXTM3U\n#EXT-X-ENDLIST\n")
    (folder / "seg0.m4s").write_bytes(b"\0" * 64)
    assert (await client.get(f"/recordings/{sid}/index.m3u8")).status_code == 200
    deleted = await client.delete(f"/api/v1/sessions/{sid}", headers=owner.headers)
    assert deleted.status_code == 200, deleted.text
    for name in ("index.m3u8", "seg0.m4s"):
        assert (await client.get(f"/recordings/{sid}/{name}")).status_code == 404
    assert not folder.exists()
