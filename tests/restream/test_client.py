"""The sans-IO RTMP publisher against the sans-IO RTMP server core: bytes in, bytes out, in any split."""

from __future__ import annotations

import pytest

from retake.av import amf0
from retake.av.message import MediaMessage
from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp import Connected, PublishEnded, PublishRequested, RtmpConnection
from retake.ingest.rtmp.client import (
    ClientState,
    PublishRefused,
    PublishStarted,
    RtmpPublisher,
    ServerConnected,
)
from retake.ingest.rtmp.messages import UserControl, UserControlEvent

KEY = "sk_secret_key_1234"


def _pair() -> tuple[RtmpPublisher, RtmpConnection]:
    client = RtmpPublisher(app="live", key=KEY, tc_url="rtmp://example/live", random_bytes=lambda n: b"\x07" * n)
    server = RtmpConnection(clock=lambda: 0.0, random_bytes=lambda n: b"\x09" * n)
    return client, server


def _pump(client: RtmpPublisher, server: RtmpConnection, step: int | None = None) -> list[object]:
    """Move bytes both ways until neither side has anything to say; ``step`` feeds that many bytes at a time."""
    seen: list[object] = []
    while True:
        moved = False
        for data, sink in ((client.data_to_send(), server.receive_data), (server.data_to_send(), client.receive_data)):
            if data:
                moved = True
                size = step or len(data)
                for i in range(0, len(data), size):
                    sink(data[i : i + size])
        while (event := server.next_event()) is not None:
            seen.append(event)
            if isinstance(event, PublishRequested):
                assert event.key == KEY
                server.accept_publish()
                moved = True
        while (client_event := client.next_event()) is not None:
            seen.append(client_event)
        if not moved:
            return seen


@pytest.mark.parametrize("step", [None, 1, 7, 1000])
def test_publish_round_trip(step: int | None) -> None:
    client, server = _pair()
    seen = _pump(client, server, step)
    assert any(isinstance(e, Connected) and e.app == "live" for e in seen)
    assert any(isinstance(e, ServerConnected) for e in seen)
    started = [e for e in seen if isinstance(e, PublishStarted)]
    assert started and started[0].stream_id == server.publish_stream_id
    assert client.state is ClientState.PUBLISHING

    metadata = amf0.encode("onMetaData", {"width": 640.0})
    video = bytes([0x17, 0x01, 0, 0, 0]) + b"\x00" * 9000  # spans several 4096-byte chunks
    audio = bytes([0xAF, 0x01]) + b"\x21" * 100
    client.send_media("script", 0, metadata)
    for ts in range(0, 200, 40):
        client.send_media("video", ts, video)
        client.send_media("audio", ts + 3, audio)
    client.send_media("video", 0x1000000 + 5, video)  # extended timestamp
    media = [e for e in _pump(client, server, step) if isinstance(e, MediaMessage)]
    assert media[0] == MediaMessage("script", 0, metadata)  # @setDataFrame stripped by the server
    expected: list[MediaMessage] = []
    for ts in range(0, 200, 40):
        expected += [MediaMessage("video", ts, video), MediaMessage("audio", ts + 3, audio)]
    assert media[1:11] == expected
    assert media[11] == MediaMessage("video", 0x1000005, video)
    assert client.bytes_sent > 5 * 9000

    client.close()
    ended = [e for e in _pump(client, server, step) if isinstance(e, PublishEnded)]
    assert ended and ended[0].command == "FCUnpublish"


def test_refused_key_is_reported_without_the_key() -> None:
    client, server = _pair()
    seen: list[object] = []
    for _ in range(10):
        server.receive_data(client.data_to_send())
        while (event := server.next_event()) is not None:
            if isinstance(event, PublishRequested):
                server.reject_publish(f"key {KEY} refused")
        client.receive_data(server.data_to_send())
        while (client_event := client.next_event()) is not None:
            seen.append(client_event)
    refused = [e for e in seen if isinstance(e, PublishRefused)]
    assert refused and refused[0].code == "NetStream.Publish.BadName"
    assert KEY not in refused[0].description and "***" in refused[0].description
    assert KEY not in repr(refused[0])
    assert client.state is ClientState.CLOSED


def test_media_before_publish_start_is_a_bug() -> None:
    client, _ = _pair()
    with pytest.raises(RtmpProtocolError):
        client.send_media("video", 0, b"\x17\x01\x00\x00\x00")


def test_wrong_version_and_ping() -> None:
    client, server = _pair()
    with pytest.raises(RtmpProtocolError):
        RtmpPublisher(app="a", key="k", tc_url="rtmp://x/a").receive_data(b"\x06" + b"\x00" * 3072)
    _pump(client, server)
    # A ping request from the server is answered with the same timestamp.
    ping = UserControl(UserControlEvent.PING_REQUEST, b"\x00\x00\x01\x02").to_message()
    writer_bytes = server._writer.write(ping)  # the server's writer, so its chunk size applies
    client.receive_data(writer_bytes)
    out = client.data_to_send()
    server.receive_data(out)  # well-formed for the server
    assert out.endswith(UserControl(UserControlEvent.PING_RESPONSE, b"\x00\x00\x01\x02").serialize())


def test_handshake_c2_echoes_s1() -> None:
    client, server = _pair()
    c0c1 = client.data_to_send()
    assert len(c0c1) == 1 + 1536 and c0c1[0] == 3
    server.receive_data(c0c1)
    s0s1s2 = server.data_to_send()
    client.receive_data(s0s1s2)
    out = client.data_to_send()
    assert out[:1536] == s0s1s2[1 : 1 + 1536]
    assert client.state is ClientState.CONNECTING
