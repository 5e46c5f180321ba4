"""LL-HLS packager: playlist tags, parts, window, blocking reload, lookups, recorder."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from retake.av.message import MediaMessage
from retake.media.errors import PlaylistRequestError
from retake.media.fmp4 import Box
from retake.media.hls import HlsConfig, HlsPackager, HlsRecorder, media_type_for

AVCC_1080P = bytes.fromhex(
    "01640028ffe1001b67640028acd940780227e5c044000003000400000300c83c60c65801000468ef8fcbfdf8f800"
)
_PART = re.compile(r'#EXT-X-PART:DURATION=([\d.]+),URI="([^"]+)"(,INDEPENDENT=YES)?')

MessageFactory = Callable[..., list[MediaMessage]]


def packager_with(messages: list[MediaMessage], config: HlsConfig | None = None) -> HlsPackager:
    packager = HlsPackager(config, clock=lambda: 1_800_000_000.0)
    for message in messages:
        packager.push(message)
    return packager


def test_playlist_has_ll_hls_tags_in_order(messages: MessageFactory) -> None:
    packager = packager_with(messages(5000))
    text = packager.render_playlist()
    lines = text.splitlines()
    assert lines[:7] == [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-TARGETDURATION:2",
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.002",
        "#EXT-X-PART-INF:PART-TARGET=0.334",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    assert lines[7] == '#EXT-X-MAP:URI="init0.mp4"'
    assert lines[8] == "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:00.000Z"
    assert lines.count("#EXTINF:2.000,") == 2
    assert "seg0.m4s" in lines and "seg1.m4s" in lines
    assert lines[-1] == '#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part2_2.m4s"'
    parts = _PART.findall(text)
    assert [p[1] for p in parts[:7]] == [
        "part0_0.m4s",
        "part0_1.m4s",
        "part0_2.m4s",
        "part0_3.m4s",
        "part0_4.m4s",
        "part0_5.m4s",
        "part1_0.m4s",
    ]
    # Keyframes every second at 0.334 s parts (10 frames at 30 fps): parts 0 and 3 of each segment start with
    # an IDR.
    assert [bool(p[2]) for p in parts[:6]] == [True, False, False, True, False, False]
    # PROGRAM-DATE-TIME precedes each segment's first part [HLS2 §4.4.4.9].
    assert lines[lines.index('#EXT-X-PART:DURATION=0.333,URI="part1_0.m4s",INDEPENDENT=YES') - 1].startswith(
        "#EXT-X-PROGRAM-DATE-TIME:2027-01-15T08:00:02.000Z"
    )
    assert "#EXT-X-ENDLIST" not in text


def test_part_durations_respect_part_target(messages: MessageFactory) -> None:
    for fps in (24, 25, 30, 60):
        packager = packager_with(messages(12_000, fps=fps))
        text = packager.render_playlist()
        durations = [float(p[0]) for p in _PART.findall(text)]
        assert durations and max(durations) <= packager.config.part_target
        # Apart from a segment's last part, parts stay above 85 % of the target [HLS2 §4.4.4.9].
        assert sorted(durations)[len(durations) // 4] >= 0.85 * packager.config.part_target


def test_default_parts_are_whole_frames_and_hold_back_is_about_a_second(messages: MessageFactory) -> None:
    # The skill's stream: 30 fps, a keyframe every 2 s. Every part is 10 frames (333 or 334 ms with FLV's ms
    # timestamps), a segment is 6 of them, and players hold back 3 parts: about 1 s (issue 14 item 7).
    packager = packager_with(messages(12_000, gop_ms=2000))
    text = packager.render_playlist()
    assert "PART-HOLD-BACK=1.002" in text and "PART-TARGET=0.334" in text
    parts = _PART.findall(text)
    assert {p[0] for p in parts} == {"0.333", "0.334"}
    names = [p[1] for p in parts]
    assert {n.split("_")[1] for n in names} == {f"{i}.m4s" for i in range(6)}  # 6 parts per segment
    assert [bool(p[2]) for p in parts[:7]] == [True, False, False, False, False, False, True]


def test_preload_hint_names_the_next_part(messages: MessageFactory) -> None:
    msgs = messages(6000)
    packager = packager_with(msgs[: len(msgs) // 2])
    hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', packager.render_playlist())
    assert hint is not None
    assert packager.get(hint[1]) is None
    for message in msgs[len(msgs) // 2 :]:
        packager.push(message)
    assert f'URI="{hint[1]}"' in packager.render_playlist()
    assert packager.get(hint[1]) is not None


def test_sliding_window_and_retention(messages: MessageFactory) -> None:
    config = HlsConfig(window_segments=6, retained_segments=3)
    packager = packager_with(messages(40_000), config)
    text = packager.render_playlist()
    extinf = re.findall(r"^seg(\d+)\.m4s$", text, re.MULTILINE)
    assert len(extinf) == 6
    assert f"#EXT-X-MEDIA-SEQUENCE:{extinf[0]}" in text
    assert [int(x) for x in extinf] == list(range(int(extinf[0]), int(extinf[0]) + 6))
    first = int(extinf[0])
    assert packager.get(f"seg{first - 3}.m4s") is not None  # still fetchable after leaving the list
    assert packager.get(f"seg{first - 4}.m4s") is None
    # Only about the last three target durations keep their EXT-X-PART tags [HLS2 §6.2.2].
    listed_parts = {int(name.split("_")[0][4:]) for _, name, _ in _PART.findall(text)}
    assert min(listed_parts) >= first + 3


def test_resource_lookup(messages: MessageFactory) -> None:
    packager = packager_with(messages(5000))
    init = packager.get("init0.mp4")
    assert init is not None and [b.kind for b in Box.parse_all(init)] == [b"ftyp", b"moov"]
    segment = packager.get("seg0.m4s")
    assert segment is not None
    parts = [packager.get(f"part0_{i}.m4s") for i in range(6)]
    assert all(p is not None for p in parts)
    boxes = Box.parse_all(segment)
    assert boxes[0].kind == b"styp"
    assert segment[len(boxes[0].serialize()) :] == b"".join(p for p in parts if p is not None)
    assert [b.kind for b in boxes[1:3]] == [b"moof", b"mdat"]
    for name in ("seg2.m4s", "part0_9.m4s", "init1.mp4", "index.m3u8", "../seg0.m4s", "seg0.m4s.tmp"):
        assert packager.get(name) is None
    assert packager.codecs == "avc1.64000d,mp4a.40.2"
    assert media_type_for("seg0.m4s") == "video/iso.segment"
    assert media_type_for("index.m3u8") == "application/vnd.apple.mpegurl"
    assert media_type_for("init0.mp4") == "video/mp4"
    multivariant = packager.render_multivariant("index.m3u8")
    assert 'CODECS="avc1.64000d,mp4a.40.2"' in multivariant and "RESOLUTION=320x240" in multivariant


async def test_blocking_reload_waits_for_part(messages: MessageFactory) -> None:
    msgs = messages(6000)
    packager = packager_with(msgs[:100])
    msn = packager.last_msn
    hint = re.search(r'PRELOAD-HINT:TYPE=PART,URI="part(\d+)_(\d+)\.m4s"', packager.render_playlist())
    assert hint is not None and int(hint[1]) == msn
    waiter = asyncio.create_task(packager.wait_for(msn, int(hint[2]), timeout=2))
    fetcher = asyncio.create_task(packager.fetch(f"part{hint[1]}_{hint[2]}.m4s", timeout=2))
    await asyncio.sleep(0.01)
    assert not waiter.done() and not fetcher.done()
    for message in msgs[100:]:
        packager.push(message)
    await asyncio.wait_for(waiter, 1)
    assert await asyncio.wait_for(fetcher, 1) is not None
    await packager.wait_for(0)  # already there: returns at once
    await packager.wait_for(None)
    # Part past the last part of a complete segment means part 0 of the next one.
    await packager.wait_for(0, 99)


async def test_blocking_reload_errors(messages: MessageFactory) -> None:
    packager = packager_with(messages(3000))
    last = packager.last_msn
    with pytest.raises(PlaylistRequestError) as too_far:
        await packager.wait_for(last + 3)
    assert too_far.value.status_hint == 400
    with pytest.raises(PlaylistRequestError) as part_too_far:
        await packager.wait_for(last, 50)
    assert part_too_far.value.status_hint == 400
    with pytest.raises(PlaylistRequestError) as no_msn:
        await packager.wait_for(None, 1)
    assert no_msn.value.status_hint == 400
    with pytest.raises(PlaylistRequestError) as timed_out:
        await packager.wait_for(last + 1, timeout=0.05)
    assert timed_out.value.status_hint == 503
    assert await packager.fetch("part99_0.m4s", timeout=0.05) is None  # not hinted: 404 at once


async def test_end_releases_waiters_and_adds_endlist(messages: MessageFactory) -> None:
    packager = packager_with(messages(3000))
    waiter = asyncio.create_task(packager.wait_for(packager.last_msn + 1, timeout=2))
    await asyncio.sleep(0.01)
    packager.end()
    await asyncio.wait_for(waiter, 1)
    text = packager.render_playlist()
    assert text.endswith("#EXT-X-ENDLIST\n")
    assert "PRELOAD-HINT" not in text
    assert re.findall(r"^seg\d+\.m4s$", text, re.MULTILINE) == ["seg0.m4s", "seg1.m4s"]
    await packager.wait_for(100)  # directives are ignored once the playlist ended


def test_codec_change_adds_discontinuity_and_map(messages: MessageFactory) -> None:
    msgs = messages(4000)
    second = messages(4000, start_ms=4000, audio=False, headers=False)
    change = MediaMessage("video", 4000, b"\x17\x00\x00\x00\x00" + AVCC_1080P)
    packager = packager_with([*msgs, change, *second])
    text = packager.render_playlist()
    block = text[text.index("seg1.m4s") :]
    assert block.splitlines()[1:3] == ["#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="init1.mp4"']
    assert packager.codecs == "avc1.640028,mp4a.40.2"
    # Scroll the discontinuity out of the window: EXT-X-DISCONTINUITY-SEQUENCE counts it.
    more = messages(20_000, start_ms=8000, audio=False, headers=False)
    for message in more:
        packager.push(message)
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in packager.render_playlist()
    assert packager.get("init0.mp4") is None and packager.get("init1.mp4") is not None


def test_long_gop_raises_target_duration(messages: MessageFactory) -> None:
    packager = packager_with(messages(10_000, gop_ms=3000))
    text = packager.render_playlist()
    assert "#EXT-X-TARGETDURATION:3" in text
    assert all(float(d) <= 3.5 for d in re.findall(r"#EXTINF:([\d.]+),", text))


def test_audio_only_packaging(messages: MessageFactory) -> None:
    packager = packager_with(messages(5000, video=False))
    text = packager.render_playlist()
    assert packager.codecs == "mp4a.40.2"
    durations = [float(p[0]) for p in _PART.findall(text)]
    assert durations and max(durations) <= packager.config.part_target and all(p[2] for p in _PART.findall(text))
    assert [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)] == pytest.approx([2.0, 2.0], abs=0.03)


def test_recorder_writes_vod(tmp_path: Path, messages: MessageFactory) -> None:
    packager = HlsPackager(clock=lambda: 0.0)
    for message in messages(1000):
        packager.push(message)
    recorder = HlsRecorder(tmp_path / "rec")
    packager.add_listener(recorder)  # late listener: gets the init already made
    assert (tmp_path / "rec" / "init0.mp4").exists()
    for message in messages(5000, start_ms=1000, headers=False):
        packager.push(message)
    packager.end()
    text = recorder.playlist_path.read_text()
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n")
    assert text.endswith("#EXT-X-ENDLIST\n")
    assert '#EXT-X-MAP:URI="init0.mp4"' in text
    ranges = re.findall(r"^#EXT-X-BYTERANGE:(\d+)@(\d+)\nmedia\.m4s$", text, re.MULTILINE)
    media = (tmp_path / "rec" / "media.m4s").read_bytes()
    listed = [media[int(o) : int(o) + int(n)] for n, o in ranges]
    assert listed == [packager.get(f"seg{i}.m4s") for i in range(3)]
    assert recorder.duration == pytest.approx(6.0, abs=0.05)
    assert recorder.finish() == recorder.playlist_path
    assert not list((tmp_path / "rec").glob("*.tmp"))


def test_empty_recorder_writes_nothing(tmp_path: Path) -> None:
    recorder = HlsRecorder(tmp_path)
    assert recorder.finish() is None
    assert not recorder.playlist_path.exists()
