"""Incremental form of pydub's ``detect_silence``: feed PCM chunks, get finished silent ranges.

Per millisecond of audio we keep one sum of squares; each pydub window of ``min_silence_len`` ms
is a run of those sums, so every window costs O(1) instead of O(window). Memory holds the sums
(and, for 32-bit audio, the samples) of one window only, never the whole recording.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from voxflow import _silence_core as core
from voxflow.errors import ConfigError

PIECE_FRAMES = 1 << 20  # frames processed per step, to bound temporary arrays
BATCH_FRAMES = 1 << 16  # small fed chunks wait until this many frames are pending

Range = list[int]


def check_params(min_silence_len: int, seek_step: int) -> tuple[int, int]:
    """Validate the millisecond parameters pydub loops over (pydub hangs or fails on these)."""
    try:
        length, step = int(min_silence_len), int(seek_step)
    except (TypeError, ValueError, OverflowError):
        raise ConfigError("min_silence_len and seek_step must be whole milliseconds") from None
    if length != min_silence_len or step != seek_step:
        raise ConfigError("min_silence_len and seek_step must be whole milliseconds")
    if length < 0:
        raise ConfigError(f"min_silence_len must be >= 0 ms, got {length}")
    if step < 1:
        raise ConfigError(f"seek_step must be >= 1 ms, got {step}")
    return length, step


class RangeMerger:
    """pydub's merge of silent window starts into ``[start, end]`` ranges, one start at a time."""

    def __init__(self, min_silence_len: int, seek_step: int) -> None:
        self._length = min_silence_len
        self._step = seek_step
        self._first: int | None = None
        self._prev = 0

    @property
    def open_start(self) -> int | None:
        """Start of the silence found but not yet closed, if any."""
        return self._first

    def add(self, starts: np.ndarray) -> list[Range]:
        """Take the next silent starts (ascending); return the ranges they close."""
        if len(starts) == 0:
            return []
        if self._first is not None:
            starts = np.concatenate(([self._prev], starts))
        else:
            self._first = int(starts[0])
        gaps = np.diff(starts)
        breaks = np.flatnonzero((gaps != self._step) & (gaps > self._length))
        firsts = [self._first, *starts[breaks + 1].tolist()]
        lasts = starts[breaks].tolist()
        self._first, self._prev = firsts[-1], int(starts[-1])
        return [[a, b + self._length] for a, b in zip(firsts, lasts, strict=False)]

    def settle(self, evaluated_up_to: int) -> list[Range]:
        """Close the open range when no later start (> ``evaluated_up_to``) can extend it."""
        if self._first is None or evaluated_up_to < self._prev + max(self._length, self._step):
            return []
        return self.close()

    def close(self) -> list[Range]:
        """Close the open range at the end of the audio."""
        if self._first is None:
            return []
        done = [[self._first, self._prev + self._length]]
        self._first = None
        return done


