"""Peers for the edge-cache test: Debian's nginx running docs/deploy/edge-nginx.conf, and simulated LL-HLS viewers
that follow a playlist the way hls.js does in low-latency mode (blocking reloads plus the preload-hinted part)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import statistics
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import aiohttp
import httpx

from tests.support import free_port

EDGE_CONF = Path(__file__).parents[2] / "docs/deploy/edge-nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@dataclass
class Edge:
    base: str
    prefix: Path
    process: subprocess.Popen[bytes]

    @property
    def access_log(self) -> Path:
        return self.prefix / "access.log"

    def log_lines(self) -> list[str]:
        return self.access_log.read_text(errors="replace").splitlines() if self.access_log.exists() else []


def edge_config(origin_port: int, listen_port: int, prefix: Path) -> str:
    """The shipped file with only its marked, machine-specific lines changed. Each must be found exactly once, so a
    drift of the shipped file fails here rather than testing something else."""
    text = EDGE_CONF.read_text()
    user = "user root;" if os.geteuid() == 0 else ""  # workers must write the cache in the test's own folder
    replacements = {
        "user www-data;": user,
        "pid /run/nginx-retake-edge.pid;": f"pid {prefix}/nginx.pid;",
        "error_log /var/log/nginx/retake-edge.error.log warn;": f"error_log {prefix}/error.log info;",
        "access_log /var/log/nginx/retake-edge.access.log retake_edge;": f"access_log {prefix}/access.log retake_edge;",
        "proxy_cache_path /var/cache/nginx-retake-edge ": f"proxy_cache_path {prefix}/cache ",
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{origin_port};",
        "listen 80;": f"listen 127.0.0.1:{listen_port};",
    }
    for old, new in replacements.items():
        assert text.count(old) == 1, f"edge-nginx.conf no longer has exactly one {old!r}"
        text = text.replace(old, new)
    return text


@contextmanager
def nginx_edge(origin_port: int, prefix: Path, port: int | None = None) -> Iterator[Edge]:
    prefix.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = prefix / "edge-nginx.conf"
    conf.write_text(edge_config(origin_port, port, prefix))
    command = [NGINX, "-p", str(prefix), "-e", str(prefix / "error.log"), "-c", str(conf)]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, f"nginx -t refused the edge config:\n{checked.stderr}"
    process = subprocess.Popen([*command, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    edge = Edge(f"http://127.0.0.1:{port}", prefix, process)
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, f"nginx exited: {process.stderr.read() if process.stderr else ''!r}"
            try:
                httpx.get(f"{edge.base}/health", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "nginx did not listen within 10 s"
                time.sleep(0.1)
        yield edge
    finally:
        process.terminate()  # SIGTERM: nginx's fast shutdown of master and workers
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        if process.stderr:
            process.stderr.close()


# -- simulated LL-HLS viewers ------------------------------------------------------------------------------------

_PDT = re.compile(r"^#EXT-X-PROGRAM-DATE-TIME:(.+)$")
_PART = re.compile(r'^#EXT-X-PART:DURATION=([\d.]+),URI="([^"]+)"')
_HINT = re.compile(r'^#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part(\d+)_(\d+)\.m4s"')
_MAP = re.compile(r'^#EXT-X-MAP:URI="([^"]+)"')


@dataclass
class Playlist:
    part_ends: dict[str, float]  # part name -> wall-clock time its media ends (segment PDT + part durations)
    hint: tuple[int, int] | None  # (msn, part) of EXT-X-PRELOAD-HINT
    init: str | None


def parse_playlist(text: str) -> Playlist:
    ends: dict[str, float] = {}
    hint = init = None
    clock = 0.0
    for line in text.splitlines():
        if match := _PDT.match(line):
            clock = datetime.fromisoformat(match[1].replace("Z", "+00:00")).timestamp()
        elif match := _PART.match(line):
            clock += float(match[1])
            ends[match[2]] = clock
        elif match := _HINT.match(line):
            hint = (int(match[1]), int(match[2]))
        elif (match := _MAP.match(line)) and init is None:
            init = match[1]
    return Playlist(ends, hint, init)


@dataclass
class ViewerStats:
    ages: list[float] = field(default_factory=list)  # per part received: receipt time - end of its media
    received: dict[str, float] = field(default_factory=dict)  # part name -> when it was received
    parts: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class _Player:
    """One player's HTTP: aiohttp (its C parser) rather than httpx, whose per-request CPU made 220 simulated
    players on this 2-core machine the bottleneck of what they were to measure."""

    def __init__(self, local_address: str) -> None:
        connector = aiohttp.TCPConnector(local_addr=(local_address, 0), limit=6)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=20))

    async def get(self, url: str, params: dict[str, int] | None = None) -> tuple[int, bytes]:
        async with self.session.get(url, params=params) as response:
            return response.status, await response.read()


async def _viewer(player: _Player, playlist_url: str, until: float, stats: ViewerStats) -> None:
    """hls.js in low-latency mode: one plain load, then per part a blocking reload for the hinted part while the
    hinted part itself is fetched; parts listed but not fetched yet (missed hints) are fetched too."""
    base = playlist_url.rsplit("/", 1)[0]
    status, body = await player.get(playlist_url)
    if status != 200:
        stats.errors[f"playlist {status}"] += 1
        return
    playlist = parse_playlist(body.decode())
    if playlist.init:
        status, _ = await player.get(f"{base}/{playlist.init}")
        if status != 200:
            stats.errors[f"init {status}"] += 1
    fetched = set(playlist.part_ends)  # start at the live edge, as a player joining does
    ends = dict(playlist.part_ends)
    pending: dict[str, float] = {}  # parts received before a playlist listing them gave their media end

    async def part(name: str) -> None:
        status, data = await player.get(f"{base}/{name}")
        received = time.time()
        if status != 200 or not data:
            stats.errors[f"part {status}"] += 1
            return
        fetched.add(name)
        stats.parts += 1
        stats.received[name] = received
        if name in ends:
            stats.ages.append(received - ends[name])
        else:
            pending[name] = received

    while time.monotonic() < until and playlist.hint is not None:
        msn, index = playlist.hint
        hinted = f"part{msn}_{index}.m4s"
        reload = player.get(playlist_url, params={"_HLS_msn": msn, "_HLS_part": index})
        (status, body), _ = await asyncio.gather(reload, part(hinted) if hinted not in fetched else asyncio.sleep(0))
        if status != 200:
            stats.errors[f"blocking playlist {status}"] += 1
            await asyncio.sleep(0.2)
            continue
        playlist = parse_playlist(body.decode())
        ends.update(playlist.part_ends)
        for name, received in list(pending.items()):
            if name in ends:
                stats.ages.append(received - ends[name])
                del pending[name]
        missed = [name for name in playlist.part_ends if name not in fetched]
        await asyncio.gather(*(part(name) for name in missed[-4:]))


async def run_viewers(
    playlist_url: str, count: int, seconds: float, local_address: str, stagger: float = 1.0
) -> list[ViewerStats]:
    """``count`` viewers of ``playlist_url`` for ``seconds``, joining over ``stagger`` seconds, their requests sent
    from ``local_address`` (so the origin's access log tells their requests from others)."""
    stats = [ViewerStats() for _ in range(count)]
    until = time.monotonic() + seconds

    async def one(i: int) -> None:
        await asyncio.sleep(stagger * i / count)
        player = _Player(local_address)  # its own connections, as each real player has
        try:
            await _viewer(player, playlist_url, until, stats[i])
        except (aiohttp.ClientError, TimeoutError) as exc:
            stats[i].errors[type(exc).__name__] += 1
        finally:
            await player.session.close()

    await asyncio.gather(*(one(i) for i in range(count)))
    return stats


def percentile(values: list[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, max(0, round(q) - 1))]
