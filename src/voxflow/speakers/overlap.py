"""Overlapping speech and sharper change points, from the segmentation model's frames.

Each 10 s chunk of speech gets, per 17 ms frame, which of up to three *local* speakers talk
(:mod:`voxflow.speakers.segmentation`); the tracker keeps only that frame class (one byte).
Once the voices are clustered (:mod:`voxflow.speakers.cluster`), each chunk's local speakers
are named after the voice whose turns they overlap most where they speak alone (one local
speaker to one voice). Per frame, as pyannote's pipeline does, the number of speakers is the
chunks' mean count rounded, and the voices are the ones with most activity over the chunks:
two of them make an :class:`Overlap`. A change of speaker between two turns that meet without
a pause moves to where the frames say it is, within ``REFINE`` seconds of where the embeddings
put it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voxflow.audio.pcm import SAMPLE_RATE
from voxflow.speakers.segmentation import ACTIVE, FRAME_CENTER, FRAME_STEP, LOCAL_SPEAKERS

FRAME = FRAME_STEP / SAMPLE_RATE  # seconds per frame
MIN_VOTES = 12  # frames (0.2 s) of a local speaker alone on a voice's turns to be that voice
MIN_OVERLAP = 0.1  # seconds: shorter stretches of two voices are not reported
BRIDGE = 0.1  # seconds: gaps this short inside an overlap of the same voices are closed
REFINE = 1.0  # seconds a change of speaker may move
TOUCH = 0.05  # seconds: turns closer than this meet at a change the embeddings placed
MIN_GAIN = 4  # frames of evidence a moved change must gain over the embeddings' one
Span = tuple[float, float, int]  # a turn: start, end, voice number


@dataclass(frozen=True)
class Overlap:
    """A stretch where two voices speak at once, in seconds from the start of the source."""

    start: float
    end: float
    speakers: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """As the JSON transcript's ``overlaps`` list holds it."""
        return {"start": self.start, "end": self.end, "speakers": list(self.speakers)}


@dataclass(frozen=True)
class Chunk:
    """One chunk's segmentation: its first frame on the source's frame grid and each frame's
    powerset class (0 nobody, 1-3 one local speaker, 4-6 two)."""

    offset: int
    classes: np.ndarray  # uint8 (frames,)


def chunk_offset(seconds: float) -> int:
    """The frame of the source's grid that is the first frame of a chunk starting there."""
    return round(seconds * SAMPLE_RATE / FRAME_STEP)


def frame_of(seconds: float) -> int:
    """The frame of the source's grid whose centre is nearest ``seconds``."""
    return max(0, round((seconds * SAMPLE_RATE - FRAME_CENTER) / FRAME_STEP))


def _time_of(frame: int | np.ndarray) -> np.ndarray:
    """The time where ``frame`` begins (half a step before its centre)."""
    return (np.asarray(frame) * FRAME_STEP + FRAME_CENTER - FRAME_STEP / 2) / SAMPLE_RATE


def _turn_labels(turns: Sequence[Span], frames: int) -> np.ndarray:
    """Each frame's voice by the turns (-1 outside them)."""
    labels = np.full(frames, -1, dtype=np.int16)
    for start, end, voice in turns:
        labels[frame_of(start) : frame_of(end)] = voice
    return labels


def _match(votes: np.ndarray) -> dict[int, int]:
    """Local speaker → voice, one to one, with the most frames agreeing in all."""
    best: dict[int, int] = {}
    most = 0
    # Each local speaker: no voice, or one it was heard on enough (a few, whatever the count).
    options = [[-1, *np.flatnonzero(row >= MIN_VOTES).tolist()] for row in votes]
    for choice in itertools.product(*options):
        chosen = [v for v in choice if v >= 0]
        if len(set(chosen)) < len(chosen):
            continue
        score = sum(int(votes[k, v]) for k, v in enumerate(choice) if v >= 0)
        if score > most:
            best, most = {k: v for k, v in enumerate(choice) if v >= 0}, score
    return best


@dataclass
class FrameVoices:
    """Per frame of the source: how many speak (``count``) and each voice's activity summed
    over the chunks that cover the frame (``activity``, frames × voices)."""

    count: np.ndarray
    activity: np.ndarray

    def active(self) -> np.ndarray:
        """frames × voices: the ``count`` most active voices of each frame (activity > 0)."""
        order = np.argsort(-self.activity, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(self.activity.shape[1])[None], axis=1)
        return (rank < self.count[:, None]) & (self.activity > 0)


