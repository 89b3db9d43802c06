"""Service results as voxflow Segments: 100-ns ticks become seconds here, at the edge.

A detailed ``speech.phrase`` carries ``DisplayText``, ``NBest[0].Words`` (word, offset, duration,
confidence) and, with language identification, ``PrimaryLanguage`` with a confidence word.
The service gives no probability for the language, only High / Medium / Low, which become
the middle of the range that ``voxflow.languages.confidence_label`` gives each word, so that a
result read back through ``voxflow serve`` keeps its label.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from voxflow.engines.azure.bridge import Recognized
from voxflow.transcript import Segment, Word

TICKS_PER_SECOND = 10_000_000

LANGUAGE_CONFIDENCE: Mapping[str, float] = {"high": 0.9, "medium": 0.65, "low": 0.25}
"""Azure's language confidence words as numbers (``Unknown`` and anything else: None)."""


def seconds(ticks: Any) -> float:
    """100-ns ticks (int or numeric string) as seconds."""
    return int(ticks) / TICKS_PER_SECOND


def language_confidence(word: Any) -> float | None:
    """The number for Azure's ``High``/``Medium``/``Low``; None for ``Unknown`` or nothing."""
    return LANGUAGE_CONFIDENCE.get(str(word or "").strip().lower())


def match_tag(found: str | None, tags: Sequence[str]) -> str | None:
    """The caller's spelling of the locale the service reported (``en-us`` → ``en-US``)."""
    if not found:
        return None
    key = found.strip().lower()
    return next((t for t in tags if t.lower() == key), found)


def to_segment(
    event: Recognized,
    *,
    start: float,
    languages: Sequence[str],
    word_timestamps: bool = True,
) -> Segment | None:
    """The segment of a ``recognized`` result, its times moved by ``start`` (the session's place
    in the source); None for results without speech (NoMatch, empty text).

    ``languages``: the session's tags; one means forced (confidence 1.0), several are the
    candidates the service chose among.
    """
    if event.reason != "RecognizedSpeech":
        return None
    try:
        body: dict[str, Any] = json.loads(event.json) if event.json else {}
    except ValueError:
        body = {}
    text = str(body.get("DisplayText") or event.text or "").strip()
    if not text:
        return None
    seg_start = start + seconds(event.offset)
    seg_end = seg_start + seconds(event.duration)
    if len(languages) == 1:
        language: str | None = languages[0]
        confidence: float | None = 1.0
    else:
        primary = body.get("PrimaryLanguage") or {}
        language = match_tag(primary.get("Language") or event.language, languages)
        confidence = language_confidence(primary.get("Confidence"))
    words: tuple[Word, ...] = ()
    best = (body.get("NBest") or [{}])[0]
    if word_timestamps and isinstance(best, dict):
        words = tuple(_words(best.get("Words") or (), start))
    return Segment(
        start=round(seg_start, 3),
        end=round(seg_end, 3),
        text=text,
        language=language,
        confidence=confidence,
        words=words,
        speaker=event.speaker,
    )


def _words(items: Sequence[Mapping[str, Any]], start: float) -> list[Word]:
    out = []
    for item in items:
        try:
            a = start + seconds(item["Offset"])
            b = a + seconds(item["Duration"])
        except (KeyError, TypeError, ValueError):
            continue  # a word without times cannot be placed
        p = item.get("Confidence")
        out.append(
            Word(
                start=round(a, 3),
                end=round(b, 3),
                word=str(item.get("Word", "")),
                probability=None if p is None else round(float(p), 4),
            )
        )
    return out
