"""Speech-activity detection as a stream: Silero VAD v6 (ONNX) and a silence-based detector.

Detectors take 16 kHz mono float32 chunks of any size and return speech :class:`Region` s (sample
indices) as soon as each is final, so the segment planner can hold a bounded buffer of audio.
The Silero model file is the one faster-whisper ships; it runs on onnxruntime without torch.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from voxflow.audio.pcm import SAMPLE_RATE
from voxflow.errors import ConfigError, ModelError

WINDOW = 512  # samples the v6 model judges per step at 16 kHz
CONTEXT = 64  # samples of the previous window prepended to each window (model input is 576)
STATE_SHAPE = (1, 1, 128)  # LSTM hidden and cell state, carried from window to window
RUN_BATCH = 4096  # windows per onnxruntime call (bounds the input tensor, not the results)

DetectorName = Literal["silero", "silence"]


@dataclass(frozen=True, order=True)
class Region:
    """Speech from sample ``start`` (inclusive) to ``end`` (exclusive) at the detector's rate."""

    start: int
    end: int


class Detector(Protocol):
    """What the segment planner needs from a streaming speech detector."""

    def feed(self, samples: np.ndarray) -> list[Region]:
        """Consume the next samples; return the regions that became final."""
        ...

    def finish(self) -> list[Region]:
        """End of stream: return the regions still pending."""
        ...

    @property
    def settled(self) -> int:
        """No region that is not yet returned starts before this sample."""
        ...

    @property
    def open_region(self) -> Region | None:
        """Speech that has begun, will be returned, and is known to last at least until ``end``."""
        ...


def as_mono_float32(samples: Any) -> np.ndarray:
    """A chunk (``.samples`` or an array, 1-D or (frames, channels)) as 1-D float32 in [-1, 1]."""
    x = np.asarray(getattr(samples, "samples", samples))
    if x.ndim not in (1, 2):
        raise ConfigError(f"audio chunks must be 1-D or (frames, channels), not shape {x.shape}")
    if np.issubdtype(x.dtype, np.integer):
        x = x / float(-np.iinfo(x.dtype).min)
    if x.ndim == 2:
        x = x[:, 0] if x.shape[1] == 1 else x.mean(axis=1)
    return np.ascontiguousarray(x, dtype=np.float32)


# --- Silero: probabilities ---------------------------------------------------------------------


def silero_model_path() -> Path:
    """The Silero VAD v6 ONNX file bundled in the installed faster-whisper package."""
    path = Path(str(importlib.resources.files("faster_whisper") / "assets" / "silero_vad_v6.onnx"))
    if not path.is_file():
        raise ModelError(f"Silero VAD model not found at {path}: reinstall faster-whisper")
    return path


@functools.cache
def silero_session() -> Any:
    """The process-wide onnxruntime session (``run`` is thread-safe; one intra-op thread)."""
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return onnxruntime.InferenceSession(
        str(silero_model_path()), sess_options=opts, providers=["CPUExecutionProvider"]
    )


