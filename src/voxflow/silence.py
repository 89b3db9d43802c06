"""pydub's silence API with pydub 0.25.1's exact results, in O(n) and without ``audioop``.

``detect_silence``, ``detect_nonsilent``, ``split_on_silence`` and ``detect_leading_silence``
take the same arguments and return the same plain lists as ``pydub.silence``, to the
millisecond, for a ``pydub.AudioSegment`` or a voxflow ``Audio``. Additions:
``split_on_silence_with_timings`` (each chunk with its ``start_ms``/``end_ms``), ``split_ranges``
(the same timings without cutting audio), and ``stream_silence`` / ``stream_nonsilent`` /
``stream_split_ranges``, which read a file chunk by chunk and never hold the whole recording.

Parity is defined on the same samples. The ``stream_*`` functions decode with voxflow.audio at
the file's own rate, channels and width, as ``AudioSegment.from_file`` does, and widen 24-bit
audio as pydub does; they match pydub on PCM WAV and FLAC and, FFmpeg's decoders being the same,
on MP3, AAC, Vorbis and Opus. They cannot match where pydub decodes differently: mu-law/A-law
WAV (pydub has ffmpeg turn them into 8-bit PCM; voxflow decodes them to 16-bit), or an
``ffmpeg`` program whose FFmpeg version decodes a lossy format to other samples than PyAV's.
Parameters pydub loops or fails on (``min_silence_len < 0``, ``seek_step < 1``, fractions of a
millisecond) raise ``ConfigError``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

from voxflow import _silence_core as core
from voxflow._silence_scan import SilenceScanner, check_params
from voxflow.errors import ConfigError

__all__ = [
    "SilenceScanner",
    "detect_leading_silence",
    "detect_nonsilent",
    "detect_silence",
    "nonsilent_ranges",
    "plan_chunks",
    "split_on_silence",
    "split_on_silence_with_timings",
    "split_ranges",
    "stream_nonsilent",
    "stream_silence",
    "stream_split_ranges",
]

Range = list[int]
AudioT = TypeVar("AudioT")


# -- in memory -------------------------------------------------------------------------------


def detect_silence(
    audio_segment: Any, min_silence_len: int = 1000, silence_thresh: float = -16, seek_step: int = 1
) -> list[Range]:
    """Silent ``[start_ms, end_ms]`` ranges: windows of ``min_silence_len`` ms whose RMS is at
    most ``silence_thresh`` dBFS, tried every ``seek_step`` ms and merged, exactly as pydub."""
    samples, rate, width = _pcm(audio_segment)
    scanner = SilenceScanner(rate, samples.shape[1], width, min_silence_len, silence_thresh,
                             seek_step)
    return scanner.feed(samples) + scanner.finish()


def detect_nonsilent(
    audio_segment: Any, min_silence_len: int = 1000, silence_thresh: float = -16, seek_step: int = 1
) -> list[Range]:
    """The ``[start_ms, end_ms]`` ranges between the silences of :func:`detect_silence`."""
    silent = detect_silence(audio_segment, min_silence_len, silence_thresh, seek_step)
    return list(nonsilent_ranges(silent, _length_ms(audio_segment)))


def split_ranges(
    audio_segment: Any,
    min_silence_len: int = 1000,
    silence_thresh: float = -16,
    keep_silence: int | bool = 100,
    seek_step: int = 1,
) -> list[tuple[int, int]]:
    """The ``(start_ms, end_ms)`` of each chunk :func:`split_on_silence` would return."""
    length = _length_ms(audio_segment)
    nonsilent = detect_nonsilent(audio_segment, min_silence_len, silence_thresh, seek_step)
    return plan_chunks(nonsilent, length, keep_silence)


def split_on_silence_with_timings(
    audio_segment: AudioT,
    min_silence_len: int = 1000,
    silence_thresh: float = -16,
    keep_silence: int | bool = 100,
    seek_step: int = 1,
) -> list[tuple[int, int, AudioT]]:
    """:func:`split_on_silence`'s chunks, each as ``(start_ms, end_ms, chunk)``."""
    ranges = split_ranges(audio_segment, min_silence_len, silence_thresh, keep_silence, seek_step)
    return [(start, end, _slice_ms(audio_segment, start, end)) for start, end in ranges]


def split_on_silence(
    audio_segment: AudioT,
    min_silence_len: int = 1000,
    silence_thresh: float = -16,
    keep_silence: int | bool = 100,
    seek_step: int = 1,
) -> list[AudioT]:
    """Chunks of the audio between silences, each keeping up to ``keep_silence`` ms of the
    silence around it (``True``: all of it, ``False``: none), as pydub returns them."""
    timed = split_on_silence_with_timings(
        audio_segment, min_silence_len, silence_thresh, keep_silence, seek_step
    )
    return [chunk for _, _, chunk in timed]


