"""The PCM that the pipeline works on (16 kHz mono float32), and frame energies over it.

One definition of the sample rate, and one of frame power, for the segmenter, the engines
and language identification alike.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
"""Samples per second of the audio every engine and segmenter receives (Whisper's rate)."""


def frame_power(samples: np.ndarray, frame: int) -> np.ndarray:
    """Mean square of each whole ``frame``-sample frame (float64; a partial last frame is left
    out)."""
    usable = len(samples) // frame * frame
    x = samples[:usable].astype(np.float64)
    return np.square(x).reshape(-1, frame).mean(axis=1)


def frame_db(samples: np.ndarray, frame: int) -> np.ndarray:
    """The level of each whole frame in dB (full scale 1.0 is 0 dB; silence about -120 dB)."""
    return 10 * np.log10(frame_power(samples, frame) + 1e-12)
