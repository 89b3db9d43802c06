"""The small async protocol every recognition engine implements, and what it works with: the
clip, the per-call decode settings, the engine's declared capabilities."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np

from voxflow.audio.pcm import SAMPLE_RATE
from voxflow.errors import ConfigError, EngineError
from voxflow.languages import Identified, Language, LanguagePlan
from voxflow.transcript import Segment


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
class DecodeSettings:
    """How one ``recognize`` call decodes, whatever the engine: the beam width (1: greedy),
    word times, hint phrases (Whisper's hotwords, Azure's phrase list), the task: the speech as
    said (``transcribe``) or in English (``translate``, Whisper's translation), speaker ids
    from an engine that identifies speakers (Azure's conversation transcription), and whether
    the call is for an interim hypothesis, which an engine serves only when no final decode
    waits. Passed per call, so a server can decode interim results greedily and each turn or
    request with its own phrases and task."""

    beam_size: int = 5
    word_timestamps: bool = True
    phrases: tuple[str, ...] = ()
    task: Literal["transcribe", "translate"] = "transcribe"
    speakers: bool = False
    interim: bool = False

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ConfigError(f"the beam size must be at least 1, got {self.beam_size}")
        if self.task not in ("transcribe", "translate"):
            raise ConfigError(f"unknown task {self.task!r}: use transcribe or translate")
        object.__setattr__(self, "phrases", tuple(p.strip() for p in self.phrases if p.strip()))

    def fingerprint(self) -> dict[str, object]:
        """Every field but ``interim`` (when, not what) changes the output."""
        out: dict[str, object] = {"beam_size": self.beam_size,
                                  "word_timestamps": self.word_timestamps,
                                  "phrases": list(self.phrases)}  # fmt: skip
        # Absent at their defaults, so that earlier jobs keep their prints.
        if self.task != "transcribe":
            out["task"] = self.task
        if self.speakers:
            out["speakers"] = True
        return out


@dataclass(frozen=True)
class Capabilities:
    """What the pipeline may plan around; the defaults are the embedded engine's behaviour.

    ``max_clip``: the longest clip the engine takes (seconds); the pipeline then packs speech,
    across pauses up to ``merge_gap`` long, into clips up to that length, cut at silences (None:
    the pipeline's own ``max_segment``, Whisper's 30 s window). ``parallel_clips``: clips the
    engine works on at once; above 1 each clip is its own ``recognize`` call, and that many are
    kept in flight. ``workers``: batches the engine works on at once (its model workers).
    ``identifies_languages``: the engine identifies the language of each clip itself (a
    service), so the pipeline hands it the plan's candidates rather than deciding at the start.
    ``reads_source``: the engine reads the whole source itself (``recognize_source``), e.g. to
    send the original compressed bytes. ``languages``: the Whisper codes it can recognise
    (None: any the plan names). ``identifies_speakers``: asked with ``DecodeSettings.speakers``,
    the engine labels segments with speaker ids of its own, valid within one clip.
    """

    max_clip: float | None = None
    merge_gap: float | None = None
    parallel_clips: int = 1
    workers: int = 1
    identifies_languages: bool = False
    reads_source: bool = False
    languages: Collection[str] | None = None
    identifies_speakers: bool = False


class EngineOptions(Protocol):
    """An engine's own options (``WhisperOptions``, ``AzureOptions``): typed, frozen, and able
    to say which of their values change a transcript."""

    def fingerprint(self) -> dict[str, object]:
        """The fields that change an output, for a job to know when to redo a file."""
        ...


class Engine(Protocol):
    """Recognises clips; results carry times in seconds from the start of the source."""

    name: str
    options: EngineOptions
    capabilities: Capabilities

    async def identify(
        self, clips: Sequence[Clip], candidates: Sequence[Language]
    ) -> list[Identified]:
        """Decide, for each clip, which of the candidate languages it holds (none: any)."""
        ...

    async def recognize(
        self, clips: Sequence[Clip], plan: LanguagePlan, settings: DecodeSettings
    ) -> list[list[Segment]]:
        """Transcribe each clip by the plan: in its fixed language, or identifying among its
        candidates. Segments carry their language as the user named it (``Language.tag``) and
        the confidence of that language."""
        ...

    async def aclose(self) -> None:
        """Release worker threads and connections."""
        ...


class SourceReadingEngine(Engine, Protocol):
    """An engine with ``Capabilities(reads_source=True)``."""

    def recognize_source(
        self,
        source: Any,
        plan: LanguagePlan,
        settings: DecodeSettings,
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
