"""Planning Whisper-ready segments from a stream of audio and speech regions.

Regions closer than ``merge_gap`` are batched into one segment (up to ``max_duration``, Whisper's
30 s window); each segment is padded without touching its neighbours; speech longer than
``max_duration`` is cut at its quietest point shortly before the limit. Nothing the detector
called speech is dropped: every such sample lies in exactly one segment. The planner holds audio
only from the start of the earliest unfinished segment, so memory does not grow with the input.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxflow.audio.pcm import SAMPLE_RATE, frame_power
from voxflow.errors import ConfigError
from voxflow.vad import (
    Detector,
    DetectorName,
    Region,
    SilenceOptions,
    VadOptions,
    as_mono_float32,
    make_detector,
)

SPLIT_FRAME = 0.03  # seconds per energy frame when looking for the quietest cut
SPLIT_SMOOTH = 5  # frames averaged, so a pause (>= 150 ms) beats a stop consonant's closure


@dataclass(frozen=True)
class SegmentOptions:
    """How speech regions become segments (all durations in seconds).

    ``merge_gap``: regions separated by at most this much silence share a segment.
    ``pad``: audio kept each side of the speech (less where a neighbour is closer).
    ``min_duration``: shorter segments are widened towards this with the audio around them.
    ``split_search``: a stretch longer than ``max_duration`` is cut at its quietest point
    within this many seconds before the limit (at most half of ``max_duration``).
    """

    min_duration: float = 1.0
    max_duration: float = 30.0
    pad: float = 0.2
    merge_gap: float = 1.0
    split_search: float = 5.0

    def __post_init__(self) -> None:
        if not self.max_duration > 0:
            raise ConfigError(f"max segment duration must be positive, not {self.max_duration}")
        if min(self.min_duration, self.pad, self.merge_gap) < 0:
            raise ConfigError("segment min_duration, pad and merge_gap must not be negative")
        if self.min_duration > self.max_duration:
            raise ConfigError("segment min_duration must not exceed max_duration")
        if not self.split_search > 0:
            raise ConfigError(f"segment split_search must be positive, not {self.split_search}")


@dataclass(frozen=True, eq=False)
class SpeechSegment:
    """One clip for the recogniser: ``start``/``end`` in seconds from the exact sample indices."""

    index: int
    start: float
    end: float
    samples: np.ndarray  # float32 mono, ``end_sample - start_sample`` long
    start_sample: int
    end_sample: int

    @property
    def duration(self) -> float:
        return self.end - self.start


class _AudioBuffer:
    """The stream's recent samples as a queue of arrays: append, slice by absolute index, trim."""

    def __init__(self) -> None:
        self._parts: deque[tuple[int, np.ndarray]] = deque()
        self.start = 0  # absolute index of the first sample that may be sliced
        self.end = 0  # absolute index after the last sample held
        self.held = 0  # samples held (whole arrays, so a little more than end - start)

    def append(self, x: np.ndarray) -> None:
        if len(x):
            self._parts.append((self.end, x))
            self.end += len(x)
            self.held += len(x)

    def slice(self, a: int, b: int) -> np.ndarray:
        assert self.start <= a <= b <= self.end, (a, b, self.start, self.end)
        pieces = [x[max(a - s, 0) : b - s] for s, x in self._parts if s < b and s + len(x) > a]
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def trim(self, before: int) -> None:
        before = min(before, self.end)
        while self._parts and self._parts[0][0] + len(self._parts[0][1]) <= before:
            self.held -= len(self._parts.popleft()[1])
        self.start = max(self.start, before)


@dataclass
class _Group:
    """Regions merged so far: raw speech from ``start`` to ``end``; ``cut`` once split."""

    start: int
    end: int
    cut: int | None = None  # where the next piece begins after a split (no left pad then)
    open_start: int | None = None  # set while the last region is still growing

    @property
    def head(self) -> int:
        return self.start if self.cut is None else self.cut