def frame_voices(chunks: Sequence[Chunk], turns: Sequence[Span], voices: int) -> FrameVoices:
    """The voices of every frame, from the chunks' local speakers named after the turns."""
    frames = max((c.offset + len(c.classes) for c in chunks), default=0)
    labels = _turn_labels(turns, frames)
    count_sum = np.zeros(frames, dtype=np.float32)
    cover = np.zeros(frames, dtype=np.float32)
    activity = np.zeros((frames, voices), dtype=np.float32)
    for chunk in chunks:
        span = slice(chunk.offset, chunk.offset + len(chunk.classes))
        local = ACTIVE[chunk.classes]  # frames × local speakers
        alone = (chunk.classes >= 1) & (chunk.classes <= LOCAL_SPEAKERS)
        votes = np.zeros((LOCAL_SPEAKERS, voices), dtype=np.int64)
        known = labels[span] >= 0
        for k in range(LOCAL_SPEAKERS):
            heard = labels[span][alone & local[:, k] & known]
            votes[k] = np.bincount(heard, minlength=voices)[:voices]
        count_sum[span] += local.sum(axis=1)
        cover[span] += 1
        for k, voice in _match(votes).items():
            activity[span, voice] += local[:, k]
    count = np.rint(np.divide(count_sum, cover, out=np.zeros_like(cover), where=cover > 0))
    return FrameVoices(count.astype(np.int8), activity)


def overlaps(voices: FrameVoices, names: Sequence[str]) -> list[Overlap]:
    """The stretches where two or more voices are active, shorter ones dropped."""
    active = voices.active()
    several = active.sum(axis=1) >= 2
    out: list[Overlap] = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], several.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        who = tuple(names[v] for v in np.flatnonzero(active[a:b].sum(axis=0) >= (b - a) / 2))
        start, end = float(_time_of(a)), float(_time_of(b))
        if len(who) < 2:
            continue
        if out and out[-1].speakers == who and start - out[-1].end <= BRIDGE:
            out[-1] = Overlap(out[-1].start, end, who)
        else:
            out.append(Overlap(start, end, who))
    return [Overlap(round(o.start, 3), round(o.end, 3), o.speakers) for o in out
            if o.end - o.start >= MIN_OVERLAP]  # fmt: skip


def refine(turns: Sequence[Span], voices: FrameVoices) -> list[Span]:
    """The turns with each change between two voices moved to where the frames put it: the
    boundary with most frames of the first voice alone before it and of the second after it,
    within REFINE seconds, when it gains MIN_GAIN frames over the embeddings' boundary."""
    active = voices.active()
    frames = len(active)
    out = list(turns)
    reach = round(REFINE / FRAME)
    for i in range(1, len(out)):
        (a0, a1, va), (b0, b1, vb) = out[i - 1], out[i]
        if va == vb or b0 - a1 > TOUCH:  # a pause between them already marks the change
            continue
        # Neither turn loses more than half of itself, nor the whole of a short one.
        low = max(frame_of((a0 + a1) / 2), frame_of(a1) - reach)
        high = min(frame_of((b0 + b1) / 2), frame_of(b0) + reach, frames)
        if high - low < 2:
            continue
        alone = active[low:high].sum(axis=1) == 1
        first = (alone & active[low:high, va]).astype(np.int32)
        second = (alone & active[low:high, vb]).astype(np.int32)
        # a boundary before frame t scores the first voice's frames before it, the second's after
        before = np.concatenate([[0], np.cumsum(first - second)])
        score = 2 * before - before[-1]
        t = int(np.argmax(score))
        now = min(max(frame_of(a1), low), high) - low
        heard = first[:t].sum() >= MIN_GAIN and second[t:].sum() >= MIN_GAIN
        if not heard or score[t] - score[now] < MIN_GAIN:
            continue
        at = float(_time_of(low + t))
        if a1 <= at <= b0:
            continue
        out[i - 1] = (a0, max(a0, at) if at < a1 else at, va)
        out[i] = (min(at, b1) if at < b0 else at, b1, vb)
    return out
