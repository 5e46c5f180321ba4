"""The av package's one exception tree.

The layers above translate at their edge: the RTMP core turns :class:`AmfError` into its protocol error; the
media layer lets both through to the bridge, which closes a publisher whose media it cannot carry.
"""

from __future__ import annotations


class AvError(Exception):
    """Base class of every error raised by :mod:`retake.av`."""


class AmfError(AvError):
    """Malformed or unsupported AMF0 data (RTMP commands, FLV script tags)."""


class CodecConfigError(AvError):
    """Malformed AVCDecoderConfigurationRecord, SPS, AudioSpecificConfig or sequence header."""
