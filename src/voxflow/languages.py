"""Languages, parsed once: BCP-47 tags (as Azure takes them) mapped onto Whisper's codes, the LID
modes, and the ``LanguagePlan`` (forced language, candidates, mode) that the pipeline, the
engines and the server share.

Candidates arrive as ``"en-US,es-MX,zh-CN"`` (Azure locales), bare codes (``"en"``), ISO 639-2/3
codes (``"eng"``), legacy codes (``"iw"``) or English names (``"spanish"``); each becomes a
:class:`Language` that keeps the user's tag (for reports and for Azure) and Whisper's code.

Decisions, so that behaviour is predictable:

* Case and ``_``/``-`` do not matter; a POSIX ``.charset`` or ``@modifier`` is dropped.
* Script and region subtags do not change the language (``zh-Hans-CN``, ``zh-TW`` → ``zh``,
  ``sr-Latn-RS`` → ``sr``), except Chinese of Hong Kong or Macau (``zh-HK``, ``zh-MO``), which
  Azure uses for Cantonese speech, and ``yue``/``zh-yue``: these map to Whisper's ``yue``. A
  model that lacks ``yue`` (every Whisper before large-v3) gets ``zh`` instead
  (:func:`model_code`).
* Two candidates that share a Whisper code (``en-US,en-GB``) are both kept: Azure can tell them
  apart; Whisper cannot, and a Whisper detection of ``en`` is reported as the first one given
  (see :func:`candidate_for`). A tag given twice is kept once.
* For Chinese the script or region says which characters come out (:func:`chinese_script`):
  Simplified unless the tag says Traditional (``zh-Hant``, ``zh-TW``, ``zh-HK``, ``zh-MO``).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from voxflow.errors import ConfigError

# Whisper's languages (code → English name), in the order of its tokenizer.
_WHISPER_NAMES: dict[str, str] = {
    "en": "English", "zh": "Chinese", "de": "German", "es": "Spanish", "ru": "Russian",
    "ko": "Korean", "fr": "French", "ja": "Japanese", "pt": "Portuguese", "tr": "Turkish",
    "pl": "Polish", "ca": "Catalan", "nl": "Dutch", "ar": "Arabic", "sv": "Swedish",
    "it": "Italian", "id": "Indonesian", "hi": "Hindi", "fi": "Finnish", "vi": "Vietnamese",
    "he": "Hebrew", "uk": "Ukrainian", "el": "Greek", "ms": "Malay", "cs": "Czech",
    "ro": "Romanian", "da": "Danish", "hu": "Hungarian", "ta": "Tamil", "no": "Norwegian",
    "th": "Thai", "ur": "Urdu", "hr": "Croatian", "bg": "Bulgarian", "lt": "Lithuanian",
    "la": "Latin", "mi": "Maori", "ml": "Malayalam", "cy": "Welsh", "sk": "Slovak",
    "te": "Telugu", "fa": "Persian", "lv": "Latvian", "bn": "Bengali", "sr": "Serbian",
    "az": "Azerbaijani", "sl": "Slovenian", "kn": "Kannada", "et": "Estonian",
    "mk": "Macedonian", "br": "Breton", "eu": "Basque", "is": "Icelandic", "hy": "Armenian",
    "ne": "Nepali", "mn": "Mongolian", "bs": "Bosnian", "kk": "Kazakh", "sq": "Albanian",
    "sw": "Swahili", "gl": "Galician", "mr": "Marathi", "pa": "Punjabi", "si": "Sinhala",
    "km": "Khmer", "sn": "Shona", "yo": "Yoruba", "so": "Somali", "af": "Afrikaans",
    "oc": "Occitan", "ka": "Georgian", "be": "Belarusian", "tg": "Tajik", "sd": "Sindhi",
    "gu": "Gujarati", "am": "Amharic", "yi": "Yiddish", "lo": "Lao", "uz": "Uzbek",
    "fo": "Faroese", "ht": "Haitian Creole", "ps": "Pashto", "tk": "Turkmen",
    "nn": "Norwegian Nynorsk", "mt": "Maltese", "sa": "Sanskrit", "lb": "Luxembourgish",
    "my": "Burmese", "bo": "Tibetan", "tl": "Tagalog", "mg": "Malagasy", "as": "Assamese",
    "tt": "Tatar", "haw": "Hawaiian", "ln": "Lingala", "ha": "Hausa", "ba": "Bashkir",
    "jw": "Javanese", "su": "Sundanese", "yue": "Cantonese",
}  # fmt: skip


def _whisper_languages() -> dict[str, str]:
    """Our table, plus any code a newer faster-whisper knows that the table lacks (named by code).

    faster-whisper exposes its list only under a private name, so its absence is tolerated.
    """
    table = dict(_WHISPER_NAMES)
    try:
        from faster_whisper.tokenizer import _LANGUAGE_CODES
    except ImportError:  # pragma: no cover - faster-whisper is a dependency
        return table
    for code in _LANGUAGE_CODES:
        table.setdefault(code, code)
    return table


WHISPER_LANGUAGES: Mapping[str, str] = _whisper_languages()
"""Every Whisper language code with its English name."""

_NAMES: dict[str, str] = {name.lower(): code for code, name in WHISPER_LANGUAGES.items()}

# Codes that mean a Whisper language but are not Whisper's spelling of it: legacy ISO 639-1,
# ISO 639-2/T and /B, ISO 639-3 individual languages of a macrolanguage, and Azure-only tags.
_ALIASES: dict[str, str] = {
    # legacy and alternative two/three-letter codes
    "iw": "he", "ji": "yi", "in": "id", "jv": "jw", "mo": "ro", "nb": "no", "fil": "tl",
    "cmn": "zh", "pes": "fa", "prs": "fa", "zsm": "ms", "swh": "sw", "ekk": "et", "lvs": "lv",
    "uzn": "uz", "khk": "mn", "npi": "ne", "nob": "no", "arb": "ar", "mol": "ro",
    # ISO 639-2/T (same as 639-3 for these)
    "afr": "af", "amh": "am", "ara": "ar", "asm": "as", "aze": "az", "bak": "ba", "bel": "be",
    "bul": "bg", "ben": "bn", "bod": "bo", "bre": "br", "bos": "bs", "cat": "ca", "ces": "cs",
    "cym": "cy", "dan": "da", "deu": "de", "ell": "el", "eng": "en", "spa": "es", "est": "et",
    "eus": "eu", "fas": "fa", "fin": "fi", "fao": "fo", "fra": "fr", "glg": "gl", "guj": "gu",
    "hau": "ha", "heb": "he", "hin": "hi", "hrv": "hr", "hat": "ht", "hun": "hu", "hye": "hy",
    "ind": "id", "isl": "is", "ita": "it", "jpn": "ja", "jav": "jw", "kat": "ka", "kaz": "kk",
    "khm": "km", "kan": "kn", "kor": "ko", "lat": "la", "ltz": "lb", "lin": "ln", "lao": "lo",
    "lit": "lt", "lav": "lv", "mlg": "mg", "mri": "mi", "mkd": "mk", "mal": "ml", "mon": "mn",
    "mar": "mr", "msa": "ms", "mlt": "mt", "mya": "my", "nep": "ne", "nld": "nl", "nno": "nn",
    "nor": "no", "oci": "oc", "pan": "pa", "pol": "pl", "pus": "ps", "por": "pt", "ron": "ro",
    "rus": "ru", "san": "sa", "snd": "sd", "sin": "si", "slk": "sk", "slv": "sl", "sna": "sn",
    "som": "so", "sqi": "sq", "srp": "sr", "sun": "su", "swe": "sv", "swa": "sw", "tam": "ta",
    "tel": "te", "tgk": "tg", "tha": "th", "tuk": "tk", "tgl": "tl", "tur": "tr", "tat": "tt",
    "ukr": "uk", "urd": "ur", "uzb": "uz", "vie": "vi", "yid": "yi", "yor": "yo", "zho": "zh",
    # ISO 639-2/B where it differs from /T
    "tib": "bo", "cze": "cs", "wel": "cy", "ger": "de", "gre": "el", "baq": "eu", "per": "fa",
    "fre": "fr", "arm": "hy", "ice": "is", "geo": "ka", "mao": "mi", "mac": "mk", "may": "ms",
    "bur": "my", "dut": "nl", "rum": "ro", "slo": "sk", "alb": "sq", "chi": "zh",
}  # fmt: skip

# English names and common alternative names, for ``--language spanish`` and the like.
_NAME_ALIASES: dict[str, str] = {
    "castilian": "es", "mandarin": "zh", "flemish": "nl", "valencian": "ca", "farsi": "fa",
    "filipino": "tl", "moldavian": "ro", "moldovan": "ro", "panjabi": "pa", "pushto": "ps",
    "sinhalese": "si", "haitian": "ht", "letzeburgesch": "lb", "myanmar": "my", "nynorsk": "nn",
    "bokmal": "no", "norwegian bokmal": "no",
}  # fmt: skip

# Regions whose Chinese is Cantonese in Azure's locales (zh-HK, zh-MO).
_CANTONESE_REGIONS = frozenset({"HK", "MO"})
# What a model that lacks a language gets instead.
_FALLBACKS = {"yue": "zh"}

_SUBTAG = re.compile(r"[A-Za-z0-9]{1,8}")


@dataclass(frozen=True)
class Language:
    """A candidate: the tag as the user wrote it (case normalised), Whisper's code, its name."""

    tag: str
    whisper: str
    name: str


