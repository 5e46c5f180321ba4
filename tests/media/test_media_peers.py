"""Real peers: ffmpeg-made FLV through LiveStream and the HLS packager, checked by ffprobe/ffmpeg."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from retake.av.message import MediaMessage
from retake.media.hls import HlsPackager, HlsRecorder
from retake.media.stream import LiveStream

RunTool = Callable[..., subprocess.CompletedProcess[str]]
ReadMessages = Callable[[Path], list[MediaMessage]]
VARIANTS = ["no_bframes", "bframes"]


@dataclass(frozen=True)
class Tools:
    probe: tuple[RunTool, str]
    decode: tuple[RunTool, str]


@pytest.fixture
def tools(run_tool: RunTool, ffmpeg_bin: str, ffprobe_bin: str) -> Tools:
    return Tools((run_tool, ffprobe_bin), (run_tool, ffmpeg_bin))


def probe(run_tool: RunTool, ffprobe: str, target: Path) -> dict[str, dict[str, str]]:
    argv = [ffprobe, "-v", "error", "-count_frames", "-show_entries"]
    argv += ["stream=codec_type,codec_name,nb_read_frames:format=duration", "-of", "json", str(target)]
    result = run_tool(argv, timeout=30)
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    streams = {s["codec_type"]: s for s in info["streams"]}
    streams["format"] = info["format"]
    return streams


def assert_decodes_cleanly(run_tool: RunTool, ffmpeg: str, target: Path, *input_options: str) -> None:
    argv = [ffmpeg, "-nostdin", "-v", "error", *input_options, "-i", str(target), "-f", "null", "-"]
    result = run_tool(argv, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


async def relay(messages: list[MediaMessage], join_after: int = 0) -> bytes:
    """Publish in real order with one viewer reading concurrently (joining after ``join_after`` messages)."""
    stream = LiveStream("peer")
    received = bytearray()
    reader: asyncio.Task[None] | None = None

    async def viewer() -> None:
        async for chunk in stream.subscribe():
            received.extend(chunk)

    for index, message in enumerate(messages):
        if index == join_after:
            reader = asyncio.create_task(viewer())
            await asyncio.sleep(0)
        stream.publish(message)
        await asyncio.sleep(0)
    stream.close()
    assert reader is not None
    await asyncio.wait_for(reader, 5)
    return bytes(received)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_flv_relay_decodes(
    variant: str, ffmpeg_flv: dict[str, Path], tmp_path: Path, tools: Tools, read_flv_messages: ReadMessages
) -> None:
    out = tmp_path / "relay.flv"
    out.write_bytes(await relay(read_flv_messages(ffmpeg_flv[variant])))
    info = probe(*tools.probe, out)
    assert info["video"]["codec_name"] == "h264" and info["audio"]["codec_name"] == "aac"
    assert int(info["video"]["nb_read_frames"]) == 120
    assert int(info["audio"]["nb_read_frames"]) >= 170
    assert "subtitle" not in info and "data" not in info
    assert_decodes_cleanly(*tools.decode, out)


@pytest.mark.parametrize("variant", VARIANTS)
async def test_flv_late_viewer_decodes_from_gop_cache(
    variant: str, ffmpeg_flv: dict[str, Path], tmp_path: Path, tools: Tools, read_flv_messages: ReadMessages
) -> None:
    messages = read_flv_messages(ffmpeg_flv[variant])
    out = tmp_path / "late.flv"
    out.write_bytes(await relay(messages, join_after=len(messages) // 2 + 7))
    info = probe(*tools.probe, out)
    # Joined mid-GOP around 2 s: starts at the cached keyframe, so 1–2 s of video remain.
    assert 30 <= int(info["video"]["nb_read_frames"]) <= 90
    assert int(info["audio"]["nb_read_frames"]) > 0
    # -copyts: the CLI would otherwise shift time so the first audio tag (here half a frame before the
    # first video PTS) is 0 and then round video times to 1/30 s ticks, making duplicate output
    # timestamps ("non monotonically increasing dts to muxer"), a CLI artifact rather than a decode
    # error. Kept as is, the encoder's frame-aligned clock maps to distinct ticks.
    assert_decodes_cleanly(*tools.decode, out, "-copyts")


@pytest.mark.parametrize("variant", VARIANTS)
async def test_hls_recording_decodes(
    variant: str, ffmpeg_flv: dict[str, Path], tmp_path: Path, tools: Tools, read_flv_messages: ReadMessages
) -> None:
    stream = LiveStream("peer")
    packager = HlsPackager()
    recorder = HlsRecorder(tmp_path / "vod")
    packager.add_listener(recorder)
    stream.add_sink(packager)
    for message in read_flv_messages(ffmpeg_flv[variant]):
        stream.publish(message)
    live = packager.render_playlist()
    for tag in ("#EXT-X-PART:", "INDEPENDENT=YES", "#EXT-X-PRELOAD-HINT:TYPE=PART", "#EXT-X-MAP:"):
        assert tag in live
    stream.close()  # ends the packager, which finishes the recording
    playlist = recorder.playlist_path
    text = playlist.read_text()
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and text.endswith("#EXT-X-ENDLIST\n")
    info = probe(*tools.probe, playlist)
    assert info["video"]["codec_name"] == "h264" and info["audio"]["codec_name"] == "aac"
    assert int(info["video"]["nb_read_frames"]) == 120
    assert float(info["format"]["duration"]) == pytest.approx(4.0, rel=0.1)
    assert_decodes_cleanly(*tools.decode, playlist)
    if variant == "bframes":
        # Composition offsets survive: some packets are presented later than they are decoded.
        argv = [tools.probe[1], "-v", "error", "-select_streams", "v", "-show_entries"]
        argv += ["packet=pts,dts", "-of", "csv=p=0", str(playlist)]
        result = tools.probe[0](argv, timeout=30)
        rows = [tuple(map(int, line.split(","))) for line in result.stdout.split()]
        assert any(pts != dts for pts, dts in rows)
        assert [dts for _, dts in rows] == sorted(dts for _, dts in rows)
