"""Numeric core of the pydub-compatible silence API: pydub's millisecond arithmetic and an RMS
decision that equals ``audioop.rms(...) <= threshold`` bit for bit, computed from running sums.

``audioop.rms`` adds ``float(sample) ** 2`` one sample at a time into a C ``double`` and returns
``(unsigned int) sqrt(sum / count)``. For 8/16-bit samples every partial sum is an integer below
2**53 in all practical windows, so an exact integer sum *is* audioop's sum. For 32-bit samples
(pydub stores 24-bit audio that way) the double sum rounds; we bound the rounding of both sums,
decide from the bounds, and only for the rare window whose decision the bounds cannot settle
replay audioop's sequential double sum on the raw samples. (That replay rounds the square and
the sum separately, as audioop compiled for x86-64 does; a build that fuses them into one FMA,
possible on other CPUs, could differ for 32-bit samples above 2**26 at the very threshold.)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from voxflow.errors import ConfigError

UNIT_ROUNDOFF = 2.0**-53
EXACT_LIMIT = 2**53


def pydub_len_ms(frames: int, sample_rate: int) -> int:
    """``len(AudioSegment)``: milliseconds rounded half-to-even from a float division."""
    return round(1000 * (float(frames) / sample_rate))


def ms_to_frame(ms: int, sample_rate: int) -> int:
    """The frame where pydub's slice at ``ms`` starts: ``int(ms * (rate / 1000.0))``."""
    return int(ms * (sample_rate / 1000.0))


def ms_to_frames(ms: np.ndarray, sample_rate: int) -> np.ndarray:
    """Vectorised :func:`ms_to_frame` for non-negative integer milliseconds."""
    return (np.asarray(ms, dtype=np.int64) * (sample_rate / 1000.0)).astype(np.int64)