def normalize_tag(code: str) -> str:
    """Canonical case of a BCP-47-ish tag: ``en_us`` → ``en-US``, ``zh-hans-cn`` → ``zh-Hans-CN``.

    Raises ConfigError for something that is not shaped like a tag at all.
    """
    text = code.strip().split(".", 1)[0].split("@", 1)[0].replace("_", "-")
    parts = text.split("-")
    if not text or not all(_SUBTAG.fullmatch(p) for p in parts) or not parts[0].isalpha():
        raise ConfigError(_unknown_message(code))
    out = [parts[0].lower()]
    in_extension = False
    for part in parts[1:]:
        if len(part) == 1:
            in_extension = True
        if in_extension:
            out.append(part.lower())
        elif len(part) == 4 and part.isalpha():
            out.append(part.title())
        elif (len(part) == 2 and part.isalpha()) or (len(part) == 3 and part.isdigit()):
            out.append(part.upper())
        else:
            out.append(part.lower())
    return "-".join(out)


def resolve_language(code: str) -> Language:
    """Map one tag, code or English name to a :class:`Language`; ConfigError when unknown."""
    name_key = " ".join(code.strip().lower().split())
    by_name = _code_for_name(name_key)
    if by_name is not None:
        whisper, tag = by_name, by_name
    else:
        tag = normalize_tag(code)
        whisper = _whisper_for_tag(tag)
        if whisper is None:
            raise ConfigError(_unknown_message(code))
    return Language(tag=tag, whisper=whisper, name=WHISPER_LANGUAGES[whisper])


