"""The RIFF/WAVE header that opens each turn's audio: which encoding, rate, channels and width.

The SDK sends the header alone in the first audio frame with its size fields zero. It is 44
bytes for plain formats and longer for WAVE_FORMAT_EXTENSIBLE (68 bytes, a 40-byte fmt chunk),
and the SDK passes file formats through unconverted: mu-law, A-law, float, 24-bit, stereo.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from voxflow.errors import ProtocolError

# The GUID tail shared by every KSDATAFORMAT_SUBTYPE_* (the first two bytes are the format tag).
_SUBTYPE_TAIL = bytes.fromhex("000000001000800000aa00389b71")
_EXTENSIBLE = 0xFFFE
# Sample rates a turn may declare. Below telephone speech's 8 kHz nothing is intelligible, and
# a rate such as 1 Hz would make every byte a second of audio to resample (gigabytes of it).
_MIN_RATE = 8000
_MAX_RATE = 768_000
#: Channel counts the decoder can open as raw PCM: those FFmpeg has a default layout for (what
#: ``av.AudioLayout(f"{n}c")`` accepts). A turn in any other count is refused at its header.
DECODABLE_CHANNELS = frozenset([*range(1, 9), 10, 12, 14, 16, 24])


class WaveEncoding(IntEnum):
    """The sample encodings a turn can carry, valued by their WAVE format tag."""

    PCM = 1
    FLOAT = 3
    ALAW = 6
    MULAW = 7


_WIDTHS = {
    WaveEncoding.PCM: (8, 16, 24, 32),
    WaveEncoding.FLOAT: (32, 64),
    WaveEncoding.ALAW: (8,),
    WaveEncoding.MULAW: (8,),
}


@dataclass(frozen=True)
class WaveFormat:
    """How the turn's audio bytes are laid out (little-endian, interleaved channels)."""

    sample_rate: int = 16000
    channels: int = 1
    bits_per_sample: int = 16
    encoding: WaveEncoding = WaveEncoding.PCM

    def __post_init__(self) -> None:
        if self.bits_per_sample not in _WIDTHS[self.encoding]:
            raise ValueError(f"{self.encoding.name} cannot be {self.bits_per_sample}-bit")
        if not _MIN_RATE <= self.sample_rate <= _MAX_RATE:
            raise ValueError(
                f"unusable format: {self.channels} channel(s) at {self.sample_rate} Hz "
                f"(speech needs {_MIN_RATE} to {_MAX_RATE} Hz)"
            )
        if self.channels not in DECODABLE_CHANNELS:
            raise ValueError(
                f"{self.bits_per_sample}-bit {self.encoding.name} in {self.channels} channel(s) "
                f"at {self.sample_rate} Hz cannot be decoded: 1 to 8, 10, 12, 14, 16 or 24 "
                "channels can"
            )

    @property
    def block_align(self) -> int:
        """Bytes per sample frame (all channels)."""
        return self.channels * self.bits_per_sample // 8

    @property
    def bytes_per_second(self) -> int:
        return self.sample_rate * self.block_align

    def seconds(self, nbytes: int) -> float:
        """The duration of ``nbytes`` of audio in this format."""
        return nbytes / self.bytes_per_second


def build_wave_header(fmt: WaveFormat, *, data_size: int = 0, extensible: bool = False) -> bytes:
    """A streaming RIFF/WAVE header (size fields zero by default, as the SDK writes it)."""
    common = struct.pack(
        "<HIIHH",
        fmt.channels,
        fmt.sample_rate,
        fmt.bytes_per_second,
        fmt.block_align,
        fmt.bits_per_sample,
    )
    if extensible:
        mask = (1 << fmt.channels) - 1
        chunk = (
            struct.pack("<H", _EXTENSIBLE)
            + common
            + struct.pack("<HHI", 22, fmt.bits_per_sample, mask)
            + struct.pack("<H", fmt.encoding)
            + _SUBTYPE_TAIL
        )
    else:
        chunk = struct.pack("<H", fmt.encoding) + common
    riff_size = 4 + 8 + len(chunk) + 8 + data_size if data_size else 0
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<I", len(chunk))
        + chunk
        + b"data"
        + struct.pack("<I", data_size)
    )


def parse_wave_header(data: bytes) -> tuple[WaveFormat, int]:
    """Read a RIFF/WAVE header; return its format and the offset where sample data begins.

    Chunks other than ``fmt `` (LIST, fact...) are skipped. Raises ProtocolError on anything
    that is not a complete, consistent header of a supported encoding.
    """
    data = bytes(data)
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ProtocolError(f"audio does not start with a RIFF/WAVE header: {data[:12]!r}")
    pos, fmt = 12, None
    while True:
        if pos + 8 > len(data):
            raise ProtocolError("RIFF/WAVE header truncated before its data chunk")
        chunk_id, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = pos + 8
        if chunk_id == b"data":
            if fmt is None:
                raise ProtocolError("RIFF/WAVE data chunk comes before any fmt chunk")
            return fmt, body
        if body + size > len(data):
            raise ProtocolError(f"RIFF/WAVE chunk {chunk_id!r} of {size} bytes is truncated")
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(data[body : body + size])
        pos = body + size + (size & 1)


def _parse_fmt(chunk: bytes) -> WaveFormat:
    if len(chunk) < 16:
        raise ProtocolError(f"RIFF/WAVE fmt chunk of {len(chunk)} bytes is shorter than 16")
    tag, channels, rate, _byte_rate, align, bits = struct.unpack("<HHIIHH", chunk[:16])
    if tag == _EXTENSIBLE:
        if len(chunk) < 40 or chunk[26:40] != _SUBTYPE_TAIL:
            raise ProtocolError("WAVE_FORMAT_EXTENSIBLE header without a known sub-format")
        tag = int.from_bytes(chunk[24:26], "little")
    try:
        encoding = WaveEncoding(tag)
    except ValueError:
        raise ProtocolError(f"unsupported WAVE format tag 0x{tag:04x}") from None
    try:
        fmt = WaveFormat(rate, channels, bits, encoding)
    except ValueError as exc:
        raise ProtocolError(f"RIFF/WAVE header: {exc}") from None
    if align != fmt.block_align:
        raise ProtocolError(
            f"RIFF/WAVE block align {align} does not match {channels} x {bits}-bit samples"
        )
    return fmt