class SilenceScanner:
    """Streaming ``detect_silence`` with pydub 0.25.1's exact results.

    Feed integer samples shaped ``(frames, channels)`` in pydub's conventions (8-bit signed,
    24-bit widened to int32 as pydub does) with :meth:`feed`; each call returns the silent
    ``[start_ms, end_ms]`` ranges that are final. :meth:`finish` returns the rest.
    Fed chunks are gathered until ``batch_frames`` are pending, so that per-call costs stay
    small next to the work; a smaller batch gives results sooner.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int,
        sample_width: int,
        min_silence_len: int = 1000,
        silence_thresh: float = -16,
        seek_step: int = 1,
        *,
        batch_frames: int = BATCH_FRAMES,
    ) -> None:
        if sample_rate <= 0 or channels <= 0 or sample_width not in (1, 2, 3, 4):
            raise ConfigError(
                f"unsupported PCM: {sample_rate} Hz, {channels} channels, {sample_width} bytes"
            )
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        self.sample_width = core.pydub_width(sample_width)
        self.min_silence_len, self.seek_step = check_params(min_silence_len, seek_step)
        self._limit = core.threshold_amplitude(silence_thresh, self.sample_width)
        self._merger = RangeMerger(self.min_silence_len, self.seek_step)
        self._frames = 0  # frames fed so far
        self._blocks_done = 0  # milliseconds whose sums are known
        self._base = 0  # millisecond of self._blocks[0]
        self._next = 0  # next grid window start not yet decided
        self.length_ms: int | None = None  # set by finish()
        per_block = int(self.sample_rate // 1000 + 2) * self.channels
        max_square = 2 ** (2 * self.sample_width * 8 - 2)
        window = (self.min_silence_len + 2) * per_block
        piece = PIECE_FRAMES * self.channels
        self._exact = self.sample_width <= 2 and (window + piece) * max_square < 2**62
        self._keep_raw = not self._exact or window * max_square >= core.EXACT_LIMIT
        self._depth = 2 * self.min_silence_len + per_block + self.channels + 8
        self._blocks = np.zeros(0, dtype=np.int64 if self._exact else np.float64)
        self._carry = np.zeros((0, self.channels), dtype=np.int32)
        self._raw: deque[tuple[int, np.ndarray]] = deque()
        self._pending: list[np.ndarray] = []
        self._pending_frames = 0
        self._batch_frames = max(int(batch_frames), 1)

    @property
    def buffered_ms(self) -> int:
        """Milliseconds of audio held now (sums and pending samples): about
        ``min_silence_len`` plus one batch, never the whole recording."""
        return len(self._blocks) + self._pending_frames * 1000 // self.sample_rate

    @property
    def pending_from_ms(self) -> int:
        """No silence that is still unreported can start before this millisecond: audio before
        it is settled (silence already returned, or sound)."""
        if self._merger.open_start is not None:
            return self._merger.open_start
        return max(self._next - self.seek_step + 1, 0)  # finish() may add one off-grid window

    def feed(self, samples: np.ndarray) -> list[Range]:
        """Add the next samples; return the silent ranges that later audio cannot change."""
        if self.length_ms is not None:
            raise ConfigError("cannot feed a scanner after finish()")
        samples = np.asarray(samples)
        if samples.ndim == 1 and self.channels == 1:
            samples = samples[:, None]
        if samples.ndim != 2 or samples.shape[1] != self.channels:
            raise ConfigError(
                f"expected samples shaped (frames, {self.channels}), got {samples.shape}"
            )
        if samples.dtype.kind not in "iu":
            raise ConfigError(f"expected integer PCM samples, got {samples.dtype}")
        self._pending.append(samples)
        self._pending_frames += len(samples)
        if self._pending_frames < self._batch_frames:
            return []  # per-call costs would dominate on decoder-sized chunks
        return self._flush()

    def _flush(self) -> list[Range]:
        pending = self._pending
        samples = pending[0] if len(pending) == 1 else np.concatenate(pending)
        self._pending, self._pending_frames = [], 0
        out: list[Range] = []
        for start in range(0, len(samples), PIECE_FRAMES):
            out += self._feed_piece(samples[start : start + PIECE_FRAMES])
        return out

    def finish(self) -> list[Range]:
        """End of audio: decide the last windows (pydub pads them) and close the open range."""
        if self.length_ms is not None:
            return []
        early = self._flush() if self._pending else []
        total = self._frames
        length = self.length_ms = core.pydub_len_ms(total, self.sample_rate)
        if length < self.min_silence_len:
            return early
        if self._blocks_done < length:
            bounds = core.ms_to_frames(np.arange(self._blocks_done, length + 1), self.sample_rate)
            self._append_blocks(np.minimum(bounds, total))
        last = length - self.min_silence_len
        starts = np.arange(self._next, last + 1, self.seek_step, dtype=np.int64)
        if last % self.seek_step:
            starts = np.append(starts, last)
        out = self._merger.add(starts[self._silent(starts)])
        return early + out + self._merger.close()

    # -- internals ---------------------------------------------------------------------------

    def _feed_piece(self, piece: np.ndarray) -> list[Range]:
        first = self._frames
        self._frames += len(piece)
        if self._keep_raw and len(piece):
            self._raw.append((first, piece))
        data = np.concatenate((self._carry, piece)) if len(self._carry) else piece
        done = core.frames_up_to(self._frames, self.sample_rate)
        if done > self._blocks_done:
            bounds = core.ms_to_frames(np.arange(self._blocks_done, done + 1), self.sample_rate)
            self._carry = data[bounds[-1] - bounds[0] :]
            self._append_blocks(bounds, data)
        else:
            self._carry = data
        length_so_far = core.pydub_len_ms(self._frames, self.sample_rate)
        last = min(length_so_far, self._blocks_done) - self.min_silence_len
        if last < self._next:
            return []
        starts = np.arange(self._next, last + 1, self.seek_step, dtype=np.int64)
        out = self._merger.add(starts[self._silent(starts)])
        self._next = int(starts[-1]) + self.seek_step
        out += self._merger.settle(int(starts[-1]))
        self._forget()
        return out

    def _append_blocks(self, bounds: np.ndarray, data: np.ndarray | None = None) -> None:
        """Sum squares per millisecond for the blocks between ``bounds`` (absolute frames)."""
        if data is None:
            data = self._carry
        sums = core.block_sums(data, bounds - bounds[0], self._exact)
        self._blocks = np.concatenate((self._blocks, sums))
        self._blocks_done += len(bounds) - 1

    def _silent(self, starts: np.ndarray) -> np.ndarray:
        """Which pydub windows ``[s, s + min_silence_len)`` have ``rms <= threshold``."""
        if len(starts) == 0:
            return np.zeros(0, dtype=bool)
        length = self.min_silence_len
        sums = core.window_sums(self._blocks, starts - self._base, length)
        begin = core.ms_to_frames(starts, self.sample_rate)
        end = core.ms_to_frames(starts + length, self.sample_rate)
        total = self._frames if self.length_ms is not None else None
        counts = (end - begin) * self.channels
        real = counts
        if total is not None:
            counts = np.where(begin < total, counts, 0)  # pydub pads only a non-empty slice
            real = (np.minimum(end, total) - np.minimum(begin, total)) * self.channels

        def replay(k: int) -> float:
            stop = int(end[k]) if total is None else min(int(end[k]), total)
            return core.audioop_sum(self._raw_frames(int(begin[k]), stop))

        return core.rms_at_most(
            sums, counts, real, self._limit, exact=self._exact, depth=self._depth, replay=replay
        )

    def _raw_frames(self, begin: int, end: int) -> np.ndarray:
        parts = [
            arr[max(begin - first, 0) : end - first]
            for first, arr in self._raw
            if first < end and first + len(arr) > begin
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.channels), np.int64)

    def _forget(self) -> None:
        """Drop sums and samples that no future window can reach."""
        # finish() may still add pydub's off-grid last window, just after the last grid start
        keep = min(self._next - self.seek_step + 1, self._blocks_done)
        if keep > self._base:
            self._blocks = self._blocks[keep - self._base :].copy()
            self._base = keep
        keep_from = core.ms_to_frame(self._base, self.sample_rate)
        while self._raw and self._raw[0][0] + len(self._raw[0][1]) <= keep_from:
            self._raw.popleft()
