"""The websocket request target: which recognition mode the path names and what the query asks.

With ``SpeechConfig(host=...)`` the SDK picks ``/speech/recognition/{mode}/cognitiveservices/v1``
and puts the options in the query; with ``endpoint=`` the path and query are the user's, and
the mode then arrives in ``speech.context`` instead. A ``TranslationRecognizer`` on the
translation service's own path (``/speech/translation/cognitiveservices/v1``) has the SDK add
``from=`` (the spoken language) and ``to=`` (a target language, repeated) to the query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl, quote, unquote, urlencode

from voxflow.errors import ProtocolError

_KNOWN = frozenset(
    [
        "format",
        "language",
        "lidenabled",
        "profanity",
        "initialsilencetimeoutms",
        "endsilencetimeoutms",
        "wordleveltimestamps",
        "wordlevelconfidence",
        "from",
        "to",
    ]
)
# The whole path, not a part of it (nor one with a trailing newline, as ``$`` would allow).
_MODE_PATH = re.compile(r"/speech/recognition/(\w+)/cognitiveservices/v1/?", re.IGNORECASE)


class RecognitionMode(StrEnum):
    """Interactive recognises one utterance; conversation and dictation run continuously."""

    INTERACTIVE = "interactive"
    CONVERSATION = "conversation"
    DICTATION = "dictation"

    @property
    def continuous(self) -> bool:
        return self is not RecognitionMode.INTERACTIVE

    @classmethod
    def parse(cls, value: str, what: str) -> RecognitionMode:
        try:
            return cls(value.lower())
        except ValueError:
            raise ProtocolError(f"{what}: unknown recognition mode {value!r}") from None


@dataclass(frozen=True)
class RequestOptions:
    """What the upgrade request's path and query ask for; None where they say nothing."""

    path: str = "/"
    mode: RecognitionMode | None = None
    language: str | None = None
    detailed: bool = False
    word_timestamps: bool = False
    word_confidence: bool = False
    languages: tuple[str, ...] = ()
    profanity: str | None = None
    initial_silence_timeout: float | None = None
    end_silence_timeout: float | None = None
    translate_to: tuple[str, ...] = ()  # the translation languages the query names (``to=``)
    extra: dict[str, str] = field(default_factory=dict)

    def to_target(self) -> str:
        """The request target that asks for these options, as the SDK would write it."""
        params = dict(self.extra)
        if self.detailed:
            params["format"] = "detailed"
        for key, value in (
            ("language", self.language),
            ("lidEnabled", ",".join(self.languages) or None),
            ("profanity", self.profanity),
            ("initialSilenceTimeoutMs", _ms(self.initial_silence_timeout)),
            ("endSilenceTimeoutMs", _ms(self.end_silence_timeout)),
            ("wordLevelTimestamps", "true" if self.word_timestamps else None),
            ("wordLevelConfidence", "true" if self.word_confidence else None),
        ):
            if value is not None:
                params[key] = value
        query_pairs = sorted(params.items()) + [("to", t) for t in self.translate_to]
        path = self.path
        if self.mode is not None and _path_mode(path) is not self.mode:
            path = speech_path(self.mode)
        query = urlencode(query_pairs)
        return quote(path, safe="/") + (f"?{query}" if query else "")


def speech_path(mode: RecognitionMode) -> str:
    """The path the SDK uses for ``mode`` with ``SpeechConfig(host=...)``."""
    return f"/speech/recognition/{mode}/cognitiveservices/v1"


def parse_target(target: str) -> RequestOptions:
    """Parse the upgrade request target (path and query) into RequestOptions."""
    if not target.startswith("/"):
        raise ProtocolError(f"request target {target[:80]!r} does not start with '/'")
    raw_path, _, query = target.partition("#")[0].partition("?")
    try:
        pairs = parse_qsl(query, keep_blank_values=True)
    except ValueError as exc:
        raise ProtocolError(f"request target {target[:80]!r}: {exc}") from None
    path = unquote(raw_path)
    lower = {k.lower(): v for k, v in pairs}
    fmt = lower.get("format", "simple").lower()
    if fmt not in ("simple", "detailed"):
        raise ProtocolError(f"query format={fmt!r}: expected simple or detailed")
    return RequestOptions(
        path=path,
        mode=_path_mode(path),
        language=lower.get("language") or lower.get("from") or None,
        detailed=fmt == "detailed",
        word_timestamps=_flag(lower, "wordleveltimestamps"),
        word_confidence=_flag(lower, "wordlevelconfidence"),
        languages=tuple(x.strip() for x in lower.get("lidenabled", "").split(",") if x.strip()),
        profanity=lower.get("profanity") or None,
        initial_silence_timeout=_seconds(lower, "initialsilencetimeoutms"),
        end_silence_timeout=_seconds(lower, "endsilencetimeoutms"),
        translate_to=tuple(
            t.strip() for k, v in pairs if k.lower() == "to" for t in v.split(",") if t.strip()
        ),
        extra={k: v for k, v in pairs if k.lower() not in _KNOWN},
    )


def _path_mode(path: str) -> RecognitionMode | None:
    match = _MODE_PATH.fullmatch(path)
    return RecognitionMode.parse(match.group(1), "request path") if match else None


def _flag(query: dict[str, str], key: str) -> bool:
    value = query.get(key, "false").lower()
    if value not in ("true", "false"):
        raise ProtocolError(f"query {key}={value!r}: expected true or false")
    return value == "true"


def _seconds(query: dict[str, str], key: str) -> float | None:
    value = query.get(key)
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 12):
        raise ProtocolError(f"query {key}={value!r}: expected milliseconds")
    return int(value) / 1000


def _ms(seconds: float | None) -> str | None:
    return None if seconds is None else str(round(seconds * 1000))
