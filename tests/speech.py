"""Test helper: real synthetic speech (espeak-ng, resampled by sox) with pauses of known length."""

from __future__ import annotations

import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

RATE = 16000


def need_tools() -> None:
    """Skip the calling test unless espeak-ng and sox are installed."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} absent: synthetic-speech tests need it")


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit PCM WAV file as float32 mono samples (first channel)."""
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2, path
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        x = x.reshape(-1, w.getnchannels())[:, 0]
    return x.astype(np.float32) / 32768.0


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    """Write float32 mono samples as a 16-bit PCM WAV file."""
    pcm = np.clip(np.round(samples * 32767.0), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def say(text: str, workdir: Path, *, voice: str = "en", wpm: int = 160) -> np.ndarray:
    """``text`` spoken by espeak-ng, resampled to 16 kHz and trimmed to its audible extent."""
    need_tools()
    raw, out = workdir / "say-raw.wav", workdir / "say-16k.wav"
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(raw), text],
        check=True,
        capture_output=True,
    )
    subprocess.run(["sox", str(raw), "-r", str(RATE), str(out)], check=True, capture_output=True)
    x = read_wav(out)
    loud = np.flatnonzero(np.abs(x) > 1e-3)
    return x[loud[0] : loud[-1] + 1]


def speech_with_pauses(
    workdir: Path,
    sentences: list[str],
    *,
    pause: float = 1.5,
    lead: float = 1.0,
    tail: float = 1.0,
    voice: str = "en",
) -> tuple[Path, list[tuple[float, float]]]:
    """A WAV file of the sentences separated by ``pause`` s of digital silence.

    Returns the file and where each sentence truly is, in seconds.
    """
    parts = [np.zeros(round(lead * RATE), dtype=np.float32)]
    truth = []
    at = len(parts[0])
    for i, text in enumerate(sentences):
        if i:
            parts.append(np.zeros(round(pause * RATE), dtype=np.float32))
            at += len(parts[-1])
        clip = say(text, workdir, voice=voice)
        parts.append(clip)
        truth.append((at / RATE, (at + len(clip)) / RATE))
        at += len(clip)
    parts.append(np.zeros(round(tail * RATE), dtype=np.float32))
    path = write_wav(workdir / "speech.wav", np.concatenate(parts))
    return path, truth
