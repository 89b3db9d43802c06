"""The options of one turn: what ``speech.context`` asks for, and the settings it resolves to.

``speech.context`` carries per-turn options (language, detailed output, language id, phrase
lists, a continuation offset); the request target carries per-connection ones. Resolving both
gives the TurnSettings a recogniser needs. Times are seconds here; ticks stay in the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from voxflow.errors import ProtocolError
from voxflow.languages import LidMode
from voxflow.server.usp.target import RecognitionMode, RequestOptions

TICKS_PER_SECOND = 10_000_000
# phraseDetection.mode of a SourceLanguageRecognizer: detect the language, recognise nothing.
LANGUAGE_ONLY = "None"


# The wire's spelling of each language identification mode (speech.context languageId.mode).
LID_WIRE: dict[LidMode, str] = {
    LidMode.AT_START: "DetectAtAudioStart",
    LidMode.CONTINUOUS: "DetectContinuous",
}


@dataclass(frozen=True)
class Continuation:
    """A later turn of the same session: the SDK replays audio from ``offset`` seconds on."""

    previous_service_tag: str
    offset: float


@dataclass(frozen=True)
class ContextOptions:
    """The options one ``speech.context`` message carries; None or empty where it is silent."""

    language: str | None = None
    mode: RecognitionMode | None = None
    detailed: bool = False
    word_timings: bool = False
    word_confidence: bool = False
    languages: tuple[str, ...] = ()
    language_id_mode: LidMode | None = None
    phrases: tuple[str, ...] = ()
    phrase_weight: float | None = None
    profanity: str | None = None
    initial_silence_timeout: float | None = None
    end_silence_timeout: float | None = None
    continuation: Continuation | None = None
    speakers: bool = False  # a ConversationTranscriber asks for speaker ids
    language_only: bool = False  # a SourceLanguageRecognizer: the language, no text
    translate_to: tuple[str, ...] = ()  # a TranslationRecognizer's target languages
    # Speech_SegmentationSilenceTimeoutMs and Speech_SegmentationMaximumTimeMs: the pause that
    # ends a phrase and the longest phrase (``phraseDetection.<MODE>.segmentation``).
    segmentation_silence_timeout: float | None = None
    segmentation_max_time: float | None = None

    def to_body(self) -> dict[str, Any]:
        """The ``speech.context`` JSON body the SDK would send for these options."""
        detection: dict[str, Any] = {}
        if self.language_only:
            detection["mode"] = LANGUAGE_ONLY
        elif self.mode is not None:
            detection["mode"] = self.mode.upper()
        if self.language is not None:
            detection["language"] = self.language
        if self.profanity is not None:
            detection["enrichment"] = {"profanity": self.profanity}
        if self.initial_silence_timeout is not None:
            detection["initialSilenceTimeout"] = round(self.initial_silence_timeout * 1000)
        if self.end_silence_timeout is not None:
            detection["trailingSilenceTimeout"] = round(self.end_silence_timeout * 1000)
        if self.speakers:
            detection["speakerDiarization"] = {"mode": "Anonymous"}
        if self.translate_to:
            detection["onSuccess"] = detection["onInterim"] = {"action": "Translate"}
        segmentation: dict[str, Any] = {}
        if self.segmentation_silence_timeout is not None:
            segmentation["segmentationSilenceTimeoutMs"] = round(
                self.segmentation_silence_timeout * 1000
            )
        if self.segmentation_max_time is not None:
            segmentation["segmentationForcedTimeoutMs"] = round(self.segmentation_max_time * 1000)
        if segmentation:
            segmentation["mode"] = "Custom"
            key = (self.mode or RecognitionMode.CONVERSATION).upper()
            detection[key] = {"segmentation": segmentation}
        body: dict[str, Any] = {"phraseDetection": detection, "audio": {"streams": {"1": None}}}
        if self.translate_to:
            body["translation"] = {
                "targetLanguages": list(self.translate_to),
                "output": {"includePassThroughResults": True},
            }
        if self.languages or self.language_id_mode is not None:
            body["languageId"] = {
                "languages": list(self.languages),
                "onSuccess": {"action": "None" if self.language_only else "Recognize"},
                "onUnknown": {"action": "None"},
                "mode": LID_WIRE[self.language_id_mode or LidMode.AT_START],
                "Priority": "PrioritizeLatency",
            }
        output: dict[str, Any] = {}
        if self.detailed:
            output["format"] = "Detailed"
        options = [
            n
            for n, on in (
                ("WordTimings", self.word_timings),
                ("WordConfidence", self.word_confidence),
            )
            if on
        ]
        if options:
            output["detailed"] = {"options": options}
        if output:
            body["phraseOutput"] = output
        if self.phrases or self.phrase_weight is not None:
            body["dgi"] = {
                "Groups": [{"Type": "Generic", "Items": [{"Text": p} for p in self.phrases]}]
            }
            if self.phrase_weight is not None:
                body["dgi"]["bias"] = self.phrase_weight
        if self.continuation is not None:
            ticks = round(self.continuation.offset * TICKS_PER_SECOND)
            body["continuation"] = {
                "previousServiceTag": self.continuation.previous_service_tag,
                "audio": {"streams": {"1": {"offset": str(ticks)}}},
            }
        return body


def parse_context(body: dict[str, Any]) -> ContextOptions:
    """Read the options out of a ``speech.context`` JSON body; ProtocolError on wrong types."""
    fmt = _get(body, "phraseOutput.format", str)
    options = _get(body, "phraseOutput.detailed.options", list) or []
    if not all(isinstance(o, str) for o in options):
        raise ProtocolError("speech.context: phraseOutput.detailed.options must be strings")
    languages = _get(body, "languageId.languages", list) or []
    if not all(isinstance(x, str) for x in languages):
        raise ProtocolError("speech.context: languageId.languages must be strings")
    lid_mode = _get(body, "languageId.mode", str)
    mode = _get(body, "phraseDetection.mode", str)
    language_only = mode is not None and mode.lower() == LANGUAGE_ONLY.lower()
    if language_only:
        mode = None
    weight = _get(body, "dgi.bias", (int, float))
    targets = _get(body, "translation.targetLanguages", list) or []
    if not all(isinstance(x, str) for x in targets):
        raise ProtocolError("speech.context: translation.targetLanguages must be strings")
    diarization = _get(body, "phraseDetection.speakerDiarization.mode", str)
    # The SDK puts segmentation under the mode's own key (INTERACTIVE, CONVERSATION …).
    segmentation = f"phraseDetection.{(mode or 'CONVERSATION').upper()}.segmentation"
    return ContextOptions(
        language=_get(body, "phraseDetection.language", str),
        mode=RecognitionMode.parse(mode, "speech.context") if mode is not None else None,
        detailed=(fmt or "").lower() == "detailed",
        word_timings="WordTimings" in options,
        word_confidence="WordConfidence" in options,
        languages=tuple(languages),
        language_id_mode=_lid_mode(lid_mode) if lid_mode is not None else None,
        phrases=_phrases(body),
        phrase_weight=_weight(weight),
        profanity=_get(body, "phraseDetection.enrichment.profanity", str),
        initial_silence_timeout=_ms(body, "phraseDetection.initialSilenceTimeout"),
        end_silence_timeout=_ms(body, "phraseDetection.trailingSilenceTimeout"),
        continuation=_continuation(body),
        speakers=(diarization or "none").lower() != "none",
        language_only=language_only,
        translate_to=tuple(targets),
        segmentation_silence_timeout=_ms(body, f"{segmentation}.segmentationSilenceTimeoutMs"),
        segmentation_max_time=_ms(body, f"{segmentation}.segmentationForcedTimeoutMs"),
    )


@dataclass(frozen=True)
class TurnSettings:
    """What a recogniser should do for one turn, from the request target and speech.context."""

    mode: RecognitionMode
    language: str | None
    languages: tuple[str, ...]
    language_id_mode: LidMode | None
    detailed: bool
    word_timings: bool
    word_confidence: bool
    phrases: tuple[str, ...]
    phrase_weight: float | None
    profanity: str | None
    initial_silence_timeout: float | None
    end_silence_timeout: float | None
    offset_base: float
    previous_service_tag: str | None
    speakers: bool = False
    language_only: bool = False
    translate_to: tuple[str, ...] = ()  # languages to translate into (a TranslationRecognizer)
    segmentation_silence_timeout: float | None = None
    segmentation_max_time: float | None = None


def resolve_settings(target: RequestOptions, context: ContextOptions) -> TurnSettings:
    """Merge the per-connection query with the per-turn context.

    The query's language wins (with ``endpoint=`` it is what the user wrote; with ``host=`` the
    two agree); other options are on when either side turns them on, and the translation
    languages are the context's, else the query's. A mode named nowhere means continuous
    recognition.
    """
    languages = context.languages or target.languages
    lid_mode = context.language_id_mode or (LidMode.AT_START if languages else None)
    return TurnSettings(
        mode=context.mode or target.mode or RecognitionMode.CONVERSATION,
        language=target.language or context.language,
        languages=languages,
        language_id_mode=lid_mode,
        detailed=context.detailed or target.detailed,
        word_timings=context.word_timings or target.word_timestamps,
        word_confidence=context.word_confidence or target.word_confidence,
        phrases=context.phrases,
        phrase_weight=context.phrase_weight,
        profanity=context.profanity or target.profanity,
        initial_silence_timeout=_first(
            context.initial_silence_timeout, target.initial_silence_timeout
        ),
        end_silence_timeout=_first(context.end_silence_timeout, target.end_silence_timeout),
        offset_base=context.continuation.offset if context.continuation else 0.0,
        previous_service_tag=(
            context.continuation.previous_service_tag if context.continuation else None
        ),
        speakers=context.speakers,
        language_only=context.language_only,
        translate_to=context.translate_to or target.translate_to,
        segmentation_silence_timeout=context.segmentation_silence_timeout,
        segmentation_max_time=context.segmentation_max_time,
    )


def _first(a: float | None, b: float | None) -> float | None:
    return a if a is not None else b


def _get(obj: dict[str, Any], dotted: str, kind: type | tuple[type, ...]) -> Any:
    """The value at ``dotted`` keys, None if absent; ProtocolError if a type is wrong."""
    value: Any = obj
    for key in dotted.split("."):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ProtocolError(f"speech.context: {dotted} crosses a non-object")
        value = value.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProtocolError(f"speech.context: {dotted} has the wrong type ({type(value).__name__})")
    return value


def _weight(value: float | None) -> float | None:
    if value is None:
        return None
    if not -1e6 <= value <= 1e6:  # also rejects NaN, and huge ints before float() overflows
        raise ProtocolError(f"speech.context: dgi.bias={value} is out of range")
    return float(value)


def _lid_mode(value: str) -> LidMode:
    for mode, wire in LID_WIRE.items():
        if wire.lower() == value.lower():
            return mode
    raise ProtocolError(f"speech.context: unknown languageId.mode {value!r}")


def _phrases(body: dict[str, Any]) -> tuple[str, ...]:
    phrases: list[str] = []
    for group in _get(body, "dgi.Groups", list) or []:
        if not isinstance(group, dict) or not isinstance(group.get("Items", []), list):
            raise ProtocolError("speech.context: dgi.Groups entries must be objects with Items")
        for item in group.get("Items", []):
            text = item.get("Text") if isinstance(item, dict) else None
            if not isinstance(text, str):
                raise ProtocolError("speech.context: dgi item without a Text string")
            phrases.append(text)
    return tuple(phrases)


def _ms(body: dict[str, Any], dotted: str) -> float | None:
    value = _get(body, dotted, (int, float))
    if value is not None and not 0 <= value < 1e12:
        raise ProtocolError(f"speech.context: {dotted}={value} is out of range")
    return None if value is None else value / 1000


def _continuation(body: dict[str, Any]) -> Continuation | None:
    if _get(body, "continuation", dict) is None:
        return None
    tag = _get(body, "continuation.previousServiceTag", str) or ""
    offset = _get(body, "continuation.audio.streams.1.offset", (str, int))
    if offset is None:
        offset = 0
    if isinstance(offset, str):
        if not (offset.isascii() and offset.isdigit() and len(offset) <= 19):
            raise ProtocolError(f"speech.context: continuation offset {offset[:30]!r} is not ticks")
        offset = int(offset)
    if not 0 <= offset < 2**63:
        raise ProtocolError(f"speech.context: continuation offset {offset} is out of range")
    return Continuation(previous_service_tag=tag, offset=offset / TICKS_PER_SECOND)
