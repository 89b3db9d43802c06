"""Messages the service sends back, built from seconds and converted to 100-ns ticks here.

Offsets in a turn are relative to the audio that turn carried: in a continuation turn the SDK
replays audio from the continuation offset and adds that offset back to what it reports. So
callers give session times in seconds and the turn's ``base`` (its continuation offset), and
these builders subtract it. The Offset+Duration of the last phrase-like message tells the SDK
how much audio was dealt with; audio left beyond it is replayed in a new turn.
"""

from __future__ import annotations

import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from voxflow.errors import ProtocolError
from voxflow.languages import confidence_label
from voxflow.server.usp.frames import encode_text_frame, json_body, parse_text_frame, timestamp
from voxflow.server.usp.options import TICKS_PER_SECOND
from voxflow.transcript import Segment, Word

JSON_CONTENT = "application/json; charset=utf-8"


class RecognitionStatus(StrEnum):
    """``RecognitionStatus`` values of ``speech.phrase``."""

    SUCCESS = "Success"
    NO_MATCH = "NoMatch"
    INITIAL_SILENCE_TIMEOUT = "InitialSilenceTimeout"
    BABBLE_TIMEOUT = "BabbleTimeout"
    END_OF_DICTATION = "EndOfDictation"
    ERROR = "Error"
    BAD_REQUEST = "BadRequest"


def seconds_to_ticks(seconds: float, base: float = 0.0) -> int:
    """100-ns ticks of ``seconds`` after ``base``; never negative."""
    return max(0, round((seconds - base) * TICKS_PER_SECOND))


def ticks_to_seconds(ticks: int, base: float = 0.0) -> float:
    """Seconds of ``ticks`` 100-ns units, plus ``base``."""
    return base + ticks / TICKS_PER_SECOND


def lexical(text: str) -> str:
    """Lower case without surrounding punctuation, as the service's Lexical form reads."""
    return " ".join(w for w in map(_strip, text.lower().split()) if w)


def _punct(char: str) -> bool:
    return unicodedata.category(char).startswith("P")


def _strip(word: str) -> str:
    start, end = 0, len(word)
    while start < end and _punct(word[start]):
        start += 1
    while end > start and _punct(word[end - 1]):
        end -= 1
    return word[start:end]


def _primary(language: str, probability: float | None) -> dict[str, str]:
    return {"Language": language, "Confidence": confidence_label(probability)}


def _span(start: float, end: float, base: float) -> dict[str, int]:
    offset = seconds_to_ticks(start, base)
    return {"Offset": offset, "Duration": max(0, seconds_to_ticks(end, base) - offset)}


def status_body(
    status: RecognitionStatus,
    start: float,
    end: float,
    *,
    base: float = 0.0,
    reason: str | None = None,
) -> dict[str, Any]:
    """A phrase without text: NoMatch, EndOfDictation, timeouts, errors. ``reason`` (as
    ``FailureReason``) says why a request is refused: the SDK puts the body it got into the
    cancellation's error details."""
    body: dict[str, Any] = {"RecognitionStatus": str(status), **_span(start, end, base)}
    if reason is not None:
        body["FailureReason"] = reason
    return body


