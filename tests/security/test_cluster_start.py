"""Item 6 of issue 12: any number of nodes may start at once on an empty database.

Four real ``retake serve`` processes started together on an empty PostgreSQL database all come up (before the
database-wide migration lock, one or more exited with UniqueViolation on ``alembic_version``); several processes
migrating one empty SQLite file at once all succeed (before: "table users already exists")."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import RETAKE
from tests.support import FakeOEmbed, free_port, new_db_name, pg_available, pg_create, pg_drop

NODES = 4
SQLITE_PROCESSES = 6
# Each process imports first, then waits for the same moment to migrate, so they really run at once.
MIGRATE = """
import asyncio, sys, time
from retake.store.engine import create_engine, migrate

async def main() -> None:
    time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
    engine = create_engine(sys.argv[1])
    await migrate(engine)
    await engine.dispose()

asyncio.run(main())
"""


def _head() -> str:
    from alembic.script import ScriptDirectory

    from retake.store.engine import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def _start_together(tmp: Path, database_url: str, oembed_url: str) -> list[tuple[subprocess.Popen[bytes], str, Path]]:
    nodes = []
    for index in range(NODES):
        folder = tmp / f"node{index}"
        folder.mkdir()
        port = free_port()
        env = {
            **os.environ,
            "RETAKE_PORT": str(port),
            "RETAKE_RTMP_PORT": str(free_port()),
            "RETAKE_DATA_DIR": str(folder / "data"),
            "RETAKE_DATABASE_URL": database_url,
            "RETAKE_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "RETAKE_OEMBED_URL": oembed_url,
            "RETAKE_PREVIEW_INTERVAL_SECONDS": "0",
        }
        log = folder / "server.log"
        with log.open("wb") as out:
            process = subprocess.Popen([*RETAKE, "serve"], env=env, stdout=out, stderr=subprocess.STDOUT)
        nodes.append((process, f"http://127.0.0.1:{port}", log))
    return nodes


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_four_nodes_start_together_on_an_empty_postgres(tmp_path: Path) -> None:
    if not pg_available():
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); run `make services`")
    name = new_db_name("retake_cluster")
    url = pg_create(name)  # empty: no node finds a schema
    nodes: list[tuple[subprocess.Popen[bytes], str, Path]] = []
    try:
        with FakeOEmbed().running() as fake:
            nodes = _start_together(tmp_path, url, fake.url)
            up: set[int] = set()
            deadline = time.monotonic() + 60
            while len(up) < NODES and time.monotonic() < deadline:
                for index, (process, base, _log) in enumerate(nodes):
                    if index not in up and process.poll() is None and _healthy(base):
                        up.add(index)
                if any(process.poll() is not None for process, _, _ in nodes):
                    break
                time.sleep(0.2)
            exited = [(i, p.returncode, log.read_text()[-1500:]) for i, (p, _, log) in enumerate(nodes) if p.poll()]
            assert not exited, f"{len(exited)} of {NODES} nodes exited: {exited}"
            assert len(up) == NODES, f"only {len(up)} of {NODES} nodes became healthy"
        query = "SELECT version_num FROM alembic_version"
        version = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", name, "-tAc", query],
            capture_output=True,
            text=True,
            check=True,
        )
        assert version.stdout.split() == [_head()]  # one row: the nodes agreed on one schema
    finally:
        for process, _, _ in nodes:
            if process.poll() is None:
                process.terminate()
        for process, _, _ in nodes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        pg_drop(name)


@pytest.mark.parametrize("round_", range(3))  # three fresh files: the race is timing-dependent without the lock
def test_processes_migrating_one_sqlite_file_at_once(tmp_path: Path, round_: int) -> None:
    db_file = tmp_path / f"retake{round_}.db"
    url = f"sqlite+aiosqlite:///{db_file}"
    at = str(time.time() + 2)
    processes = [
        subprocess.Popen([sys.executable, "-c", MIGRATE, url, at], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(SQLITE_PROCESSES)
    ]
    outcomes = [(p.communicate(timeout=60)[0].decode()[-800:], p.returncode) for p in processes]
    failed = [out for out, code in outcomes if code != 0]
    assert not failed, f"{len(failed)} of {SQLITE_PROCESSES} migrating processes failed: {failed}"
    done = subprocess.run(
        ["sqlite3", str(db_file), "SELECT version_num FROM alembic_version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [_head()]
