"""Decoding as a stream: one resampler per source, chunks with exact frame positions."""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

import av
import numpy as np

from voxflow.audio.lengths import is_short
from voxflow.audio.pcm import SAMPLE_RATE
from voxflow.audio.sources import Source, open_source
from voxflow.audio.types import Audio, AudioInfo, Chunk
from voxflow.errors import ConfigError, DecodeError

DTYPES = ("float32", "int16", "int32", "native")
#: Frames held back before the end so the total can be trimmed/padded to the exact length.
_HOLD = 512
#: Frames per resampler output when no chunk size is asked for: fewer, larger blocks are
#: cheaper to pass around than the codec's own frames (1152 for MP3).
_FRAME = 8192
#: Downmixes average the channels (stereo → mono is (L + R) / 2, as pydub) and never clip.
_SWR = {"rematrix_maxval": "1.0"}


class AudioStream:
    """Decoded audio as an iterator of :class:`Chunk`, at the requested rate, layout and dtype.

    Chunks are contiguous (each ``start`` is the previous ``end``) and the stream's total length
    is ``round(input_frames * sample_rate / input_rate)``, so ``frame / sample_rate`` is an
    exact time in the source. Use it as a context manager; it can be iterated once.
    """

    def __init__(
        self,
        source: Source,
        *,
        sample_rate: int | None,
        channels: int | None,
        dtype: str,
        chunk_frames: int | None,
        allow_empty: bool,
    ) -> None:
        self._source = source
        self.info: AudioInfo = source.info
        self.sample_rate: int = int(sample_rate or self.info.sample_rate)
        self.channels: int = int(channels or self.info.channels)
        self.dtype = dtype
        width = (
            self.info.sample_width
            if dtype == "native"
            else {"float32": 0, "int16": 2, "int32": 4}[dtype]
        )
        #: Output bytes per sample: 1, 2, 3 (24-bit values in int32) or 4; 0 for float32.
        self.sample_width: int = width
        self._format, self._to_numpy = _output_format(width)
        self._chunk_frames = chunk_frames
        self._allow_empty = allow_empty
        self._iterated = False
        self._copies = 1  # > 1 when a mono source is copied to every output channel
        self.frames_read = 0  # frames emitted so far, at the output rate
        self.input_frames = 0  # frames decoded so far, at the source rate

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def duration(self) -> float | None:
        """Seconds the source declares (``info.duration``), None if unknown; after iterating,
        ``frames_read / sample_rate`` is the exact length."""
        return self.info.duration

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoder and the input (a caller's file object is left open)."""
        self._source.close()

    def __iter__(self) -> Iterator[Chunk]:
        if self._iterated:
            raise ConfigError("an AudioStream can be iterated only once", source=self.name)
        self._iterated = True
        return self._chunks()

    def _chunks(self) -> Iterator[Chunk]:
        layout = {1: "mono", 2: "stereo"}.get(self.channels, f"{self.channels}c")
        out_rate, buffer = self.sample_rate, _Buffer(self.channels, self._chunk_frames)
        resampler: av.AudioResampler | None = None
        setup: tuple[str, str, int] | None = None
        done = 0  # exact output length of the input before the current resampler
        run, rate = 0, self.info.sample_rate  # input frames through the current resampler
        for item in self._source.frames():
            if isinstance(item, int):  # a corrupt packet, bridged with as much silence
                if setup is None:  # nothing decoded yet: the silence goes straight out
                    gap = round((run + item) * out_rate / rate) - round(run * out_rate / rate)
                    buffer.push(np.zeros((gap, self.channels), dtype=_dtype_of(self._format)))
                    run += item
                    self.input_frames += item
                    continue
                item = _silence(*setup, item)
            key = (item.format.name, item.layout.name, item.sample_rate)
            if key != setup:  # first frame, or the source changed format mid-stream
                if resampler is not None:
                    self._drain(resampler, None, buffer)
                    done += round(run * out_rate / rate)
                    buffer.fit(done - self.frames_read, self._format)
                # Mono to N channels copies the channel (FFmpeg would lower it by 3 dB).
                self._copies = self.channels if item.layout.nb_channels == 1 else 1
                resampler = av.AudioResampler(
                    format=self._format,
                    layout="mono" if self._copies > 1 else layout,
                    rate=out_rate,
                    frame_size=self._chunk_frames or _FRAME,
                    options=_SWR,
                )
                setup, run, rate = key, 0, item.sample_rate
            self._drain(resampler, item, buffer)
            run += item.samples
            self.input_frames += item.samples
            yield from self._emit(buffer.ready())
        if resampler is not None:
            self._drain(resampler, None, buffer)
        self._check_complete()
        buffer.fit(done + round(run * out_rate / rate) - self.frames_read, self._format)
        yield from self._emit(buffer.rest())

    def _drain(
        self, resampler: av.AudioResampler, frame: av.AudioFrame | None, buffer: _Buffer
    ) -> None:
        """Resample ``frame`` (None: flush) into ``buffer`` as numpy blocks."""
        try:
            converted = resampler.resample(frame)
        except (ValueError, av.error.FFmpegError) as exc:
            raise DecodeError(f"cannot convert the audio: {exc}", source=self.name) from None
        for out in converted:
            if self._copies > 1:
                buffer.push(np.repeat(self._to_numpy(out, 1), self._copies, axis=1))
            else:
                buffer.push(self._to_numpy(out, self.channels))

    def _emit(self, blocks: list[np.ndarray]) -> Iterator[Chunk]:
        for block in blocks:
            chunk = Chunk(self.frames_read, block)
            self.frames_read += chunk.frames
            yield chunk

    def _check_complete(self) -> None:
        if self.input_frames == 0 and not self._allow_empty:
            raise DecodeError(
                "no audio samples (the file has a header but no audio data)", source=self.name
            )
        declared, rate = self._source.declared_frames, self.info.sample_rate
        exact = self._source.exact_length
        if declared is not None and is_short(self.input_frames, declared, rate, exact=exact):
            what = "truncated" if exact else "truncated or corrupt"
            raise DecodeError(
                f"{what}: {self.input_frames / rate:.2f} s of audio where the "
                f"{'header' if exact else 'container'} declares {declared / rate:.2f} s",
                source=self.name,
            )


def _silence(fmt: str, layout: str, rate: int, frames: int) -> av.AudioFrame:
    """``frames`` of silence in a decoder's format, to go through the resampler in order."""
    frame = av.AudioFrame(format=fmt, layout=layout, samples=frames)
    fill = bytes([0x80 if fmt.startswith("u8") else 0])
    for plane in frame.planes:
        plane.update(fill * plane.buffer_size)
    frame.sample_rate = rate
    return frame


def _output_format(width: int) -> tuple[str, Any]:
    """PyAV packed format for an output width, and the frame → (frames, channels) converter."""

    def plain(dtype: Any) -> Any:
        return lambda f, ch: np.frombuffer(f.planes[0], dtype, f.samples * ch).reshape(-1, ch)

    if width == 0:  # float sources may hold NaN or inf: silence, as no sample can be either
        floats = plain(np.float32)
        return "flt", lambda f, ch: _finite(floats(f, ch))
    if width == 1:  # pydub keeps 8-bit audio signed: unsigned bytes biased by -128
        unsigned = plain(np.uint8)
        return "u8", lambda f, ch: (unsigned(f, ch) ^ 0x80).view(np.int8)
    if width == 2:
        return "s16", plain(np.int16)
    if width == 3:  # 24-bit values, kept in int32
        wide = plain(np.int32)
        return "s32", lambda f, ch: wide(f, ch) >> 8
    return "s32", plain(np.int32)


def _finite(x: np.ndarray) -> np.ndarray:
    """``x`` with NaN and ±inf samples made 0 (a copy only when there are any)."""
    if np.isfinite(x).all():
        return x
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


class _Buffer:
    """Output blocks waiting to become chunks; the last few hundred frames wait for the end."""

    def __init__(self, channels: int, chunk_frames: int | None) -> None:
        self.blocks: list[np.ndarray] = []
        self.frames = 0
        self.channels = channels
        self.size = chunk_frames

    def push(self, block: np.ndarray) -> None:
        if block.shape[0]:
            self.blocks.append(block)
            self.frames += block.shape[0]

    def ready(self) -> list[np.ndarray]:
        """Blocks that can go now, keeping at least ``_HOLD`` frames back."""
        out: list[np.ndarray] = []
        if self.size is None:
            while self.blocks and self.frames - self.blocks[0].shape[0] >= _HOLD:
                out.append(self._pop())
        else:
            while self.frames >= self.size + _HOLD:
                out.append(self._take(self.size))
        return out

    def rest(self) -> list[np.ndarray]:
        """Everything left, at the end of the stream."""
        if self.size is None:
            return [self._pop() for _ in range(len(self.blocks))]
        count = -(-self.frames // self.size)
        return [self._take(min(self.size, self.frames)) for _ in range(count)]

    def fit(self, frames: int, fmt: str) -> None:
        """Trim or zero-pad the tail so exactly ``frames`` remain (resampler delay is ±1-2)."""
        frames = max(frames, 0)
        if frames < self.frames:
            self.blocks = [self._take(frames)] if frames else []
            self.frames = frames
        elif frames > self.frames:
            dtype = self.blocks[0].dtype if self.blocks else _dtype_of(fmt)
            self.push(np.zeros((frames - self.frames, self.channels), dtype=dtype))

    def _pop(self) -> np.ndarray:
        block = self.blocks.pop(0)
        self.frames -= block.shape[0]
        return block

    def _take(self, n: int) -> np.ndarray:
        parts, got = [], 0
        while got < n:
            block = self.blocks[0]
            need = n - got
            if block.shape[0] <= need:
                parts.append(self._pop())
                got += block.shape[0]
            else:
                parts.append(block[:need])
                self.blocks[0] = block[need:]
                self.frames -= need
                got = n
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


def _dtype_of(fmt: str) -> Any:
    return {"flt": np.float32, "u8": np.int8, "s16": np.int16, "s32": np.int32}[fmt]


def open_audio(
    source: Any,
    *,
    sample_rate: int | None = SAMPLE_RATE,
    channels: int | None = 1,
    dtype: str = "float32",
    chunk_frames: int | None = None,
    name: str | None = None,
    allow_empty: bool = False,
) -> AudioStream:
    """Open any audio or video source for streaming decode, by default as Whisper wants it.

    ``source``: a path, ``"-"`` (stdin), a binary file-like object (pipes too), bytes,
    :class:`RawPcm`, ``(ndarray, sample_rate)``, :class:`Audio` or ``pydub.AudioSegment``.
    ``sample_rate``/``channels`` of ``None`` keep the source's own. ``dtype`` is ``"float32"``
    (in [-1, 1]), ``"int16"``, ``"int32"`` or ``"native"`` (integers at the source's width, as
    pydub holds them). ``chunk_frames`` fixes the chunk size (the last may be shorter);
    ``None`` yields blocks as they are decoded. A source without a single sample raises
    :class:`DecodeError` unless ``allow_empty``.
    """
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    for label, value in (
        ("sample_rate", sample_rate),
        ("channels", channels),
        ("chunk_frames", chunk_frames),
    ):
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{label} must be a positive integer or None, got {value!r}")
    src = open_source(source, name)
    return AudioStream(
        src,
        sample_rate=sample_rate,
        channels=channels,
        dtype=dtype,
        chunk_frames=chunk_frames,
        allow_empty=allow_empty,
    )


def probe(source: Any, *, name: str | None = None) -> AudioInfo:
    """What ``source`` holds (rate, channels, native width, codec, declared duration).

    Reads only the header of files; a pipe or stdin is consumed by probing.
    """
    src = open_source(source, name)
    try:
        return src.info
    finally:
        src.close()


def load(
    source: Any,
    *,
    sample_rate: int | None = SAMPLE_RATE,
    channels: int | None = 1,
    dtype: str = "float32",
    name: str | None = None,
    allow_empty: bool = False,
) -> Audio:
    """All of ``source`` in memory, for short clips: ``open_audio``'s chunks joined.

    The defaults are ``open_audio``'s (16 kHz mono float32); ``sample_rate=None,
    channels=None, dtype="native"`` keeps the source as it is, as pydub loads files.
    """
    with open_audio(
        source,
        sample_rate=sample_rate,
        channels=channels,
        dtype=dtype,
        name=name,
        allow_empty=allow_empty,
    ) as stream:
        blocks = [chunk.samples for chunk in stream]
        if blocks:
            samples = np.concatenate(blocks)
        else:
            samples = np.zeros((0, stream.channels), dtype=_dtype_of(stream._format))
        return Audio(samples, stream.sample_rate, stream.sample_width, stream.name)
