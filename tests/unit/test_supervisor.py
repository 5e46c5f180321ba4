"""``retake serve --workers``: the settings, the start checks, the port handling and the supervisor's life with
real child processes (the whole server under --workers: tests/e2e/test_workers.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console

from retake.config import Settings
from retake.server import supervisor
from retake.server.supervisor import RequirementError, Supervisor, bound_socket, check_requirements, probe_ports
from tests.support import free_port

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/x"
REDIS = "redis://127.0.0.1:6379/0"


def test_workers_setting() -> None:
    assert Settings().worker_count == 1
    assert Settings(workers="3").worker_count == 3
    assert Settings(workers=" AUTO ").worker_count == (os.cpu_count() or 1)
    for bad in ("0", "-1", "two", "1.5", "257"):
        with pytest.raises(ValidationError, match="workers"):
            Settings(workers=bad)


def test_worker_addresses() -> None:
    settings = Settings(port=8000, public_url="https://retake.example")
    assert settings.node_url == "https://retake.example"  # a single process: its public URL, as before
    assert settings.worker_port(0) == 8001 and settings.worker_port(2) == 8003
    assert settings.worker_url(1) == "https://retake.example:8002"
    worker = Settings(port=8000, worker_port_base=9100, worker_index=1)
    assert worker.node_url == "http://127.0.0.1:9101"
    proxied = Settings(worker_url_template="https://w{index}.retake.example/", worker_index=3)
    assert proxied.node_url == "https://w3.retake.example"
    assert Settings(public_url="http://[::1]:8000", worker_index=0).node_url == "http://[::1]:8001"


def test_requirements_are_checked_with_a_clear_message() -> None:
    check_requirements(Settings(workers="1"))  # one process needs nothing new
    with pytest.raises(RequirementError, match="needs PostgreSQL"):
        check_requirements(Settings(workers="2", redis_url=REDIS))
    with pytest.raises(RequirementError, match="needs Redis"):
        check_requirements(Settings(workers="2", database_url=PG))
    check_requirements(Settings(workers="2", database_url=PG, redis_url=REDIS))


def test_the_shared_port_is_shared_but_a_taken_one_is_refused() -> None:
    port = free_port()
    first = bound_socket("127.0.0.1", port, reuse_port=True)
    second = bound_socket("127.0.0.1", port, reuse_port=True)  # the next worker joins the port
    try:
        first.listen()
        second.listen()
        settings = Settings(port=port, rtmp_port=free_port(), worker_port_base=free_port(), workers="1")
        with pytest.raises(RequirementError, match=f"HTTP port 127.0.0.1:{port} is not free"):
            probe_ports(settings)  # a second server must not join the first one's port silently
    finally:
        first.close()
        second.close()
    probe_ports(settings)
    with socket.socket() as plain:
        plain.bind(("127.0.0.1", settings.rtmp_port))
        with pytest.raises(RequirementError, match="RTMP port"):
            probe_ports(settings)


def test_worker_env_carries_every_setting(tmp_path: Path) -> None:
    settings = Settings(workers="2", port=8123, data_dir=tmp_path, demo=True, redis_url=REDIS, enable_airdrop=False)
    env0, env1 = supervisor.worker_env(settings, 0), supervisor.worker_env(settings, 1)
    assert env0["RETAKE_WORKER_INDEX"] == "0" and env1["RETAKE_WORKER_INDEX"] == "1"
    assert env0["RETAKE_DEMO"] == "true" and env1["RETAKE_DEMO"] == "false"  # one demo agent, not one per worker
    seen = Settings(**{k.removeprefix("RETAKE_").lower(): v for k, v in env1.items() if k.startswith("RETAKE_")})
    assert seen.port == 8123 and seen.data_dir == tmp_path and seen.redis_url == REDIS and seen.worker_index == 1
    assert seen.public_url == settings.public_url and seen.enable_airdrop is False


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(600):  # 30 s
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "worker.py"
    path.write_text(body)
    return [sys.executable, str(path)]


async def test_workers_that_keep_dying_make_the_supervisor_give_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "FIRST_BACKOFF_SECONDS", 0.01)
    starts = tmp_path / "starts"
    argv = _script(tmp_path, f"open({str(starts)!r}, 'a').write('x'); raise SystemExit(3)")
    settings = Settings(workers="2", worker_port_base=free_port())
    status = await asyncio.wait_for(Supervisor(settings, Console(quiet=True), argv).run(), 60)
    assert status == 1
    assert len(starts.read_text()) >= supervisor.MAX_QUICK_FAILURES  # restarted until it gave up


async def test_a_stop_signal_is_forwarded_and_ends_with_status_0(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    argv = _script(
        tmp_path,
        "import os, signal, time\n"
        "def bye(*_):\n"
        f"    open(os.path.join({str(marks)!r}, os.environ['RETAKE_WORKER_INDEX']), 'w').write('term')\n"
        "    raise SystemExit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        f"open(os.path.join({str(marks)!r}, 'up' + os.environ['RETAKE_WORKER_INDEX']), 'w').close()\n"
        "time.sleep(60)\n",
    )
    sup = Supervisor(Settings(workers="2", worker_port_base=free_port()), Console(quiet=True), argv)
    running = asyncio.ensure_future(sup.run())
    await _until(lambda: len(list(marks.iterdir())) == 2)  # both children have their handler installed
    pids = [w.process.pid for w in sup.workers if w.process is not None]
    os.kill(os.getpid(), signal.SIGTERM)  # the supervisor's own handler takes it (the test process lives on)
    assert await asyncio.wait_for(running, 30) == 0
    assert sorted(p.name for p in marks.iterdir()) == ["0", "1", "up0", "up1"]
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