def model_code(language: Language, supported: Collection[str]) -> str:
    """The code a model knows for ``language``: its Whisper code, or a fallback where that is
    meaningful (``yue`` → ``zh`` for models before large-v3); ConfigError otherwise."""
    if language.whisper in supported:
        return language.whisper
    fallback = _FALLBACKS.get(language.whisper)
    if fallback is None or fallback not in supported:
        raise ConfigError(
            f"language {language.tag!r} ({language.name}) is not supported by this model"
        )
    return fallback


def parse_languages(spec: str | Iterable[str]) -> tuple[Language, ...]:
    """Parse candidates (``"en-US,es-MX"`` or a list of tags) in the order given, no cap on count.

    Empty items are ignored; a tag given twice is kept once; ConfigError when none is left.
    """
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    seen: set[str] = set()
    result: list[Language] = []
    for item in items:
        if not item.strip():
            continue
        language = resolve_language(item)
        if language.tag not in seen:
            seen.add(language.tag)
            result.append(language)
    if not result:
        raise ConfigError("no candidate language given: pass tags such as 'en-US,es-MX'")
    return tuple(result)


def chinese_script(language: Language) -> str:
    """``Hant`` (Traditional) for Chinese tagged so (``zh-Hant``, ``zh-TW``, ``zh-HK``,
    ``zh-MO``), else ``Hans`` (Simplified: ``zh``, ``zh-CN``, ``zh-SG``, a detected ``zh``)."""
    parts = language.tag.split("-")[1:]
    if "Hant" in parts or "Hans" in parts:
        return "Hant" if "Hant" in parts else "Hans"
    return "Hant" if any(p in ("TW", "HK", "MO") for p in parts) else "Hans"


