"""AMF0, both directions, as the RTMP commands and the FLV script tags use it [AMF0 §2]."""

from __future__ import annotations

import contextlib
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retake.av import amf0
from retake.av.amf0 import UNDEFINED, AmfDate, AmfValue, EcmaArray
from retake.av.errors import AmfError, AvError

# The connect command ffmpeg 5.1 sends, byte for byte as AMF0 (media notes §1.4 step 1).
FFMPEG_CONNECT = (
    b"\x02\x00\x07connect"
    b"\x00\x3f\xf0\x00\x00\x00\x00\x00\x00"
    b"\x03"
    b"\x00\x03app\x02\x00\x04live"
    b"\x00\x04type\x02\x00\x0anonprivate"
    b"\x00\x08flashVer\x02\x00\x24FMLE/3.0 (compatible; Lavf59.27.100)"
    b"\x00\x05tcUrl\x02\x00\x1artmp://127.0.0.1:1935/live"
    b"\x00\x00\x09"
)


def test_decodes_ffmpeg_connect() -> None:
    assert amf0.decode(FFMPEG_CONNECT) == [
        "connect",
        1.0,
        {
            "app": "live",
            "type": "nonprivate",
            "flashVer": "FMLE/3.0 (compatible; Lavf59.27.100)",
            "tcUrl": "rtmp://127.0.0.1:1935/live",
        },
    ]
    assert amf0.encode(*amf0.decode(FFMPEG_CONNECT)) == FFMPEG_CONNECT


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (1.5, b"\x00" + struct.pack(">d", 1.5)),
        (True, b"\x01\x01"),
        (False, b"\x01\x00"),
        ("ab", b"\x02\x00\x02ab"),
        ("é", b"\x02\x00\x02\xc3\xa9"),
        (None, b"\x05"),
        (UNDEFINED, b"\x06"),
        ({"a": 1.0}, b"\x03\x00\x01a\x00" + struct.pack(">d", 1.0) + b"\x00\x00\x09"),
        ({}, b"\x03\x00\x00\x09"),
        (EcmaArray(a=True), b"\x08\x00\x00\x00\x01\x00\x01a\x01\x01\x00\x00\x09"),
        ([None, "x"], b"\x0a\x00\x00\x00\x02\x05\x02\x00\x01x"),
        (AmfDate(1000.0, 0), b"\x0b" + struct.pack(">d", 1000.0) + b"\x00\x00"),
    ],
)
def test_each_type_round_trips(value: AmfValue, encoded: bytes) -> None:
    assert amf0.encode(value) == encoded
    decoded, end = amf0.decode_one(encoded)
    assert decoded == value
    assert type(decoded) is type(value)
    assert end == len(encoded)


def test_integers_encode_as_numbers() -> None:
    assert amf0.decode(amf0.encode(7)) == [7.0]


def test_long_string() -> None:
    text = "x" * 70_000
    encoded = amf0.encode(text)
    assert encoded[0] == amf0.LONG_STRING
    assert struct.unpack(">I", encoded[1:5])[0] == 70_000
    assert amf0.decode(encoded) == [text]
    # A short string written as a long string decodes to the same value.
    assert amf0.decode(b"\x0c\x00\x00\x00\x02hi") == ["hi"]


def test_nested_structures_and_date_timezone() -> None:
    value: AmfValue = {
        "list": [1.0, {"deep": EcmaArray(k=[None, UNDEFINED])}],
        "date": AmfDate(1.7e12, -60),
        "": "empty key",
    }
    assert amf0.decode(amf0.encode(value)) == [value]


def test_nan_number_survives() -> None:
    (decoded,) = amf0.decode(amf0.encode(math.nan))
    assert isinstance(decoded, float)
    assert math.isnan(decoded)


def test_ecma_array_count_is_only_a_hint() -> None:
    # Count claims 5, two pairs present; also the variant ending with the message, no 00 00 09.
    body = b"\x08\x00\x00\x00\x05\x00\x01a\x05\x00\x01b\x05"
    assert amf0.decode(body + b"\x00\x00\x09") == [EcmaArray(a=None, b=None)]
    assert amf0.decode(body) == [EcmaArray(a=None, b=None)]


