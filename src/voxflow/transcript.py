"""The public vocabulary of results: a Transcript of Segments of Words, times in seconds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Word:
    """One recognised word; ``start``/``end`` in seconds from the start of the source."""

    start: float
    end: float
    word: str
    probability: float | None = None  # None where the engine gives no word confidence


@dataclass(frozen=True)
class Segment:
    """A stretch of speech in one language with its text and, when known, its words."""

    start: float
    end: float
    text: str
    language: str | None = None
    confidence: float | None = None
    words: tuple[Word, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["words"] = [asdict(w) for w in self.words]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Segment:
        words = tuple(Word(**w) for w in data.get("words") or ())
        return cls(
            start=float(data["start"]),
            end=float(data["end"]),
            text=str(data["text"]),
            language=data.get("language"),
            confidence=data.get("confidence"),
            words=words,
        )


@dataclass(frozen=True)
class Transcript:
    """Everything recognised in one source, in time order."""

    source: str
    duration: float
    segments: tuple[Segment, ...] = ()
    language: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "source": self.source,
            "duration": self.duration,
            "language": self.language,
            "segments": [s.to_dict() for s in self.segments],
        }
        data.update(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        known = {"source", "duration", "language", "segments"}
        return cls(
            source=str(data["source"]),
            duration=float(data["duration"]),
            language=data.get("language"),
            segments=tuple(Segment.from_dict(s) for s in data.get("segments") or ()),
            extra={k: v for k, v in data.items() if k not in known},
        )
