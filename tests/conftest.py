"""Fixtures: every store/API test runs on SQLite and on the real PostgreSQL at 127.0.0.1:5432."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import text

from retake.config import Settings
from retake.server.app import create_app
from retake.store.engine import create_engine, migrate
from retake.store.tables import Base
from tests.support import VALID_WALLET, FakeOEmbed, new_db_name, pg_available, pg_create, pg_drop

BACKENDS = ["sqlite", "postgres"]


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """One throwaway, migrated PostgreSQL database per run; tests empty it before use (TRUNCATE is far faster
    than creating a database per test)."""
    if not pg_available():
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); run `make services`")
    name = new_db_name()
    url = pg_create(name)

    async def prepare() -> None:
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(prepare())
    yield url
    pg_drop(name)


async def _truncate_all(url: str) -> None:
    engine = create_engine(url)
    async with engine.begin() as conn:
        names = ", ".join(t.name for t in Base.metadata.sorted_tables)
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per run: each test gets a copy (a fresh migration costs ~0.2 s, mostly fsyncs;
    the copy is well under a millisecond and the app's start-up migration then finds the schema current)."""
    path = tmp_path_factory.mktemp("sqlite_template") / "retake.db"

    async def prepare() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await migrate(engine)
        await engine.dispose()

    asyncio.run(prepare())
    journals = sorted(p.name for p in path.parent.iterdir() if p.name.endswith(("-wal", "-shm", "-journal")))
    assert journals == [], f"the template is not one closed file: {journals}"
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        shutil.copyfile(request.getfixturevalue("sqlite_template"), tmp_path / "retake.db")
        return f"sqlite+aiosqlite:///{tmp_path / 'retake.db'}"
    url: str = request.getfixturevalue("pg_database")
    asyncio.run(_truncate_all(url))
    return url


@pytest.fixture
def oembed() -> Iterator[FakeOEmbed]:
    fake = FakeOEmbed()
    with fake.running():
        yield fake


@pytest.fixture
def settings_factory(tmp_path: Path, database_url: str, oembed: FakeOEmbed) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "database_url": database_url,
            "public_url": "http://testserver",
            "oembed_url": oembed.url,
            "register_rate": "1000/minute",
            "chat_rate": "1000/10seconds",
            # API tests drive the ingest interface with fakes; real RTMP runs in tests/e2e and tests/ingest.
            "rtmp_enabled": False,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
async def client(settings_factory: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings_factory())
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            http.app = app  # type: ignore[attr-defined]
            yield http


class AgentHandle:
    def __init__(self, body: dict[str, Any], name: str) -> None:
        self.body = body
        self.name = name
        self.token: str = body["access_token"]
        self.user_id: str = body["userDbId"]
        self.headers = {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def register(client: httpx.AsyncClient) -> Callable[..., Any]:
    counter = iter(range(10_000))

    async def do(name: str | None = None, **fields: Any) -> AgentHandle:
        name = name or f"agent_{os.getpid()}_{next(counter)}"
        payload = {
            "agent_name": name,
            "agent_description": "a test agent",
            "image_url": "https://example.com/a.png",
            "wallet_address": VALID_WALLET,
            "ticker": "tst",
            **fields,
        }
        response = await client.post("/api/v1/agent/register", json=payload)
        assert response.status_code == 200, response.text
        return AgentHandle(response.json(), name)

    return do


# -- running under pytest-xdist (`pytest -n 2 --dist loadgroup`) -------------------------------------------------
# Without xdist the marks below change nothing (the marker is registered in pyproject.toml).
#
# Timing-sensitive tests (a p99 while uploads run, ordering across transports, a pool timeout, a trade reaching
# the chat within 1 s, FLV gaps under 250 ms while a restream destination restarts) and the heaviest ones
# (several servers, 200 viewers, schemathesis) share one group: they run one after another on one worker, so none
# of the first kind ever overlaps one of the second.
SERIAL_GROUP = "serial"
SERIAL_MODULES = {
    "tests/api/test_overload.py",
    "tests/e2e/test_edge_cache.py",
    "tests/e2e/test_openapi_fuzz.py",
    "tests/e2e/test_workers.py",
    "tests/realtime/test_fanout.py",
    "tests/restream/test_restream_e2e.py",
    "tests/security/test_cluster_start.py",
    "tests/security/test_http_image_uploads.py",
    "tests/web/test_economy.py",
}
_SHARED_SCOPES = ("package", "module", "class")


def _shared_scope(item: pytest.Item) -> str | None:
    """The widest non-session scope of a fixture ``item`` uses (a server, a browser), or None."""
    info = getattr(item, "_fixtureinfo", None)
    scopes = {defs[-1].scope for defs in info.name2fixturedefs.values() if defs} if info else set()
    return next((scope for scope in _SHARED_SCOPES if scope in scopes), None)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the marks into node-id suffixes
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests sharing a module- or package-scoped server stay on one worker (otherwise each worker would start its
    own copy of it); the serial modules form one group."""
    for item in items:
        if item.get_closest_marker("xdist_group"):
            continue
        module = item.nodeid.split("::", 1)[0]
        scope = _shared_scope(item)
        if module in SERIAL_MODULES:
            item.add_marker(pytest.mark.xdist_group(SERIAL_GROUP))
        elif scope == "package":
            item.add_marker(pytest.mark.xdist_group(module.rsplit("/", 1)[0]))
        elif scope is not None:
            item.add_marker(pytest.mark.xdist_group(module))
