"""Media benchmark: retake's ingest + FLV/LL-HLS fan-out against nginx-rtmp, on the same input, in one run.

    python -m bench.media --streams 10,50 --seconds 30

The input (1280x720 30 fps H.264 1500k + AAC 128k, the skill's settings) is encoded once to a file; every
publisher then stream-copies it in real time. A phase with N streams runs N-1 ``ffmpeg -re -c copy``
publishers plus one probe publisher (``bench.rtmp_client.Publisher``) that records when it sent each video tag;
one viewer of the probe stream (retake: HTTP-FLV, nginx-rtmp: RTMP play) stamps each tag's arrival.
Each server runs as a child process on free loopback ports, fresh for every phase; nginx uses a config
written into a temporary folder (one worker, HLS on with 2 s fragments), never the system service.

Measured: server CPU per stream (utime+stime of the server's process tree from /proc over the steady
window), publish-to-view delay of video tags, ffmpeg start → live (retake: ``is_live``; nginx: listed as
publishing by ``rtmp_stat``), takeover time (a second publisher with the same key), RSS at the end of each
phase. Not part of ``make test``; ``tests/unit/test_bench_media.py`` runs the pure helpers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import httpx

from bench.harness import system_ticks, wait_until_quiet
from bench.rtmp_client import Arrivals, Player, Publisher, RtmpRefused, Tag, payload_key
from bench.viewers import Crowd, start_crowd
from retake.media.flv import FlvReader, FlvTag

NGINX_RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
WARMUP_SECONDS = 3.0
INPUT_MARGIN_SECONDS = 40  # ffmpeg start-up, waiting for N streams to be live, warm-up, start-up probes
EACH = -1  # run_phase(viewers=EACH): one viewer per stream
KINDS = ("retake", "retake+uvloop", "retake+pure", "nginx-rtmp")  # +pure: RETAKE_NO_EXTENSIONS=1
PG_ADMIN = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc"]
CACHE_DIR = Path(os.environ.get("RETAKE_BENCH_CACHE", Path(tempfile.gettempdir()) / "retake-bench-cache"))


# -- pure helpers (smoke-tested by tests/unit/test_bench_media.py) ----------------------------------------


def encode_input_argv(out: Path, seconds: int) -> list[str]:
    """Encode the benchmark input once: the skill's video/audio settings on a moving test pattern."""
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency",
        "-b:v", "1500k", "-maxrate", "1500k", "-bufsize", "3000k",
        "-pix_fmt", "yuv420p", "-g", "60",
        "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        "-f", "flv", str(out),
    ]  # fmt: skip


def copy_publisher_argv(source: Path, target: str) -> list[str]:
    """One real-time stream-copy publisher (no encoding: the publishers must not eat the server's CPU)."""
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
        "-re", "-i", str(source), "-c", "copy", "-f", "flv", target,
    ]  # fmt: skip


def nginx_config(root: Path, rtmp_port: int, http_port: int, *, module: Path = NGINX_RTMP_MODULE, as_root: bool) -> str:
    """nginx.conf for nginx-rtmp as a child process: one worker, loopback only, HLS with 2 s fragments."""
    temp = root / "temp"
    return f"""\
daemon off;
master_process on;
worker_processes 1;
{"user root;" if as_root else ""}
pid {root}/nginx.pid;
error_log {root}/error.log warn;
load_module {module};
events {{ worker_connections 1024; }}
rtmp {{
    server {{
        listen 127.0.0.1:{rtmp_port};
        chunk_size 4096;
        application live {{
            live on;
            record off;
            hls on;
            hls_path {root}/hls;
            hls_fragment 2s;
            hls_playlist_length 6s;
        }}
    }}
}}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    server {{
        listen 127.0.0.1:{http_port};
        location /stat {{ rtmp_stat all; }}
        location /hls {{ root {root}; add_header Cache-Control no-cache; }}
    }}
}}
"""


def parse_proc_stat(text: str) -> tuple[int, int]:
    """(ppid, utime + stime in clock ticks) from a /proc/<pid>/stat line; the name may hold spaces or ')'."""
    rest = text[text.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state): ppid is field 4, utime and stime are fields 14 and 15 [proc(5)].
    return int(rest[1]), int(rest[11]) + int(rest[12])


