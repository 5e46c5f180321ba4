from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retake.av import amf0
from retake.av.message import MediaMessage
from retake.ingest.errors import RtmpProtocolError
from retake.ingest.rtmp import (
    Connected,
    ConnectionClosed,
    ConnState,
    Event,
    HandshakeCompleted,
    PublishEnded,
    PublishRequested,
    RtmpConfig,
    RtmpConnection,
    RtmpStateError,
)
from retake.ingest.rtmp.chunk import RtmpMessage
from retake.ingest.rtmp.messages import (
    Acknowledgement,
    Command,
    MessageType,
    SetChunkSize,
    SetPeerBandwidth,
    UserControl,
    UserControlEvent,
    WindowAckSize,
)
from tests.ingest.support import (
    AAC_SEQUENCE_HEADER,
    AVC_KEYFRAME,
    AVC_SEQUENCE_HEADER,
    ScriptedClient,
    commands,
    status_codes,
)


class Pair:
    """A server connection and a scripted client wired back to back."""

    def __init__(self, config: RtmpConfig | None = None) -> None:
        self.conn = RtmpConnection(clock=lambda: 100.0, config=config)
        self.client = ScriptedClient()

    def send(self, data: bytes) -> list[RtmpMessage]:
        self.conn.receive_data(data)
        return self.client.receive(self.conn.data_to_send())

    def connected(self) -> list[RtmpMessage]:
        return self.send(self.client.handshake() + self.client.connect())

    def until_publish(self, name: str = "sk_secret") -> PublishRequested:
        self.connected()
        self.send(self.client.publish_setup(name))
        requests = [e for e in self.conn.events() if isinstance(e, PublishRequested)]
        assert len(requests) == 1
        return requests[0]


def media_events(events: list[Event | MediaMessage]) -> list[MediaMessage]:
    return [e for e in events if isinstance(e, MediaMessage)]


def test_connect_is_answered_like_ffmpegs_listener() -> None:
    pair = Pair()
    replies = pair.connected()
    assert [m.type_id for m in replies] == [
        MessageType.WINDOW_ACK_SIZE,
        MessageType.SET_PEER_BANDWIDTH,
        MessageType.USER_CONTROL,
        MessageType.SET_CHUNK_SIZE,
        MessageType.COMMAND_AMF0,
    ]
    assert WindowAckSize.parse(replies[0].payload) == WindowAckSize(2_500_000)
    assert SetPeerBandwidth.parse(replies[1].payload) == SetPeerBandwidth(2_500_000, 2)
    assert UserControl.parse(replies[2].payload) == UserControl.stream_begin(0)
    assert SetChunkSize.parse(replies[3].payload) == SetChunkSize(4096)
    result = Command.parse(replies[4].payload)
    assert (result.name, result.transaction_id) == ("_result", 1.0)
    assert isinstance(result.args[0], dict)
    assert result.args[0]["code"] == "NetConnection.Connect.Success"
    assert pair.client.reader.chunk_size == 4096
    events = pair.conn.events()
    assert isinstance(events[0], HandshakeCompleted)
    assert events[1] == Connected("live", "FMLE/3.0 (compatible; test)", "rtmp://127.0.0.1/live")
    assert pair.conn.state is ConnState.CONNECTED