def frames_up_to(frames: int, sample_rate: int) -> int:
    """The largest millisecond ``m`` whose slice boundary ``ms_to_frame(m)`` is ``<= frames``."""
    m = int(frames * 1000 // sample_rate)
    while ms_to_frame(m + 1, sample_rate) <= frames:
        m += 1
    while m > 0 and ms_to_frame(m, sample_rate) > frames:
        m -= 1
    return m


def pydub_width(sample_width: int) -> int:
    """pydub widens 24-bit audio to 32-bit at load time, so thresholds use 32-bit full scale."""
    return 4 if sample_width == 3 else sample_width


def threshold_amplitude(silence_thresh: float, sample_width: int) -> float:
    """``db_to_float(silence_thresh) * max_possible_amplitude`` as pydub computes it."""
    max_possible_amplitude = (2 ** (pydub_width(sample_width) * 8)) / 2
    try:
        return (10 ** (float(silence_thresh) / 20)) * max_possible_amplitude
    except OverflowError:
        raise ConfigError(f"silence_thresh {silence_thresh} dBFS is out of range") from None


def leading_rms_limit(silence_threshold: float, sample_width: int) -> float:
    """Largest integer RMS whose pydub ``dBFS`` is below ``silence_threshold`` (-1.0 if none).

    pydub's ``dBFS`` is ``-inf`` for RMS 0, else ``20 * log(rms / max_amplitude, 10)``; it grows
    with the RMS, so ``dBFS < threshold`` is the same test as ``rms <= limit``.
    """
    max_amp = (2 ** (pydub_width(sample_width) * 8)) / 2

    def quiet(rms: int) -> bool:
        db = -math.inf if rms == 0 else 20 * math.log(float(rms / max_amp), 10)
        return db < silence_threshold

    if not quiet(0):
        return -1.0
    lo, hi = 0, 2**32  # quiet(lo) holds; audioop's RMS is an unsigned 32-bit integer
    if quiet(hi):
        return float(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if quiet(mid):
            lo = mid
        else:
            hi = mid
    return float(lo)


def block_sums(samples: np.ndarray, bounds: np.ndarray, exact: bool) -> np.ndarray:
    """Sum of squared samples (all channels) of ``samples[bounds[k]:bounds[k+1]]`` for each k.

    ``bounds`` are non-decreasing frame indices into ``samples``; the sums are int64 (exact)
    when ``exact``, else float64. One pass over the interleaved samples.
    """
    channels = samples.shape[1]
    out = np.zeros(len(bounds) - 1, dtype=np.int64 if exact else np.float64)
    nonempty = bounds[1:] > bounds[:-1]
    if not nonempty.any():
        return out
    flat = np.ascontiguousarray(samples[bounds[0] : bounds[-1]]).reshape(-1)
    squares = flat.astype(out.dtype)
    squares *= squares
    starts = (bounds[:-1][nonempty] - bounds[0]) * channels
    out[nonempty] = np.add.reduceat(squares, starts)
    return out


def window_sums(blocks: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Sums of ``blocks[s:s+length]`` for each start ``s``, in O(len(blocks)).

    Integers use a prefix sum (exact). Floats use the van Herk/Gil-Werman split into segments of
    ``length``: each window is a suffix of one segment plus a prefix of the next, so every sum
    adds non-negative terms only and its relative error stays below ``(2*length+1)`` roundings.
    """
    if length == 0 or len(starts) == 0:
        return np.zeros(len(starts), dtype=blocks.dtype)
    if blocks.dtype == np.int64:
        prefix = np.zeros(len(blocks) + 1, dtype=np.int64)
        np.cumsum(blocks, out=prefix[1:])
        return prefix[starts + length] - prefix[starts]
    nseg = -(-len(blocks) // length) + 1
    padded = np.zeros(nseg * length, dtype=np.float64)
    padded[: len(blocks)] = blocks
    grid = padded.reshape(nseg, length)
    pre = np.cumsum(grid, axis=1)
    suf = np.cumsum(grid[:, ::-1], axis=1)[:, ::-1]
    seg, off = np.divmod(starts, length)
    out = suf[seg, off] + pre[np.minimum(seg + 1, nseg - 1), off - 1]
    aligned = off == 0
    out[aligned] = pre[seg[aligned], length - 1]
    return out


def audioop_sum(samples: np.ndarray) -> float:
    """audioop's own sum of squares: each square rounded to double, added left to right."""
    if samples.size == 0:
        return 0.0
    x = samples.astype(np.float64).ravel()
    x *= x
    return float(np.cumsum(x)[-1])


def _rms_le(sums: np.ndarray, counts: np.ndarray, limit: float) -> np.ndarray:
    """``floor(sqrt(sum / count)) <= limit`` with audioop's double arithmetic (count 0 -> 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rms = np.floor(np.sqrt(sums / counts))
    rms[counts == 0] = 0.0
    return rms <= limit


def rms_at_most(
    sums: np.ndarray,
    counts: np.ndarray,
    real_counts: np.ndarray,
    limit: float,
    *,
    exact: bool,
    depth: int,
    replay: Callable[[int], float],
) -> np.ndarray:
    """Decide ``audioop.rms(window) <= limit`` for many windows at once.

    ``sums`` are our sums of squares per window, ``counts`` the sample counts audioop divides by
    (pydub pads a short last slice with zeros), ``real_counts`` the samples actually summed.
    ``exact`` says ``sums`` are exact integers; ``depth`` bounds the additions behind each float
    sum. Windows the error bounds cannot decide are settled by ``replay(k)``, which returns
    audioop's double sum for window ``k``.
    """
    counts_f = counts.astype(np.float64)
    sums_f = sums.astype(np.float64)
    if exact:
        certain = sums < EXACT_LIMIT  # audioop's partial sums are then exact integers too
        if certain.all():
            return _rms_le(sums_f, counts_f, limit)
        rel = (real_counts + 2) * UNIT_ROUNDOFF * 2.0
    else:
        certain = np.zeros(len(sums), dtype=bool)
        rel = (real_counts + depth + 4) * UNIT_ROUNDOFF * 4.0
    rel = np.where(certain, 0.0, rel)
    low = np.nextafter(sums_f * (1.0 - rel), 0.0)
    high = np.nextafter(sums_f * (1.0 + rel), np.inf)
    low[sums_f == 0] = 0.0
    high[sums_f == 0] = 0.0
    result = _rms_le(low, counts_f, limit)
    undecided = np.flatnonzero(result != _rms_le(high, counts_f, limit))
    if len(undecided):
        replayed = np.array([replay(int(k)) for k in undecided], dtype=np.float64)
        result[undecided] = _rms_le(replayed, counts_f[undecided], limit)
    return result
