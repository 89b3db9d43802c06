"""The small async protocol every recognition engine implements, and the clip it works on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from voxflow.errors import EngineError
from voxflow.languages import LidMode
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


# -- optional capabilities: what an engine may declare beyond the protocol above -------------


@dataclass(frozen=True)
class Capabilities:
    """What the pipeline may plan around; the defaults are the embedded engine's behaviour.

    ``max_clip``: the longest clip the engine takes (seconds); the pipeline then packs speech,
    across pauses up to ``merge_gap`` long, into clips up to that length, cut at silences (None:
    the pipeline's own ``max_segment``, Whisper's 30 s window). ``parallel_clips``: clips the
    engine works on at once; above 1 each clip is its own ``recognize`` call, and that many are
    kept in flight. ``identifies_languages``: the engine takes BCP-47 tags and a LID mode in
    ``recognize_languages`` and identifies languages itself (a service), so the pipeline never
    calls ``identify``. ``reads_source``: the engine reads the whole source itself
    (``recognize_source``), e.g. to send the original compressed bytes.
    """

    max_clip: float | None = None
    merge_gap: float | None = None
    parallel_clips: int = 1
    identifies_languages: bool = False
    reads_source: bool = False


def capabilities(engine: object) -> Capabilities:
    """The engine's declared capabilities, or the defaults when it declares none."""
    caps = getattr(engine, "capabilities", None)
    return caps if isinstance(caps, Capabilities) else Capabilities()


class LanguageIdentifyingEngine(Engine, Protocol):
    """An engine with ``Capabilities(identifies_languages=True)``."""

    async def recognize_languages(
        self, clips: Sequence[Clip], languages: Sequence[str], mode: LidMode
    ) -> list[list[Segment]]:
        """Transcribe each clip; ``languages`` are BCP-47 tags: one (forced), several
        (candidates, identified ``mode``-wise), or none (the engine's default). Segments carry
        their language as one of those tags and its confidence."""
        ...


class SourceReadingEngine(Engine, Protocol):
    """An engine with ``Capabilities(reads_source=True)``."""

    def recognize_source(
        self,
        source: Any,
        languages: Sequence[str],
        mode: LidMode,
        *,
        name: str,
        info: dict[str, Any],
    ) -> AsyncIterator[Segment]:
        """Segments of the whole source in time order; ``info["duration"]`` set when known."""
        ...


@dataclass(frozen=True)
class FailedClip:
    """A stretch of the source an engine could not recognise (after its retries), and why."""

    start: float
    end: float
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "error": self.error}


class ClipsFailed(EngineError):
    """Some clips of a call failed: ``results`` holds every clip's segments (empty for the
    failed ones) and ``failures`` says which stretches were lost and why, so nothing is lost
    silently: the pipeline keeps the rest and reports the gaps."""

    def __init__(
        self, message: str, *, results: list[list[Segment]], failures: Sequence[FailedClip]
    ) -> None:
        super().__init__(message)
        self.results = results
        self.failures: list[FailedClip] = list(failures)
