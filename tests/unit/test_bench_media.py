"""Smoke test of bench/media.py (the benchmark itself is not part of `make test`): it imports, and its pure
helpers (command lines, nginx config, /proc parsing, statistics, tables) do what the benchmark relies on."""

from __future__ import annotations

from pathlib import Path

from bench import media, viewers
from bench.rtmp_client import Tag, payload_key, split_url

from retake.server.realtime.frames import binary_frame


def test_command_lines_are_argv_lists() -> None:
    encode = media.encode_input_argv(Path("/tmp/in.flv"), 90)
    assert encode[0] == "ffmpeg" and encode[-1] == "/tmp/in.flv"
    for flag, value in [("-b:v", "1500k"), ("-b:a", "128k"), ("-g", "60"), ("-t", "90")]:
        assert encode[encode.index(flag) + 1] == value
    assert "testsrc2=size=1280x720:rate=30" in encode
    copy = media.copy_publisher_argv(Path("/tmp/in.flv"), "rtmp://127.0.0.1:1/live/k")
    assert copy[copy.index("-c") + 1] == "copy" and "-re" in copy and copy[-1] == "rtmp://127.0.0.1:1/live/k"


def test_nginx_config_is_loopback_hls_and_self_contained(tmp_path: Path) -> None:
    conf = media.nginx_config(tmp_path, 19350, 18080, as_root=True)
    assert "listen 127.0.0.1:19350;" in conf and "listen 127.0.0.1:18080;" in conf
    assert "hls on;" in conf and "hls_fragment 2s;" in conf and f"hls_path {tmp_path}/hls;" in conf
    assert "daemon off;" in conf and "worker_processes 1;" in conf and "user root;" in conf
    assert "/var/" not in conf and "/etc/" not in conf  # nothing of the system service's files
    assert conf.count("{") == conf.count("}")
    assert "user root;" not in media.nginx_config(tmp_path, 1, 2, as_root=False)


def test_proc_parsing() -> None:
    stat = "4242 (nginx: worker (x)) S 4241 4241 4241 0 -1 4194624 10 0 0 0 150 25 3 4 20 0 1 0 9 1 2"
    assert media.parse_proc_stat(stat) == (4241, 175)
    assert media.parse_rss_kib("Name:\tnginx\nVmRSS:\t   20480 kB\nVmSwap: 0 kB\n") == 20480
    assert media.parse_rss_kib("Name: x\n") == 0


def test_statistics_and_delays() -> None:
    assert media.percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert media.percentile([float(i) for i in range(1, 101)], 95) == 95.0
    assert media.percentile([], 50) != media.percentile([], 50)  # NaN
    assert media.cpu_percent(3.0, 30.0, streams=10) == 1.0
    sent = {b"a": 10.0, b"b": 11.0, b"c": 12.0}
    arrivals = {b"a": 10.5, b"b": 11.002, b"d": 1.0}
    assert [round(d, 3) for d in media.delays_ms(sent, arrivals, not_before=10.5)] == [2.0]


def test_rtmp_stat_parsing() -> None:
    xml = (
        "<rtmp><server><application><live>"
        "<stream><name>a</name><client><publishing/></client><publishing/><active/></stream>"
        "<stream><name>b</name><client><id>3</id></client></stream>"
        "</live></application></server></rtmp>"
    )
    assert media.publishing_streams(xml) == {"a"}


def test_tags_from_restarts_at_a_keyframe_with_headers() -> None:
    tags = [
        Tag(18, 0, b"meta"),
        Tag(9, 0, b"\x17\x00\x00\x00\x00cfg"),
        Tag(8, 0, b"\xaf\x00\x12\x10"),
        Tag(9, 0, b"\x17\x01\x00\x00\x00k0"),
        Tag(9, 1000, b"\x27\x01\x00\x00\x00p1"),
        Tag(9, 2000, b"\x17\x01\x00\x00\x00k2"),
        Tag(8, 2010, b"\xaf\x01aa"),
    ]
    resumed = media.tags_from(tags, 1500)
    headers = [b"meta", b"\x17\x00\x00\x00\x00cfg", b"\xaf\x00\x12\x10"]
    assert [t.payload for t in resumed] == [*headers, b"\x17\x01\x00\x00\x00k2", b"\xaf\x01aa"]
    assert {t.timestamp_ms for t in resumed[:3]} == {2000}
    assert media.tags_from(tags, 10_000) == tags


def test_tables_and_rtmp_url() -> None:
    phase = media.Phase("retake", 10, 30, cpu_pct_per_stream=1.234, delay_ms_p50=2.0, live_streams=10)
    table = media.phase_table([phase])
    assert "| retake | 10 | 1 + 0 | 1.23 | – |" in table and "10/10" in table and "–" in table
    idle = media.Phase("retake", 0, 30, cpu_pct_total=1.0)
    busy = media.Phase("retake", 10, 30, cpu_pct_per_stream=0.7, cpu_pct_total=7.0)
    assert media.marginal_pct(busy, [idle, busy]) == 0.6
    assert "| retake | 10 | 1 + 0 | 0.70 | 0.60 |" in media.phase_table([idle, busy])
    watched = media.Phase("retake", 10, 30, viewers=9, viewer_per_stream=True)
    assert "| retake | 10 | 1 + 9 (1 per stream) |" in media.phase_table([watched])
    assert "| retake | 0 | 0 |" in media.phase_table([idle])
    startup = media.startup_table([media.Startup("nginx-rtmp", [0.5, 0.7], [], "refused: BadName")])
    assert "0.60 / 0.70" in startup and "refused: BadName" in startup
    assert "| 2.0 / 3.0 |" in media.startup_table([media.Startup("retake", [0.5], [0.002, 0.002, 0.003])])
    assert split_url("rtmp://127.0.0.1:1935/live/sk_abc?x=1") == ("127.0.0.1", 1935, "live", "sk_abc?x=1")
    assert payload_key(b"\x17\x01\x00\x00\x00" + b"x" * 100) != payload_key(b"\x17\x01\x00\x00\x00" + b"y" * 100)


def test_viewer_crowd_helpers() -> None:
    ping = bytes((0x89, 4)) + b"abcd"
    stream = binary_frame(b"x" * 300) + ping + binary_frame(b"y" * 70_000) + bytes((0x89, 0))
    for split in (1, 3, 7, 1000, len(stream)):
        skipper, pings = viewers.WsSkipper(), []
        for i in range(0, len(stream), split):
            pings += skipper.feed(stream[i : i + split])
        assert pings == [b"abcd", b""]
    pong = viewers.masked_frame(0xA, b"abcd")
    assert pong[0] == 0x8A and pong[1] == 0x84 and bytes(b ^ pong[2 + i % 4] for i, b in enumerate(pong[6:])) == b"abcd"
    assert viewers.http_request("127.0.0.1", 80, "/live/x.flv").startswith(b"GET /live/x.flv HTTP/1.1\r\n")
    assert b"Upgrade: websocket" in viewers.websocket_request("127.0.0.1", 80, "/live/x.flv")