def parse_rss_kib(status_text: str) -> int:
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def cpu_percent(cpu_seconds: float, wall_seconds: float, streams: int = 1) -> float:
    """Share of one core, per stream."""
    return 100.0 * cpu_seconds / wall_seconds / max(1, streams)


def publishing_streams(stat_xml: str) -> set[str]:
    """Names of the streams nginx-rtmp's ``rtmp_stat`` lists as publishing (a ``<publishing/>`` child of the
    ``<stream>`` itself; its publisher's ``<client>`` carries one too)."""
    root = ElementTree.fromstring(stat_xml)
    return {s.findtext("name", "") for s in root.iter("stream") if s.find("publishing") is not None}


def delays_ms(sent: dict[bytes, float], arrivals: dict[bytes, float], not_before: float) -> list[float]:
    """Per video tag: arrival at the viewer − send by the publisher, for tags sent after ``not_before``
    (the viewer's start: tags it got from a GOP cache were sent before it connected)."""
    return [1000 * (arrivals[k] - t) for k, t in sent.items() if t >= not_before and k in arrivals]


def tags_from(tags: Sequence[Tag], start_ms: int) -> list[Tag]:
    """What a publisher that starts mid-file sends: the leading metadata and sequence headers, then the tags
    from the first video keyframe at or after ``start_ms``; the headers are stamped with that keyframe's time."""
    headers = [t for t in tags if t.timestamp_ms == 0 and (t.kind == 18 or t.payload[1:2] == b"\x00")]
    start = next(
        (i for i, t in enumerate(tags) if t.kind == 9 and t.timestamp_ms >= start_ms and t.payload[0] >> 4 == 1),
        None,
    )
    if start is None:
        return list(tags)
    at = tags[start].timestamp_ms
    return [Tag(t.kind, at, t.payload) for t in headers] + list(tags[start:])


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:  # NaN
        return "–"
    return f"{value:.{digits}f}"


@dataclass
class Phase:
    server: str
    streams: int
    seconds: float
    cpu_seconds: float = 0.0
    cpu_pct_per_stream: float = 0.0
    cpu_pct_total: float = 0.0
    rss_mib: float = 0.0
    live_streams: int = 0  # publishing at the end of the window
    failed_publishers: int = 0
    delay_ms_p50: float = float("nan")
    delay_ms_p95: float = float("nan")
    delay_ms_max: float = float("nan")
    delay_samples: int = 0
    publisher_cpu_pct: float = 0.0  # all ffmpeg publishers together, share of one core
    # from starting the publishers until the server lists all as live
    all_live_s: float = float("nan")
    load_avg: float = 0.0  # 1-minute load average at the end of the window (other work on the machine shows here)
    busy_before_pct: float = float("nan")  # whole machine, % of all cores, just before the phase (--wait-quiet)
    machine_busy_pct: float = float("nan")  # whole machine, % of all cores, over the window (server included)
    viewers: int = 0  # --viewers: extra read-and-discard viewers of stream 0 (bench/viewers.py)
    viewer_per_stream: bool = False  # --viewer-per-stream: the extra viewers watch one each of streams 1..N-1
    viewer_protocol: str = ""  # http-flv, ws-flv (retake) or rtmp (nginx-rtmp)
    viewers_dropped: int = 0  # of those, closed by the server before the end of the window
    viewer_mib: float = 0.0  # bytes they received over the window, all together


@dataclass
class Startup:
    server: str
    to_live_s: list[float] = field(default_factory=list)
    takeover_s: list[float] = field(default_factory=list)
    takeover_note: str = ""


def marginal_pct(phase: Phase, phases: Sequence[Phase]) -> float:
    """CPU per stream above the same server's idle phase of this run, in % of a core: the idle process's own
    work (store polls, checkpoints) varied from 0.2 to 1.9 % of a core between runs and is not per stream."""
    idle = next((p for p in phases if p.server == phase.server and p.streams == 0), None)
    if idle is None or phase.streams == 0:
        return float("nan")
    return (phase.cpu_pct_total - idle.cpu_pct_total) / phase.streams