def test_full_publish_session() -> None:
    pair = Pair()
    pair.connected()
    replies = pair.send(pair.client.publish_setup("sk_secret?token=abc"))
    # releaseStream -> _result, FCPublish -> onFCPublish, createStream -> _result 1; nothing for publish yet.
    assert [(c.name, c.transaction_id) for c in commands(replies)] == [
        ("_result", 2.0),
        ("onFCPublish", 0.0),
        ("_result", 4.0),
    ]
    assert commands(replies)[2].args == (1.0,)
    (request,) = [e for e in pair.conn.events() if isinstance(e, PublishRequested)]
    assert (request.app, request.key, request.stream_id, request.publish_type) == (
        "live",
        "sk_secret",
        1,
        "live",
    )
    assert "sk_secret" not in repr(request)
    assert pair.conn.state.value == "publish_pending"

    pair.conn.accept_publish()
    replies = pair.client.receive(pair.conn.data_to_send())
    assert UserControl.parse(replies[0].payload) == UserControl.stream_begin(1)
    assert status_codes(replies) == ["NetStream.Publish.Start"]
    assert replies[1].stream_id == 1

    pair.send(
        pair.client.metadata()
        + pair.client.media("video", 0, AVC_SEQUENCE_HEADER)
        + pair.client.media("audio", 0, AAC_SEQUENCE_HEADER)
        + pair.client.media("video", 33, AVC_KEYFRAME)
    )
    media = media_events(pair.conn.events())
    assert [(m.kind, m.timestamp_ms) for m in media] == [
        ("script", 0),
        ("video", 0),
        ("audio", 0),
        ("video", 33),
    ]
    assert amf0.decode(media[0].payload) == ["onMetaData", amf0.EcmaArray(width=320.0, height=240.0)]
    assert media[1].payload == AVC_SEQUENCE_HEADER
    assert media[3].payload == AVC_KEYFRAME

    replies = pair.send(pair.client.unpublish("sk_secret"))
    assert [c.name for c in commands(replies)] == ["onFCUnpublish"]
    assert pair.conn.events() == [PublishEnded(1, "FCUnpublish")]
    assert pair.conn.state is ConnState.CONNECTED
    pair.conn.receive_data(b"")
    assert pair.conn.events() == [ConnectionClosed()]
    assert pair.conn.closed


def test_reject_sends_bad_name_and_closes() -> None:
    pair = Pair()
    pair.until_publish()
    pair.conn.reject_publish()
    replies = pair.client.receive(pair.conn.data_to_send())
    (status,) = [c.args[0] for c in commands(replies) if c.name == "onStatus"]
    assert isinstance(status, dict)
    assert (status["level"], status["code"]) == ("error", "NetStream.Publish.BadName")
    assert pair.conn.closed
    pair.conn.receive_data(pair.client.media("video", 0, AVC_SEQUENCE_HEADER))
    assert pair.conn.events() == []


def test_nothing_is_parsed_while_the_publish_decision_is_pending() -> None:
    pair = Pair()
    pair.connected()
    # A client that does not wait for Publish.Start: media right behind publish.
    data = pair.client.publish_setup("good") + pair.client.media("video", 0, AVC_SEQUENCE_HEADER)
    pair.send(data)
    events = pair.conn.events()
    assert not media_events(events)
    pair.conn.accept_publish()
    assert [m.kind for m in media_events(pair.conn.events())] == ["video"]


def test_media_behind_a_refused_publish_is_never_delivered() -> None:
    pair = Pair()
    pair.connected()
    pair.send(pair.client.publish_setup("bad") + pair.client.media("video", 0, AVC_SEQUENCE_HEADER))
    pair.conn.events()
    pair.conn.reject_publish()
    assert pair.conn.events() == []


def test_input_held_during_the_decision_is_bounded() -> None:
    pair = Pair(RtmpConfig(max_paused_input=1000))
    pair.until_publish()
    with pytest.raises(RtmpProtocolError, match="authorized"):
        pair.conn.receive_data(bytes(2000))


def test_media_before_publish_and_on_other_streams_is_dropped() -> None:
    pair = Pair()
    pair.connected()
    pair.send(pair.client.media("video", 0, AVC_SEQUENCE_HEADER))
    assert not media_events(pair.conn.events())
    pair.send(pair.client.publish_setup("k"))
    pair.conn.accept_publish()
    pair.send(pair.client.media("audio", 0, AAC_SEQUENCE_HEADER, stream_id=2) + pair.client.media("audio", 1, b""))
    assert not media_events(pair.conn.events())
    assert pair.conn.dropped_messages == 3


