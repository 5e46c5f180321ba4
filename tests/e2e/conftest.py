"""A real ``retake serve`` process on free ports, with its own data folder and the fake oEmbed server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support import FakeOEmbed, free_ports

RETAKE = [sys.executable, "-m", "retake"]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    base: str
    rtmp_port: int
    data_dir: Path
    env: dict[str, str]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server(tmp: Path, oembed_url: str, database_url: str | None = None, **env_extra: str) -> Server:
    port, rtmp_port = free_ports(2)
    data_dir = tmp / "data"
    env = {
        **os.environ,
        "RETAKE_PORT": str(port),
        "RETAKE_RTMP_PORT": str(rtmp_port),
        "RETAKE_DATA_DIR": str(data_dir),
        "RETAKE_OEMBED_URL": oembed_url,
        "RETAKE_REGISTER_RATE": "1000/minute",
        "RETAKE_CHAT_RATE": "1000/10seconds",
        **env_extra,
    }
    if database_url:
        env["RETAKE_DATABASE_URL"] = database_url
    return launch_server(env, port, rtmp_port, data_dir, tmp / "server.log")


def start_servers(
    folders: list[Path],
    oembed_url: str,
    database_url: str | None = None,
    own_env: list[dict[str, str]] | None = None,
    **env_extra: str,
) -> list[Server]:
    """``start_server`` for each folder (plus ``own_env[i]`` for folder i), all booting at once: a start is mostly
    CPU-bound imports, so on two cores two starts take about as long as one. If one fails, the others are stopped
    before the failure is raised."""
    envs = own_env or [{} for _ in folders]
    with ThreadPoolExecutor(len(folders)) as pool:
        starting = [
            pool.submit(start_server, folder, oembed_url, database_url, **env_extra, **extra)
            for folder, extra in zip(folders, envs, strict=True)
        ]
        failures = [error for error in (future.exception() for future in starting) if error is not None]
    servers = [future.result() for future in starting if future.exception() is None]
    if failures:
        for server in servers:
            stop_server(server)
        raise failures[0]
    return servers


def launch_server(
    env: dict[str, str], port: int, rtmp_port: int, data_dir: Path, log_path: Path, poll: float = 0.2
) -> Server:
    """``retake serve`` with ``env``; returns once ``/health`` answers 200, fails the test with the log if not."""
    with log_path.open("wb") as log:
        process = subprocess.Popen([*RETAKE, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", rtmp_port, data_dir, env, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"retake serve exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(poll)
    process.kill()
    pytest.fail(f"retake serve did not become healthy in 30 s:\n{server.log()}")


def stop_server(server: Server, sig: int = signal.SIGTERM) -> int:
    if server.process.poll() is None:
        server.process.send_signal(sig)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait(timeout=5)
    return server.process.returncode


@pytest.fixture
def oembed_server() -> Iterator[FakeOEmbed]:
    fake = FakeOEmbed()
    with fake.running():
        yield fake


@pytest.fixture
def server(tmp_path: Path, oembed_server: FakeOEmbed) -> Iterator[Server]:
    srv = start_server(tmp_path, oembed_server.url)
    yield srv
    stop_server(srv)
    # Shown by pytest only when the test failed: the server's side of the story.
    print("---- retake serve log (tail) ----")
    print(srv.log()[-6000:])
