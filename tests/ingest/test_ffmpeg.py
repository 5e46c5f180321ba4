"""Real-peer tests: ffmpeg 5.1 publishes to :class:`RtmpServer` on a loopback port.

Every ffmpeg is bounded (``-t``) and awaited with a timeout; on timeout the process we started is killed by
its own handle (never by name).
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
from pathlib import Path

import pytest

from retake.av import amf0
from retake.av.message import MediaMessage
from retake.ingest import RtmpServer
from tests.ingest.conftest import ServerFactory
from tests.ingest.support import FakeHooks, self_signed_cert


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        pytest.fail("ffmpeg is required for the real-peer ingest tests: apt-get install -y ffmpeg")
    return path


def publish_argv(ffmpeg: str, url: str, *, seconds: float, size: str = "320x240", realtime: bool = True) -> list[str]:
    """The command of the task brief (the skill's shape): lavfi test source + silence, x264 + AAC, FLV."""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        *(["-re"] if realtime else []),
        "-f",
        "lavfi",
        "-i",
        f"testsrc=size={size}:rate=30",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=channel_layout=stereo:sample_rate=44100",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-tune",
        "zerolatency",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "60",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        "-t",
        str(seconds),
        "-f",
        "flv",
        url,
    ]


class Ffmpeg:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, argv: list[str]) -> Ffmpeg:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def finish(self, within: float) -> tuple[int, str]:
        """Wait for exit; kill the process we started if it overstays. Returns (exit code, stderr)."""
        try:
            _out, err = await asyncio.wait_for(self.process.communicate(), within)
        except TimeoutError:
            self.process.kill()
            _out, err = await self.process.communicate()
            pytest.fail(f"ffmpeg (pid {self.process.pid}) did not exit within {within} s: {err.decode()[-500:]}")
        assert self.process.returncode is not None
        return self.process.returncode, err.decode(errors="replace")


def url(server: RtmpServer, key: str, scheme: str = "rtmp") -> str:
    return f"{scheme}://127.0.0.1:{server.port}/live/{key}"


def is_avc_sequence_header(message: MediaMessage) -> bool:
    return message.kind == "video" and message.payload[0] & 0x0F == 7 and message.payload[1] == 0


def is_aac_sequence_header(message: MediaMessage) -> bool:
    return message.kind == "audio" and message.payload[0] >> 4 == 10 and message.payload[1] == 0


def is_keyframe(message: MediaMessage) -> bool:
    return message.kind == "video" and message.payload[0] >> 4 == 1 and message.payload[1] == 1


async def test_ffmpeg_publishes(ffmpeg: str, make_server: ServerFactory) -> None:
    hooks = FakeHooks(keys={"sk_live_abc": "sess-1"})
    server = await make_server(hooks)
    process = await Ffmpeg.start(publish_argv(ffmpeg, url(server, "sk_live_abc"), seconds=3))

    # Meanwhile, broken peers come and go; none of them may disturb the publisher.
    await hooks.first_media.wait()
    for junk in (b"GET / HTTP/1.1\r\n\r\n", b"\x03" + bytes(1536) + bytes(1536) + b"\xff" * 40, b"\x03\x00"):
        _reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(junk)
        writer.close()

    code, err = await process.finish(within=20)
    assert code == 0, err
    await asyncio.wait_for(hooks.unpublish_seen.wait(), 5)

    assert hooks.calls[0] == ("publish", ("live", "sk_live_abc"))
    messages = [message for _grant, message in hooks.media]
    assert messages[0].kind == "script"
    assert amf0.decode_one(messages[0].payload)[0] == "onMetaData"
    assert any(is_avc_sequence_header(m) for m in messages)
    assert any(is_aac_sequence_header(m) for m in messages)
    assert sum(is_keyframe(m) for m in messages) >= 2  # -g 60 at 30 fps over 3 s
    for kind in ("audio", "video"):
        timestamps = [m.timestamp_ms for m in messages if m.kind == kind]
        assert timestamps == sorted(timestamps)
        assert 2800 <= timestamps[-1] <= 3300
    assert sum(m.kind == "video" for m in messages) >= 85
    assert [(grant.session_id, reason) for grant, reason in hooks.unpublished] == [("sess-1", "unpublish")]


async def test_ffmpeg_wrong_key_is_refused_before_publish_start(ffmpeg: str, make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    process = await Ffmpeg.start(publish_argv(ffmpeg, url(server, "wrong"), seconds=3, size="160x120"))
    code, err = await process.finish(within=15)
    assert code != 0
    assert "Stream key refused" in err
    assert hooks.calls == [("publish", ("live", "wrong"))]
    assert hooks.media == []
    assert hooks.unpublished == []


async def test_ffmpeg_takeover(ffmpeg: str, make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    first = await Ffmpeg.start(publish_argv(ffmpeg, url(server, "good"), seconds=10, size="160x120"))
    await asyncio.wait_for(hooks.first_media.wait(), 10)
    second = await Ffmpeg.start(publish_argv(ffmpeg, url(server, "good"), seconds=2, size="160x120"))

    first_code, _err = await first.finish(within=15)
    second_code, err = await second.finish(within=15)
    assert first_code != 0  # its connection was closed under it
    assert second_code == 0, err
    await asyncio.wait_for(hooks.unpublish_seen.wait(), 5)

    old_grant, new_grant = hooks.grants
    owners = [grant for grant, _message in hooks.media]
    assert old_grant in owners and new_grant in owners
    last_old = max(i for i, grant in enumerate(owners) if grant is old_grant)
    first_new = min(i for i, grant in enumerate(owners) if grant is new_grant)
    assert last_old < first_new  # no interleaving: the old connection finished before Publish.Start
    new_media = hooks.media_of(new_grant)
    assert any(is_avc_sequence_header(m) for m in new_media)
    assert any(is_aac_sequence_header(m) for m in new_media)
    assert [(grant is new_grant, reason) for grant, reason in hooks.unpublished] == [(True, "unpublish")]


async def test_ffmpeg_close_publisher(ffmpeg: str, make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    process = await Ffmpeg.start(publish_argv(ffmpeg, url(server, "good"), seconds=20, size="160x120"))
    await asyncio.wait_for(hooks.first_media.wait(), 10)
    assert await server.close_publisher("sess-1") is True
    code, _err = await process.finish(within=10)
    assert code != 0
    assert [reason for _grant, reason in hooks.unpublished] == ["stopped"]


async def test_ffmpeg_rtmps(ffmpeg: str, make_server: ServerFactory, tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    hooks = FakeHooks()
    server = await make_server(hooks, ssl_context=context)
    argv = publish_argv(ffmpeg, url(server, "good", "rtmps"), seconds=1, size="160x120", realtime=False)
    code, err = await (await Ffmpeg.start(argv)).finish(within=20)
    assert code == 0, err
    await asyncio.wait_for(hooks.unpublish_seen.wait(), 5)
    messages = [message for _grant, message in hooks.media]
    assert any(is_avc_sequence_header(m) for m in messages)
    assert any(is_keyframe(m) for m in messages)
