"""``retake serve --workers 2`` on PostgreSQL and Redis, with real ffmpeg publishers: the RTMP port is shared by
the two worker processes (SO_REUSEPORT), each worker plays its own publishers and the other one redirects to it,
stops work from any worker, a killed worker comes back, and SIGTERM stops everything with exit status 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.media_support import codecs, ffprobe, lavfi_publisher, registered, running, status, wait_until
from tests.support import FakeOEmbed, free_port, free_ports, new_db_name, pg_available, pg_create, pg_drop

# Two whole servers start on a shared 2-core machine: the default 120 s can be too short.
pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(300)]

STREAMS = 4


@dataclass
class Workers:
    process: subprocess.Popen[bytes]
    base: str  # the shared HTTP port
    worker_bases: list[str]  # each worker's own port
    rtmp_port: int
    db_name: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self) -> set[int]:
        return children_of(self.process.pid)

    def media_nodes(self) -> dict[str, str | None]:
        """userDbId -> media_node of every open session, straight from the store."""
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", self.db_name, "-Atc",
             "SELECT user_id, coalesce(media_node, '') FROM stream_sessions WHERE status = 'open'"],
            capture_output=True, text=True, check=True, timeout=30,
        ).stdout  # fmt: skip
        rows = (line.split("|", 1) for line in out.splitlines() if line)
        return {user: node or None for user, node in rows}


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def consecutive_free_ports(count: int) -> int:
    for _ in range(100):
        base = free_port()
        if base + count <= 65535 and all(_free(base + i) for i in range(1, count)):
            return base
    raise AssertionError("no run of free ports")


def _free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    if not pg_available():
        pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 (user postgres); run `make services`")
    db_name = new_db_name("retake_workers")
    url = pg_create(db_name)
    (port, rtmp_port), worker_base = free_ports(2), consecutive_free_ports(2)
    with ExitStack() as stack:
        stack.callback(pg_drop, db_name)
        fake = stack.enter_context(FakeOEmbed().running())
        env = {
            **os.environ,
            "RETAKE_PORT": str(port),
            "RETAKE_RTMP_PORT": str(rtmp_port),
            "RETAKE_DATA_DIR": str(tmp_path / "data"),
            "RETAKE_DATABASE_URL": url,
            "RETAKE_REDIS_URL": "redis://127.0.0.1:6379/0",
            "RETAKE_REDIS_CHANNEL": f"retake-{uuid.uuid4().hex}",
            "RETAKE_OEMBED_URL": fake.url,
            "RETAKE_REGISTER_RATE": "1000/minute",
            "RETAKE_PREVIEW_INTERVAL_SECONDS": "0",
        }
        log_path = tmp_path / "server.log"
        with log_path.open("wb") as log:
            argv = [sys.executable, "-m", "retake", "serve", "--workers", "2", "--worker-port-base", str(worker_base)]
            process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        server = Workers(
            process,
            f"http://127.0.0.1:{port}",
            [f"http://127.0.0.1:{worker_base + i}" for i in range(2)],
            rtmp_port,
            db_name,
            log_path,
        )
        stack.callback(_last_resort, server)
        deadline = time.monotonic() + 90
        while not all(healthy(b) for b in [server.base, *server.worker_bases]):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"retake serve --workers 2 did not start (status {process.poll()}):\n{server.log()}")
            time.sleep(0.3)
        yield server
        print("---- retake serve --workers 2 log (tail) ----")
        print(server.log()[-8000:])


def _last_resort(server: Workers) -> None:
    """Only when a test failed half-way: end what it left running, the workers first (by their PIDs)."""
    for pid in server.pids():
        os.kill(pid, signal.SIGKILL)
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait(timeout=10)


def sigterm_stops_everything(server: Workers) -> None:
    pids = server.pids()
    assert len(pids) == 2, pids
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=40) == 0, server.log()[-4000:]
    assert not [pid for pid in pids if alive(pid)], "a worker outlived the supervisor"
    assert "every worker stopped" in server.log()


def test_publishers_spread_over_workers_and_play_through_the_shared_port(workers: Workers) -> None:
    with httpx.Client(base_url=workers.base, timeout=20) as http, ExitStack() as stack:
        agents = [registered(http, f"WorkerStar{i}") for i in range(STREAMS)]
        users = [creds["userDbId"] for creds, _auth in agents]
        targets = []
        for _creds, auth in agents:
            rtmp = http.post("/api/v1/agent/rtmp", headers=auth).json()
            assert rtmp["url"].endswith(f":{workers.rtmp_port}/live")  # the one shared RTMP port
            targets.append(f"{rtmp['url']}/{rtmp['key']}")
        encoders = [stack.enter_context(running(lavfi_publisher(t, size="320x180"))) for t in targets]
        wait_until(lambda: all(status(http, auth)["is_live"] for _c, auth in agents), timeout=60)
        wait_until(lambda: all(workers.media_nodes().get(u) for u in users), timeout=20)
        # The kernel hashes each connection to a worker: four publishers all land on one worker 1 time in 8. Then
        # one of them reconnects (a new source port, a new hash) until both workers hold some; a real encoder
        # that reconnects after a drop behaves the same.
        for attempt in range(12):
            if len(set(workers.media_nodes().values())) == 2:
                break
            encoders[attempt % STREAMS].terminate()
            encoders[attempt % STREAMS].wait(timeout=10)
            encoders[attempt % STREAMS] = stack.enter_context(running(lavfi_publisher(targets[attempt % STREAMS])))
            user = users[attempt % STREAMS]
            wait_until(lambda u=user: workers.media_nodes().get(u) is not None, timeout=30)
        nodes = workers.media_nodes()
        assert set(nodes.values()) == set(workers.worker_bases), nodes

        for user in users:
            # Through the shared port a viewer lands on either worker; ffprobe follows the 307 when needed.
            assert codecs(ffprobe(f"{workers.base}/live/{user}.flv", "-read_intervals", "%+1")) == {"h264", "aac"}
            # The worker not holding the stream redirects to the one that does, query kept.
            other = next(b for b in workers.worker_bases if b != nodes[user])
            redirect = httpx.get(f"{other}/live/{user}/index.m3u8?x=1", follow_redirects=False, timeout=20)
            assert redirect.status_code == 307
            assert redirect.headers["location"] == f"{nodes[user]}/live/{user}/index.m3u8?x=1"
            assert httpx.get(f"{nodes[user]}/live/{user}/index.m3u8", timeout=20).status_code == 200

        # stream/stop through the worker that does not hold the publisher: the holder disconnects the encoder.
        for index, user in enumerate(users[:2]):
            other = next(b for b in workers.worker_bases if b != nodes[user])
            stop = httpx.post(f"{other}/api/v1/agent/stream/stop", headers=agents[index][1], timeout=20)
            assert stop.status_code == 200, stop.text
            encoders[index].wait(timeout=20)
            wait_until(lambda a=agents[index][1]: not status(http, a)["is_live"], timeout=10)
            assert httpx.get(f"{workers.base}/live/{user}.flv", timeout=10).status_code == 404
        assert all(status(http, auth)["is_live"] for _c, auth in agents[2:])
    sigterm_stops_everything(workers)


def test_a_killed_worker_is_restarted(workers: Workers) -> None:
    before = workers.pids()
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    wait_until(lambda: len(workers.pids() - before) == 1 and len(workers.pids()) == 2, timeout=30)
    wait_until(lambda: all(healthy(b) for b in workers.worker_bases), timeout=60)
    assert workers.process.poll() is None
    assert "restarting it in" in workers.log()
    with httpx.Client(base_url=workers.base, timeout=20) as http:  # the shared port answers on both again
        for _ in range(6):
            assert http.get("/health", headers={"Connection": "close"}).status_code == 200
    sigterm_stops_everything(workers)
