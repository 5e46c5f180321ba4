"""AMF0 encoding and decoding [AMF0 §2], for both of its users: RTMP command and data messages [RTMP §7.1]
and FLV script tags (``onMetaData``) [FLV E.4.4].

Python mapping (decode → encode round-trips exactly):

=================  =========================================
AMF0 type          Python value
=================  =========================================
number (0x00)      ``float`` (``int`` is accepted when encoding)
boolean (0x01)     ``bool``
string (0x02)      ``str`` (UTF-8, ≤ 65535 bytes)
object (0x03)      ``dict[str, AmfValue]`` (anonymous object)
null (0x05)        ``None``
undefined (0x06)   :data:`UNDEFINED`
ECMA array (0x08)  :class:`EcmaArray` (a ``dict`` subclass)
strict array (0A)  ``list``
date (0x0B)        :class:`AmfDate`
long string (0C)   ``str`` longer than 65535 UTF-8 bytes
object end (0x09)  only as the terminator of objects and ECMA arrays
=================  =========================================

Decoding never trusts a length or count field: every claim is checked against the bytes actually present
before anything is sliced or allocated, nesting is capped, and any malformed input raises
:class:`~retake.av.errors.AmfError` and nothing else. Two leniencies serve both users: strings with invalid
UTF-8 decode with replacement characters (a stray byte in a client's flashVer or in metadata must not cost
the whole connection), and an ECMA array may end with the data instead of its end marker.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final, TypeAlias

from .errors import AmfError

NUMBER: Final = 0x00
BOOLEAN: Final = 0x01
STRING: Final = 0x02
OBJECT: Final = 0x03
NULL: Final = 0x05
UNDEFINED_MARKER: Final = 0x06
ECMA_ARRAY: Final = 0x08
OBJECT_END: Final = 0x09
STRICT_ARRAY: Final = 0x0A
DATE: Final = 0x0B
LONG_STRING: Final = 0x0C

#: Deeper nesting than any real encoder produces; guards the recursive decoder against stack exhaustion.
MAX_DEPTH: Final = 32

_END_OF_OBJECT: Final = b"\x00\x00\x09"


class Undefined:
    """The AMF0 ``undefined`` value (distinct from ``null``, which maps to ``None``)."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined()


@dataclass(frozen=True, slots=True)
class AmfDate:
    """AMF0 date [AMF0 §2.13]: milliseconds since the Unix epoch (a double) and a time zone that the spec
    says to send as 0 and ignore on receipt; it is kept so decode/encode round-trips byte for byte."""

    milliseconds: float
    timezone: int = 0


class EcmaArray(dict[str, "AmfValue"]):
    """An associative array [AMF0 §2.10]; ``onMetaData`` arrives as one. A ``dict`` that remembers its
    AMF0 type so that re-encoding produces an ECMA array, not an anonymous object."""


AmfValue: TypeAlias = (
    float | bool | str | Undefined | AmfDate | EcmaArray | dict[str, "AmfValue"] | list["AmfValue"] | None
)


# -- encoding ---------------------------------------------------------------------------------------------


def encode(*values: AmfValue) -> bytes:
    """Serialize values back to back, as they appear in a command or data message body."""
    out = bytearray()
    for value in values:
        _encode_into(out, value)
    return bytes(out)


def _encode_key(out: bytearray, key: str) -> None:
    raw = key.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("AMF0 property names are limited to 65535 UTF-8 bytes")
    out += struct.pack(">H", len(raw))
    out += raw


