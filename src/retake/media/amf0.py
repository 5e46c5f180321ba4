"""Minimal AMF0 [Adobe AMF0 §2] for FLV script tags (onMetaData)."""

from __future__ import annotations

import struct
from typing import Union

from .errors import AmfError

_NUMBER, _BOOLEAN, _STRING, _OBJECT = 0x00, 0x01, 0x02, 0x03
_NULL, _UNDEFINED, _ECMA_ARRAY, _OBJECT_END = 0x05, 0x06, 0x08, 0x09
_STRICT_ARRAY, _DATE, _LONG_STRING = 0x0A, 0x0B, 0x0C
_MAX_DEPTH = 32


class EcmaArray(dict[str, "AmfValue"]):
    """An AMF0 ECMA array (associative array); kept distinct from an anonymous object for round trips."""


AmfValue = Union[float, bool, str, None, dict[str, "AmfValue"], list["AmfValue"]]  # noqa: UP007


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise AmfError("AMF0 data ended early")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def utf8(self, size_bytes: int) -> str:
        size = int.from_bytes(self.take(size_bytes), "big")
        try:
            return self.take(size).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise AmfError("AMF0 string is not UTF-8") from exc

    def pairs(self, target: dict[str, AmfValue], depth: int) -> None:
        # Key/value pairs end with an empty key followed by the object-end marker [AMF0 §2.5].
        while True:
            key = self.utf8(2)
            if key == "" and self.data[self.pos : self.pos + 1] == bytes([_OBJECT_END]):
                self.pos += 1
                return
            target[key] = self.value(depth + 1)

    def value(self, depth: int = 0) -> AmfValue:
        if depth > _MAX_DEPTH:
            raise AmfError("AMF0 nesting too deep")
        marker = self.take(1)[0]
        if marker == _NUMBER:
            return float(struct.unpack(">d", self.take(8))[0])
        if marker == _BOOLEAN:
            return self.take(1) != b"\x00"
        if marker == _STRING:
            return self.utf8(2)
        if marker == _LONG_STRING:
            return self.utf8(4)
        if marker in (_NULL, _UNDEFINED):
            return None
        if marker == _OBJECT:
            obj: dict[str, AmfValue] = {}
            self.pairs(obj, depth)
            return obj
        if marker == _ECMA_ARRAY:
            self.take(4)  # associative-count is only a hint; the end marker is authoritative
            array = EcmaArray()
            self.pairs(array, depth)
            return array
        if marker == _STRICT_ARRAY:
            (count,) = struct.unpack(">I", self.take(4))
            if count > len(self.data) - self.pos:
                raise AmfError("AMF0 strict array longer than its data")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == _DATE:
            (millis,) = struct.unpack(">d", self.take(8))
            self.take(2)  # time zone, reserved [AMF0 §2.13]
            return float(millis)
        raise AmfError(f"unsupported AMF0 marker 0x{marker:02x}")


def decode_all(data: bytes) -> list[AmfValue]:
    """Decode consecutive AMF0 values until the data ends."""
    reader = _Reader(data)
    values: list[AmfValue] = []
    while reader.pos < len(data):
        values.append(reader.value())
    return values


def _encode_utf8(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise AmfError("AMF0 key longer than 65535 bytes")
    return struct.pack(">H", len(raw)) + raw


def encode(value: AmfValue) -> bytes:
    """Encode one value; dicts become objects, :class:`EcmaArray` becomes an ECMA array."""
    if value is None:
        return bytes([_NULL])
    if isinstance(value, bool):
        return bytes([_BOOLEAN, 1 if value else 0])
    if isinstance(value, int | float):
        return bytes([_NUMBER]) + struct.pack(">d", float(value))
    if isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) > 0xFFFF:
            return bytes([_LONG_STRING]) + struct.pack(">I", len(raw)) + raw
        return bytes([_STRING]) + struct.pack(">H", len(raw)) + raw
    if isinstance(value, list):
        return bytes([_STRICT_ARRAY]) + struct.pack(">I", len(value)) + b"".join(encode(v) for v in value)
    body = b"".join(_encode_utf8(key) + encode(item) for key, item in value.items()) + b"\x00\x00\x09"
    if isinstance(value, EcmaArray):
        return bytes([_ECMA_ARRAY]) + struct.pack(">I", len(value)) + body
    return bytes([_OBJECT]) + body


def encode_all(*values: AmfValue) -> bytes:
    return b"".join(encode(v) for v in values)
