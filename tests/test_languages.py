"""Language tags → Whisper codes, candidate lists, LID mode spellings and confidence words."""

from __future__ import annotations

import math

import pytest
from faster_whisper.tokenizer import _LANGUAGE_CODES
from hypothesis import given
from hypothesis import strategies as st

from voxflow.errors import ConfigError
from voxflow.languages import (
    WHISPER_LANGUAGES,
    Identified,
    Language,
    LanguagePlan,
    LidMode,
    candidate_for,
    confidence_label,
    model_code,
    normalize_tag,
    parse_languages,
    resolve_language,
)

# (what a user writes, Whisper's code): Azure locales, bare, legacy, ISO 639-2/3, names.
MAPPING = [
    ("en-US", "en"), ("en-GB", "en"), ("es-MX", "es"), ("es-ES", "es"), ("fr-CA", "fr"),
    ("de-DE", "de"), ("pt-BR", "pt"), ("ja-JP", "ja"), ("ko-KR", "ko"), ("ar-EG", "ar"),
    ("hi-IN", "hi"), ("ru-RU", "ru"), ("it-IT", "it"), ("nl-NL", "nl"), ("sv-SE", "sv"),
    ("tr-TR", "tr"), ("vi-VN", "vi"), ("th-TH", "th"), ("uk-UA", "uk"), ("fa-IR", "fa"),
    ("he-IL", "he"), ("iw-IL", "he"), ("iw", "he"), ("ji", "yi"), ("in", "id"), ("id-ID", "id"),
    ("jv-ID", "jw"), ("jw", "jw"), ("jv", "jw"), ("nb-NO", "no"), ("no", "no"), ("nn-NO", "nn"),
    ("fil-PH", "tl"), ("tl", "tl"), ("mo", "ro"), ("ro-RO", "ro"), ("ms-MY", "ms"),
    ("zh-CN", "zh"), ("zh-TW", "zh"), ("zh-Hans-CN", "zh"), ("zh-Hant-TW", "zh"),
    ("zh-Hans", "zh"), ("zh-CN-sichuan", "zh"), ("cmn-Hans-CN", "zh"), ("zh-cmn-Hans", "zh"),
    ("zh-HK", "yue"), ("zh-MO", "yue"), ("zh-Hant-HK", "yue"), ("yue-CN", "yue"),
    ("zh-yue", "yue"), ("yue", "yue"), ("sr-Latn-RS", "sr"), ("sr-Cyrl-RS", "sr"),
    ("bs-BA", "bs"), ("haw", "haw"), ("haw-US", "haw"), ("es-419", "es"),
    ("eng", "en"), ("spa", "es"), ("deu", "de"), ("ger", "de"), ("fra", "fr"), ("fre", "fr"),
    ("zho", "zh"), ("chi", "zh"), ("jpn", "ja"), ("heb", "he"), ("fil", "tl"), ("nob", "no"),
    ("ar-arz", "ar"), ("en_US.UTF-8", "en"), ("de_DE@euro", "de"),
    ("Spanish", "es"), ("english", "en"), ("Mandarin", "zh"), ("cantonese", "yue"),
    ("Haitian Creole", "ht"), ("farsi", "fa"), ("Norwegian Nynorsk", "nn"),
]  # fmt: skip


@pytest.mark.parametrize(("code", "expected"), MAPPING)
def test_real_codes_map_to_whisper(code: str, expected: str) -> None:
    assert resolve_language(code).whisper == expected
    assert resolve_language(code).name == WHISPER_LANGUAGES[expected]


@pytest.mark.parametrize(
    ("written", "tag"),
    [
        ("en-us", "en-US"), ("EN_us", "en-US"), ("es_MX", "es-MX"), ("zh-hans-cn", "zh-Hans-CN"),
        ("ZH-HANT-tw", "zh-Hant-TW"), ("es-419", "es-419"), ("zh-cn-SICHUAN", "zh-CN-sichuan"),
        ("en-US-x-Twain", "en-US-x-twain"), (" fr-ca ", "fr-CA"), ("en_US.UTF-8", "en-US"),
    ],
)  # fmt: skip
def test_tags_keep_the_users_form_with_canonical_case(written: str, tag: str) -> None:
    assert resolve_language(written).tag == tag
    assert normalize_tag(written) == tag