def test_undefined_is_a_singleton() -> None:
    assert amf0.Undefined() is UNDEFINED
    assert repr(UNDEFINED) == "UNDEFINED"


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02",  # truncated number
        b"\x02\x00\x05ab",  # string shorter than its length
        b"\x0c\xff\xff\xff\xffab",  # 4 GB long-string claim
        b"\x0a\xff\xff\xff\xff\x05",  # 4 G strict-array count
        b"\x03\x00\x01a",  # object without value / end
        b"\x03\x00\x01a\x05",  # object without end marker
        b"\x09",  # object end outside an object
        b"\x07\x00\x01",  # reference: unsupported
        b"\x10\x00\x01A\x00\x00\x09",  # typed object: unsupported
        b"\x11",  # AMF3 switch: unsupported
        b"\x03" * 100,  # nesting bomb
        b"\x01",  # boolean without its byte
    ],
)
def test_malformed_input_raises_amf_error(data: bytes) -> None:
    with pytest.raises(AmfError):
        amf0.decode(data)


def test_amf_error_is_an_av_error() -> None:
    assert issubclass(AmfError, AvError)


def test_decode_one_rejects_bad_offset() -> None:
    with pytest.raises(AmfError):
        amf0.decode_one(b"\x05", 2)


def test_encode_refuses_foreign_types() -> None:
    with pytest.raises(TypeError):
        amf0.encode(b"bytes")  # type: ignore[arg-type]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    assert amf0.decode(b"\x02\x00\x02\xff\xfe") == ["\ufffd\ufffd"]


_keys = st.text(max_size=8)
_scalars = (
    st.floats(allow_nan=False)
    | st.booleans()
    | st.text(max_size=20)
    | st.none()
    | st.just(UNDEFINED)
    | st.builds(AmfDate, st.floats(allow_nan=False), st.integers(-32768, 32767))
)
_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(_keys, children, max_size=4)
        | st.dictionaries(_keys, children, max_size=4).map(EcmaArray)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_values, max_size=4))
def test_round_trip_property(values: list[AmfValue]) -> None:
    encoded = amf0.encode(*values)
    decoded = amf0.decode(encoded)
    assert decoded == values
    assert amf0.encode(*decoded) == encoded


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_amf_error(data: bytes) -> None:
    with contextlib.suppress(AmfError):
        amf0.decode(data)


@settings(max_examples=200, deadline=None)
@given(st.lists(_values, min_size=1, max_size=3), st.data())
def test_mutated_valid_input_raises_only_amf_error(values: list[AmfValue], data: st.DataObject) -> None:
    encoded = bytearray(amf0.encode(*values))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(encoded) - 1))
        encoded[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(encoded)))
    with contextlib.suppress(AmfError):
        amf0.decode(bytes(encoded[:cut]))


# -- FLV script data (onMetaData), the media layer's use -----------------------------------------------------

ON_METADATA = amf0.encode("onMetaData", EcmaArray(width=320.0, codec="avc1"))


def test_metadata_round_trip_keeps_types() -> None:
    values: list[AmfValue] = [
        1.5,
        True,
        "héllo",
        None,
        {"a": 1.0, "nested": {"b": [1.0, "x", None]}},
        EcmaArray(k="v"),
        "x" * 70000,
    ]
    data = amf0.encode(*values)
    decoded = amf0.decode(data)
    assert decoded == values
    assert isinstance(decoded[5], EcmaArray) and not isinstance(decoded[4], EcmaArray)
    assert amf0.encode(*decoded) == data


def test_metadata_fed_a_byte_at_a_time() -> None:
    # Every prefix fails with AmfError, except those ending exactly after the name or between two properties
    # of the ECMA array (the lenient end some encoders rely on), which give what is complete so far.
    name_end = len(amf0.encode("onMetaData"))
    pairs_start = name_end + 5  # marker 0x08 and the UI32 count
    width_end = pairs_start + len(b"\x00\x05width") + 9
    complete: dict[int, list[AmfValue]] = {
        name_end: ["onMetaData"],
        pairs_start: ["onMetaData", EcmaArray()],
        width_end: ["onMetaData", EcmaArray(width=320.0)],
        len(ON_METADATA) - 3: ["onMetaData", EcmaArray(width=320.0, codec="avc1")],
    }
    for end in range(1, len(ON_METADATA)):
        if end in complete:
            assert amf0.decode(ON_METADATA[:end]) == complete[end]
        else:
            with pytest.raises(AmfError):
                amf0.decode(ON_METADATA[:end])
    assert amf0.decode(ON_METADATA) == complete[len(ON_METADATA) - 3]


def test_date_and_undefined_keep_their_types() -> None:
    date = b"\x0b" + bytes.fromhex("426d1a94a2000000") + b"\x00\x00"
    assert amf0.decode(date) == [AmfDate(1.0e12, 0)]
    assert amf0.decode(b"\x06") == [UNDEFINED]
