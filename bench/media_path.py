"""In-process cost of one RTMP media message on its way through retake, compiled and pure Python.

What a real ffmpeg sent (the ``bench.media`` input, 720p30 1.5 Mb/s + AAC, stream-copied to a loopback
capture server: the bytes are recorded once and cached) is fed, in 4 KiB reads, through the sans-IO RTMP
connection; every media message goes to a ``LiveStream`` with its LL-HLS packager (CMAF parts) and a
recorder writing to a temporary folder, and is serialized once as an FLV tag (what one HTTP-FLV viewer
costs). Each mode runs in its own process (``RETAKE_NO_EXTENSIONS`` is read at import), alternating, and
the best round of each is reported with its CPU time per message.

    PYTHONPATH=src .venv/bin/python -m bench.media_path --rounds 5

``--baseline DIR`` adds the workers of another checkout (built in place with ``setup.py build_ext
--inplace``), alternating with this tree's, for a before/after comparison under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.ingest.capture_ffmpeg import record_publish

from bench.media import CACHE_DIR, prepare_input
from retake.ingest.rtmp import RtmpConfig

CAPTURE_SECONDS = 20
READ_SIZE = 4096


def captured_stream() -> Path:
    """The RTMP bytes ffmpeg sends for ``CAPTURE_SECONDS`` of the bench.media input (captured once)."""
    out = CACHE_DIR / f"rtmp-capture-720p30-{CAPTURE_SECONDS}s.bin"
    if not out.exists():
        partial = out.with_suffix(".part")
        source = prepare_input(CAPTURE_SECONDS + 5)
        argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-i", str(source)]
        argv += ["-t", str(CAPTURE_SECONDS), "-c", "copy", "-f", "flv"]
        # What ffmpeg sends after a Set Chunk Size 4096 (as retake serve announces), recorded once.
        partial.write_bytes(asyncio.run(record_publish(lambda url: [*argv, url], RtmpConfig())))
        partial.replace(out)
    return out


def run_once(data: bytes, directory: Path) -> tuple[int, float, float]:
    """(media messages, CPU seconds, wall seconds) for one pass over ``data``."""
    from retake.av.message import MediaMessage
    from retake.ingest.rtmp import PublishRequested, RtmpConnection
    from retake.media.flv import tag_bytes
    from retake.media.hls import HlsPackager
    from retake.media.recording import HlsRecorder
    from retake.media.stream import LiveStream

    packager = HlsPackager()
    packager.add_listener(HlsRecorder(directory))
    stream = LiveStream("bench", hls=packager)
    stream.begin_publish()
    conn = RtmpConnection(clock=lambda: 0.0)
    kinds = {"audio": 8, "video": 9, "script": 18}
    count = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(data), READ_SIZE):
        conn.receive_data(data[start : start + READ_SIZE])
        while True:
            while (event := conn.next_event()) is not None:
                if isinstance(event, MediaMessage):
                    stream.publish(event)
                    tag_bytes(kinds[event.kind], event.timestamp_ms, event.payload)  # one FLV viewer
                    count += 1
                elif isinstance(event, PublishRequested):
                    conn.accept_publish()
            if not conn.input_pending:
                break
            conn.continue_parsing()
        conn.data_to_send()
    stream.close()
    return count, time.process_time() - cpu, time.perf_counter() - wall


def worker(capture: Path, passes: int) -> dict[str, Any]:
    from retake.extensions import compiled_modules

    data = capture.read_bytes()
    shm = "/dev/shm" if Path("/dev/shm").is_dir() else None  # the recorder's files: page cache, not a disk
    with tempfile.TemporaryDirectory(prefix="retake-media-path-", dir=shm) as tmp:
        run_once(data, Path(tmp) / "warmup")
        count = 0
        cpu = wall = 0.0
        for index in range(passes):  # a pass is ~20 ms: several, each a new stream, for a stable figure
            n, c, w = run_once(data, Path(tmp) / f"run{index}")
            count, cpu, wall = count + n, cpu + c, wall + w
    return {"compiled": compiled_modules(), "messages": count, "cpu_s": cpu, "wall_s": wall}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.media_path", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="processes per mode, alternating")
    parser.add_argument("--passes", type=int, default=20, help="passes over the capture per process")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", type=Path, help="another checkout, built in place: its workers run too")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.passes)))
        return 0
    capture = captured_stream()
    trees: dict[str, Path | None] = {"": None}  # None: this process's tree
    if args.baseline is not None:
        trees["baseline "] = args.baseline.resolve()
    modes: dict[str, tuple[Path | None, dict[str, str]]] = {}
    for prefix, root in trees.items():
        modes[f"{prefix}compiled"] = (root, {"RETAKE_NO_EXTENSIONS": ""})
        modes[f"{prefix}pure Python"] = (root, {"RETAKE_NO_EXTENSIONS": "1"})
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode, (root, env) in modes.items():
            # A baseline runs its own code, bench included: its src first on the path, from its directory.
            where = {} if root is None else {"PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}"}
            out = subprocess.run(
                [sys.executable, "-m", "bench.media_path", "--worker", str(capture), "--passes", str(args.passes)],
                env={**os.environ, **env, **where},
                cwd=root,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[mode].append(json.loads(out))
            print(f"{mode}: {results[mode][-1]['cpu_s']:.3f} s CPU", file=sys.stderr)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    messages = results["compiled"][0]["messages"]
    print(f"{capture.stat().st_size / 1e6:.1f} MB of RTMP, {messages} media messages per process; load average {load}")
    print("| mode | modules compiled | µs / message, best (median) of CPU | wall, best |")
    print("|---|---|---|---|")
    best: dict[str, float] = {}
    for mode, rows in results.items():
        per = [r["cpu_s"] / r["messages"] * 1e6 for r in rows]
        wall = min(r["wall_s"] / r["messages"] * 1e6 for r in rows)
        best[mode] = min(per)
        print(f"| {mode} | {len(rows[0]['compiled'])} | {min(per):.2f} ({statistics.median(per):.2f}) | {wall:.2f} |")
    if args.baseline is not None:
        print(f"\ncompiled, baseline / this tree: {best['baseline compiled'] / best['compiled']:.2f}×")
    print(f"\npure / compiled: {best['pure Python'] / best['compiled']:.2f}×")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