def _encode_into(out: bytearray, value: AmfValue) -> None:
    # bool before number: bool is an int subclass.
    if isinstance(value, bool):
        out += bytes((BOOLEAN, 1 if value else 0))
    elif isinstance(value, int | float):
        out.append(NUMBER)
        out += struct.pack(">d", float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) <= 0xFFFF:
            out.append(STRING)
            out += struct.pack(">H", len(raw))
        else:
            out.append(LONG_STRING)
            out += struct.pack(">I", len(raw))
        out += raw
    elif value is None:
        out.append(NULL)
    elif isinstance(value, Undefined):
        out.append(UNDEFINED_MARKER)
    elif isinstance(value, AmfDate):
        out.append(DATE)
        out += struct.pack(">dh", value.milliseconds, value.timezone)
    elif isinstance(value, EcmaArray):
        out.append(ECMA_ARRAY)
        out += struct.pack(">I", len(value))
        for key, item in value.items():
            _encode_key(out, key)
            _encode_into(out, item)
        out += _END_OF_OBJECT
    elif isinstance(value, dict):
        out.append(OBJECT)
        for key, item in value.items():
            _encode_key(out, key)
            _encode_into(out, item)
        out += _END_OF_OBJECT
    elif isinstance(value, list | tuple):
        out.append(STRICT_ARRAY)
        out += struct.pack(">I", len(value))
        for item in value:
            _encode_into(out, item)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")


# -- decoding ---------------------------------------------------------------------------------------------


def decode(data: bytes) -> list[AmfValue]:
    """Decode every value in ``data`` (a whole command or data message body)."""
    reader = _Reader(data)
    values: list[AmfValue] = []
    while reader.pos < len(data):
        values.append(reader.value(0))
    return values


def decode_one(data: bytes, offset: int = 0) -> tuple[AmfValue, int]:
    """Decode the value that starts at ``offset``; return it and the offset just past it."""
    if not 0 <= offset <= len(data):
        raise AmfError("AMF0 offset outside the data")
    reader = _Reader(data, offset)
    value = reader.value(0)
    return value, reader.pos


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise AmfError("AMF0 value runs past the end of the message")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def _u8(self) -> int:
        if self.pos >= len(self.data):
            raise AmfError("AMF0 value runs past the end of the message")
        byte = self.data[self.pos]
        self.pos += 1
        return byte

    def _u16(self) -> int:
        value: int = struct.unpack(">H", self._take(2))[0]
        return value

    def _u32(self) -> int:
        value: int = struct.unpack(">I", self._take(4))[0]
        return value

    def _utf8(self, n: int) -> str:
        # Lossy on purpose: a stray byte in a client's flashVer must not cost the whole connection, and a
        # mangled stream key simply fails the key check.
        return self._take(n).decode("utf-8", errors="replace")

    def value(self, depth: int) -> AmfValue:
        if depth > MAX_DEPTH:
            raise AmfError("AMF0 nesting too deep")
        marker = self._u8()
        if marker == NUMBER:
            number: float = struct.unpack(">d", self._take(8))[0]
            return number
        if marker == BOOLEAN:
            return self._u8() != 0
        if marker == STRING:
            return self._utf8(self._u16())
        if marker == LONG_STRING:
            return self._utf8(self._u32())
        if marker == NULL:
            return None
        if marker == UNDEFINED_MARKER:
            return UNDEFINED
        if marker == OBJECT:
            obj: dict[str, AmfValue] = {}
            self._properties(obj, depth, lenient_end=False)
            return obj
        if marker == ECMA_ARRAY:
            self._u32()  # the count is only a hint [AMF0 §2.10]; encoders get it wrong, the end marker rules
            array = EcmaArray()
            self._properties(array, depth, lenient_end=True)
            return array
        if marker == STRICT_ARRAY:
            count = self._u32()
            # Each element takes at least one byte: a count larger than what is left is a lie, refuse it
            # before looping (or allocating) on its word.
            if count > len(self.data) - self.pos:
                raise AmfError("AMF0 strict array count exceeds the message")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == DATE:
            millis, timezone = struct.unpack(">dh", self._take(10))
            return AmfDate(millis, timezone)
        if marker == OBJECT_END:
            raise AmfError("AMF0 object-end marker outside an object")
        raise AmfError(f"unsupported AMF0 marker 0x{marker:02x}")

    def _properties(self, target: dict[str, AmfValue], depth: int, *, lenient_end: bool) -> None:
        while True:
            if lenient_end and self.pos == len(self.data):
                # Some encoders end an ECMA array with the message instead of 00 00 09.
                return
            key_length = self._u16()
            if key_length == 0 and self.pos < len(self.data) and self.data[self.pos] == OBJECT_END:
                self.pos += 1
                return
            key = self._utf8(key_length)
            target[key] = self.value(depth + 1)
