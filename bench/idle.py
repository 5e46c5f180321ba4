"""What an idle node costs: ``retake serve`` with nothing streaming and nobody watching, CPU over a window.

Every periodic wake-up of the server (timers, polls of the store, the HTTP server's own tick) shows here; the
issue 14 goal is < 0.1 % of one core. The node starts on free ports, gets ``--warmup`` seconds to settle (start-up
work, first checkpoints), then its process's utime + stime over ``--seconds`` is the figure. With ``--postgres``
the node runs on a throwaway PostgreSQL database and Redis pub/sub, as a multi-node deployment does.

    PYTHONPATH=$PWD/src .venv/bin/python -m bench.idle --seconds 60
    PYTHONPATH=$PWD/src .venv/bin/python -m bench.idle --seconds 60 --postgres
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from bench.harness import (
    cpu_percent,
    machine_line,
    postgres_database,
    proc_ticks,
    redis_channel,
    start_node,
    stop_node,
)


@contextlib.contextmanager
def backend_env(postgres: bool) -> Iterator[dict[str, str]]:
    if not postgres:
        yield {}
        return
    with postgres_database("retake_idle") as url:
        yield {
            "RETAKE_DATABASE_URL": url,
            "RETAKE_REDIS_URL": "redis://127.0.0.1:6379/0",
            "RETAKE_REDIS_CHANNEL": redis_channel(),
        }


def measure_idle(seconds: float, warmup: float, postgres: bool) -> float:
    """The idle node's CPU over ``seconds`` after ``warmup``, in % of one core."""
    with tempfile.TemporaryDirectory(prefix="retake-idle-") as tmp, backend_env(postgres) as env:
        node = start_node("idle", Path(tmp), env)
        try:
            time.sleep(warmup)
            before, start = proc_ticks(node.pid), time.monotonic()
            time.sleep(seconds)
            after, wall = proc_ticks(node.pid), time.monotonic() - start
            if before is None or after is None:
                raise RuntimeError(f"the node exited during the measurement:\n{node.log()[-2000:]}")
            return cpu_percent(after - before, wall)
        finally:
            stop_node(node)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="measurement window (default 60)")
    parser.add_argument("--warmup", type=float, default=15, help="seconds to settle before measuring (default 15)")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL + Redis instead of SQLite")
    args = parser.parse_args(argv)
    print(machine_line())
    share = measure_idle(args.seconds, args.warmup, args.postgres)
    backend = "PostgreSQL + Redis" if args.postgres else "SQLite, in-process pub/sub"
    print(f"idle node ({backend}): {share:.3f} % of one core over {args.seconds:.0f} s (goal < 0.1 %)")


if __name__ == "__main__":
    main()
