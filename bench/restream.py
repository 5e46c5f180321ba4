"""Origin CPU per restream destination, against the cost of one FLV viewer, in the same run.

One ``retake serve`` with one live agent (ffmpeg, 640x360 lavfi at 30 fps, ~1 Mb/s), then phases of ``--seconds``
each, measuring the origin's CPU (utime + stime of its process tree, from /proc):

1. baseline: the publisher only;
2. + 1 FLV viewer (``curl`` reading ``/live/<id>.flv``; its own CPU is not the origin's);
3. the viewer gone, + 1 restream destination (a local nginx-rtmp);
4. + N more destinations (``--destinations``, default 3 in all) on the same nginx-rtmp.

    PYTHONPATH=$PWD/src .venv/bin/python -m bench.restream --seconds 20 --destinations 3
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.media import NginxServer, RetakeServer, process_tree, stop_process, tree_cpu_seconds, wait_for


def publisher(target: str) -> list[str]:
    return [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30",
        "-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=44100",
        "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-b:v", "800k",
        "-pix_fmt", "yuv420p", "-g", "30", "-c:a", "aac", "-b:a", "128k", "-f", "flv", target,
    ]  # fmt: skip


def measure(pid: int, seconds: float) -> float:
    """The origin's CPU over ``seconds``, in % of one core."""
    pids = process_tree(pid)
    before, start = tree_cpu_seconds(pids), time.monotonic()
    time.sleep(seconds)
    return 100 * (tree_cpu_seconds(pids) - before) / (time.monotonic() - start)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--destinations", type=int, default=3, help="destinations in the last phase (1-5)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="retake-restream-bench-") as tmp:
        root = Path(tmp)
        nginx = NginxServer(root)
        origin = RetakeServer(root, {"RETAKE_RESTREAM_ALLOW_PRIVATE": "true"})
        encoder: subprocess.Popen[bytes] | None = None
        viewer: subprocess.Popen[bytes] | None = None
        try:
            target = origin.targets(1)[0]
            auth = origin.auth[0]
            encoder = subprocess.Popen(publisher(target), stdin=subprocess.DEVNULL)
            if wait_for(lambda: origin.is_live(0), 30, 0.2) is None:
                raise SystemExit("the agent did not go live")
            time.sleep(3)
            pid = origin.process.pid
            rows: list[tuple[str, float]] = [("publisher only", measure(pid, args.seconds))]

            flv = f"{origin.base}/live/{origin.user_ids[0]}.flv"
            viewer = subprocess.Popen(["curl", "-s", "-N", "-o", "/dev/null", flv])
            time.sleep(2)
            rows.append(("+ 1 FLV viewer", measure(pid, args.seconds)))
            stop_process(viewer)

            def add(i: int) -> None:
                dest = {"name": f"n{i}", "url": f"rtmp://127.0.0.1:{nginx.rtmp_port}/live", "key": f"dest{i}"}
                origin.http.post("/api/v1/agent/restreams", headers=auth, json=dest).raise_for_status()

            def all_live() -> bool:
                status = origin.http.get("/api/v1/agent/stream/status", headers=auth).json()
                return all(entry["status"] == "live" for entry in status["restreams"])

            add(0)
            wait_for(all_live, 20, 0.2)
            time.sleep(2)
            rows.append(("+ 1 restream destination (no viewer)", measure(pid, args.seconds)))
            for i in range(1, args.destinations):
                add(i)
            wait_for(all_live, 20, 0.2)
            time.sleep(2)
            rows.append((f"+ {args.destinations} restream destinations", measure(pid, args.seconds)))
            status = origin.http.get("/api/v1/agent/stream/status", headers=auth).json()
        finally:
            for process in (viewer, encoder):
                if process is not None:
                    stop_process(process)
            origin.close()
            nginx.close()
    base = rows[0][1]
    print(f"phase length {args.seconds:.0f} s; origin CPU in % of one core")
    print("| phase | origin CPU | over the publisher alone |")
    print("|---|---|---|")
    for name, cpu in rows:
        print(f"| {name} | {cpu:.1f} % | {cpu - base:+.1f} % |")
    per_dest = (rows[3][1] - base) / args.destinations
    viewer_cost = rows[1][1] - base
    print(f"per destination (slope over {args.destinations}): {per_dest:.1f} %; one FLV viewer: {viewer_cost:.1f} %")
    print("restreams:", [(e["name"], e["status"], e["bytes_sent"]) for e in status["restreams"]])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