def per_viewer_pct(phase: Phase, phases: Sequence[Phase]) -> float:
    """CPU per viewer: this phase's server CPU above the same server's phase with as many streams and no extra
    viewers (same run), divided by the viewers, in % of a core."""
    base = next((p for p in phases if p.server == phase.server and p.streams == phase.streams and not p.viewers), None)
    if base is None or not phase.viewers:
        return float("nan")
    return (phase.cpu_pct_total - base.cpu_pct_total) / phase.viewers


def viewer_table(phases: Sequence[Phase]) -> str:
    rows = [
        "| server | protocol | streams | viewers | CPU total (% of a core) | above no viewers, / viewer | dropped "
        "| MiB received | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        rows.append(
            f"| {p.server} | {p.viewer_protocol or '–'} | {p.streams} | {p.viewers} | {fmt(p.cpu_pct_total, 2)} | "
            f"{fmt(per_viewer_pct(p, phases), 4)} | {p.viewers_dropped} | {fmt(p.viewer_mib)} | {fmt(p.load_avg)} |"
        )
    return "\n".join(rows)


def phase_table(phases: Sequence[Phase]) -> str:
    rows = [
        "| server | streams | viewers | CPU / stream (% of a core) | above idle, / stream | CPU total "
        "| RSS (MiB) | live at end | delay p50 / p95 / max (ms) | all live after (s) | load avg "
        "| machine busy % (before / during) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in phases:
        # Every phase has the delay probe's viewer of stream 0; the column counts the viewers beyond it.
        watching = (f"1 + {p.viewers}" if p.streams else "0") + (" (1 per stream)" if p.viewer_per_stream else "")
        rows.append(
            f"| {p.server} | {p.streams} | {watching} | {fmt(p.cpu_pct_per_stream, 2)} | "
            f"{fmt(marginal_pct(p, phases), 2)} | "
            f"{fmt(p.cpu_pct_total)} % | {fmt(p.rss_mib)} | {p.live_streams}/{p.streams} | "
            f"{fmt(p.delay_ms_p50)} / {fmt(p.delay_ms_p95)} / {fmt(p.delay_ms_max)} | {fmt(p.all_live_s)} | "
            f"{fmt(p.load_avg)} | {fmt(p.busy_before_pct, 0)} / {fmt(p.machine_busy_pct, 0)} |"
        )
    return "\n".join(rows)


def startup_table(startups: Sequence[Startup]) -> str:
    rows = ["| server | ffmpeg start → live (s), median / max | takeover (ms), median / max |", "|---|---|---|"]
    for s in startups:
        live = f"{fmt(statistics.median(s.to_live_s), 2)} / {fmt(max(s.to_live_s), 2)}" if s.to_live_s else "–"
        if s.takeover_s:
            take = f"{fmt(1000 * statistics.median(s.takeover_s))} / {fmt(1000 * max(s.takeover_s))}"
        else:
            take = s.takeover_note or "–"
        rows.append(f"| {s.server} | {live} | {take} |")
    return "\n".join(rows)


# -- processes and /proc ------------------------------------------------------------------------------------


def retake_argv(uvloop: bool = False) -> list[str]:
    """``retake serve``; with ``uvloop`` the same app on uvloop's event loop instead of asyncio's (an experiment:
    ``retake serve`` itself runs ``asyncio.run``, so the stdlib selector loop)."""
    if uvloop:
        return [sys.executable, "-c", "import uvloop; uvloop.install(); from retake.cli import app; app()", "serve"]
    return [sys.executable, "-m", "retake", "serve"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free loopback ports (the workers' own ports)."""
    for _ in range(100):
        base = free_port()
        if base + count <= 65535 and all(_port_free(base + i) for i in range(1, count)):
            return base
    raise RuntimeError(f"found no {count} consecutive free ports")


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def process_tree(root_pid: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError):
                parents[int(entry.name)] = parse_proc_stat((entry / "stat").read_text())[0]
    tree, frontier = [root_pid], [root_pid]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += children
        frontier = children
    return tree


def tree_cpu_seconds(pids: Sequence[int]) -> float:
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            ticks += parse_proc_stat(Path(f"/proc/{pid}/stat").read_text())[1]
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_rss_mib(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += parse_rss_kib(Path(f"/proc/{pid}/status").read_text())
    return total / 1024


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 10) -> None:
    """End a process this benchmark started, by its PID."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    return None


def prepare_input(seconds: int) -> Path:
    """Encode the input once (cached by duration); later runs reuse it."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out = CACHE_DIR / f"input-720p30-1500k-{seconds}s.flv"
    if not out.exists():
        print(f"encoding the {seconds} s input once: {out}", file=sys.stderr)
        partial = out.with_suffix(".part.flv")
        subprocess.run(encode_input_argv(partial, seconds), check=True, timeout=30 * seconds + 60)
        partial.replace(out)
    return out


def read_tags(path: Path) -> list[Tag]:
    return [
        Tag(t.tag_type, t.timestamp_ms, t.payload) for t in FlvReader().feed(path.read_bytes()) if isinstance(t, FlvTag)
    ]


# -- the two servers -------------------------------------------------------------------------------------------


class Server:
    name = ""
    process: subprocess.Popen[bytes]

    def targets(self, count: int) -> list[str]:
        """``count`` more publish URLs (stream keys); stream indexes continue from earlier calls."""
        raise NotImplementedError

    def stream_count(self) -> int:
        raise NotImplementedError

    def live_count(self) -> int:
        raise NotImplementedError

    def is_live(self, index: int) -> bool:
        raise NotImplementedError

    def viewer(self, index: int, arrivals: Arrivals, stop: threading.Event) -> None:
        raise NotImplementedError

    def crowd_member(self, index: int, websocket: bool) -> tuple[str, Callable[[Crowd], None]]:
        """(protocol, a function adding one cheap viewer of stream ``index`` to a crowd)."""
        raise NotImplementedError

    def close(self) -> None:
        stop_process(self.process)


class RetakeServer(Server):
    name = "retake"

    def __init__(self, root: Path, extra_env: dict[str, str], *, uvloop: bool = False, workers: int = 0) -> None:
        """``workers`` > 0: ``retake serve --workers`` on a throwaway PostgreSQL database and Redis (what several
        workers need), 0: one process on SQLite as before."""
        self.name = "retake" + ("+uvloop" if uvloop else "") + "".join(f" {k}={v}" for k, v in extra_env.items())
        self.name += f" workers={workers} (PostgreSQL)" if workers else ""
        self.port, self.rtmp_port = free_port(), free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.database = f"retake_bench_{os.getpid()}_{self.port}" if workers else None
        worker_base = free_port_run(workers) if workers else 0
        # --workers 1 is the single process of today (on PostgreSQL here): no supervisor, no ports of its own.
        self.worker_bases = [f"http://127.0.0.1:{worker_base + i}" for i in range(workers)] if workers > 1 else []
        env = {
            **os.environ,
            "RETAKE_PORT": str(self.port),
            "RETAKE_RTMP_PORT": str(self.rtmp_port),
            "RETAKE_DATA_DIR": str(root / "data"),
            "RETAKE_REGISTER_RATE": "10000/minute",
            # Every publisher comes from 127.0.0.1: the per-address RTMP limit (8) would refuse most of them.
            "RETAKE_RTMP_MAX_CONNECTIONS_PER_IP": "100000",
            **extra_env,
        }
        if self.database:
            subprocess.run([*PG_ADMIN, f'CREATE DATABASE "{self.database}"'], check=True, capture_output=True)
            env |= {
                "RETAKE_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:5432/{self.database}",
                "RETAKE_REDIS_URL": "redis://127.0.0.1:6379/0",
                "RETAKE_REDIS_CHANNEL": f"retake-bench-{self.database}",
                "RETAKE_WORKERS": str(workers),
                "RETAKE_WORKER_PORT_BASE": str(worker_base),
            }
        self.log = (root / "retake.log").open("wb")
        self.process = subprocess.Popen(retake_argv(uvloop), env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.http = httpx.Client(base_url=self.base, timeout=30)
        self.user_ids: list[str] = []
        self.auth: list[dict[str, str]] = []
        try:
            if wait_for(self._healthy, 90, 0.2) is None:
                raise RuntimeError(f"retake serve did not start: see {root / 'retake.log'}")
        except BaseException:
            self.close()  # no server (or database) left behind by a failed start
            raise

    def _healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"retake serve exited with {self.process.returncode}")
        try:
            return all(httpx.get(f"{b}/health").status_code == 200 for b in [self.base, *self.worker_bases])
        except httpx.HTTPError:
            return False

    def targets(self, count: int) -> list[str]:
        out = []
        for i in range(len(self.user_ids), len(self.user_ids) + count):
            body = {
                "agent_name": f"Bench{i:04d}",
                "wallet_address": "11111111111111111111111111111111",
                "ticker": "BNCH",
            }
            creds = self.http.post("/api/v1/agent/register", json=body).json()
            auth = {"Authorization": f"Bearer {creds['access_token']}"}
            rtmp = self.http.post("/api/v1/agent/rtmp", headers=auth).json()
            self.http.post("/api/v1/agent/stream/start", headers=auth).raise_for_status()
            self.user_ids.append(creds["userDbId"])
            self.auth.append(auth)
            out.append(f"{rtmp['url']}/{rtmp['key']}")
        return out

    def stream_count(self) -> int:
        return len(self.user_ids)

    def live_count(self) -> int:
        return len(self.http.get("/api/v1/users/live/").json())

    def is_live(self, index: int) -> bool:
        return bool(self.http.get("/api/v1/agent/stream/status", headers=self.auth[index]).json()["is_live"])

    def viewer(self, index: int, arrivals: Arrivals, stop: threading.Event) -> None:
        reader = FlvReader()
        url = f"{self.base}/live/{self.user_ids[index]}.flv"
        stream = httpx.stream("GET", url, timeout=10, follow_redirects=True)  # a worker may redirect (307)
        with contextlib.suppress(httpx.HTTPError), stream as response:
            for chunk in response.iter_raw():
                now = time.monotonic()
                for item in reader.feed(chunk):
                    if isinstance(item, FlvTag) and item.tag_type == 9 and item.payload[1:2] == b"\x01":
                        arrivals.add(payload_key(item.payload), now)
                if stop.is_set():
                    return

    def crowd_member(self, index: int, websocket: bool) -> tuple[str, Callable[[Crowd], None]]:
        path = f"/live/{self.user_ids[index]}.flv"
        return ("ws-flv" if websocket else "http-flv"), lambda c: c.add_http("127.0.0.1", self.port, path, websocket)

    def close(self) -> None:
        self.http.close()
        super().close()
        self.log.close()
        if self.database:
            subprocess.run([*PG_ADMIN, f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'], capture_output=True)


class NginxServer(Server):
    name = "nginx-rtmp"

    def __init__(self, root: Path) -> None:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(nginx).exists() or not NGINX_RTMP_MODULE.exists():
            raise SystemExit("nginx-rtmp is missing: apt-get install -y nginx libnginx-mod-rtmp")
        self.root = root / "nginx"
        (self.root / "temp").mkdir(parents=True)
        (self.root / "hls").mkdir()
        self.rtmp_port, self.http_port = free_port(), free_port()
        conf = self.root / "nginx.conf"
        conf.write_text(nginx_config(self.root, self.rtmp_port, self.http_port, as_root=os.geteuid() == 0))
        argv = [nginx, "-p", str(self.root), "-c", str(conf), "-e", str(self.root / "error.log")]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.http_port}", timeout=10)
        self.names: list[str] = []
        if wait_for(self._up, 20, 0.1) is None:
            raise RuntimeError(f"nginx did not start: see {self.root / 'error.log'}")

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"nginx exited with {self.process.returncode}")
        try:
            return self.http.get("/stat").status_code == 200
        except httpx.HTTPError:
            return False

    def targets(self, count: int) -> list[str]:
        start = len(self.names)
        self.names += [f"stream{i:04d}" for i in range(start, start + count)]
        return [f"rtmp://127.0.0.1:{self.rtmp_port}/live/{name}" for name in self.names[start:]]

    def _stat(self) -> str:
        return self.http.get("/stat").text

    def stream_count(self) -> int:
        return len(self.names)

    def live_count(self) -> int:
        return len(publishing_streams(self._stat()))

    def is_live(self, index: int) -> bool:
        return self.names[index] in publishing_streams(self._stat())

    def viewer(self, index: int, arrivals: Arrivals, stop: threading.Event) -> None:
        player = Player(f"rtmp://127.0.0.1:{self.rtmp_port}/live/{self.names[index]}")
        try:
            player.run(arrivals.add, stop)
        finally:
            player.close()

    def crowd_member(self, index: int, websocket: bool) -> tuple[str, Callable[[Crowd], None]]:
        url = f"rtmp://127.0.0.1:{self.rtmp_port}/live/{self.names[index]}"
        return "rtmp", lambda c: c.add_rtmp(url)

    def close(self) -> None:
        self.http.close()
        stop_process(self.process, signal.SIGQUIT)  # graceful: lets the worker close its HLS files


@contextlib.contextmanager
def started(kind: str, root: Path, retake_env: dict[str, str], workers: int = 0) -> Iterator[Server]:
    if kind not in KINDS:
        raise SystemExit(f"unknown server {kind!r}; choose from {', '.join(KINDS)}")
    server: Server = (
        NginxServer(root)
        if kind == "nginx-rtmp"
        else RetakeServer(
            root,
            retake_env | ({"RETAKE_NO_EXTENSIONS": "1"} if kind == "retake+pure" else {}),
            uvloop="uvloop" in kind,
            workers=workers,
        )
    )
    try:
        yield server
    finally:
        server.close()


# -- measurements ---------------------------------------------------------------------------------------------


def start_publishers(source: Path, targets: Sequence[str]) -> list[subprocess.Popen[bytes]]:
    """One ``ffmpeg`` per target, all at once (as encoders restarting behind one address do)."""
    return [
        subprocess.Popen(
            copy_publisher_argv(source, t),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for t in targets
    ]


def run_phase(
    server: Server, streams: int, seconds: float, source: Path, tags: list[Tag], viewers: int = 0, ws: bool = False
) -> Phase:
    """``viewers`` extra viewers of stream 0, or with ``EACH`` one viewer of each other stream (stream 0 has the
    delay probe's), so that every stream is watched once."""
    each = viewers == EACH
    extra = max(0, streams - 1) if each else viewers
    phase = Phase(server.name, streams, seconds, viewers=extra, viewer_per_stream=each)
    crowd: Crowd | None = None
    targets = server.targets(streams)
    spawned = time.monotonic()
    publishers = start_publishers(source, targets[1:])
    probe_stop = threading.Event()
    viewer_stop = threading.Event()
    probe: Publisher | None = None
    arrivals = Arrivals()
    try:
        if streams:  # 0 streams: the idle server's own CPU (the baseline under every per-stream figure)
            probe = Publisher(targets[0], timeout=60)  # it queues behind the other N-1 publishes
            threading.Thread(target=probe.run, args=(tags,), kwargs={"until": probe_stop.is_set}, daemon=True).start()
            if wait_for(lambda: server.live_count() >= streams, timeout=30 + streams, interval=0.1) is None:
                print(f"  only {server.live_count()}/{streams} streams went live", file=sys.stderr)
            else:
                phase.all_live_s = time.monotonic() - spawned
            threading.Thread(target=server.viewer, args=(0, arrivals, viewer_stop), daemon=True).start()
            if each and streams > 1:
                members = [server.crowd_member(i, ws) for i in range(1, streams)]
                phase.viewer_protocol = members[0][0]
                crowd, _ = start_crowd([add for _protocol, add in members])
            elif viewers > 0:
                phase.viewer_protocol, member = server.crowd_member(0, ws)
                crowd, _ = start_crowd([member] * viewers)
        time.sleep(WARMUP_SECONDS)
        received0 = crowd.received if crowd else 0
        pids = process_tree(server.process.pid)
        cpu0, t0 = tree_cpu_seconds(pids), time.monotonic()
        pub0 = tree_cpu_seconds([p.pid for p in publishers])
        sys0 = system_ticks()
        time.sleep(seconds)
        pids = process_tree(server.process.pid)
        phase.cpu_seconds = tree_cpu_seconds(pids) - cpu0
        sys1 = system_ticks()
        if sys1[1] > sys0[1]:
            phase.machine_busy_pct = 100.0 * (sys1[0] - sys0[0]) / (sys1[1] - sys0[1])
        wall = time.monotonic() - t0
        phase.publisher_cpu_pct = cpu_percent(tree_cpu_seconds([p.pid for p in publishers]) - pub0, wall)
        phase.rss_mib = tree_rss_mib(pids)
        phase.cpu_pct_total = cpu_percent(phase.cpu_seconds, wall)
        phase.cpu_pct_per_stream = cpu_percent(phase.cpu_seconds, wall, streams)
        phase.live_streams = server.live_count()
        phase.load_avg = os.getloadavg()[0]
        phase.failed_publishers = sum(p.poll() is not None for p in publishers)
        if crowd is not None:
            phase.viewers_dropped = crowd.dropped
            phase.viewer_mib = (crowd.received - received0) / 2**20
        viewer_stop.set()
        not_before = arrivals.first_at if arrivals.first_at is not None else t0
        delays = delays_ms(dict(probe.sent), dict(arrivals.times), not_before) if probe else []
        phase.delay_samples = len(delays)
        if delays:
            phase.delay_ms_p50, phase.delay_ms_p95 = percentile(delays, 50), percentile(delays, 95)
            phase.delay_ms_max = max(delays)
    finally:
        probe_stop.set()
        viewer_stop.set()
        if crowd is not None:
            crowd.close()
        if probe is not None:
            probe.close()
        for process in publishers:
            stop_process(process, timeout=5)
    return phase


def measure_startup(server: Server, source: Path, tags: list[Tag], repeats: int) -> Startup:
    result = Startup(server.name)
    [target] = server.targets(1)
    index = server.stream_count() - 1
    for _ in range(repeats):
        process = subprocess.Popen(
            copy_publisher_argv(source, target),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            took = wait_for(lambda: server.is_live(index), timeout=15)
            if took is not None:
                result.to_live_s.append(took)
        finally:
            stop_process(process, signal.SIGINT)
        wait_for(lambda: not server.is_live(index), timeout=15, interval=0.1)
        time.sleep(0.5)
    # Takeover: a live publisher and a viewer; a second publisher with the same key takes the stream.
    stop = threading.Event()
    first = Publisher(target)
    threading.Thread(target=first.run, args=(tags,), kwargs={"until": stop.is_set}, daemon=True).start()
    wait_for(lambda: server.is_live(index), timeout=15)
    arrivals = Arrivals()
    threading.Thread(target=server.viewer, args=(index, arrivals, stop), daemon=True).start()
    time.sleep(2.0)
    owners = [first]
    duration = tags[-1].timestamp_ms
    try:
        for attempt in range(repeats):
            started_at = time.monotonic()
            try:
                second = Publisher(target)
            except (RtmpRefused, ConnectionError, OSError) as exc:
                result.takeover_note = f"refused: {exc}"
                break
            owners.append(second)
            # Each newcomer starts at a different place in the file, so its frames are ones the viewer never saw.
            start_ms = int(duration * (0.4 + 0.5 * attempt / max(1, repeats)))
            resumed = tags_from(tags, start_ms)
            threading.Thread(target=second.run, args=(resumed,), kwargs={"until": stop.is_set}, daemon=True).start()

            def taken(publisher: Publisher = second, since: float = started_at) -> bool:
                return any(arrivals.times.get(k, 0) >= since for k in list(publisher.sent))

            if wait_for(taken, timeout=10, interval=0.002) is None:
                result.takeover_note = "no frame of the new publisher reached the viewer in 10 s"
                break
            result.takeover_s.append(time.monotonic() - started_at)  # connect + publish + first frame viewed
            time.sleep(1.5)
    finally:
        stop.set()
        for owner in owners:
            owner.close()
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.media", description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", default="10,50", help="comma-separated stream counts, e.g. 10,50")
    parser.add_argument("--seconds", type=int, default=30, help="steady-state window per phase")
    parser.add_argument("--servers", default="retake,nginx-rtmp", help=f"comma-separated, from {', '.join(KINDS)}")
    parser.add_argument("--no-startup", action="store_true", help="skip the start-up and takeover measurements")
    parser.add_argument("--repeats", type=int, default=5, help="start-up and takeover repetitions")
    parser.add_argument(
        "--retake-env", action="append", default=[], metavar="KEY=VALUE", help="extra RETAKE_* settings"
    )
    parser.add_argument(
        "--workers",
        default="",
        help="comma-separated `retake serve --workers` counts, e.g. 1,2: each retake server then runs once per "
        "count, on a throwaway PostgreSQL database and Redis (127.0.0.1), as several workers require",
    )
    parser.add_argument(
        "--viewers",
        type=int,
        default=0,
        help="per-viewer cost: each server runs every phase twice, without and with this many extra viewers of "
        "one stream (retake HTTP-FLV, nginx-rtmp RTMP play; raw sockets that read and discard)",
    )
    parser.add_argument(
        "--viewer-per-stream",
        action="store_true",
        help="each server runs every phase twice, without and with one read-and-discard viewer of every stream "
        "(retake HTTP-FLV, nginx-rtmp RTMP play)",
    )
    parser.add_argument("--ws-viewers", action="store_true", help="with --viewers: retake's viewers use WebSocket-FLV")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument(
        "--wait-quiet",
        type=float,
        metavar="PCT",
        help="before each phase wait (up to 5 min) until the machine is less than PCT %% busy: other people's "
        "jobs on a shared machine move every number here",
    )
    args = parser.parse_args(argv)
    counts = [int(n) for n in args.streams.split(",") if n.strip()]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    retake_env = dict(item.split("=", 1) for item in args.retake_env)
    worker_counts = [int(n) for n in args.workers.split(",") if n.strip()]
    runs = [(k, w) for k in servers for w in (worker_counts if worker_counts and k != "nginx-rtmp" else [0])]
    source = prepare_input(args.seconds + INPUT_MARGIN_SECONDS + max(counts, default=0))
    tags = read_tags(source)
    phases: list[Phase] = []
    startups: list[Startup] = []
    with tempfile.TemporaryDirectory(prefix="retake-bench-") as tmp:
        crowds = [0] + ([args.viewers] if args.viewers else []) + ([EACH] if args.viewer_per_stream else [])
        for n in counts:
            for kind, workers in runs:
                for extra in crowds:
                    print(
                        f"{kind} (workers {workers or '-'}): {n} streams, "
                        f"{'a viewer per stream' if extra == EACH else f'{extra} viewers'}, {args.seconds} s",
                        file=sys.stderr,
                    )
                    root = Path(tmp) / f"{kind}-{workers}-{n}-{extra}"
                    root.mkdir()
                    busy = wait_until_quiet(args.wait_quiet, 300) if args.wait_quiet else float("nan")
                    with started(kind, root, retake_env, workers) as server:
                        phases.append(run_phase(server, n, args.seconds, source, tags, extra, args.ws_viewers))
                    phases[-1].busy_before_pct = busy
                    print("  " + json.dumps(asdict(phases[-1])), file=sys.stderr)
        for kind, workers in [] if args.no_startup else runs:
            print(f"{kind} (workers {workers or '-'}): start-up and takeover", file=sys.stderr)
            root = Path(tmp) / f"{kind}-{workers}-startup"
            root.mkdir()
            with started(kind, root, retake_env, workers) as server:
                startups.append(measure_startup(server, source, tags, args.repeats))
            print("  " + json.dumps(asdict(startups[-1])), file=sys.stderr)
    print(phase_table(phases))
    print()
    if args.viewers or args.viewer_per_stream:
        print(viewer_table(phases))
        print()
    print(startup_table(startups))
    if args.out:
        args.out.write_text(
            json.dumps({"phases": [asdict(p) for p in phases], "startup": [asdict(s) for s in startups]}, indent=2)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
