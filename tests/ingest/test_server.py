"""The asyncio wrapper, driven over real loopback sockets by the scripted publisher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from retake.av.message import MediaMessage
from retake.ingest import PublishGrant, RtmpServer
from retake.ingest.rtmp.chunk import RtmpMessage
from tests.ingest.conftest import ServerFactory
from tests.ingest.support import (
    AAC_SEQUENCE_HEADER,
    AVC_KEYFRAME,
    AVC_SEQUENCE_HEADER,
    FakeHooks,
    ScriptedClient,
    self_signed_cert,
    status_codes,
)


class Publisher:
    """The scripted client over a real TCP (or TLS) connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.client = ScriptedClient()
        self.messages: list[RtmpMessage] = []

    @classmethod
    async def open(cls, port: int, ssl_context: ssl.SSLContext | None = None) -> Publisher:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ssl_context)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_until(self, predicate: Callable[[list[RtmpMessage]], bool], within: float = 3.0) -> None:
        async with asyncio.timeout(within):
            while not predicate(self.messages):
                data = await self.reader.read(65536)
                if not data:
                    raise ConnectionResetError("server closed the connection")
                self.messages.extend(self.client.receive(data))

    async def publish(self, key: str) -> str:
        """Handshake, connect, publish; return the onStatus code the server answered."""
        client = self.client
        await self.send(client.handshake() + client.connect() + client.publish_setup(key))
        await self.read_until(lambda messages: bool(status_codes(messages)))
        return status_codes(self.messages)[-1]

    async def send_media(self, count: int = 1, start: int = 0) -> None:
        data = b""
        for i in range(count):
            data += self.client.media("video", start + 33 * i, AVC_KEYFRAME)
        await self.send(data)

    async def closed_by_server(self, within: float = 3.0) -> bool:
        try:
            async with asyncio.timeout(within):
                while await self.reader.read(65536):
                    pass
        except TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.wait_closed()


