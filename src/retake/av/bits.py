"""Bit-level reading for codec configuration parsing (H.264 SPS, AAC AudioSpecificConfig)."""

from __future__ import annotations

from .errors import CodecConfigError


def strip_emulation_prevention(nal: bytes) -> bytes:
    """Return the RBSP of a NAL unit: every ``00 00 03`` loses its 0x03 (ITU-T H.264 §7.4.1)."""
    if b"\x00\x00\x03" not in nal:
        return nal
    out = bytearray()
    zeros = 0
    for byte in nal:
        if zeros >= 2 and byte == 3:
            zeros = 0
            continue
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


class BitReader:
    """MSB-first bit reader with Exp-Golomb codes (ITU-T H.264 §9.1)."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0  # in bits

    @property
    def bits_left(self) -> int:
        return len(self._data) * 8 - self._pos

    def read_bits(self, count: int) -> int:
        if count < 0 or count > self.bits_left:
            raise CodecConfigError(f"bitstream ended: wanted {count} bits, {self.bits_left} left")
        value = 0
        for _ in range(count):
            byte = self._data[self._pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self._pos & 7))) & 1)
            self._pos += 1
        return value

    def read_flag(self) -> bool:
        return self.read_bits(1) == 1

    def read_ue(self) -> int:
        """ue(v): unsigned Exp-Golomb [H.264 §9.1]."""
        leading_zeros = 0
        while self.read_bits(1) == 0:
            leading_zeros += 1
            if leading_zeros > 31:
                raise CodecConfigError("Exp-Golomb code longer than 32 bits")
        return (1 << leading_zeros) - 1 + self.read_bits(leading_zeros)

    def read_se(self) -> int:
        """se(v): signed Exp-Golomb, mapping 1, 2, 3, 4 … to 1, −1, 2, −2 … [H.264 §9.1.1]."""
        code = self.read_ue()
        return (code + 1) // 2 if code & 1 else -(code // 2)