class SegmentPlanner:
    """Streams audio through a detector and yields segments as soon as each is final."""

    def __init__(
        self,
        detector: Detector,
        options: SegmentOptions | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> None:
        o = options or SegmentOptions()
        self._det = detector
        self._rate = sample_rate
        self._max = round(o.max_duration * sample_rate)
        self._pad = round(o.pad * sample_rate)
        self._min = round(o.min_duration * sample_rate)
        self._gap = round(o.merge_gap * sample_rate)
        self._search = round(min(o.split_search, o.max_duration / 2) * sample_rate)
        self._frame = max(1, round(SPLIT_FRAME * sample_rate))
        self._reach = max(self._pad, (self._min + 1) // 2)  # furthest a left edge may widen
        self._buf = _AudioBuffer()
        self._group: _Group | None = None
        self._prev_end = 0  # end of the last segment emitted
        self._index = 0
        self.peak_held = 0  # most samples ever buffered (for memory checks)
        self.heard_from: int | None = None  # where the detector first heard speech

    @property
    def held(self) -> int:
        """Samples buffered now."""
        return self._buf.held

    def feed(self, samples: Any) -> list[SpeechSegment]:
        """Consume the next chunk; return the segments it completed."""
        x = as_mono_float32(samples)
        self._buf.append(x)
        out: list[SpeechSegment] = []
        for region in self._det.feed(x):
            self._add(region, out)
        self._advance(out)
        self._trim()
        return out

    def finish(self) -> list[SpeechSegment]:
        """End of stream: return the remaining segments."""
        out: list[SpeechSegment] = []
        for region in self._det.finish():
            self._add(region, out)
        if self._group is not None:
            self._emit(None, out)
        self._buf.trim(self._buf.end)
        return out

    # -- decisions --------------------------------------------------------------------------

    def _add(self, r: Region, out: list[SpeechSegment]) -> None:
        if self.heard_from is None:
            self.heard_from = r.start
        g = self._group
        if g is not None and g.open_start == r.start:  # the growing region has ended
            g.end, g.open_start = max(g.end, min(r.end, self._buf.end)), None
        else:
            r = Region(max(r.start, self._prev_end), min(r.end, self._buf.end))
            if r.end <= r.start:
                return
            if g is not None and r.start - g.end <= self._gap and r.end - g.head <= self._max:
                g.end = r.end
            else:
                if g is not None:
                    self._emit(r.start, out)
                g = self._group = _Group(r.start, r.end)
        self._split_long(g.end, out)

    def _advance(self, out: list[SpeechSegment]) -> None:
        g = self._group
        live = self._det.open_region
        if live is not None:
            if self.heard_from is None:
                self.heard_from = live.start
            joins = g is not None and (
                g.open_start == live.start
                or (live.start - g.end <= self._gap and live.end - g.head <= self._max)
            )
            if g is not None and not joins:
                self._emit(live.start, out)  # it can no longer join this group
                g = None
            if g is None and live.end - live.start > self._max:
                g = self._group = _Group(live.start, live.end, open_start=live.start)
            if g is not None and g.open_start == live.start:
                g.end = max(g.end, live.end)
                self._split_long(live.end, out)
            return
        if g is not None:
            settled = min(self._det.settled, self._buf.end)
            if settled - g.end > self._gap and settled - g.end >= 2 * self._widen(g)[1]:
                self._emit(None, out)

    def _widen(self, g: _Group) -> tuple[int, int]:
        """How far the group's segment would like to extend left and right."""
        short = max(0, self._min - (g.end - g.head))
        want = max(self._pad, (short + 1) // 2)
        return (0 if g.cut is not None else want), want

    def _split_long(self, known_end: int, out: list[SpeechSegment]) -> None:
        """Cut pieces off the group while its speech is known to run past ``max_duration``."""
        g = self._group
        assert g is not None
        while known_end - g.head > self._max:
            first = g.head if g.cut is not None else max(g.start - self._pad, self._prev_end, 0)
            cut = self._quietest(first + self._max - self._search, first + self._max)
            out.append(self._segment(first, cut))
            g.cut = cut

    def _emit(self, next_start: int | None, out: list[SpeechSegment]) -> None:
        """Emit the group (long ones already split); ``next_start`` bounds the right pad."""
        g = self._group
        assert g is not None
        self._group = None
        want_left, want_right = self._widen(g)
        limit = self._buf.end if next_start is None else g.end + (next_start - g.end) // 2
        can_left = min(want_left, g.head - self._prev_end)  # up to the previous segment
        can_right = min(want_right, limit - g.end)  # up to halfway to the next speech
        room = self._max - (g.end - g.head)  # pads never push a segment past max_duration
        left, right = can_left, can_right
        if left + right > room:  # share the room, giving either side what the other can't use
            right = min(can_right, room - min(can_left, room // 2))
            left = min(can_left, room - right)
        out.append(self._segment(g.head - left, g.end + right))

    def _quietest(self, lo: int, hi: int) -> int:
        """The centre of the quietest stretch (smoothed 30 ms energy) in ``[lo, hi]``."""
        energy = frame_power(self._buf.slice(lo, hi), self._frame)
        n = len(energy)
        if n < 1:
            return hi
        k = min(SPLIT_SMOOTH, n)
        smooth = np.convolve(energy, np.ones(k) / k, mode="valid")
        best = len(smooth) - 1 - int(np.argmin(smooth[::-1]))  # latest of equal minima
        return lo + (best * self._frame) + (k * self._frame) // 2

    def _segment(self, a: int, b: int) -> SpeechSegment:
        self._prev_end = b
        seg = SpeechSegment(
            index=self._index,
            start=a / self._rate,
            end=b / self._rate,
            samples=self._buf.slice(a, b).copy(),
            start_sample=a,
            end_sample=b,
        )
        self._index += 1
        return seg

    def _trim(self) -> None:
        g = self._group
        if g is not None:
            keep = g.cut if g.cut is not None else g.start - self._reach
        else:
            keep = min(self._det.settled, self._buf.end) - self._reach
        self._buf.trim(max(keep, self._prev_end, 0))
        self.peak_held = max(self.peak_held, self._buf.held)


def speech_segments(
    chunks: Iterable[Any],
    *,
    detector: DetectorName | Detector = "silero",
    options: SegmentOptions | None = None,
    vad_options: VadOptions | None = None,
    silence_options: SilenceOptions | None = None,
    sample_rate: int = SAMPLE_RATE,
    on_speech: Callable[[float], None] | None = None,
) -> Iterator[SpeechSegment]:
    """Segments of a stream of mono chunks (``Chunk`` objects or arrays), yielded as they finish.

    ``detector`` is "silero" (VAD, the default), "silence" (pydub-style level threshold), or
    any object with the :class:`voxflow.vad.Detector` methods. ``on_speech`` is called once,
    with the time in seconds, as soon as the detector hears speech: long before the segment
    that holds it is final (a live listener wants to know that someone started talking).
    """
    det = make_detector(
        detector,
        vad_options=vad_options,
        silence_options=silence_options,
        sample_rate=sample_rate,
    )
    planner = SegmentPlanner(det, options, sample_rate)
    told = on_speech is None

    def tell(found: list[SpeechSegment]) -> list[SpeechSegment]:
        nonlocal told
        if not told and planner.heard_from is not None:
            told = True
            on_speech(planner.heard_from / sample_rate)  # type: ignore[misc]
        return found

    for chunk in chunks:
        yield from tell(planner.feed(chunk))
    yield from tell(planner.finish())
