"""The small async protocol every recognition engine implements, and the clip it works on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from voxflow.transcript import Segment

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Clip:
    """A stretch of 16 kHz mono float32 audio cut from a source, with its place in that source."""

    start: float
    samples: np.ndarray

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class Identified:
    """The outcome of language identification over candidate languages (Whisper codes)."""

    language: str
    confidence: float
    probabilities: dict[str, float]


class Engine(Protocol):
    """Recognises clips; results carry times in seconds from the start of the source."""

    name: str

    async def identify(self, clips: Sequence[Clip], candidates: Sequence[str]) -> list[Identified]:
        """Decide, for each clip, which of the candidate languages (Whisper codes) it holds."""
        ...

    async def recognize(
        self, clips: Sequence[Clip], languages: Sequence[str | None]
    ) -> list[list[Segment]]:
        """Transcribe each clip in the given language (None: the engine decides)."""
        ...

    async def aclose(self) -> None:
        """Release worker threads and connections."""
        ...
