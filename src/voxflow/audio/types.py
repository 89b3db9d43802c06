"""The vocabulary of decoded audio: what a source holds, chunks of a stream, whole clips."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from voxflow.errors import ConfigError

if TYPE_CHECKING:
    from pydub import AudioSegment

#: Raw PCM formats a :class:`RawPcm` may declare, with their native integer width in bytes.
RAW_FORMATS: dict[str, int] = {
    "u8": 1, "s8": 1,
    "s16le": 2, "s16be": 2,
    "s24le": 3, "s24be": 3,
    "s32le": 4, "s32be": 4,
    "f32le": 4, "f32be": 4, "f64le": 4, "f64be": 4,
    "mulaw": 2, "alaw": 2,
}  # fmt: skip

#: Integer dtypes that hold samples of each width (24-bit samples live in int32).
INT_DTYPES: dict[int, type[np.signedinteger[Any]]] = {
    1: np.int8, 2: np.int16, 3: np.int32, 4: np.int32,
}  # fmt: skip


@dataclass(frozen=True)
class RawPcm:
    """Headerless PCM whose format the caller declares (FFmpeg cannot guess it from content).

    ``data`` is bytes, a binary file-like object (a pipe is fine) or a path;
    ``sample_format`` is one of :data:`RAW_FORMATS` (``"s16le"``, ``"f32le"``, ``"mulaw"``...).
    """

    data: bytes | BinaryIO | str | os.PathLike[str]
    sample_rate: int
    channels: int
    sample_format: str = "s16le"

    def __post_init__(self) -> None:
        if self.sample_format not in RAW_FORMATS:
            known = ", ".join(RAW_FORMATS)
            raise ConfigError(f"unknown raw sample format {self.sample_format!r} (known: {known})")
        if self.sample_rate <= 0 or self.channels <= 0:
            raise ConfigError(
                f"raw PCM needs a positive sample rate and channel count, "
                f"got {self.sample_rate} Hz, {self.channels} channels"
            )


@dataclass(frozen=True)
class AudioInfo:
    """What a source holds, from its header: native rate, channels, width, codec, duration."""

    name: str  # for messages: the path, "<stdin>", "<bytes>", "<array>"...
    sample_rate: int
    channels: int
    sample_width: int  # bytes per sample that dtype="native" gives: 1, 2, 3 or 4
    codec: str
    duration: float | None  # seconds the container declares; None when it does not say
    container: str = ""  # the container format FFmpeg found ("wav", "mp3", "ogg"...); "" in memory


@dataclass(frozen=True)
class Chunk:
    """A run of decoded frames; ``start`` is the index of its first frame at the output rate."""

    start: int
    samples: np.ndarray  # shape (frames, channels)

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def end(self) -> int:
        """Index one past the last frame: the ``start`` of the next chunk."""
        return self.start + self.frames


def max_amplitude(sample_width: int) -> float:
    """Full scale for samples of ``sample_width`` bytes (0 means float samples in [-1, 1])."""
    return 1.0 if sample_width == 0 else float(1 << (8 * sample_width - 1))


@dataclass
class Audio:
    """Decoded audio held in memory, for short clips and the pydub-compatible silence API.

    ``samples`` has shape (frames, channels); a 1-D array is taken as mono.
    ``sample_width`` is the bytes per integer sample (1, 2, 3 with int32 holding 24-bit
    values, 4), or 0 when the samples are floats in [-1, 1]. 8-bit samples are signed,
    as pydub keeps them.
    """

    samples: np.ndarray
    sample_rate: int
    sample_width: int = 0
    name: str = "<audio>"

    def __post_init__(self) -> None:
        samples = np.asarray(self.samples)
        if samples.ndim == 1:
            samples = samples.reshape(-1, 1)
        if samples.ndim != 2 or samples.shape[1] < 1:
            raise ConfigError(
                f"audio samples must have shape (frames, channels), got {samples.shape}",
                source=self.name,
            )
        if self.sample_rate <= 0:
            raise ConfigError(
                f"sample rate must be positive, got {self.sample_rate}", source=self.name
            )
        kind = samples.dtype.kind
        if kind == "f":
            if self.sample_width != 0:
                raise ConfigError("float samples need sample_width=0", source=self.name)
        elif kind == "i":
            if self.sample_width == 0:  # infer from the dtype
                self.sample_width = samples.dtype.itemsize
            if self.sample_width not in INT_DTYPES:
                raise ConfigError(
                    f"sample width must be 1-4 bytes, got {self.sample_width}", source=self.name
                )
        else:
            raise ConfigError(
                f"audio samples must be signed integers or floats, got {samples.dtype}",
                source=self.name,
            )
        self.samples = samples

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    @property
    def max_amplitude(self) -> float:
        """Full scale of the samples: 2**(8*width-1) for integers, 1.0 for floats."""
        return max_amplitude(self.sample_width)

    @classmethod
    def from_pydub(cls, segment: AudioSegment, name: str = "<AudioSegment>") -> Audio:
        """The samples of a ``pydub.AudioSegment``, unchanged (pydub's 8-bit data is signed)."""
        width = int(segment.sample_width)
        raw = segment.raw_data
        if width == 3:
            samples = _from_int24(raw)
        else:
            samples = np.frombuffer(raw, dtype=np.dtype(INT_DTYPES[width]).newbyteorder("<"))
        samples = samples.astype(INT_DTYPES[width], copy=False).reshape(-1, segment.channels)
        return cls(samples, int(segment.frame_rate), width, name)

    def to_pydub(self) -> AudioSegment:
        """A ``pydub.AudioSegment`` of the same samples (float samples become 16-bit)."""
        from pydub import AudioSegment

        samples, width = self.samples, self.sample_width
        if width == 0:
            samples = np.clip(np.rint(samples * 32767.0), -32768, 32767).astype("<i2")
            width = 2
        if width == 3:
            raw = _to_int24(samples)
        else:
            raw = np.ascontiguousarray(samples, dtype=np.dtype(INT_DTYPES[width]).newbyteorder("<"))
            raw = raw.tobytes()
        return AudioSegment(
            data=raw, sample_width=width, frame_rate=self.sample_rate, channels=self.channels
        )


def _from_int24(raw: bytes) -> np.ndarray:
    """Little-endian 3-byte samples as int32 values in the 24-bit range."""
    b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
    value = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    return np.where(value >= 1 << 23, value - (1 << 24), value).astype(np.int32)


def _to_int24(samples: np.ndarray) -> bytes:
    """int32 values in the 24-bit range as little-endian 3-byte samples."""
    v = np.ascontiguousarray(samples, dtype="<i4").reshape(-1, 1).view(np.uint8)
    return v.reshape(-1, 4)[:, :3].tobytes()
