"""Writing PCM to WAV, FLAC, MP3 or Opus files with PyAV, chunk by chunk and atomically.

Samples use voxflow's conventions (``Audio``/``open_audio(dtype="native")``): shape
``(frames, channels)``; 8-bit signed, 24-bit values in int32, or float32 in [-1, 1] for width 0.
WAV and FLAC keep the samples exactly (FLAC stores 8-bit audio as 16-bit); MP3 and Opus are
lossy and take the nearest sample rate their encoder supports. A file appears under its final
name only once it is complete, and an existing file is never replaced unless asked.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import numpy as np

from voxflow.errors import ConfigError, OutputError

FORMATS = ("wav", "flac", "mp3", "opus")
_CONTAINERS = {"wav": "wav", "flac": "flac", "mp3": "mp3", "opus": "ogg"}


@dataclass(frozen=True)
class _Encoding:
    codec: str
    frame_format: str  # the packed format we hand PyAV
    options: dict[str, str]


def _encoding(fmt: str, sample_width: int) -> _Encoding:
    """Codec and input sample format that keep ``sample_width`` as well as ``fmt`` allows."""
    if fmt == "wav":
        codec = {0: "pcm_f32le", 1: "pcm_u8", 2: "pcm_s16le", 3: "pcm_s24le", 4: "pcm_s32le"}
        frame = {0: "flt", 1: "u8", 2: "s16", 3: "s32", 4: "s32"}
        return _Encoding(codec[sample_width], frame[sample_width], {})
    if fmt == "flac":
        if sample_width in (3, 4, 0):
            strict = {"strict": "experimental"} if sample_width == 4 else {}
            return _Encoding("flac", "s32", strict)  # 24-bit FLAC, or 32-bit (experimental)
        return _Encoding("flac", "s16", {})
    if fmt == "mp3":
        return _Encoding("libmp3lame", "s16p", {})
    return _Encoding("libopus", "s16" if sample_width in (1, 2) else "flt", {})


def _to_frame_array(samples: np.ndarray, sample_width: int, frame_format: str) -> np.ndarray:
    """voxflow-convention samples in the integer/float layout of ``frame_format``."""
    if sample_width == 0:
        x = samples.astype(np.float32)
        if frame_format == "flt":
            return x
        if frame_format == "s32":
            return np.clip(np.rint(x * 2147483647.0), -(2**31), 2**31 - 1).astype(np.int32)
        return np.clip(np.rint(x * 32767.0), -32768, 32767).astype(np.int16)
    shift = {1: 24, 2: 16, 3: 8, 4: 0}[sample_width]
    full = samples.astype(np.int64) << shift  # at 32-bit full scale
    if frame_format == "u8":
        return ((full >> 24) + 128).astype(np.uint8)
    if frame_format.startswith("s16"):
        return (full >> 16).astype(np.int16)
    if frame_format == "s32":
        return full.astype(np.int32)
    return (full / 2.0**31).astype(np.float32)


def _layout(channels: int) -> str:
    return {1: "mono", 2: "stereo"}.get(channels, f"{channels}c")


def _encoder_rate(codec: str, rate: int) -> int:
    """``rate`` when the encoder takes it, else the nearest higher rate it supports."""
    rates = av.codec.Codec(codec, "w").audio_rates
    if not rates or rate in rates:
        return rate
    higher = sorted(r for r in rates if r >= rate)
    return higher[0] if higher else max(rates)


class AudioWriter:
    """One audio file written frame by frame: ``write()`` chunks, then ``close()``.

    The data goes to a hidden temporary file beside ``path``, renamed over ``path`` on
    ``close()``; ``abort()`` (or an exception inside ``with``) removes it instead.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        sample_rate: int,
        channels: int,
        sample_width: int,
        fmt: str | None = None,
        overwrite: bool = False,
    ) -> None:
        self.path = Path(path)
        fmt = (fmt or self.path.suffix.lstrip(".")).lower()
        if fmt not in FORMATS:
            raise ConfigError(f"unknown output format {fmt!r} (known: {', '.join(FORMATS)})")
        if sample_width not in (0, 1, 2, 3, 4):
            raise ConfigError(f"sample width must be 0-4 bytes, got {sample_width}")
        if self.path.exists() and not overwrite:
            raise OutputError("already exists (use --overwrite to replace it)",
                              source=str(self.path))
        self.fmt, self.sample_width, self.channels = fmt, sample_width, channels
        self.overwrite = overwrite
        self._encoding = _encoding(fmt, sample_width)
        self._layout = _layout(channels)
        self._rate = sample_rate
        self.frames_written = 0
        # a unique hidden name beside the target, created with the usual permissions
        self._tmp = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:12]}.part")
        try:
            self._container: Any = av.open(str(self._tmp), "w", format=_CONTAINERS[fmt])
        except (OSError, av.error.FFmpegError) as exc:
            cause = getattr(exc, "strerror", None) or exc
            raise OutputError(f"cannot create: {cause}", source=str(self.path)) from None
        try:
            out_layout = self._layout if fmt != "mp3" or channels <= 2 else "stereo"
            self._stream: Any = self._container.add_stream(
                self._encoding.codec,
                rate=_encoder_rate(self._encoding.codec, sample_rate),
                layout=out_layout,
            )
            if fmt in ("wav", "flac"):
                self._stream.codec_context.format = self._encoding.frame_format
            self._stream.codec_context.options = dict(self._encoding.options)
        except (ValueError, av.error.FFmpegError) as exc:
            self.abort()
            raise OutputError(f"cannot encode {fmt}: {exc}", source=str(self.path)) from None

    def write(self, samples: np.ndarray) -> None:
        """Append frames shaped ``(frames, channels)``."""
        samples = np.asarray(samples)
        if samples.ndim == 1:
            samples = samples[:, None]
        if samples.shape[1] != self.channels:
            raise ConfigError(f"expected {self.channels} channels, got {samples.shape[1]}")
        if len(samples) == 0:
            return
        data = _to_frame_array(samples, self.sample_width, self._encoding.frame_format)
        planar = self._encoding.frame_format.endswith("p")
        data = np.ascontiguousarray(data.T if planar else data.reshape(1, -1))
        frame = av.AudioFrame.from_ndarray(data, format=self._encoding.frame_format,
                                           layout=self._layout)
        frame.sample_rate = self._rate
        self._encode(frame)
        self.frames_written += len(samples)

    def close(self) -> Path:
        """Flush the encoder and give the file its final name; returns that path."""
        self._encode(None)
        try:
            self._container.close()
            if not self.overwrite and self.path.exists():
                raise OutputError("appeared while writing (not replaced)", source=str(self.path))
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise OutputError(f"cannot write: {exc}", source=str(self.path)) from None
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop and remove the partial file."""
        with contextlib.suppress(Exception):
            self._container.close()
        with contextlib.suppress(OSError):
            self._tmp.unlink()

    def _encode(self, frame: av.AudioFrame | None) -> None:
        try:
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        except (ValueError, av.error.FFmpegError, OSError) as exc:
            self.abort()
            raise OutputError(f"cannot encode {self.fmt}: {exc}", source=str(self.path)) from None

    def __enter__(self) -> AudioWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_audio(
    path: str | os.PathLike[str],
    samples: np.ndarray,
    sample_rate: int,
    sample_width: int,
    *,
    fmt: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write one clip to ``path`` (format from ``fmt`` or the suffix); returns the path."""
    samples = np.asarray(samples)
    channels = 1 if samples.ndim == 1 else samples.shape[1]
    with AudioWriter(path, sample_rate=sample_rate, channels=channels,
                     sample_width=sample_width, fmt=fmt, overwrite=overwrite) as writer:
        writer.write(samples)
    return writer.path