def test_language_carries_tag_code_and_name() -> None:
    assert resolve_language("es-MX") == Language(tag="es-MX", whisper="es", name="Spanish")
    assert resolve_language("spanish") == Language(tag="es", whisper="es", name="Spanish")


def test_table_matches_faster_whisper() -> None:
    assert set(WHISPER_LANGUAGES) == set(_LANGUAGE_CODES)
    assert all(name and name != code for code, name in WHISPER_LANGUAGES.items())


@pytest.mark.parametrize("code", sorted(WHISPER_LANGUAGES))
def test_every_whisper_code_and_name_resolves_to_itself(code: str) -> None:
    assert resolve_language(code).whisper == code
    assert resolve_language(code.upper()).whisper == code
    assert resolve_language(WHISPER_LANGUAGES[code]).whisper == code


@pytest.mark.parametrize(
    "code", ["xx", "xx-US", "qaa", "klingon", "en--US", "-en", "12", "", "e n", "en-US!"]
)
def test_unknown_codes_are_config_errors_naming_the_code(code: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_language(code)
    message = str(info.value)
    assert repr(code) in message
    assert "en-US" in message  # a hint of the valid forms


def test_near_miss_suggests_the_closest_language() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'es', Spanish"):
        resolve_language("spansh")


def test_model_without_cantonese_falls_back_to_chinese() -> None:
    base_model = [c for c in WHISPER_LANGUAGES if c != "yue"]
    assert model_code(resolve_language("zh-HK"), base_model) == "zh"
    assert model_code(resolve_language("zh-HK"), [*base_model, "yue"]) == "yue"
    with pytest.raises(ConfigError, match="not supported by this model"):
        model_code(resolve_language("haw"), ["en", "es"])


def test_parse_languages_keeps_order_and_same_code_candidates() -> None:
    langs = parse_languages("en-US, es-MX,en-GB,zh-CN")
    assert [lang.tag for lang in langs] == ["en-US", "es-MX", "en-GB", "zh-CN"]
    assert LanguagePlan(candidates=langs).codes == ("en", "es", "zh")
    # Whisper cannot tell en-US from en-GB: a detection of "en" reports the first given.
    assert candidate_for("en", langs) == langs[0]
    assert candidate_for("ZH", langs) == langs[3]
    assert candidate_for("fr", langs) is None


def test_parse_languages_drops_repeats_and_empty_items() -> None:
    langs = parse_languages("en-US,,en_us, EN-us ,es,")
    assert [lang.tag for lang in langs] == ["en-US", "es"]
    assert parse_languages(["fr-FR", "de"]) == (
        Language("fr-FR", "fr", "French"),
        Language("de", "de", "German"),
    )


def test_parse_languages_has_no_cap() -> None:
    codes = sorted(WHISPER_LANGUAGES)
    assert [lang.whisper for lang in parse_languages(",".join(codes))] == codes


@pytest.mark.parametrize("spec", ["", " , ,", []])
def test_parse_languages_needs_at_least_one(spec: str | list[str]) -> None:
    with pytest.raises(ConfigError, match="no candidate language"):
        parse_languages(spec)


def test_parse_languages_reports_the_bad_item() -> None:
    with pytest.raises(ConfigError, match="'xx-YY'"):
        parse_languages("en-US,xx-YY,es-MX")


_REAL_TAGS = [code for code, _ in MAPPING if not set(code) & {".", "@", " "}]


@given(
    tag=st.sampled_from(_REAL_TAGS),
    flips=st.lists(st.booleans(), min_size=20, max_size=20),
    underscores=st.booleans(),
)
def test_case_and_separator_never_matter(tag: str, flips: list[bool], underscores: bool) -> None:
    mangled = "".join(c.upper() if f else c.lower() for c, f in zip(tag, flips * 2, strict=False))
    if underscores:
        mangled = mangled.replace("-", "_")
    assert resolve_language(mangled) == resolve_language(tag)


@given(tag=st.sampled_from(_REAL_TAGS))
def test_resolving_a_resolved_tag_is_stable(tag: str) -> None:
    language = resolve_language(tag)
    again = resolve_language(language.tag)
    assert again.whisper == language.whisper
    assert normalize_tag(language.tag) == language.tag


@given(
    st.lists(
        st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
                min_size=1, max_size=8),
        min_size=1, max_size=5,
    )
)  # fmt: skip
def test_normalize_tag_is_idempotent(parts: list[str]) -> None:
    raw = "-".join(parts)
    try:
        once = normalize_tag(raw)
    except ConfigError:
        return
    assert normalize_tag(once) == once
    assert once.lower() == raw.lower()


