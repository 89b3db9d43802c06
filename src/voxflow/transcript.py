"""The public vocabulary of results: a Transcript of Segments of Words, times in seconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    """One recognised word; ``start``/``end`` in seconds from the start of the source."""

    start: float
    end: float
    word: str
    probability: float | None = None  # None where the engine gives no word confidence
    speaker: str | None = None  # "S1", "S2" … with diarization


@dataclass(frozen=True)
class Segment:
    """A stretch of speech in one language with its text and, when known, its words."""

    start: float
    end: float
    text: str
    language: str | None = None
    confidence: float | None = None
    words: tuple[Word, ...] = ()
    speaker: str | None = None  # one speaker per segment with diarization


@dataclass(frozen=True)
class Speaker:
    """A voice that diarization found: its label and its seconds of speech."""

    id: str
    speaking_time: float


@dataclass(frozen=True)
class Transcript:
    """Everything recognised in one source, in time order."""

    source: str
    duration: float
    segments: tuple[Segment, ...] = ()
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    speakers: tuple[Speaker, ...] = ()  # with diarization, in order of first appearance

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())