def candidate_for(whisper: str, languages: Sequence[Language]) -> Language | None:
    """The candidate a Whisper detection stands for: the first given with that code, or None."""
    code = whisper.strip().lower()
    return next((lang for lang in languages if lang.whisper == code), None)


def _code_for_name(key: str) -> str | None:
    """Whisper code for an English language name or a Whisper code itself, else None."""
    if key in WHISPER_LANGUAGES:
        return key
    if key in _NAME_ALIASES:
        return _NAME_ALIASES[key]
    return _NAMES.get(key)


def _whisper_for_tag(tag: str) -> str | None:
    """Whisper code for a normalised tag, looking at its language, extlang and region subtags."""
    parts = tag.split("-")
    primary = parts[0]
    rest = parts[1:]
    choices = [primary]
    if rest and len(rest[0]) == 3 and rest[0].isalpha():  # extlang: zh-yue, zh-cmn, ar-arz
        choices.insert(0, rest[0])  # the dialect when Whisper knows it, else its macrolanguage
        rest = rest[1:]
    known = [_ALIASES.get(c, c) for c in choices if _ALIASES.get(c, c) in WHISPER_LANGUAGES]
    if not known:
        return None
    code = known[0]
    regions = [p for p in rest if p.isupper() or p.isdigit()]
    if code == "zh" and regions and regions[0] in _CANTONESE_REGIONS:
        return "yue"
    return code


def _unknown_message(code: str) -> str:
    hint = ""
    key = code.strip().lower()
    choices = [*WHISPER_LANGUAGES, *_NAMES]
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.75)
    if close:
        match = _code_for_name(close[0]) or close[0]
        hint = f" (did you mean {match!r}, {WHISPER_LANGUAGES[match]}?)"
    return (
        f"unknown language {code!r}{hint}: use a BCP-47 tag such as 'en-US' or 'zh-CN', a "
        f"Whisper code such as 'es', or an English name such as 'Spanish'"
    )

# --- language identification modes and plans ----------------------------------------------


class LidMode(StrEnum):
    """Identify the language once at the start of the audio, or again for every segment."""

    AT_START = "at-start"
    CONTINUOUS = "continuous"

    @classmethod
    def parse(cls, value: str) -> LidMode:
        """Read a mode in voxflow's spelling or Azure's (``DetectAtAudioStart``, ``AtStart``,
        ``DetectContinuous``, ``Continuous``)."""
        key = re.sub(r"[^a-z]", "", str(value).lower()).removeprefix("detect")
        if key in ("atstart", "ataudiostart", "start"):
            return cls.AT_START
        if key == "continuous":
            return cls.CONTINUOUS
        raise ConfigError(
            f"unknown language identification mode {value!r}: use 'at-start' "
            f"(Azure: DetectAtAudioStart, AtStart) or 'continuous' (DetectContinuous, Continuous)"
        )