@pytest.mark.parametrize(
    ("spelling", "mode"),
    [
        ("at-start", "at-start"), ("continuous", "continuous"), ("DetectAtAudioStart", "at-start"),
        ("DetectContinuous", "continuous"), ("atstart", "at-start"), ("AtStart", "at-start"),
        ("at_start", "at-start"), ("AT-START", "at-start"), ("Continuous", "continuous"),
        (" continuous ", "continuous"),
    ],
)  # fmt: skip
def test_lid_mode_spellings(spelling: str, mode: str) -> None:
    assert LidMode.parse(spelling) == mode


@pytest.mark.parametrize("spelling", ["", "sometimes", "detect", "at-end", "DetectAtAudioEnd"])
def test_unknown_lid_mode_names_the_choices(spelling: str) -> None:
    with pytest.raises(ConfigError) as info:
        LidMode.parse(spelling)
    assert repr(spelling) in str(info.value)
    assert "DetectContinuous" in str(info.value)


def test_azure_lid_modes_round_trip() -> None:
    from voxflow.server.usp import LID_WIRE

    assert set(LID_WIRE) == set(LidMode)
    for mode, wire in LID_WIRE.items():
        assert LidMode.parse(wire) is mode
        assert LidMode.parse(str(mode)) is mode


def test_a_plan_is_parsed_once_from_the_users_words() -> None:
    plan = LanguagePlan.parse("en-US, es-MX,en-GB", lid="DetectContinuous")
    assert plan.tags == ("en-US", "es-MX", "en-GB") and plan.mode is LidMode.CONTINUOUS
    assert plan.fixed is None
    # A Whisper detection of "en" stands for the first English candidate given.
    assert plan.language("en").tag == "en-US"
    assert plan.language("fr") == resolve_language("fr")  # outside the candidates
    forced = LanguagePlan.parse("en-US,es-MX", forced="es_mx")
    assert forced.candidates == () and forced.tags == ("es-MX",)
    assert forced.fixed == Identified(resolve_language("es-MX"), 1.0)
    # One candidate (or several of one Whisper language) leaves nothing to identify.
    assert LanguagePlan.parse("de-DE").fixed == Identified(resolve_language("de-DE"), 1.0)
    assert LanguagePlan.parse("").candidates == () and LanguagePlan.parse("").fixed is None
    decided = plan.deciding(Identified(plan.candidates[1], 0.7))
    assert decided.fixed is not None and decided.fixed.language.tag == "es-MX"
    assert decided.fingerprint() == plan.fingerprint()  # the decision comes from the audio
    assert plan.fingerprint() != LanguagePlan.parse("en-US,es-MX").fingerprint()
    with pytest.raises(ConfigError, match="unknown language"):
        LanguagePlan.parse("en-US,xx-YY")


@pytest.mark.parametrize(
    ("p", "label"),
    [(1.0, "High"), (0.8, "High"), (0.7999, "Medium"), (0.5, "Medium"), (0.4999, "Low"),
     (0.0, "Low"), (None, "Unknown"), (math.nan, "Unknown")],
)  # fmt: skip
def test_confidence_labels(p: float | None, label: str) -> None:
    assert confidence_label(p) == label


@given(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.0, max_value=1.0))
def test_confidence_labels_are_monotonic(a: float, b: float) -> None:
    rank = {"Low": 0, "Medium": 1, "High": 2}
    low, high = sorted((a, b))
    assert rank[confidence_label(low)] <= rank[confidence_label(high)]


@pytest.mark.parametrize("p", [-0.01, 1.01, math.inf])
def test_confidence_outside_unit_interval_is_a_bug(p: float) -> None:
    with pytest.raises(ValueError):
        confidence_label(p)


@pytest.mark.parametrize(
    ("tag", "script"),
    [("zh", "Hans"), ("zh-CN", "Hans"), ("zh-SG", "Hans"), ("zh-Hans-HK", "Hans"),
     ("zh-TW", "Hant"), ("zh-HK", "Hant"), ("zh-MO", "Hant"), ("zh-Hant", "Hant"),
     ("cmn-Hant-CN", "Hant")],
)  # fmt: skip
def test_chinese_script_follows_the_tag(tag: str, script: str) -> None:
    from voxflow.languages import chinese_script

    assert chinese_script(resolve_language(tag)) == script
