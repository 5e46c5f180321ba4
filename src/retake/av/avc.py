"""H.264 configuration: avcC [ISO/IEC 14496-15 §5.3.3.1] and the SPS [ITU-T H.264 §7.3.2.1.1]."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .bits import BitReader, strip_emulation_prevention
from .errors import CodecConfigError

# Profiles whose SPS carries chroma_format_idc, bit depths and scaling matrices [H.264 §7.3.2.1.1].
_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})
NAL_TYPE_IDR = 5
NAL_TYPE_SPS = 7
NAL_TYPE_PPS = 8


@dataclass(frozen=True, slots=True)
class SpsInfo:
    """The fields of a sequence parameter set that a muxer needs."""

    profile_idc: int
    constraint_flags: int
    level_idc: int
    chroma_format_idc: int
    bit_depth_luma: int
    bit_depth_chroma: int
    width: int
    height: int
    frame_mbs_only: bool


def _skip_scaling_list(reader: BitReader, size: int) -> None:
    # scaling_list() [H.264 §7.3.2.1.1.1]: values are delta coded until nextScale becomes 0.
    last_scale = 8
    next_scale = 8
    for _ in range(size):
        if next_scale != 0:
            delta = reader.read_se()
            next_scale = (last_scale + delta + 256) % 256
        last_scale = next_scale if next_scale != 0 else last_scale


def parse_sps(nal: bytes) -> SpsInfo:
    """Parse an SPS NAL unit (with its 1-byte NAL header) far enough to know the picture size."""
    if not nal or nal[0] & 0x1F != NAL_TYPE_SPS:
        raise CodecConfigError("not an SPS NAL unit")
    reader = BitReader(strip_emulation_prevention(nal[1:]))
    profile_idc = reader.read_bits(8)
    constraint_flags = reader.read_bits(8)
    level_idc = reader.read_bits(8)
    reader.read_ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    separate_colour_plane = False
    bit_depth_luma = bit_depth_chroma = 8
    if profile_idc in _HIGH_PROFILES:
        chroma_format_idc = reader.read_ue()
        if chroma_format_idc > 3:
            raise CodecConfigError(f"invalid chroma_format_idc {chroma_format_idc}")
        if chroma_format_idc == 3:
            separate_colour_plane = reader.read_flag()
        bit_depth_luma = reader.read_ue() + 8
        bit_depth_chroma = reader.read_ue() + 8
        reader.read_flag()  # qpprime_y_zero_transform_bypass_flag
        if reader.read_flag():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if reader.read_flag():
                    _skip_scaling_list(reader, 16 if index < 6 else 64)
    reader.read_ue()  # log2_max_frame_num_minus4
    pic_order_cnt_type = reader.read_ue()
    if pic_order_cnt_type == 0:
        reader.read_ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif pic_order_cnt_type == 1:
        reader.read_flag()  # delta_pic_order_always_zero_flag
        reader.read_se()  # offset_for_non_ref_pic
        reader.read_se()  # offset_for_top_to_bottom_field
        for _ in range(reader.read_ue()):  # num_ref_frames_in_pic_order_cnt_cycle
            reader.read_se()
    elif pic_order_cnt_type != 2:
        raise CodecConfigError(f"invalid pic_order_cnt_type {pic_order_cnt_type}")
    reader.read_ue()  # max_num_ref_frames
    reader.read_flag()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = reader.read_ue() + 1
    height_map_units = reader.read_ue() + 1
    frame_mbs_only = reader.read_flag()
    if not frame_mbs_only:
        reader.read_flag()  # mb_adaptive_frame_field_flag
    reader.read_flag()  # direct_8x8_inference_flag
    crop_left = crop_right = crop_top = crop_bottom = 0
    if reader.read_flag():  # frame_cropping_flag
        crop_left, crop_right = reader.read_ue(), reader.read_ue()
        crop_top, crop_bottom = reader.read_ue(), reader.read_ue()
    # Crop units depend on ChromaArrayType [H.264 §7.4.2.1.1, Table 6-1].
    chroma_array_type = 0 if separate_colour_plane else chroma_format_idc
    field_factor = 1 if frame_mbs_only else 2
    if chroma_array_type == 0:
        crop_unit_x, crop_unit_y = 1, field_factor
    else:
        sub_width = 1 if chroma_format_idc == 3 else 2
        sub_height = 2 if chroma_format_idc == 1 else 1
        crop_unit_x, crop_unit_y = sub_width, sub_height * field_factor
    width = width_mbs * 16 - crop_unit_x * (crop_left + crop_right)
    height = field_factor * height_map_units * 16 - crop_unit_y * (crop_top + crop_bottom)
    if width <= 0 or height <= 0:
        raise CodecConfigError(f"SPS gives an empty picture ({width}x{height})")
    return SpsInfo(
        profile_idc=profile_idc,
        constraint_flags=constraint_flags,
        level_idc=level_idc,
        chroma_format_idc=chroma_format_idc,
        bit_depth_luma=bit_depth_luma,
        bit_depth_chroma=bit_depth_chroma,
        width=width,
        height=height,
        frame_mbs_only=frame_mbs_only,
    )


@dataclass(frozen=True, slots=True)
class AvcDecoderConfigurationRecord:
    """avcC [ISO/IEC 14496-15 §5.3.3.1]; ``extension`` keeps the high-profile trailer bytes verbatim."""

    profile: int
    profile_compatibility: int
    level: int
    length_size: int
    sps: tuple[bytes, ...]
    pps: tuple[bytes, ...]
    extension: bytes = b""
    version: int = 1

    @classmethod
    def parse(cls, data: bytes) -> AvcDecoderConfigurationRecord:
        if len(data) < 7:
            raise CodecConfigError("AVCDecoderConfigurationRecord shorter than 7 bytes")
        version, profile, compat, level, length_byte, sps_byte = data[:6]
        if version != 1:
            raise CodecConfigError(f"unsupported configurationVersion {version}")
        pos = 6
        sps: list[bytes] = []
        pps: list[bytes] = []
        for count, target in ((sps_byte & 0x1F, sps), (-1, pps)):
            if count < 0:
                if pos >= len(data):
                    raise CodecConfigError("avcC ends before numOfPictureParameterSets")
                count = data[pos]
                pos += 1
            for _ in range(count):
                if pos + 2 > len(data):
                    raise CodecConfigError("truncated parameter set length")
                (size,) = struct.unpack_from(">H", data, pos)
                pos += 2
                if pos + size > len(data):
                    raise CodecConfigError("truncated parameter set")
                target.append(data[pos : pos + size])
                pos += size
        if not sps:
            raise CodecConfigError("AVCDecoderConfigurationRecord without an SPS")
        return cls(
            profile=profile,
            profile_compatibility=compat,
            level=level,
            length_size=(length_byte & 0x03) + 1,
            sps=tuple(sps),
            pps=tuple(pps),
            extension=data[pos:],
            version=version,
        )

    def serialize(self) -> bytes:
        if not 1 <= self.length_size <= 4 or self.length_size == 3:
            raise CodecConfigError(f"invalid NAL length size {self.length_size}")
        out = bytearray(
            [
                self.version,
                self.profile,
                self.profile_compatibility,
                self.level,
                0xFC | (self.length_size - 1),
                0xE0 | len(self.sps),
            ]
        )
        for nal in self.sps:
            out += struct.pack(">H", len(nal)) + nal
        out.append(len(self.pps))
        for nal in self.pps:
            out += struct.pack(">H", len(nal)) + nal
        return bytes(out + self.extension)

    @property
    def sps_info(self) -> SpsInfo:
        """The parsed first SPS (parsed on each access; callers keep the result)."""
        return parse_sps(self.sps[0])

    @property
    def codec_string(self) -> str:
        """RFC 6381 CODECS value, e.g. ``avc1.64001f``."""
        return f"avc1.{self.profile:02x}{self.profile_compatibility:02x}{self.level:02x}"


def split_nal_units(data: bytes, length_size: int = 4) -> list[bytes]:
    """Split length-prefixed NAL units (the AVCC layout of FLV and MP4 samples)."""
    units: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + length_size > len(data):
            raise CodecConfigError("truncated NAL unit length")
        size = int.from_bytes(data[pos : pos + length_size], "big")
        pos += length_size
        if pos + size > len(data):
            raise CodecConfigError("truncated NAL unit")
        units.append(data[pos : pos + size])
        pos += size
    return units
