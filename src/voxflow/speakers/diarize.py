"""Who spoke when: speaker embeddings of short windows of speech, clustered into voices.

The pipeline hands each clip of speech to :class:`SpeakerTracker` as it goes by; the tracker
keeps only one 192-value embedding per 0.75 s of speech (about 2.7 MB per hour), never the
audio, so diarization needs no second pass over the source and no recording in memory. When
the source ends, :meth:`SpeakerTracker.finish` clusters the embeddings into speakers and
returns their turns, which :func:`voxflow.speakers.assign.label` applies to the transcript.

With ``DiarizeOptions.segmentation`` each clip also passes through pyannote's segmentation
model in 10 s chunks (CHUNK_STEP apart), of which the tracker keeps one byte per 17 ms frame
(about 0.4 MB per hour of speech): at the end they give the stretches where two voices speak at
once and move each change of speaker to where the frames put it (:mod:`.overlap`).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from voxflow.audio.pcm import SAMPLE_RATE
from voxflow.errors import ConfigError
from voxflow.speakers.campplus import HOP, fbank
from voxflow.speakers.cluster import cluster
from voxflow.speakers.overlap import Chunk, Overlap, chunk_offset, frame_voices, overlaps, refine
from voxflow.speakers.segmentation import CHUNK, Segmentation
from voxflow.vad import VadOptions, speech_regions

WINDOW = 1.5  # seconds of speech per embedding
STEP = 0.75  # seconds between window starts
MIN_WINDOW = 0.4  # speech shorter than this gets no embedding of its own
RELIABLE = 0.8  # windows of less speech do not shape the clusters (they join the nearest)
BATCH = 16  # windows per network call
CHUNK_STEP = 5.0  # seconds between the starts of a clip's segmentation chunks
CHUNK_BATCH = 6  # segmentation chunks per network call (a 30 s clip's)
IN_FLIGHT = 4  # clips queued for embedding before the pipeline waits (bounds the audio held)
_SPEECH = VadOptions(min_silence_duration_ms=150, speech_pad_ms=30, rescue_db=None)


@dataclass(frozen=True)
class DiarizeOptions:
    """How many speakers to look for: exactly ``speakers``, or between ``min_speakers`` and
    ``max_speakers`` (found from the voices); with ``segmentation``, also where voices
    overlap, and changes of speaker placed by the segmentation model's 17 ms frames."""

    speakers: int | None = None
    min_speakers: int = 1
    max_speakers: int = 8
    segmentation: bool = True

    def __post_init__(self) -> None:
        if self.speakers is not None and self.speakers < 1:
            raise ConfigError(f"the number of speakers must be at least 1, not {self.speakers}")
        if not 1 <= self.min_speakers <= self.max_speakers:
            raise ConfigError(
                f"speaker bounds need 1 <= min ({self.min_speakers}) <= max ({self.max_speakers})"
            )

    @property
    def bounds(self) -> tuple[int, int]:
        """The fewest and most speakers allowed."""
        if self.speakers is not None:
            return self.speakers, self.speakers
        return self.min_speakers, self.max_speakers

    def fingerprint(self) -> dict[str, object]:
        low, high = self.bounds
        out: dict[str, object] = {"min_speakers": low, "max_speakers": high}
        if not self.segmentation:  # absent otherwise, so earlier jobs keep their prints
            out["segmentation"] = False
        return out


Span = tuple[float, float, float, float]  # an embedding's window, then the stretch it speaks for


