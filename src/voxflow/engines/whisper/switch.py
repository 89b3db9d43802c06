"""Continuous language identification: find where a clip switches language and cut it there.

A speech segment may hold two languages when the segmenter merged utterances. The clip is
first checked cheaply (whole and halves). When those disagree or are unsure, it is cut at its
pauses into phrases, and each phrase is identified; a clip without pauses is scanned with
short windows instead. Neighbouring parts in the same language are joined again, so cuts
fall only where the language changes, and always at the quietest moment nearby.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from voxflow.audio.pcm import SAMPLE_RATE, frame_db
from voxflow.engines.base import Clip, Engine
from voxflow.languages import Identified, Language

WINDOW = 3.0  # seconds per identification window, for clips without pauses
MIN_PART = 1.5  # a language run shorter than this is not believed
SURE = 0.9  # confidence under which a clip is looked at more closely
FRAME = 0.02  # energy frame (seconds)
PAUSE = 0.25  # a pause at least this long may separate phrases
PAUSE_DB = 30.0  # frames this far below the clip's loud frames are pause


def pause_cuts(samples: np.ndarray) -> list[int]:
    """Sample offsets at the middle of each pause, keeping every part at least MIN_PART long."""
    levels = frame_db(samples, int(FRAME * SAMPLE_RATE))
    if len(levels) == 0:
        return []
    quiet = levels < np.percentile(levels, 90) - PAUSE_DB
    frame, need = int(FRAME * SAMPLE_RATE), int(PAUSE / FRAME)
    cuts, run_start = [], None
    for i, q in enumerate([*quiet, False]):
        if q and run_start is None:
            run_start = i
        elif not q and run_start is not None:
            if i - run_start >= need and run_start > 0 and i < len(quiet):
                cuts.append((run_start + i) // 2 * frame)
            run_start = None
    min_part, kept, last = int(MIN_PART * SAMPLE_RATE), [], 0
    for cut in cuts:
        if cut - last >= min_part and len(samples) - cut >= min_part:
            kept.append(cut)
            last = cut
    return kept


def quietest_point(samples: np.ndarray, lo: int, hi: int) -> int:
    """Sample index of the quietest short frame in ``samples[lo:hi]`` (its centre)."""
    frame = int(FRAME * SAMPLE_RATE)
    lo, hi = max(0, lo), min(len(samples), hi)
    if hi - lo < frame:
        return (lo + hi) // 2
    levels = frame_db(samples[lo:hi], frame)
    return lo + int(np.argmin(levels)) * frame + frame // 2


def _window_cuts(samples: np.ndarray) -> list[int]:
    """Cuts every WINDOW seconds, moved to the quietest moment within a second."""
    win, n = int(WINDOW * SAMPLE_RATE), len(samples)
    reach = SAMPLE_RATE // 2
    return [quietest_point(samples, c - reach, c + reach) for c in range(win, n - win // 2, win)]


def _pieces(clip: Clip, cuts: Sequence[int]) -> list[Clip]:
    bounds = [0, *cuts, len(clip.samples)]
    return [
        Clip(clip.start + a / SAMPLE_RATE, clip.samples[a:b])
        for a, b in itertools.pairwise(bounds)
        if b > a
    ]


def _join(pieces: list[Clip], found: list[Identified]) -> list[tuple[Clip, Identified]]:
    """Join neighbouring pieces of one language; absorb runs too short to be believed."""
    runs: list[list[int]] = []
    for i, ident in enumerate(found):
        if runs and found[runs[-1][0]].language == ident.language:
            runs[-1].append(i)
        else:
            runs.append([i])
    merged: list[list[int]] = []
    for run in runs:
        length = sum(pieces[i].duration for i in run)
        if merged and length < MIN_PART:
            merged[-1].extend(run)
        else:
            merged.append(run)
    if len(merged) > 1 and sum(pieces[i].duration for i in merged[0]) < MIN_PART:
        merged[1][:0] = merged.pop(0)
    out = []
    for run in merged:
        samples = np.concatenate([pieces[i].samples for i in run])
        best = max(run, key=lambda i: pieces[i].duration * found[i].confidence)
        out.append((Clip(pieces[run[0]].start, samples), found[best]))
    return out


async def split_at_language_switches(
    engine: Engine, clip: Clip, candidates: Sequence[Language]
) -> list[tuple[Clip, Identified]]:
    """The clip's parts, one per language, each with its identification."""
    if clip.duration < 2 * MIN_PART:
        return list(zip([clip], await engine.identify([clip], candidates), strict=True))
    half = len(clip.samples) // 2
    halves = _pieces(clip, [half])
    whole, *parts = await engine.identify([clip, *halves], candidates)
    sure = min(p.confidence for p in (whole, *parts)) >= SURE
    if sure and all(p.language == whole.language for p in parts):
        return [(clip, whole)]
    cuts = pause_cuts(clip.samples) or _window_cuts(clip.samples)
    if not cuts:
        return [(clip, whole)]
    pieces = _pieces(clip, cuts)
    found = await engine.identify(pieces, candidates)
    joined = _join(pieces, found)
    return [(clip, whole)] if len(joined) == 1 else joined