@dataclass(frozen=True)
class Identified:
    """The outcome of language identification: the language, how sure, and every candidate's
    probability (by Whisper code)."""

    language: Language
    confidence: float
    probabilities: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class LanguagePlan:
    """Which language to recognise in, parsed once and shared by the pipeline, the engines and
    the server: one ``forced`` language, or ``candidates`` identified ``mode``-wise, or (neither)
    any language the engine knows. ``decided`` is what identification at the start settled on.
    """

    forced: Language | None = None
    candidates: tuple[Language, ...] = ()
    mode: LidMode = LidMode.AT_START
    decided: Identified | None = None

    @classmethod
    def parse(
        cls,
        candidates: str | Iterable[str] = (),
        *,
        forced: str | None = None,
        lid: str = LidMode.AT_START,
    ) -> LanguagePlan:
        """A plan from the user's words: ``candidates`` as ``"en-US,es-MX"`` or a list of tags,
        ``forced`` one tag (candidates are then ignored), ``lid`` a mode in any spelling."""
        mode = LidMode.parse(lid)
        if forced is not None and forced.strip():
            return cls(forced=resolve_language(forced), mode=mode)
        given = candidates.split(",") if isinstance(candidates, str) else list(candidates)
        if not any(item.strip() for item in given):
            return cls(mode=mode)
        return cls(candidates=parse_languages(given), mode=mode)

    @property
    def fixed(self) -> Identified | None:
        """The one language every clip is recognised in, when there is no choice left: the
        forced one, the only candidate, or the one decided at the start; else None."""
        if self.forced is not None:
            return Identified(self.forced, 1.0)
        if self.decided is not None:
            return self.decided
        if self.candidates and len(self.codes) == 1:
            return Identified(self.candidates[0], 1.0)
        return None

    @property
    def codes(self) -> tuple[str, ...]:
        """Distinct Whisper codes of the candidates, first-given order (empty: any language)."""
        return tuple(dict.fromkeys(lang.whisper for lang in self.candidates))

    @property
    def tags(self) -> tuple[str, ...]:
        """The languages as the user named them: the forced one, or the candidates."""
        if self.forced is not None:
            return (self.forced.tag,)
        return tuple(lang.tag for lang in self.candidates)

    def language(self, code: str) -> Language:
        """The language a Whisper detection stands for: the first candidate with that code, or
        the code itself when there are no candidates."""
        return candidate_for(code, self.candidates) or resolve_language(code)

    def deciding(self, identified: Identified) -> LanguagePlan:
        """This plan once identification at the start has settled on a language."""
        return replace(self, decided=identified)

    def fingerprint(self) -> dict[str, object]:
        """What of the plan changes an output (the decision is made from the audio)."""
        forced = self.forced.tag if self.forced else None
        return {"forced": forced, "candidates": [c.tag for c in self.candidates],
                "mode": str(self.mode)}  # fmt: skip


# --- confidence --------------------------------------------------------------------------

HIGH_CONFIDENCE = 0.8
"""Probabilities at or above this are reported as Azure's ``"High"``."""
MEDIUM_CONFIDENCE = 0.5
"""Probabilities from this up to HIGH_CONFIDENCE are ``"Medium"``; lower ones are ``"Low"``."""


def confidence_label(p: float | None) -> str:
    """Azure's language-detection confidence word for a probability; ``"Unknown"`` for None/NaN.

    Azure reports only the word, so the thresholds (0.8 and 0.5) are ours; ValueError outside
    [0, 1], which would be a bug upstream.
    """
    if p is None or math.isnan(p):
        return "Unknown"
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a probability must lie in [0, 1], got {p}")
    if p >= HIGH_CONFIDENCE:
        return "High"
    if p >= MEDIUM_CONFIDENCE:
        return "Medium"
    return "Low"