@dataclass(frozen=True)
class Voiceprints:
    """Speaker embeddings of stretches of speech, and the segmentation's frames of its chunks,
    what the turns and overlaps are found from: small (192 values per 0.75 s, a byte per
    17 ms), so a cluster worker sends these instead of audio. Added together, the prints of a
    source's parts find the turns that the prints of the whole would."""

    spans: tuple[Span, ...] = ()
    vectors: tuple[np.ndarray, ...] = ()
    chunks: tuple[Chunk, ...] = ()

    def __add__(self, other: Voiceprints) -> Voiceprints:
        return Voiceprints(self.spans + other.spans, self.vectors + other.vectors,
                           self.chunks + other.chunks)  # fmt: skip

    def diarize(self, options: DiarizeOptions) -> Diarization:
        """The speakers' turns in time order, labelled S1, S2 … by first appearance, and
        where two of them overlap (from the chunks' frames, if any)."""
        order = sorted(range(len(self.spans)), key=lambda i: self.spans[i])
        spans = [self.spans[i] for i in order]
        if not spans:
            return Diarization([], [])
        vectors = np.stack([self.vectors[i] for i in order])
        reliable = np.array([end - start >= RELIABLE for start, end, _, _ in spans])
        labels = cluster(vectors, *options.bounds, reliable=reliable)
        turns: list[tuple[float, float, int]] = []
        for (_, _, a, b), label in zip(spans, labels, strict=True):
            if turns and turns[-1][2] == label and a - turns[-1][1] < STEP:
                turns[-1] = (turns[-1][0], max(b, turns[-1][1]), int(label))
            else:
                turns.append((max(a, turns[-1][1]) if turns else a, b, int(label)))
        names = [f"S{k + 1}" for k in range(int(labels.max()) + 1)]
        found: list[Overlap] = []
        if self.chunks:
            voices = frame_voices(self.chunks, turns, len(names))
            turns = refine(turns, voices)
            found = overlaps(voices, names)
        return Diarization([Turn(a, b, names[v]) for a, b, v in turns], found)


@dataclass(frozen=True)
class Turn:
    """A stretch of one speaker's voice, in seconds from the start of the source."""

    start: float
    end: float
    speaker: str


@dataclass(frozen=True)
class Diarization:
    """Who spoke when: one speaker's turns, which never overlap, and the stretches where two
    voices speak at once (empty without segmentation)."""

    turns: list[Turn]
    overlaps: list[Overlap]