def test_acknowledgement_when_the_window_is_crossed() -> None:
    pair = Pair()
    pair.connected()
    replies = pair.send(pair.client.message(WindowAckSize(5000).to_message()))
    assert not replies
    pair.send(pair.client.publish_setup("k"))
    pair.conn.accept_publish()
    pair.conn.data_to_send()
    replies = pair.send(pair.client.media("video", 0, bytes(6000)))
    acks = [Acknowledgement.parse(m.payload) for m in replies if m.type_id == MessageType.ACKNOWLEDGEMENT]
    assert acks == [Acknowledgement(pair.conn.bytes_received)]
    assert pair.conn.bytes_received > 3073 + 6000


def test_default_window_applies_until_the_client_sets_one() -> None:
    pair = Pair(RtmpConfig(window_ack_size=4000))
    replies = pair.connected()
    assert not any(m.type_id == MessageType.ACKNOWLEDGEMENT for m in replies)
    replies = pair.send(pair.client.command("someCall", 0, None) * 60)
    assert any(m.type_id == MessageType.ACKNOWLEDGEMENT for m in replies)


def test_ping_request_is_answered() -> None:
    pair = Pair()
    pair.connected()
    replies = pair.send(
        pair.client.message(UserControl(UserControlEvent.PING_REQUEST, b"\x00\x00\x00\x2a").to_message())
    )
    assert [UserControl.parse(m.payload) for m in replies] == [
        UserControl(UserControlEvent.PING_RESPONSE, b"\x00\x00\x00\x2a")
    ]


def test_unknown_commands_get_error_and_replies_are_ignored() -> None:
    pair = Pair()
    pair.connected()
    replies = pair.send(
        pair.client.command("_checkbw", 9, None)
        + pair.client.command("play", 10, None, "x")
        + pair.client.command("noReplyWanted", 0, None)
        + pair.client.command("_result", 11, None)
    )
    assert [(c.name, c.transaction_id) for c in commands(replies)] == [("_error", 9.0), ("_error", 10.0)]
    assert pair.conn.state is ConnState.CONNECTED


def test_obs_style_client() -> None:
    # librtmp announces its own chunk size before connect and sends a Window Ack Size after it; the query
    # of an OBS "server" URL ends up in the app.
    pair = Pair()
    client = pair.client
    data = client.handshake() + client.set_chunk_size(4096)
    data += client.command(
        "connect",
        1,
        {"app": "live?x=1", "flashVer": "FMLE/3.0 (compatible; FMSc/1.0)", "swfUrl": "rtmp://h/live"},
    )
    data += client.message(WindowAckSize(2_500_000).to_message())
    pair.send(data)
    pair.send(client.publish_setup("sk_obs"))
    (request,) = [e for e in pair.conn.events() if isinstance(e, PublishRequested)]
    assert (request.app, request.key) == ("live", "sk_obs")
    pair.conn.accept_publish()
    big_keyframe = AVC_KEYFRAME + bytes(10_000)
    pair.send(client.media("video", 0x1000000, big_keyframe))  # extended timestamp, chunked at 4096
    (media,) = media_events(pair.conn.events())
    assert (media.timestamp_ms, media.payload) == (0x1000000, big_keyframe)


def test_amf3_command_and_data_messages() -> None:
    pair = Pair()
    client = pair.client
    pair.send(client.handshake())
    body = b"\x00" + amf0.encode("connect", 1.0, {"app": "live"})
    pair.send(client.message(RtmpMessage(MessageType.COMMAND_AMF3, 0, 0, body, 3)))
    assert pair.conn.state is ConnState.CONNECTED
    pair.send(client.publish_setup("k"))
    pair.conn.accept_publish()
    data = b"\x00" + amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray())
    pair.send(client.message(RtmpMessage(MessageType.DATA_AMF3, 1, 0, data, 4)))
    pair.send(client.message(RtmpMessage(MessageType.DATA_AMF0, 1, 0, amf0.encode("@clearDataFrame"), 4)))
    pair.send(client.message(RtmpMessage(MessageType.DATA_AMF0, 1, 0, amf0.encode("onCuePoint", 1.0), 4)))
    scripts = media_events(pair.conn.events())
    assert [amf0.decode(m.payload)[0] for m in scripts] == ["onMetaData", "onCuePoint"]


