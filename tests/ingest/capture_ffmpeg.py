"""Regenerate the ffmpeg captures in ``tests/ingest/data`` (run by hand, not by pytest)::

    .venv/bin/python -m tests.ingest.capture_ffmpeg

For each capture, one ffmpeg run publishes ~1 s of 160x120 H.264 (with B-frames) + AAC through the ``tee``
muxer to two identical FLV muxers: one speaks RTMP to a loopback server built on the sans-IO core (which
records every byte the client sent), the other writes a plain ``.flv`` file. The replay tests check that the
core turns the recorded bytes into exactly the FLV file's tags.

* ``ffmpeg_publish``: what ffmpeg sends by default after our Set Chunk Size 4096.
* ``ffmpeg_publish_extts``: ``-output_ts_offset 16800`` pushes every timestamp past 2^24 ms, and the server
  announces no chunk size, so ffmpeg keeps 128-byte chunks: extended timestamps on type-0/1 headers and on
  many type-3 continuation chunks.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from pathlib import Path

from retake.ingest.rtmp import PublishRequested, RtmpConfig, RtmpConnection

DATA = Path(__file__).parent / "data"
KEY = "capturekey"


def ffmpeg_argv(outputs: str, *, extra: tuple[str, ...] = ()) -> list[str]:
    return [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=30",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=channel_layout=stereo:sample_rate=44100",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "15",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-t",
        "1",
        *extra,
        "-f",
        "tee",
        outputs,
    ]


async def record_publish(argv: Callable[[str], list[str]], config: RtmpConfig) -> bytes:
    """Run ffmpeg ``argv(rtmp_url)`` against a loopback server on the sans-IO core; every byte it sent."""
    received = bytearray()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = RtmpConnection(clock=time.monotonic, config=config)
        while data := await reader.read(65536):
            received.extend(data)
            conn.receive_data(data)
            for event in conn.events():
                if isinstance(event, PublishRequested):
                    conn.accept_publish()
            writer.write(conn.data_to_send())
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    process = await asyncio.create_subprocess_exec(*argv(f"rtmp://127.0.0.1:{port}/live/{KEY}"))
    try:
        code = await asyncio.wait_for(process.wait(), 120)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    await asyncio.sleep(0.5)
    server.close()
    await server.wait_closed()
    if code != 0:
        sys.exit(f"ffmpeg failed with {code}")
    return bytes(received)


async def capture(name: str, *, config: RtmpConfig, extra: tuple[str, ...] = ()) -> None:
    flv = DATA / f"{name}.flv"

    def argv(url: str) -> list[str]:
        outputs = f"[f=flv:flvflags=no_duration_filesize]{url}|[f=flv:flvflags=no_duration_filesize]{flv}"
        return ffmpeg_argv(outputs, extra=extra)

    received = await record_publish(argv, config)
    (DATA / f"{name}.bin").write_bytes(received)
    print(f"{name}: {len(received)} bytes captured, {flv.stat().st_size} bytes of FLV")


async def main() -> None:
    DATA.mkdir(exist_ok=True)
    await capture("ffmpeg_publish", config=RtmpConfig())
    await capture(
        "ffmpeg_publish_extts",
        config=RtmpConfig(chunk_size=128),
        extra=("-output_ts_offset", "16800"),
    )


if __name__ == "__main__":
    asyncio.run(main())