class SpeakerTracker:
    """Collects speaker embeddings of clips as they pass, then finds the speakers' turns.

    :meth:`add` may be called from any thread; clips may come in any order and may overlap.
    In a running event loop, :meth:`feed` embeds clips in a thread of the tracker's own, at
    most IN_FLIGHT waiting, and :meth:`result` waits for them and clusters; :meth:`close` stops
    that thread.
    """

    def __init__(self, options: DiarizeOptions | None = None) -> None:
        from voxflow.speakers.models import campplus, segmentation

        self.options = options or DiarizeOptions()
        self._model = campplus()
        self._segmentation = segmentation() if self.options.segmentation else None
        self._chunks: list[Chunk] = []
        self._lock = threading.Lock()
        self._spans: list[Span] = []
        self._embeddings: list[np.ndarray] = []
        self._worker: ThreadPoolExecutor | None = None
        self._queued: deque[Future[None]] = deque()

    def add(self, start: float, samples: np.ndarray) -> None:
        """Embed the speech of one clip starting at ``start`` seconds."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        windows: list[Span] = []
        feats: list[np.ndarray] = []
        for region in speech_regions([samples], vad_options=_SPEECH):
            a, b = region.start / SAMPLE_RATE, region.end / SAMPLE_RATE
            if b - a < MIN_WINDOW:
                continue
            region_feats = fbank(samples[region.start : region.end])
            starts = _window_starts(b - a)
            for i, s in enumerate(starts):
                e = min(s + WINDOW, b - a)
                owned_from = a + (s + starts[i - 1] + WINDOW) / 2 if i else a
                owned_to = a + (s + starts[i + 1] + WINDOW) / 2 if i + 1 < len(starts) else b
                f0 = round(s * SAMPLE_RATE / HOP)
                f1 = min(len(region_feats), max(f0 + 1, round(e * SAMPLE_RATE / HOP)))
                windows.append((start + a + s, start + a + e, start + owned_from, start + owned_to))
                feats.append(region_feats[f0:f1])
        embeddings = self._embed(feats)
        model = self._segmentation
        chunks = _segment(model, start, samples) if model is not None else []
        with self._lock:
            self._spans += windows
            self._embeddings += list(embeddings)
            self._chunks += chunks

    async def feed(self, start: float, samples: np.ndarray) -> None:
        """Queue a clip for embedding; waits while IN_FLIGHT clips are already queued."""
        if self._worker is None:
            self._worker = ThreadPoolExecutor(1, thread_name_prefix="voxflow-speakers")
        self._queued.append(self._worker.submit(self.add, start, samples))
        while len(self._queued) > IN_FLIGHT or (self._queued and self._queued[0].done()):
            await asyncio.wrap_future(self._queued.popleft())

    async def result(self) -> Diarization:
        """:meth:`finish` once every queued clip is embedded."""
        prints = await self.gathered()
        return await asyncio.to_thread(prints.diarize, self.options)

    def close(self) -> None:
        """Drop queued clips and stop the embedding thread."""
        for future in self._queued:
            future.cancel()
        self._queued.clear()
        if self._worker is not None:
            self._worker.shutdown(wait=False, cancel_futures=True)
            self._worker = None

    def _embed(self, feats: list[np.ndarray]) -> list[np.ndarray]:
        """Embeddings of filterbank windows, equally long ones batched together."""
        out: list[np.ndarray | None] = [None] * len(feats)
        by_length: dict[int, list[int]] = {}
        for i, f in enumerate(feats):
            by_length.setdefault(len(f), []).append(i)
        for indices in by_length.values():
            for k in range(0, len(indices), BATCH):
                chunk = indices[k : k + BATCH]
                vectors = self._model.embed(np.stack([feats[i] for i in chunk]))
                for i, v in zip(chunk, vectors, strict=True):
                    out[i] = v.astype(np.float32)
        return [v for v in out if v is not None]

    def voiceprints(self) -> Voiceprints:
        """The embeddings (and segmentation frames) of the clips added so far."""
        with self._lock:
            return Voiceprints(tuple(self._spans), tuple(self._embeddings), tuple(self._chunks))

    async def gathered(self) -> Voiceprints:
        """:meth:`voiceprints` once every queued clip is embedded."""
        while self._queued:
            await asyncio.wrap_future(self._queued.popleft())
        return self.voiceprints()

    def finish(self) -> Diarization:
        """The speakers' turns in time order, labelled S1, S2 … by first appearance, and
        where they overlap."""
        return self.voiceprints().diarize(self.options)


def _segment(model: Segmentation, start: float, samples: np.ndarray) -> list[Chunk]:
    """The frame classes of a clip's 10 s chunks, CHUNK_STEP apart, the last one ending with
    the clip (a shorter clip is one chunk of its own length)."""
    size, step = round(CHUNK * SAMPLE_RATE), round(CHUNK_STEP * SAMPLE_RATE)
    if len(samples) < MIN_WINDOW * SAMPLE_RATE:  # too short to tell anyone apart
        return []
    if len(samples) <= size:
        starts = [0]
    else:
        starts = [*range(0, len(samples) - size, step), len(samples) - size]
    out = []
    for k in range(0, len(starts), CHUNK_BATCH):
        batch = starts[k : k + CHUNK_BATCH]
        classes = model.classes(np.stack([samples[s : s + size] for s in batch]))
        out += [Chunk(chunk_offset(start + s / SAMPLE_RATE), c)
                for s, c in zip(batch, classes, strict=True)]  # fmt: skip
    return out


def _window_starts(length: float) -> list[float]:
    """Starts of the windows over ``length`` seconds of speech: every STEP, the last one
    ending with the speech."""
    if length <= WINDOW:
        return [0.0]
    starts = list(np.arange(0.0, length - WINDOW, STEP))
    starts.append(length - WINDOW)
    return [float(s) for s in starts]
