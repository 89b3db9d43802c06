"""Continuous language identification: find where a clip switches language and cut it there.

A speech segment may hold two languages when the speaker switches without a pause long enough
for the segmenter. The clip's language is identified on short overlapping windows; runs of
windows that agree become parts, and each boundary is moved to the quietest moment near the
point where the runs meet, so that no word is cut.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from voxflow.engines.base import SAMPLE_RATE, Clip, Engine, Identified

WINDOW = 3.0  # seconds of speech per identification window
HOP = 1.0  # seconds between window starts
MIN_PART = 1.5  # a language run shorter than this is not believed
SEARCH = 0.75  # seconds either side of the estimated switch to look for a pause
FRAME = 0.02  # energy frame for finding the pause


def _windows(clip: Clip) -> list[Clip]:
    win, hop = int(WINDOW * SAMPLE_RATE), int(HOP * SAMPLE_RATE)
    n = len(clip.samples)
    starts = list(range(0, max(n - win, 0) + 1, hop))
    if starts[-1] + win < n:
        starts.append(n - win)
    return [Clip(clip.start + s / SAMPLE_RATE, clip.samples[s : s + win]) for s in starts]


def _smooth(labels: list[str]) -> list[str]:
    """Majority of each window and its neighbours: one stray window is not a switch."""
    out = list(labels)
    for i in range(1, len(labels) - 1):
        if labels[i - 1] == labels[i + 1] != labels[i]:
            out[i] = labels[i - 1]
    return out


def quietest_point(samples: np.ndarray, lo: int, hi: int) -> int:
    """Sample index of the quietest short frame in ``samples[lo:hi]`` (its centre)."""
    frame = int(FRAME * SAMPLE_RATE)
    lo, hi = max(0, lo), min(len(samples), hi)
    if hi - lo < frame:
        return (lo + hi) // 2
    usable = (hi - lo) // frame * frame
    energy = np.square(samples[lo : lo + usable].astype(np.float64)).reshape(-1, frame).sum(axis=1)
    return lo + int(np.argmin(energy)) * frame + frame // 2


def switch_points(clip: Clip, windows: Sequence[Clip], labels: Sequence[str]) -> list[int]:
    """Sample offsets in ``clip`` where the language changes, moved to nearby pauses."""
    runs: list[tuple[str, int, int]] = []  # (label, first window, last window)
    for i, label in enumerate(labels):
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1], i)
        else:
            runs.append((label, i, i))
    # Drop runs too short to be believed, absorbing them into the previous run.
    kept: list[tuple[str, int, int]] = []
    for label, first, last in runs:
        span = windows[last].end - windows[first].start
        if kept and (span < MIN_PART or kept[-1][0] == label):
            kept[-1] = (kept[-1][0], kept[-1][1], last)
        else:
            kept.append((label, first, last))
    cuts = []
    for (_, _, a_last), (_, b_first, _) in itertools.pairwise(kept):
        a_centre = (windows[a_last].start + windows[a_last].end) / 2
        b_centre = (windows[b_first].start + windows[b_first].end) / 2
        guess = int(((a_centre + b_centre) / 2 - clip.start) * SAMPLE_RATE)
        reach = int(SEARCH * SAMPLE_RATE)
        cuts.append(quietest_point(clip.samples, guess - reach, guess + reach))
    return cuts


async def split_at_language_switches(
    engine: Engine, clip: Clip, candidates: Sequence[str]
) -> list[tuple[Clip, Identified]]:
    """The clip's parts, one per language, each with its identification."""
    if clip.duration < 2 * WINDOW:
        return list(zip([clip], await engine.identify([clip], candidates), strict=True))
    windows = _windows(clip)
    found = await engine.identify([clip, *windows], candidates)
    whole, per_window = found[0], found[1:]
    labels = _smooth([i.language for i in per_window])
    cuts = switch_points(clip, windows, labels)
    if not cuts:
        return [(clip, whole)]
    bounds = [0, *cuts, len(clip.samples)]
    parts = [
        Clip(clip.start + a / SAMPLE_RATE, clip.samples[a:b])
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]
    return list(zip(parts, await engine.identify(parts, candidates), strict=True))