def cut_frames(
    blocks: Iterable[np.ndarray], ranges: Iterable[tuple[int, int]]
) -> Iterator[tuple[int, Iterator[np.ndarray]]]:
    """Split a stream of sample blocks into the frame ranges ``[begin, end)``, lazily.

    ``ranges`` must be sorted and must not overlap. Yields ``(index, pieces)`` per range, in
    order; consume ``pieces`` before taking the next range. A range that runs past the end of
    the stream is padded with silent frames (as pydub pads a slice) unless it got no frame.
    """
    reader = _ForwardReader(blocks)
    for index, (begin, end) in enumerate(ranges):
        yield index, reader.pieces(begin, end)


class _ForwardReader:
    """Sample blocks addressed by absolute frame index, read forward only."""

    def __init__(self, blocks: Iterable[np.ndarray]) -> None:
        self._blocks = iter(blocks)
        self._block: np.ndarray | None = None
        self._start = 0  # frame index of self._block[0]
        self._empty: np.ndarray | None = None  # dtype/shape model for padding

    def _advance(self) -> None:
        if self._block is not None:
            self._start += len(self._block)
            self._block = None
        for block in self._blocks:
            if len(block):
                self._block, self._empty = block, block[:0]
                return

    def pieces(self, begin: int, end: int) -> Iterator[np.ndarray]:
        got = 0
        if self._block is None:
            self._advance()
        while self._block is not None and self._start < end:
            block_end = self._start + len(self._block)
            if block_end > begin:
                lo, hi = max(begin - self._start, 0), min(end, block_end) - self._start
                got += hi - lo
                yield self._block[lo:hi]
            if block_end > end:
                break
            self._advance()
        missing = end - begin - got
        if missing > 0 and got > 0 and self._empty is not None:
            yield np.zeros((missing, *self._empty.shape[1:]), dtype=self._empty.dtype)