class SileroStream:
    """Speech probability per 512-sample window of a stream fed in chunks of any size.

    Each model input row is the 64 samples before the window followed by the window; the LSTM
    state and the context are carried across calls, so the probabilities equal one run over the
    whole recording. Windows are run ``batch_windows`` at a time (about 1 s: one onnxruntime
    call per decoded frame would cost more than the model); :meth:`flush` runs the rest,
    zero-padding the last partial window.
    """

    def __init__(self, session: Any = None, batch_windows: int = 32) -> None:
        self._session = session if session is not None else silero_session()
        self._batch = max(1, batch_windows) * WINDOW
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._pending: list[np.ndarray] = []
        self._pending_len = 0
        self.windows = 0  # windows judged so far

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Probabilities of the windows judged now (none until a batch has gathered)."""
        x = as_mono_float32(samples)
        self._pending.append(x)
        self._pending_len += len(x)
        if self._pending_len < self._batch:
            return np.zeros(0, dtype=np.float32)
        buf = np.concatenate(self._pending)
        whole = len(buf) - len(buf) % WINDOW
        self._pending, self._pending_len = [buf[whole:].copy()], len(buf) - whole
        return self._run(buf[:whole])

    def flush(self) -> np.ndarray:
        """Probabilities of every window still pending, the last one zero-padded."""
        buf = np.concatenate([*self._pending, np.zeros(0, dtype=np.float32)])
        self._pending, self._pending_len = [], 0
        tail = -len(buf) % WINDOW
        return self._run(np.pad(buf, (0, tail)) if tail else buf)

    def _run(self, audio: np.ndarray) -> np.ndarray:
        if not len(audio):
            return np.zeros(0, dtype=np.float32)
        windows = audio.reshape(-1, WINDOW)
        rows = np.empty((len(windows), CONTEXT + WINDOW), dtype=np.float32)
        rows[:, CONTEXT:] = windows
        rows[0, :CONTEXT] = self._context
        rows[1:, :CONTEXT] = windows[:-1, -CONTEXT:]
        self._context = windows[-1, -CONTEXT:].copy()
        out = []
        for i in range(0, len(rows), RUN_BATCH):
            probs, self._h, self._c = self._session.run(
                None, {"input": rows[i : i + RUN_BATCH], "h": self._h, "c": self._c}
            )
            out.append(np.asarray(probs, dtype=np.float32).reshape(-1))
        self.windows += len(rows)
        return np.concatenate(out)


def speech_probabilities(audio: np.ndarray) -> np.ndarray:
    """Silero probabilities of a whole 16 kHz recording in one pass (reference for streaming)."""
    stream = SileroStream()
    return np.concatenate((stream.feed(audio), stream.flush()))


# --- Silero: probabilities to regions ----------------------------------------------------------


@dataclass(frozen=True)
class VadOptions:
    """How Silero probabilities become speech regions (hysteresis between two thresholds).

    Speech starts at a window with probability >= ``threshold``; it ends once the probability
    has stayed below ``threshold`` for ``min_silence_duration_ms``, counted from the first window
    below ``neg_threshold`` (default ``threshold - 0.15``). Regions shorter than
    ``min_speech_duration_ms`` are dropped as clicks; the default 0 keeps them, since a short
    burst beside speech is usually the end of a word. Regions are widened by ``speech_pad_ms``
    each side, never over the previous region.

    ``rescue_db``: a window within this many dB of the recording's confident speech (the
    median level of recent windows scored >= 0.8) counts as speech whatever its score. Silero
    can score quiet speech low after long stretches of other speech; loudness like speech's is
    then the better evidence, and Whisper still drops what is not speech. None turns it off.
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_duration_ms: int = 0
    min_silence_duration_ms: int = 300
    speech_pad_ms: int = 30
    rescue_db: float | None = 15.0

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"VAD threshold must be between 0 and 1, not {self.threshold}")
        if self.neg_threshold is not None and not 0.0 <= self.neg_threshold <= self.threshold:
            raise ConfigError("VAD neg_threshold must be between 0 and threshold")
        if min(self.min_speech_duration_ms, self.min_silence_duration_ms, self.speech_pad_ms) < 0:
            raise ConfigError("VAD durations must not be negative")
        if self.speech_pad_ms > self.min_silence_duration_ms:
            raise ConfigError("VAD speech_pad_ms must not exceed min_silence_duration_ms")

    @property
    def low_threshold(self) -> float:
        """The probability below which a window starts counting as silence."""
        if self.neg_threshold is not None:
            return self.neg_threshold
        return max(self.threshold - 0.15, 0.01)


class Hysteresis:
    """Streaming state machine: window probabilities in, final speech regions out."""

    def __init__(self, options: VadOptions | None = None, sample_rate: int = SAMPLE_RATE) -> None:
        o = options or VadOptions()
        self._high = o.threshold
        self._low = o.low_threshold
        self._min_speech = o.min_speech_duration_ms * sample_rate // 1000
        self._min_silence = o.min_silence_duration_ms * sample_rate // 1000
        self._pad = o.speech_pad_ms * sample_rate // 1000
        self._next = 0  # first sample of the next window to judge
        self._start: int | None = None  # raw start of the speech in progress
        self._quiet_from: int | None = None  # start of the silence that may end it
        self._last_end = 0  # padded end of the last region returned

    def push(self, probs: Sequence[float] | np.ndarray) -> list[Region]:
        """Judge the next windows; return regions that ended in them."""
        out: list[Region] = []
        for p in np.asarray(probs, dtype=np.float64).tolist():
            at, self._next = self._next, self._next + WINDOW
            if self._start is None:
                if p >= self._high:
                    self._start, self._quiet_from = at, None
            elif p >= self._high:
                self._quiet_from = None
            elif p < self._low or self._quiet_from is not None:
                if self._quiet_from is None:
                    self._quiet_from = at
                if self._next - self._quiet_from >= self._min_silence:
                    out += self._close(self._quiet_from, limit=None)
        return out

    def finish(self, total: int) -> list[Region]:
        """End of stream at sample ``total``: close the speech in progress."""
        if self._start is None:
            return []
        end = self._quiet_from if self._quiet_from is not None else min(self._next, total)
        return self._close(end, limit=total)

    def _close(self, end: int, limit: int | None) -> list[Region]:
        start, self._start, self._quiet_from = self._start, None, None
        assert start is not None
        if end - start < self._min_speech:
            return []
        padded_end = end + self._pad if limit is None else min(end + self._pad, limit)
        region = Region(max(start - self._pad, self._last_end), padded_end)
        self._last_end = region.end
        return [region]

    @property
    def settled(self) -> int:
        first = self._start if self._start is not None else self._next
        return max(first - self._pad, self._last_end, 0)

    @property
    def open_region(self) -> Region | None:
        if self._start is None:
            return None
        known = self._quiet_from if self._quiet_from is not None else self._next
        if known - self._start < self._min_speech:
            return None  # may still turn out to be a click
        return Region(max(self._start - self._pad, self._last_end), known)