def test_delete_and_close_stream_end_the_publish() -> None:
    for command, args, stream_id in (("deleteStream", (1.0,), 0), ("closeStream", (), 1)):
        pair = Pair()
        pair.until_publish()
        pair.conn.accept_publish()
        pair.send(pair.client.command(command, 7, None, *args, stream_id=stream_id))
        ended = [e for e in pair.conn.events() if isinstance(e, PublishEnded)]
        assert len(ended) == 1
        # A second publish on the same connection is allowed after the first ended.
        pair.send(pair.client.command("publish", 8, None, "again", "live", stream_id=1))
        assert any(isinstance(e, PublishRequested) for e in pair.conn.events())


def test_delete_of_another_stream_does_not_end_the_publish() -> None:
    pair = Pair()
    pair.until_publish()
    pair.conn.accept_publish()
    pair.send(pair.client.command("deleteStream", 7, None, 2.0) + pair.client.command("deleteStream", 8, None, "x"))
    assert pair.conn.state is ConnState.PUBLISHING


@pytest.mark.parametrize(
    "script",
    [
        lambda c: c.command("publish", 5, None, "k", "live", stream_id=1),  # before connect
        lambda c: c.command("createStream", 2, None),  # before connect
        lambda c: c.connect() + c.connect(),  # connect twice
        lambda c: c.command("connect", 1, None),  # connect without command object
        lambda c: c.connect() + c.command("publish", 5, None, stream_id=1),  # publish without a name
        lambda c: c.connect() + c.message(RtmpMessage(MessageType.COMMAND_AMF0, 0, 0, b"\x05", 3)),
        lambda c: c.connect() + c.message(RtmpMessage(MessageType.DATA_AMF3, 0, 0, b"\x11", 3)),
        lambda c: c.connect() + c.message(RtmpMessage(MessageType.USER_CONTROL, 0, 0, b"\x00", 2)),
    ],
)
def test_illegal_sequences_raise_protocol_error(script: object) -> None:
    pair = Pair()
    with pytest.raises(RtmpProtocolError):
        pair.conn.receive_data(pair.client.handshake() + script(pair.client))  # type: ignore[operator]
    assert pair.conn.closed
    with pytest.raises(RtmpProtocolError, match="already failed"):
        pair.conn.receive_data(b"x")


def test_second_publish_while_publishing_is_refused() -> None:
    pair = Pair()
    pair.until_publish()
    pair.conn.accept_publish()
    with pytest.raises(RtmpProtocolError, match="publish not allowed"):
        pair.send(pair.client.command("publish", 9, None, "other", "live", stream_id=1))


def test_owner_misuse_raises_state_error() -> None:
    pair = Pair()
    with pytest.raises(RtmpStateError):
        pair.conn.accept_publish()
    pair.connected()
    with pytest.raises(RtmpStateError):
        pair.conn.reject_publish()


def test_events_one_at_a_time() -> None:
    pair = Pair()
    pair.conn.receive_data(pair.client.handshake() + pair.client.connect())
    assert isinstance(pair.conn.next_event(), HandshakeCompleted)
    assert isinstance(pair.conn.next_event(), Connected)
    assert pair.conn.next_event() is None


def _publishing_pair() -> Pair:
    pair = Pair(RtmpConfig(max_message_size=4096, max_chunk_streams=8))
    pair.until_publish()
    pair.conn.accept_publish()
    return pair


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_after_publish_raises_only_protocol_error(data: bytes) -> None:
    pair = _publishing_pair()
    try:
        pair.conn.receive_data(data)
        pair.conn.events()
    except RtmpProtocolError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_after_handshake_raises_only_protocol_error(data: bytes) -> None:
    pair = Pair()
    try:
        pair.conn.receive_data(pair.client.handshake() + data)
        pair.conn.events()
    except RtmpProtocolError:
        pass