def translation_body(translations: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The translations of a ``translation.response``: each (language, text) pair, in the
    languages as the client named them (they key the SDK's ``result.translations``)."""
    return {
        "TranslationStatus": "Success",
        "Translations": [{"Language": lang, "Text": text.strip()} for lang, text in translations],
    }


def language_body(
    language: str, probability: float | None, start: float, end: float, *, base: float = 0.0
) -> dict[str, Any]:
    """A language-only ``speech.phrase`` (SourceLanguageRecognizer): the speech's span and its
    language, no text; the SDK reports it as RecognizedSpeech with that language."""
    return {
        "RecognitionStatus": str(RecognitionStatus.SUCCESS),
        **_span(start, end, base),
        "PrimaryLanguage": _primary(language, probability),
    }


def phrase_body(
    text: str,
    start: float,
    end: float,
    *,
    base: float = 0.0,
    detailed: bool = False,
    language: str | None = None,
    language_probability: float | None = None,
    confidence: float | None = None,
    words: Sequence[Word] = (),
    word_confidence: bool = True,
) -> dict[str, Any]:
    """A successful ``speech.phrase`` body, simple or detailed (NBest with Words)."""
    display = text.strip()
    body: dict[str, Any] = {
        "RecognitionStatus": str(RecognitionStatus.SUCCESS),
        **_span(start, end, base),
        "DisplayText": display,
    }
    if language is not None:
        body["PrimaryLanguage"] = _primary(language, language_probability)
    if detailed:
        lex = lexical(display)
        best: dict[str, Any] = {"Lexical": lex, "ITN": lex, "MaskedITN": lex, "Display": display}
        if confidence is not None:
            best = {"Confidence": round(confidence, 6), **best}
        if words:
            best["Words"] = [_word(w, base, word_confidence) for w in words]
        body["NBest"] = [best]
    return body


def _word(word: Word, base: float, with_confidence: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Word": lexical(word.word) or word.word.strip(),
        **_span(word.start, word.end, base),
    }
    if with_confidence:
        entry["Confidence"] = round(word.probability, 6)
    return entry


def segment_body(
    segment: Segment,
    *,
    base: float = 0.0,
    detailed: bool = False,
    language: str | None = None,
    language_probability: float | None = None,
    word_timings: bool = True,
    word_confidence: bool = True,
) -> dict[str, Any]:
    """A phrase body for a voxflow Segment; ``language`` (a locale) overrides segment.language;
    a segment's speaker ``S1`` becomes the service's ``SpeakerId`` ``Guest-1``."""
    confidence = segment.confidence
    if confidence is None and segment.words:
        confidence = sum(w.probability for w in segment.words) / len(segment.words)
    body = phrase_body(
        segment.text,
        segment.start,
        segment.end,
        base=base,
        detailed=detailed,
        language=language or segment.language,
        language_probability=language_probability,
        confidence=confidence,
        words=segment.words if word_timings else (),
        word_confidence=word_confidence,
    )
    if segment.speaker is not None:
        body["SpeakerId"] = "Guest-" + segment.speaker.removeprefix("S")
    return body


@dataclass(frozen=True)
class Replies:
    """The service's messages for one turn (one ``request_id``), times relative to ``base``."""

    request_id: str
    base: float = 0.0
    clock: Callable[[], datetime] | None = None

    def message(self, path: str, body: dict[str, Any]) -> str:
        """Any service message: Path, X-RequestId, X-Timestamp, Content-Type, JSON body."""
        now = self.clock() if self.clock else datetime.now(UTC)
        headers = [
            ("Path", path),
            ("X-RequestId", self.request_id),
            ("X-Timestamp", timestamp(now)),
            ("Content-Type", JSON_CONTENT),
        ]
        return encode_text_frame(headers, json_body(body), sep=": ")

    def turn_start(self, service_tag: str | None = None) -> str:
        """``turn.start``; the tag comes back as ``previousServiceTag`` in a continuation."""
        return self.message(
            "turn.start", {"context": {"serviceTag": service_tag or uuid.uuid4().hex}}
        )

    def start_detected(self, at: float) -> str:
        return self.message("speech.startDetected", {"Offset": seconds_to_ticks(at, self.base)})

    def hypothesis(
        self,
        text: str,
        start: float,
        end: float,
        *,
        language: str | None = None,
        language_probability: float | None = None,
    ) -> str:
        """``speech.hypothesis``: an interim result (the SDK's ``recognizing`` event)."""
        body = self._hypothesis_body(text, start, end, language, language_probability)
        return self.message("speech.hypothesis", body)

    def _hypothesis_body(
        self, text: str, start: float, end: float, language: str | None, probability: float | None
    ) -> dict[str, Any]:
        """An interim result's text and span, and its language when one is reported."""
        body: dict[str, Any] = {"Text": text.strip(), **_span(start, end, self.base)}
        if language is not None:
            body["PrimaryLanguage"] = _primary(language, probability)
        return body

    def phrase(self, body: dict[str, Any]) -> str:
        """``speech.phrase`` with a body from phrase_body, segment_body or status_body."""
        return self.message("speech.phrase", body)

    def segment(self, segment: Segment, **options: Any) -> str:
        """``speech.phrase`` for a Segment; options as segment_body takes them."""
        return self.phrase(segment_body(segment, base=self.base, **options))

    def language(self, language: str, probability: float | None, start: float, end: float) -> str:
        """``speech.phrase`` naming only the language of the speech from ``start`` to ``end``."""
        return self.phrase(language_body(language, probability, start, end, base=self.base))

    def status(
        self, status: RecognitionStatus, start: float, end: float, *, reason: str | None = None
    ) -> str:
        """``speech.phrase`` without text (NoMatch, EndOfDictation at the end of the audio...);
        ``reason`` says why a request is refused (see ``status_body``)."""
        return self.phrase(status_body(status, start, end, base=self.base, reason=reason))

    def translated_hypothesis(
        self,
        text: str,
        start: float,
        end: float,
        translations: Sequence[tuple[str, str]],
        *,
        language: str | None = None,
        language_probability: float | None = None,
    ) -> str:
        """``translation.response`` with a ``SpeechHypothesis``: interim text as said and its
        translations (the SDK's ``recognizing`` event, reason TranslatingSpeech)."""
        said = self._hypothesis_body(text, start, end, language, language_probability)
        body = {"SpeechHypothesis": said, **translation_body(translations)}
        return self.message("translation.response", body)

    def translated(
        self,
        segment: Segment,
        translations: Sequence[tuple[str, str]],
        *,
        language: str | None = None,
        language_probability: float | None = None,
    ) -> str:
        """``translation.response`` with a ``SpeechPhrase``: a Segment as said and its
        translations (the SDK's ``recognized`` event, reason TranslatedSpeech)."""
        said = phrase_body(
            segment.text,
            segment.start,
            segment.end,
            base=self.base,
            language=language,
            language_probability=language_probability,
        )
        body = {"SpeechPhrase": said, **translation_body(translations)}
        return self.message("translation.response", body)

    def end_detected(self, at: float) -> str:
        return self.message("speech.endDetected", {"Offset": seconds_to_ticks(at, self.base)})

    def turn_end(self) -> str:
        return self.message("turn.end", {})


@dataclass(frozen=True)
class ServiceMessage:
    """A service message as a client reads it."""

    path: str
    request_id: str
    headers: dict[str, str]
    body: dict[str, Any]


def parse_service_message(message: str | bytes) -> ServiceMessage:
    """Parse a service text frame (what Replies builds); ProtocolError when malformed."""
    frame = parse_text_frame(message)
    if not frame.path or not frame.request_id:
        raise ProtocolError("service message without Path or X-RequestId")
    return ServiceMessage(frame.path, frame.request_id, dict(frame.headers), frame.json())