class LevelRescue:
    """Raises the scores of windows as loud as the recording's confident speech (see
    ``VadOptions.rescue_db``); needs the windows' samples beside their probabilities."""

    CONFIDENT = 0.8
    FLOOR_DB = -50.0  # never rescue anything quieter than this (dBFS)
    HISTORY = 512  # confident windows remembered (about 16 s of speech)
    MIN_HISTORY = 32  # no rescue before this much confident speech is known

    def __init__(self, margin_db: float, threshold: float) -> None:
        self._margin = margin_db
        self._threshold = threshold
        self._levels: deque[float] = deque(maxlen=self.HISTORY)
        self._pending = np.zeros(0, dtype=np.float32)  # samples not yet scored

    def apply(self, samples: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Scores for the next ``len(probs)`` windows, given the samples fed since last time."""
        self._pending = np.concatenate([self._pending, samples])
        n = len(probs)
        frames = self._pending[: n * WINDOW]
        self._pending = self._pending[n * WINDOW :]
        if len(frames) < n * WINDOW:  # the zero-padded last window
            frames = np.pad(frames, (0, n * WINDOW - len(frames)))
        power = np.square(frames.astype(np.float64)).reshape(n, WINDOW).mean(axis=1)
        level = 10 * np.log10(power + 1e-12)
        out = np.asarray(probs, dtype=np.float64).copy()
        if len(self._levels) >= self.MIN_HISTORY:  # the level known before this batch
            floor = max(float(np.median(self._levels)) - self._margin, self.FLOOR_DB)
            loud = (level >= floor) & (out < self.CONFIDENT)
            out[loud] = np.maximum(out[loud], self._threshold)
        self._levels.extend(level[np.asarray(probs) >= self.CONFIDENT].tolist())
        return out


class SileroDetector:
    """Silero VAD v6 over a stream of chunks: :class:`SileroStream` + :class:`Hysteresis`.
    ``batch_windows``: windows per model run (fewer: regions known sooner, at more cost)."""

    def __init__(
        self, options: VadOptions | None = None, session: Any = None, batch_windows: int = 32
    ) -> None:
        o = options or VadOptions()
        self._stream = SileroStream(session, batch_windows)
        self._states = Hysteresis(o)
        self._rescue = LevelRescue(o.rescue_db, o.threshold) if o.rescue_db is not None else None
        self._fed = 0

    def _scores(self, samples: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return probs if self._rescue is None else self._rescue.apply(samples, probs)

    def feed(self, samples: np.ndarray) -> list[Region]:
        x = as_mono_float32(samples)
        self._fed += len(x)
        return self._states.push(self._scores(x, self._stream.feed(x)))

    def finish(self) -> list[Region]:
        # the last window is zero-padded: a region it closes may not end past the audio
        tail = self._scores(np.zeros(0, dtype=np.float32), self._stream.flush())
        last = self._states.push(tail) + self._states.finish(self._fed)
        return [Region(r.start, min(r.end, self._fed)) for r in last]

    @property
    def settled(self) -> int:
        return self._states.settled

    @property
    def open_region(self) -> Region | None:
        return self._states.open_region


# --- Silence: non-silent ranges ----------------------------------------------------------------


@dataclass(frozen=True)
class SilenceOptions:
    """pydub's ``detect_nonsilent`` parameters: milliseconds, and a threshold in dBFS."""

    min_silence_len: int = 500
    silence_thresh: float = -40.0
    seek_step: int = 1

    def __post_init__(self) -> None:
        if self.min_silence_len < 1 or self.seek_step < 1:
            raise ConfigError("min_silence_len and seek_step must be at least 1 ms")


class SilenceDetector:
    """Speech is whatever is not silent, as pydub's ``detect_nonsilent`` decides (in ms).

    The samples are measured as 16-bit PCM, as pydub would hold the same audio, by the
    streaming scanner of :mod:`voxflow.silence`; non-silent ranges are the gaps between the
    silent ranges it returns.
    """

    def __init__(self, options: SilenceOptions | None = None, sample_rate: int = SAMPLE_RATE):
        from voxflow.silence import SilenceScanner

        o = options or SilenceOptions()
        self._rate = sample_rate
        self._scan = SilenceScanner(
            sample_rate, 1, 2, o.min_silence_len, o.silence_thresh, o.seek_step
        )
        self._speech_from = 0  # ms where the current non-silent range began (end of a silence)
        self._first = True
        self._fed = 0

    def feed(self, samples: np.ndarray) -> list[Region]:
        x = as_mono_float32(samples)
        self._fed += len(x)
        pcm = np.clip(np.rint(x * 32767.0), -32768, 32767).astype(np.int16)[:, None]
        return self._between(self._scan.feed(pcm))

    def finish(self) -> list[Region]:
        out = self._between(self._scan.finish())
        length = self._scan.length_ms or 0
        if self._speech_from < length:
            out.append(self._region(self._speech_from, length))
        self._speech_from = length
        return [r for r in out if r.end > r.start]

    def _between(self, silent: list[list[int]]) -> list[Region]:
        out = []
        for start, end in silent:
            if not (self._first and start == 0):  # like pydub: no range before a leading silence
                out.append(self._region(self._speech_from, start))
            self._first, self._speech_from = False, end
        return [r for r in out if r.end > r.start]

    def _region(self, start_ms: int, end_ms: int) -> Region:
        return Region(start_ms * self._rate // 1000, min(end_ms * self._rate // 1000, self._fed))

    @property
    def settled(self) -> int:
        return self._speech_from * self._rate // 1000

    @property
    def open_region(self) -> Region | None:
        judged = self._scan.pending_from_ms  # where the next silence can start at the earliest
        if judged <= self._speech_from:
            return None
        return self._region(self._speech_from, judged)


class RegionList:
    """A "detector" replaying regions known in advance, each returned once the audio reaches it.

    For planning segments from regions found elsewhere (another tool, an earlier run).
    """

    def __init__(self, regions: Iterable[Region | tuple[int, int]]) -> None:
        self._regions = sorted(
            Region(int(r[0]), int(r[1])) if isinstance(r, tuple) else r for r in regions
        )
        for a, b in itertools.pairwise(self._regions):
            if a.end > b.start or a.start >= a.end:
                raise ConfigError(f"regions must be non-empty and not overlap: {a}, {b}")
        self._next = 0
        self._fed = 0

    def feed(self, samples: np.ndarray) -> list[Region]:
        self._fed += len(as_mono_float32(samples))
        return self._take(self._fed)

    def finish(self) -> list[Region]:
        return [
            Region(r.start, min(r.end, self._fed)) for r in self._take(None) if r.start < self._fed
        ]

    def _take(self, upto: int | None) -> list[Region]:
        out = []
        while self._next < len(self._regions) and (
            upto is None or self._regions[self._next].end <= upto
        ):
            out.append(self._regions[self._next])
            self._next += 1
        return out

    @property
    def settled(self) -> int:
        if self._next < len(self._regions):
            return min(self._regions[self._next].start, max(self._fed, 0))
        return self._fed

    @property
    def open_region(self) -> Region | None:
        if self._next < len(self._regions) and self._regions[self._next].start < self._fed:
            return Region(self._regions[self._next].start, self._fed)
        return None


def make_detector(
    detector: DetectorName | Detector,
    *,
    vad_options: VadOptions | None = None,
    silence_options: SilenceOptions | None = None,
    sample_rate: int = SAMPLE_RATE,
) -> Detector:
    """A detector by name ("silero" or "silence"), or the detector object given."""
    if not isinstance(detector, str):
        return detector
    if detector == "silero":
        if sample_rate != SAMPLE_RATE:
            raise ConfigError(f"Silero VAD needs {SAMPLE_RATE} Hz audio, not {sample_rate} Hz")
        return SileroDetector(vad_options)
    if detector == "silence":
        return SilenceDetector(silence_options, sample_rate)
    raise ConfigError(f"unknown speech detector {detector!r}: use silero or silence")


def speech_regions(
    chunks: Iterable[Any],
    *,
    detector: DetectorName | Detector = "silero",
    vad_options: VadOptions | None = None,
    silence_options: SilenceOptions | None = None,
) -> Iterator[Region]:
    """Speech regions of a stream of 16 kHz mono chunks, each yielded as soon as it is final."""
    det = make_detector(detector, vad_options=vad_options, silence_options=silence_options)
    for chunk in chunks:
        yield from det.feed(as_mono_float32(chunk))
    yield from det.finish()
