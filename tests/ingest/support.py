"""Test helpers: a scripted RTMP publisher (speaking like ffmpeg 5.1), an FLV tag reader, fake hooks."""

from __future__ import annotations

import asyncio
import datetime
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from retake.av import amf0
from retake.av.message import MediaMessage
from retake.ingest import PublishGrant
from retake.ingest.rtmp.chunk import ChunkReader, ChunkWriter, RtmpMessage
from retake.ingest.rtmp.messages import Command, MessageType, SetChunkSize

HANDSHAKE_REPLY_SIZE = 1 + 1536 + 1536  # S0 + S1 + S2

# A minimal but real FLV payload set: AVC sequence header, AVC keyframe, AAC sequence header, AAC frame.
AVC_SEQUENCE_HEADER = bytes.fromhex("1700000000") + bytes.fromhex("0164001fffe1000467640028010004") + b"\xee"
AVC_KEYFRAME = bytes.fromhex("1701000000") + struct.pack(">I", 5) + b"\x65\x88\x84\x00\x10"
AAC_SEQUENCE_HEADER = bytes.fromhex("af001210")
AAC_FRAME = bytes.fromhex("af01") + b"\x21\x10\x04\x60\x8c\x1c"


class ScriptedClient:
    """Builds the bytes an RTMP publisher sends and parses what the server answers."""

    def __init__(self) -> None:
        self.writer = ChunkWriter()
        self.reader = ChunkReader(max_message_size=1 << 24)
        self.c1 = struct.pack(">II", 0, 0) + os.urandom(1528)
        self._handshake_left = HANDSHAKE_REPLY_SIZE
        self.s0s1s2 = bytearray()
        self.transaction = 0

    def c0c1(self) -> bytes:
        return b"\x03" + self.c1

    def c2(self) -> bytes:
        """Echo S1 (call after the server's S0+S1+S2 were fed to :meth:`receive`)."""
        return bytes(self.s0s1s2[1:1537])

    def handshake(self) -> bytes:
        """C0+C1+C2 in one go (the server tolerates a C2 that does not echo S1)."""
        return self.c0c1() + self.c1

    def message(self, message: RtmpMessage) -> bytes:
        return self.writer.write(message)

    def set_chunk_size(self, size: int) -> bytes:
        data = self.writer.write(SetChunkSize(size).to_message())
        self.writer.chunk_size = size
        return data

    def command(self, name: str, tid: float, obj: amf0.AmfValue, *args: amf0.AmfValue, stream_id: int = 0) -> bytes:
        csid = 8 if stream_id else 3
        return self.message(Command(name, tid, obj, args).to_message(stream_id, csid))

    def connect(self, app: str = "live", tc_url: str = "rtmp://127.0.0.1/live") -> bytes:
        return self.command(
            "connect",
            1,
            {"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0 (compatible; test)", "tcUrl": tc_url},
        )

    def publish_setup(self, name: str) -> bytes:
        """releaseStream, FCPublish, createStream, back to back (as ffmpeg does), then publish."""
        return (
            self.command("releaseStream", 2, None, name)
            + self.command("FCPublish", 3, None, name)
            + self.command("createStream", 4, None)
            + self.command("publish", 5, None, name, "live", stream_id=1)
        )

    def media(self, kind: str, timestamp: int, payload: bytes, stream_id: int = 1) -> bytes:
        type_id = {"audio": MessageType.AUDIO, "video": MessageType.VIDEO}[kind]
        csid = 4 if kind == "audio" else 6
        return self.message(RtmpMessage(type_id, stream_id, timestamp, payload, csid))

    def metadata(self, stream_id: int = 1) -> bytes:
        body = amf0.encode("@setDataFrame", "onMetaData", amf0.EcmaArray(width=320.0, height=240.0))
        return self.message(RtmpMessage(MessageType.DATA_AMF0, stream_id, 0, body, 4))

    def unpublish(self, name: str) -> bytes:
        return self.command("FCUnpublish", 6, None, name) + self.command("deleteStream", 7, None, 1.0)

    def receive(self, data: bytes) -> list[RtmpMessage]:
        """Parse server output: the handshake reply first, then chunks."""
        if self._handshake_left:
            head = data[: self._handshake_left]
            self.s0s1s2 += head
            self._handshake_left -= len(head)
            data = data[len(head) :]
        self.reader.feed(data)
        messages = []
        while (message := self.reader.next_message()) is not None:
            messages.append(message)
        return messages


def commands(messages: list[RtmpMessage]) -> list[Command]:
    return [Command.parse(m.payload) for m in messages if m.type_id == MessageType.COMMAND_AMF0]


def status_codes(messages: list[RtmpMessage]) -> list[str]:
    codes = []
    for command in commands(messages):
        if command.name == "onStatus" and command.args and isinstance(command.args[0], dict):
            code = command.args[0].get("code")
            assert isinstance(code, str)
            codes.append(code)
    return codes


def flv_tags(data: bytes) -> list[tuple[str, int, bytes]]:
    """(kind, timestamp, body) of each tag of an FLV file [FLV E.2-E.4.1]."""
    assert data[:3] == b"FLV"
    offset = struct.unpack(">I", data[5:9])[0] + 4  # header, then PreviousTagSize0
    kinds = {8: "audio", 9: "video", 18: "script"}
    tags = []
    while offset < len(data):
        size = int.from_bytes(data[offset + 1 : offset + 4], "big")
        timestamp = int.from_bytes(data[offset + 4 : offset + 7], "big") | (data[offset + 7] << 24)
        tags.append((kinds[data[offset]], timestamp, data[offset + 11 : offset + 11 + size]))
        offset += 11 + size + 4
    return tags


@dataclass
class FakeHooks:
    """Grants keys in ``keys`` (key -> session id); records every call in order."""

    keys: dict[str, str] = field(default_factory=lambda: {"good": "sess-1"})
    calls: list[tuple[str, object]] = field(default_factory=list)
    media: list[tuple[PublishGrant, MediaMessage]] = field(default_factory=list)
    unpublished: list[tuple[PublishGrant, str]] = field(default_factory=list)
    grants: list[PublishGrant] = field(default_factory=list)
    first_media: asyncio.Event = field(default_factory=asyncio.Event)
    unpublish_seen: asyncio.Event = field(default_factory=asyncio.Event)
    fail_publish: bool = False
    fail_media: bool = False

    async def on_publish(self, app: str, key: str) -> PublishGrant | None:
        self.calls.append(("publish", (app, key)))
        if self.fail_publish:
            raise RuntimeError("hook exploded")
        session = self.keys.get(key)
        if session is None:
            return None
        grant = PublishGrant(stream_id="user-" + session, session_id=session)
        self.grants.append(grant)
        return grant

    def on_media(self, grant: PublishGrant, message: MediaMessage) -> None:
        if self.fail_media:
            raise RuntimeError("media hook exploded")
        self.media.append((grant, message))
        self.first_media.set()

    async def on_unpublish(self, grant: PublishGrant, reason: str) -> None:
        self.calls.append(("unpublish", reason))
        self.unpublished.append((grant, reason))
        self.unpublish_seen.set()

    def media_of(self, grant: PublishGrant) -> list[MediaMessage]:
        return [message for owner, message in self.media if owner is grant]


def self_signed_cert(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway EC certificate for localhost (for the RTMPS tests)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path