def detect_leading_silence(
    sound: Any, silence_threshold: float = -50.0, chunk_size: int = 10
) -> int:
    """Milliseconds of leading audio quieter than ``silence_threshold`` dBFS, measured in
    ``chunk_size`` ms steps as pydub does (the length of the audio when it is all quiet)."""
    if chunk_size <= 0:
        raise ConfigError(f"chunk_size must be > 0 ms, got {chunk_size}")
    samples, rate, width = _pcm(sound)
    frames, channels = samples.shape
    length = core.pydub_len_ms(frames, rate)
    limit = core.leading_rms_limit(silence_threshold, width)
    exact = width <= 2
    starts_all = range(0, length, chunk_size)
    batch = 256
    for first in range(0, len(starts_all), batch):
        starts = np.asarray(starts_all[first : first + batch], dtype=np.int64)
        ends = np.minimum(starts + chunk_size, length)
        begin, end = core.ms_to_frames(starts, rate), core.ms_to_frames(ends, rate)
        real_end = np.minimum(end, frames)
        real_begin = np.minimum(begin, frames)
        sums = core.block_sums(samples, np.append(real_begin, real_end[-1]), exact)
        counts = np.where(begin < frames, (end - begin) * channels, 0)
        real = (real_end - real_begin) * channels

        def replay(k: int, b: np.ndarray = real_begin, e: np.ndarray = real_end) -> float:
            return core.audioop_sum(samples[int(b[k]) : int(e[k])])

        quiet = core.rms_at_most(sums, counts, real, limit, exact=exact,
                                 depth=chunk_size * channels * (rate // 1000 + 2), replay=replay)
        loud = np.flatnonzero(~quiet)
        if len(loud):
            return int(starts[loud[0]])
        batch = min(batch * 2, 1 << 16)
    return length  # every chunk was quiet


# -- range arithmetic ------------------------------------------------------------------------


def nonsilent_ranges(silent: Iterable[Range], length_ms: int) -> Iterator[Range]:
    """pydub's complement of silent ranges within ``[0, length_ms]``, lazily."""
    return _complement(silent, lambda: length_ms)


def _complement(silent: Iterable[Range], length_ms: Callable[[], int]) -> Iterator[Range]:
    """Gaps between silent ranges; ``length_ms`` is asked only once ``silent`` is exhausted."""
    prev_end, first = 0, True
    for start, end in silent:
        if not (first and start == 0):  # pydub drops a leading [0, 0]
            yield [prev_end, start]
        first, prev_end = False, end
    length = length_ms()
    if first:
        yield [0, length]
    elif prev_end != length:
        yield [prev_end, length]


def plan_chunks(
    nonsilent: Iterable[Range], length_ms: int, keep_silence: int | bool = 100
) -> list[tuple[int, int]]:
    """Chunk limits of pydub's ``split_on_silence``: widen each range by ``keep_silence``,
    split overlaps at their middle, and clip to the audio."""
    if isinstance(keep_silence, bool):
        keep_silence = length_ms if keep_silence else 0
    ranges = [[start - keep_silence, end + keep_silence] for start, end in nonsilent]
    for this, following in itertools.pairwise(ranges):
        if following[0] < this[1]:
            this[1] = following[0] = (this[1] + following[0]) // 2
    return [(max(start, 0), min(end, length_ms)) for start, end in ranges]


# -- streaming -------------------------------------------------------------------------------


def stream_silence(
    source: Any,
    min_silence_len: int = 1000,
    silence_thresh: float = -16,
    seek_step: int = 1,
    *,
    chunk_frames: int | None = None,
    allow_empty: bool = False,
) -> Iterator[Range]:
    """Silent ranges of a file (path, bytes, file object: whatever ``open_audio`` reads), each
    yielded as soon as it is final; equal to pydub's ``detect_silence`` on the same samples.
    A file without samples raises ``DecodeError`` unless ``allow_empty`` (then: no silence)."""
    check_params(min_silence_len, seek_step)
    scan = _FileScan(source, min_silence_len, silence_thresh, seek_step, chunk_frames,
                     allow_empty)
    yield from scan


def stream_nonsilent(
    source: Any,
    min_silence_len: int = 1000,
    silence_thresh: float = -16,
    seek_step: int = 1,
    *,
    chunk_frames: int | None = None,
    allow_empty: bool = False,
) -> Iterator[Range]:
    """Non-silent ranges of a file, streamed; equal to pydub's ``detect_nonsilent``."""
    check_params(min_silence_len, seek_step)
    scan = _FileScan(source, min_silence_len, silence_thresh, seek_step, chunk_frames,
                     allow_empty)
    yield from _complement(scan, lambda: scan.length_ms)


def stream_split_ranges(
    source: Any,
    min_silence_len: int = 1000,
    silence_thresh: float = -16,
    keep_silence: int | bool = 100,
    seek_step: int = 1,
    *,
    chunk_frames: int | None = None,
    allow_empty: bool = False,
) -> list[tuple[int, int]]:
    """``(start_ms, end_ms)`` of the chunks pydub's ``split_on_silence`` would cut from a file,
    found in one streaming pass (cut them in a second pass, e.g. with ``export.cut_frames``)."""
    check_params(min_silence_len, seek_step)
    scan = _FileScan(source, min_silence_len, silence_thresh, seek_step, chunk_frames,
                     allow_empty)
    nonsilent = list(_complement(scan, lambda: scan.length_ms))
    return plan_chunks(nonsilent, scan.length_ms, keep_silence)


class _FileScan:
    """Iterates the silent ranges of a decoded file; ``length_ms`` is pydub's ``len`` at the end.

    24-bit audio is widened as pydub widens it: its own WAV reader (used for ``*.wav`` paths)
    fills the low byte of negative samples with 0xFF; FFmpeg's 32-bit output leaves it 0.
    """

    def __init__(self, source: Any, min_silence_len: int, silence_thresh: float,
                 seek_step: int, chunk_frames: int | None, allow_empty: bool) -> None:
        self.source = source
        self.params = (min_silence_len, silence_thresh, seek_step)
        self.chunk_frames, self.allow_empty = chunk_frames, allow_empty
        self.length_ms = 0

    def __iter__(self) -> Iterator[Range]:
        from voxflow.audio import open_audio

        with open_audio(self.source, sample_rate=None, channels=None, dtype="native",
                        chunk_frames=self.chunk_frames, allow_empty=self.allow_empty) as stream:
            info = stream.info
            width = stream.sample_width
            wav_reader = (
                isinstance(self.source, str | os.PathLike)
                and os.fspath(self.source).lower().endswith(".wav")
                and info.codec == "pcm_s24le"
            )
            scanner = SilenceScanner(stream.sample_rate, stream.channels, width, *self.params)
            for chunk in stream:
                yield from scanner.feed(pydub_samples(chunk.samples, width, wav_reader))
        yield from scanner.finish()
        self.length_ms = int(scanner.length_ms or 0)


# -- adapters --------------------------------------------------------------------------------


def pydub_samples(samples: np.ndarray, sample_width: int, wav_reader: bool = True) -> np.ndarray:
    """Integer samples as pydub holds them: 24-bit widened to 32-bit (``value << 8``; pydub's
    own WAV reader, ``wav_reader``, also sets the low byte of negative values to 0xFF)."""
    if sample_width != 3:
        return samples
    wide = samples.astype(np.int32) << 8
    if wav_reader:
        wide |= (samples < 0).astype(np.int32) * 255
    return wide


def _pcm(audio: Any) -> tuple[np.ndarray, int, int]:
    """(samples (frames, channels) int, rate, pydub sample width) of a pydub or voxflow clip."""
    if hasattr(audio, "raw_data") and hasattr(audio, "frame_rate"):  # pydub.AudioSegment
        width, channels = int(audio.sample_width), int(audio.channels)
        dtype = {1: "i1", 2: "<i2", 4: "<i4"}.get(width)
        if dtype is None:
            raise ConfigError(f"unsupported pydub sample width {width}")
        data = np.frombuffer(audio.raw_data, dtype=dtype)
        frames = len(data) // channels
        return data[: frames * channels].reshape(frames, channels), int(audio.frame_rate), width
    if hasattr(audio, "samples") and hasattr(audio, "sample_rate"):  # voxflow Audio
        samples, width = np.asarray(audio.samples), int(audio.sample_width)
        if samples.ndim == 1:
            samples = samples[:, None]
        if width == 0 or samples.dtype.kind == "f":  # measured as Audio.to_pydub() stores it
            samples = np.clip(np.rint(samples * 32767.0), -32768, 32767).astype(np.int16)
            width = 2
        return pydub_samples(samples, width), int(audio.sample_rate), core.pydub_width(width)
    raise ConfigError(f"expected a pydub AudioSegment or voxflow Audio, got {type(audio).__name__}")


def _length_ms(audio: Any) -> int:
    samples, rate, _ = _pcm(audio)
    return core.pydub_len_ms(samples.shape[0], rate)


def _slice_ms(audio: AudioT, start: int, end: int) -> AudioT:
    """``audio[start:end]`` with pydub's slicing rules, for either kind of clip."""
    if hasattr(audio, "raw_data"):
        return audio[start:end]  # type: ignore[index]
    samples = np.asarray(audio.samples)  # type: ignore[attr-defined]
    rate = int(audio.sample_rate)  # type: ignore[attr-defined]
    begin, stop = core.ms_to_frame(start, rate), core.ms_to_frame(end, rate)
    piece = samples[begin:stop]
    missing = max(stop - begin, 0) - len(piece)
    if missing > 0 and len(piece):  # pydub pads a short non-empty slice with silent frames
        pad = np.zeros((missing, *samples.shape[1:]), dtype=samples.dtype)
        piece = np.concatenate((piece, pad))
    return dataclasses.replace(audio, samples=piece.copy())  # type: ignore[type-var]