async def wait_for(condition: Callable[[], bool], within: float = 3.0) -> None:
    """Poll ``condition`` (hook calls land from server tasks) for up to ``within`` seconds."""
    for _ in range(int(within / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    assert condition()


async def test_publish_media_and_disconnect(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    assert server.port > 0
    publisher = await Publisher.open(server.port)
    assert await publisher.publish("good") == "NetStream.Publish.Start"
    assert server.publishing_sessions == {"sess-1"}
    await publisher.send(
        publisher.client.metadata()
        + publisher.client.media("video", 0, AVC_SEQUENCE_HEADER)
        + publisher.client.media("audio", 0, AAC_SEQUENCE_HEADER)
    )
    await wait_for(lambda: len(hooks.media) == 3)
    grant = PublishGrant("user-sess-1", "sess-1")
    assert hooks.media[1] == (grant, MediaMessage("video", 0, AVC_SEQUENCE_HEADER))
    assert hooks.media[0][1].kind == "script"
    await publisher.close()
    await wait_for(lambda: bool(hooks.unpublished))
    assert hooks.unpublished == [(grant, "disconnect")]
    assert hooks.calls[0] == ("publish", ("live", "good"))
    assert server.publishing_sessions == frozenset()


async def test_client_unpublish_reason(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    await publisher.send(publisher.client.unpublish("good"))
    await wait_for(lambda: bool(hooks.unpublished))
    await publisher.close()
    await asyncio.sleep(0.05)
    assert [reason for _grant, reason in hooks.unpublished] == ["unpublish"]


async def test_refused_key_gets_bad_name_then_close(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    assert await publisher.publish("wrong") == "NetStream.Publish.BadName"
    assert await publisher.closed_by_server()
    assert hooks.media == [] and hooks.unpublished == []


async def test_on_publish_raising_refuses(make_server: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    hooks = FakeHooks(fail_publish=True)
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    with caplog.at_level(logging.ERROR, "retake.ingest"):
        assert await publisher.publish("good") == "NetStream.Publish.BadName"
    assert "on_publish failed" in caplog.text


async def test_on_media_raising_closes_with_error(make_server: ServerFactory) -> None:
    hooks = FakeHooks(fail_media=True)
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    await publisher.send_media()
    assert await publisher.closed_by_server()
    await wait_for(lambda: bool(hooks.unpublished))
    assert hooks.unpublished[0][1] == "error"


async def test_read_timeout(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks, read_timeout=0.3)
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    assert await publisher.closed_by_server(within=3)
    await wait_for(lambda: bool(hooks.unpublished))
    assert hooks.unpublished[0][1] == "timeout"


async def test_connection_that_never_publishes_is_dropped(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks, setup_timeout=0.3)
    publisher = await Publisher.open(server.port)
    # Keep talking, but never publish: the setup deadline still applies.
    await publisher.send(publisher.client.handshake() + publisher.client.connect())
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(10):
        await asyncio.sleep(0.05)
        try:
            await publisher.send(publisher.client.command("noop", 0, None))
        except ConnectionError:
            break
    assert await publisher.closed_by_server(within=3)
    assert loop.time() - started < 2
    silent = await Publisher.open(server.port)  # says nothing at all
    assert await silent.closed_by_server(within=3)
    assert hooks.calls == []


async def test_bad_connections_do_not_affect_a_publisher(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    good = await Publisher.open(server.port)
    await good.publish("good")
    await good.send_media(5)

    http = await Publisher.open(server.port)
    await http.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    garbage = await Publisher.open(server.port)
    await garbage.send(garbage.client.handshake() + garbage.client.connect() + b"\x7f" * 64)
    bomb = await Publisher.open(server.port)
    bomb_header = b"\x06" + b"\x00\x00\x00" + b"\xff\xff\xff" + b"\x09" + b"\x01\x00\x00\x00"  # 16 MB claim
    await bomb.send(bomb.client.handshake() + bomb.client.connect() + bomb_header)
    for bad in (http, garbage, bomb):
        assert await bad.closed_by_server()

    await good.send_media(5, start=1000)
    await wait_for(lambda: len(hooks.media) == 10)
    assert server.publishing_sessions == {"sess-1"}
    assert hooks.unpublished == []
    await good.close()


async def test_takeover_closes_the_old_connection(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    first = await Publisher.open(server.port)
    await first.publish("good")
    await first.send_media(3)
    await wait_for(lambda: len(hooks.media) == 3)

    second = await Publisher.open(server.port)
    assert await second.publish("good") == "NetStream.Publish.Start"
    assert await first.closed_by_server()
    await second.send_media(2, start=5000)
    await wait_for(lambda: len(hooks.media) == 5)
    old_grant, new_grant = hooks.grants
    assert old_grant is not new_grant
    assert len(hooks.media_of(old_grant)) == 3
    assert [m.timestamp_ms for m in hooks.media_of(new_grant)] == [5000, 5033]
    assert hooks.unpublished == []  # the replaced publisher does not unpublish the session
    await second.close()
    await wait_for(lambda: bool(hooks.unpublished))
    assert len(hooks.unpublished) == 1
    assert hooks.unpublished[0][0] is new_grant


async def test_close_publisher(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    assert await server.close_publisher("sess-1") is False
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    assert await server.close_publisher("sess-1") is True
    # on_unpublish already ran when close_publisher returned.
    assert [reason for _grant, reason in hooks.unpublished] == ["stopped"]
    assert await publisher.closed_by_server()
    assert await server.close_publisher("sess-1") is False


async def test_close_publisher_from_inside_a_hook_does_not_deadlock(make_server: ServerFactory) -> None:
    server: RtmpServer | None = None
    results: list[bool] = []

    class ClosingHooks(FakeHooks):
        # The media hook is synchronous: it schedules the close (as the streams layer would).
        def on_media(self, grant: PublishGrant, message: MediaMessage) -> None:
            assert server is not None
            if not closing:
                closing.append(asyncio.ensure_future(close(server, grant.session_id)))

    async def close(server: RtmpServer, session_id: str) -> None:
        results.append(await server.close_publisher(session_id))

    closing: list[asyncio.Future[None]] = []

    hooks = ClosingHooks()
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    await publisher.send_media(3)
    assert await publisher.closed_by_server()
    await wait_for(lambda: bool(hooks.unpublished))
    assert results == [True]
    assert hooks.unpublished[0][1] == "stopped"


async def test_stop_closes_every_connection(make_server: ServerFactory) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks)
    port = server.port
    publisher = await Publisher.open(port)
    await publisher.publish("good")
    idle = await Publisher.open(port)
    await idle.send(idle.client.c0c1())
    await asyncio.sleep(0.05)
    await server.stop()
    assert [reason for _grant, reason in hooks.unpublished] == ["shutdown"]
    assert await publisher.closed_by_server()
    assert await idle.closed_by_server()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


async def test_stop_during_on_publish_still_unpublishes_the_grant(make_server: ServerFactory) -> None:
    entered = asyncio.Event()
    release = asyncio.Event()

    class SlowHooks(FakeHooks):
        async def on_publish(self, app: str, key: str) -> PublishGrant | None:
            entered.set()
            await release.wait()
            return await super().on_publish(app, key)

    hooks = SlowHooks()
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    client = publisher.client
    await publisher.send(client.handshake() + client.connect() + client.publish_setup("good"))
    await asyncio.wait_for(entered.wait(), 3)
    stopping = asyncio.create_task(server.stop())
    await asyncio.sleep(0.05)
    release.set()
    await stopping
    assert [reason for _grant, reason in hooks.unpublished] == ["shutdown"]
    await publisher.read_until(lambda messages: True)  # drain whatever came before the close
    assert "NetStream.Publish.Start" not in status_codes(publisher.messages)


async def test_connection_limit_sheds_idle_strangers_never_publishers(make_server: ServerFactory) -> None:
    server = await make_server(FakeHooks(), max_connections=1)
    idle = await Publisher.open(server.port)
    await asyncio.sleep(0.05)
    publisher = await Publisher.open(server.port)
    assert await idle.closed_by_server()  # full: the idle stranger made room for the newcomer
    assert await publisher.publish("good") == "NetStream.Publish.Start"
    third = await Publisher.open(server.port)
    assert await third.closed_by_server()  # an authorized publisher is never shed
    await publisher.close()


async def test_stream_key_never_logged(make_server: ServerFactory, caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk_SuperSecretKey123"
    hooks = FakeHooks(keys={secret: "sess-9"})
    caplog.set_level(logging.DEBUG, "retake.ingest")
    server = await make_server(hooks)
    first = await Publisher.open(server.port)
    await first.publish(secret + "?token=alsoSecret")
    second = await Publisher.open(server.port)
    await second.publish(secret)  # takeover
    refused = await Publisher.open(server.port)
    await refused.publish("sk_OtherSecret456")
    pasted = await Publisher.open(server.port)  # the whole URL pasted as OBS's "server"
    await pasted.send(pasted.client.handshake() + pasted.client.connect(app="live/sk_SecretInApp"))
    await pasted.send(pasted.client.publish_setup(""))
    assert await pasted.closed_by_server()
    await first.closed_by_server()
    await second.close()
    await wait_for(lambda: bool(hooks.unpublished))
    assert hooks.calls[0] == ("publish", ("live", secret))
    assert caplog.records
    for record in caplog.records:
        dump = record.getMessage() + repr(record.__dict__)
        assert "Secret" not in dump


@pytest.fixture
def tls_context(tmp_path: Path) -> ssl.SSLContext:
    cert, key = self_signed_cert(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_rtmps(make_server: ServerFactory, tls_context: ssl.SSLContext) -> None:
    hooks = FakeHooks()
    server = await make_server(hooks, ssl_context=tls_context)
    client_context = ssl.create_default_context()
    client_context.check_hostname = False
    client_context.verify_mode = ssl.CERT_NONE
    publisher = await Publisher.open(server.port, client_context)
    assert await publisher.publish("good") == "NetStream.Publish.Start"
    await publisher.send_media(2)
    await wait_for(lambda: len(hooks.media) == 2)
    await publisher.close()
    await wait_for(lambda: bool(hooks.unpublished))


@dataclass
class RecordingHooks(FakeHooks):
    """FakeHooks that also note where each media call ran and fail from a given message on."""

    in_task: list[bool] = field(default_factory=list)  # per on_media call: ran inside an asyncio task
    fail_from: int | None = None  # the 0-based index of the first message that raises
    media_at_unpublish: int | None = None

    def on_media(self, grant: PublishGrant, message: MediaMessage) -> None:
        if self.fail_from is not None and len(self.media) >= self.fail_from:
            raise RuntimeError("media hook exploded")
        self.in_task.append(asyncio.current_task() is not None)
        super().on_media(grant, message)

    async def on_unpublish(self, grant: PublishGrant, reason: str) -> None:
        self.media_at_unpublish = len(self.media)
        await super().on_unpublish(grant, reason)


async def test_media_hook_runs_in_the_read_callback_in_order(make_server: ServerFactory) -> None:
    hooks = RecordingHooks()
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    await publisher.send_media(1)
    await wait_for(lambda: len(hooks.media) == 1)
    await publisher.send_media(4, start=33)
    await wait_for(lambda: len(hooks.media) == 5)
    await publisher.send_media(5, start=1000)
    await wait_for(lambda: len(hooks.media) == 10)
    timestamps = [m.timestamp_ms for m in hooks.media_of(hooks.grants[0])]
    assert timestamps == [33 * i for i in range(5)] + [1000 + 33 * i for i in range(5)]
    # Media of later reads go to the hook straight from data_received: no task, no coroutine.
    assert hooks.in_task == [False] * 10
    assert all(m.payload == AVC_KEYFRAME for _grant, m in hooks.media)
    await publisher.close()
    await wait_for(lambda: bool(hooks.unpublished))
    assert hooks.unpublished[0][1] == "disconnect"


async def test_media_queued_behind_the_publish_goes_through_the_task_in_order(make_server: ServerFactory) -> None:
    hooks = RecordingHooks()
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    client = publisher.client
    # publish and media in one write: the media wait behind the key check, which the task does.
    media = b"".join(client.media("video", 33 * i, AVC_KEYFRAME) for i in range(3))
    await publisher.send(client.handshake() + client.connect() + client.publish_setup("good") + media)
    await wait_for(lambda: len(hooks.media) == 3)
    assert [m.timestamp_ms for _grant, m in hooks.media] == [0, 33, 66]
    assert hooks.in_task == [True] * 3
    await publisher.close()


async def test_events_after_media_keep_their_order(make_server: ServerFactory) -> None:
    hooks = RecordingHooks()
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    await publisher.send_media(1)
    await wait_for(lambda: len(hooks.media) == 1)
    client = publisher.client
    # Media the read callback hands to the hook, then an unpublish that needs the task, in one write.
    await publisher.send(
        b"".join(client.media("video", 100 + i, AVC_KEYFRAME) for i in range(4)) + client.unpublish("good")
    )
    await wait_for(lambda: bool(hooks.unpublished))
    assert [reason for _grant, reason in hooks.unpublished] == ["unpublish"]
    assert hooks.media_at_unpublish == 5
    await publisher.close()


async def test_media_hook_raising_stops_delivery_and_closes_with_error(make_server: ServerFactory) -> None:
    hooks = RecordingHooks(fail_from=1)
    server = await make_server(hooks)
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    await publisher.send_media(1)
    await wait_for(lambda: len(hooks.media) == 1)
    await publisher.send_media(3, start=33)  # the first of these raises; the two after it are never delivered
    assert await publisher.closed_by_server()
    await wait_for(lambda: bool(hooks.unpublished))
    assert [reason for _grant, reason in hooks.unpublished] == ["error"]
    assert len(hooks.media) == 1


async def test_read_timeout_while_media_flowed(make_server: ServerFactory) -> None:
    hooks = RecordingHooks()
    server = await make_server(hooks, read_timeout=0.3)
    publisher = await Publisher.open(server.port)
    await publisher.publish("good")
    await publisher.send_media(1)
    await wait_for(lambda: len(hooks.media) == 1)
    await publisher.send_media(2, start=33)
    assert await publisher.closed_by_server(within=3)
    await wait_for(lambda: bool(hooks.unpublished))
    assert hooks.unpublished[0][1] == "timeout"
    assert len(hooks.media) == 3
