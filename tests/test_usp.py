"""The USP codec with bytes alone: real SDK frames, round trips, every malformed case, fuzzing."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxflow.errors import ProtocolError
from voxflow.languages import LidMode, confidence_label
from voxflow.server.usp import (
    Audio,
    AudioEnd,
    AudioStart,
    Connection,
    ContextOptions,
    Continuation,
    Limits,
    RecognitionMode,
    RecognitionStatus,
    Replies,
    RequestOptions,
    SpeechConfig,
    SpeechContext,
    Telemetry,
    Unknown,
    WaveEncoding,
    WaveFormat,
    audio_end_message,
    audio_header_message,
    audio_message,
    build_wave_header,
    client_messages,
    encode_binary_frame,
    encode_text_frame,
    lexical,
    parse_binary_frame,
    parse_context,
    parse_service_message,
    parse_target,
    parse_text_frame,
    parse_wave_header,
    phrase_body,
    resolve_settings,
    seconds_to_ticks,
    segment_body,
    speech_config_message,
    speech_context_message,
    telemetry_message,
    ticks_to_seconds,
    timestamp,
)
from voxflow.server.usp.wave import DECODABLE_CHANNELS
from voxflow.transcript import Segment, Word

DATA = Path(__file__).parent / "data" / "usp"
RID = "0123456789abcdef0123456789abcdef"
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(path: Path) -> str | bytes:
    """A captured frame as websockets hands it over: text frames as str, binary as bytes."""
    raw = path.read_bytes()
    return raw.decode("utf-8") if path.suffix == ".txt" else raw


def session(name: str) -> list[str | bytes]:
    return [load(p) for p in sorted((DATA / name).iterdir())]


def opened(target: str = "/", **options: object) -> Connection:
    """A connection that has received speech.config and a speech.context for RID."""
    conn = Connection(target)
    conn.receive(speech_config_message())
    conn.receive(speech_context_message(RID, ContextOptions(**options)))  # type: ignore[arg-type]
    return conn


# --- real frames captured from SDK 1.53 ---------------------------------------------------


def test_recognize_once_session_from_the_sdk() -> None:
    conn = Connection("/speech/recognition/interactive/cognitiveservices/v1?language=en-US")
    events = [e for m in session("session-once") for e in conn.receive(m)]
    kinds = [type(e) for e in events]
    assert kinds == [SpeechConfig, SpeechContext, AudioStart, Audio, AudioEnd, Telemetry, Telemetry]
    config, context, start, first, end = events[:5]
    assert config.body["context"]["audio"]["source"]["samplerate"] == "16000"
    assert context.options.language == "en-US"
    assert start.format == WaveFormat(16000, 1, 16, WaveEncoding.PCM)
    assert (first.offset, len(first.data)) == (0, 3200)
    assert end.total_bytes == 3200
    turn = conn.turns[context.request_id]
    assert turn.ended and turn.audio_seconds == pytest.approx(0.1)
    assert turn.settings.mode is RecognitionMode.INTERACTIVE


def test_session_with_continuation_turns_from_the_sdk() -> None:
    conn = Connection("/speech/recognition/conversation/cognitiveservices/v1?language=en-US")
    events = [e for m in session("session-continuation") for e in conn.receive(m)]
    contexts = [e for e in events if isinstance(e, SpeechContext)]
    assert len(contexts) == 3 and len({c.request_id for c in contexts}) == 3
    bases = [conn.turns[c.request_id].settings.offset_base for c in contexts]
    assert bases == [0.0, 1.0, 4.0]
    continuations = [c.options.continuation for c in contexts]
    assert continuations[0] is None
    assert all(re.fullmatch(r"[0-9a-f]{32}", c.previous_service_tag) for c in continuations[1:])
    assert all(t.ended for t in conn.turns.values())
    ends = [e for e in events if isinstance(e, AudioEnd)]
    assert [e.request_id for e in ends] == [c.request_id for c in contexts]
    # each turn's audio end is session time: its base plus what it carried
    assert conn.turns[contexts[2].request_id].audio_end == pytest.approx(4.0 + 0.1)


CONTEXTS = {
    "detailed": dict(language="en-US", detailed=True, word_timings=True, word_confidence=True),
    "lid-at-start": dict(
        languages=("en-US", "de-DE"),
        language_id_mode=LidMode.AT_START,
        detailed=True,
        word_timings=True,
        word_confidence=True,
    ),
    "lid-continuous": dict(
        languages=("en-US", "de-DE"), language_id_mode=LidMode.CONTINUOUS
    ),
    # SourceLanguageRecognizer (SDK 1.53, host=, on /speech/universal/v2): the language only
    "language-only-at-start": dict(
        languages=("en-US", "es-MX"), language_id_mode=LidMode.AT_START, language_only=True
    ),
    "language-only-continuous": dict(
        languages=("en-US", "es-MX"), language_id_mode=LidMode.CONTINUOUS, language_only=True
    ),
    "phrases-weight": dict(
        language="en-US", phrases=("Contoso", "Jessie Jackson"), phrase_weight=1.5
    ),
    "phrases-lid": dict(
        phrases=("Contoso", "Jessie Jackson"),
        phrase_weight=1.0,
        languages=("en-US", "de-DE"),
        language_id_mode=LidMode.AT_START,
    ),
    "dictation-profanity": dict(language="fr-FR", profanity="raw"),
    "endpoint-interactive": dict(language="en-us", mode=RecognitionMode.INTERACTIVE),
    "endpoint-conversation": dict(language="en-us", mode=RecognitionMode.CONVERSATION),
    "silence-timeouts": dict(
        language="fr-FR",
        mode=RecognitionMode.INTERACTIVE,
        initial_silence_timeout=3.0,
        end_silence_timeout=0.9,
        segmentation_silence_timeout=0.7,
    ),
    # Speech_SegmentationSilenceTimeoutMs=800, Speech_SegmentationMaximumTimeMs=20000
    "segmentation": dict(
        language="de-DE",
        mode=RecognitionMode.CONVERSATION,
        segmentation_silence_timeout=0.8,
        segmentation_max_time=20.0,
    ),
    # TranslationRecognizer (SDK 1.53): host= on /stt/speech/universal/v2 ...
    "translation-interactive": dict(
        language="es-ES", mode=RecognitionMode.INTERACTIVE, translate_to=("en",)
    ),
    "translation-conversation": dict(
        language="es-ES", mode=RecognitionMode.CONVERSATION, translate_to=("en", "de")
    ),
    "translation-lid-at-start": dict(
        mode=RecognitionMode.INTERACTIVE,
        languages=("de-DE", "es-ES"),
        language_id_mode=LidMode.AT_START,
        translate_to=("en",),
    ),
    "translation-lid-continuous": dict(
        mode=RecognitionMode.CONVERSATION,
        languages=("de-DE", "es-ES"),
        language_id_mode=LidMode.CONTINUOUS,
        translate_to=("en",),
    ),
    # ... and endpoint= on /speech/translation/cognitiveservices/v1 (from= and to= in the query)
    "translation-endpoint-v1": dict(translate_to=("en", "de")),
    "reconnect-continuation": dict(
        language="en-US",
        detailed=True,
        word_timings=True,
        word_confidence=True,
        continuation=Continuation("61b53b687b67442c9f2bc5953e3e6b61", 1.0),
    ),
}


@pytest.mark.parametrize("name", sorted(CONTEXTS))
def test_speech_context_options_from_the_sdk(name: str) -> None:
    conn = Connection()
    conn.receive(speech_config_message())
    (event,) = conn.receive(load(DATA / "contexts" / f"{name}.txt"))
    assert isinstance(event, SpeechContext)
    assert event.options == ContextOptions(**CONTEXTS[name])  # type: ignore[arg-type]
    # what we would send for the same options reads back the same
    assert parse_context(json.loads(json.dumps(event.options.to_body()))) == event.options


HEADERS = {
    "pcm16k-mono": (WaveEncoding.PCM, 16000, 1, 16),
    "pcm16k-stereo": (WaveEncoding.PCM, 16000, 2, 16),
    "pcm48k-stereo": (WaveEncoding.PCM, 48000, 2, 16),
    "pcm8k-mono": (WaveEncoding.PCM, 8000, 1, 16),
    "pcm8k-8bit-mono": (WaveEncoding.PCM, 8000, 1, 8),
    "mulaw16k-mono": (WaveEncoding.MULAW, 16000, 1, 8),
    "alaw8k-mono": (WaveEncoding.ALAW, 8000, 1, 8),
    "float32-16k-mono": (WaveEncoding.FLOAT, 16000, 1, 32),
    "extensible-pcm24-16k-mono": (WaveEncoding.PCM, 16000, 1, 24),
}


@pytest.mark.parametrize("name", sorted(HEADERS))
def test_riff_headers_from_the_sdk(name: str) -> None:
    frame = parse_binary_frame(load(DATA / "headers" / f"{name}.bin"))  # type: ignore[arg-type]
    assert frame.header("content-type") == "audio/x-wav"
    fmt, start = parse_wave_header(frame.body)  # type: ignore[arg-type]
    encoding, rate, channels, bits = HEADERS[name]
    assert fmt == WaveFormat(rate, channels, bits, encoding)
    assert start == len(frame.body) == (68 if name.startswith("extensible") else 44)


def test_request_targets_from_the_sdk() -> None:
    targets = (DATA / "targets.txt").read_text().split()
    parsed = {t: parse_target(t) for t in targets}
    lid = parsed[
        "/speech/recognition/conversation/cognitiveservices/v1?language=en-us&lidEnabled=en-US%2Cde-DE"
    ]
    assert lid.mode is RecognitionMode.CONVERSATION and lid.languages == ("en-US", "de-DE")
    detailed = parsed[
        "/speech/recognition/interactive/cognitiveservices/v1?format=detailed&language=en-US"
        "&wordLevelConfidence=true&wordLevelTimestamps=true"
    ]
    assert detailed.detailed and detailed.word_timestamps and detailed.word_confidence
    dictation = parsed[
        "/speech/recognition/dictation/cognitiveservices/v1?language=fr-FR&profanity=raw"
    ]
    assert (dictation.mode, dictation.profanity) == (RecognitionMode.DICTATION, "raw")
    silence = parsed[
        "/speech/recognition/interactive/cognitiveservices/v1?endSilenceTimeoutMs=900"
        "&initialSilenceTimeoutMs=3000&language=fr-FR"
    ]
    assert (silence.initial_silence_timeout, silence.end_silence_timeout) == (3.0, 0.9)
    custom = parsed["/my/path?foo=bar&language=de-DE"]
    assert (custom.mode, custom.language, custom.extra) == (None, "de-DE", {"foo": "bar"})
    for path in ("/x/speech/recognition/conversation/cognitiveservices/v1",
                 "/speech/recognition/conversation/cognitiveservices/v1%0A"):  # fmt: skip
        assert parse_target(path).mode is None  # a speech path is the whole path
    punct = parsed[
        "/speech/recognition/interactive/cognitiveservices/v1?language=fr-FR&profanity=removed"
        "&punctuation=explicit"
    ]
    assert punct.extra == {"punctuation": "explicit"}
    # TranslationRecognizer: host= sends no query; endpoint= on the v1 path gets from= and to=
    universal = parsed["/stt/speech/universal/v2"]
    assert (universal.mode, universal.language, universal.translate_to) == (None, None, ())
    v1 = parsed["/speech/translation/cognitiveservices/v1?from=es-ES&to=en&to=de"]
    assert (v1.mode, v1.language, v1.translate_to, v1.extra) == (None, "es-ES", ("en", "de"), {})


def test_settings_merge_query_and_context() -> None:
    # endpoint= with a query language: the query wins; the context gives the mode
    target = parse_target("/my/path?language=de-DE")
    options = ContextOptions(language="en-us", mode=RecognitionMode.INTERACTIVE)
    resolved = resolve_settings(target, options)
    assert (resolved.language, resolved.mode) == ("de-DE", RecognitionMode.INTERACTIVE)
    # language id from the query alone means detection at the start
    target = parse_target("/speech/recognition/conversation/cognitiveservices/v1?lidEnabled=a,b")
    resolved = resolve_settings(target, ContextOptions())
    assert resolved.languages == ("a", "b") and resolved.language_id_mode is LidMode.AT_START
    assert resolved.mode.continuous
    assert (
        resolve_settings(parse_target("/x"), ContextOptions()).mode is RecognitionMode.CONVERSATION
    )


# --- round trips -----------------------------------------------------------------------------


def test_client_messages_round_trip_through_the_connection() -> None:
    fmt = WaveFormat(8000, 2, 16)
    audio = bytes(range(256)) * 50  # 12,800 bytes: 0.4 s, the last frame short
    options = ContextOptions(language="de-DE", detailed=True, word_timings=True)
    messages = list(client_messages(audio, fmt, request_id=RID, options=options))
    conn = Connection(parse_target("/speech/recognition/dictation/cognitiveservices/v1"))
    events = [e for m in messages for e in conn.receive(m)]
    assert isinstance(events[1], SpeechContext) and events[1].options == options
    assert isinstance(events[2], AudioStart) and events[2].format == fmt
    chunks = [e for e in events if isinstance(e, Audio)]
    assert [len(c.data) for c in chunks] == [3200, 3200, 3200, 3200]
    assert b"".join(c.data for c in chunks) == audio
    assert [c.offset for c in chunks] == [0, 3200, 6400, 9600]
    assert events[-1] == AudioEnd(RID, len(audio))
    assert conn.turns[RID].settings.mode is RecognitionMode.DICTATION


def test_client_frames_look_like_the_sdk_frames() -> None:
    ours = parse_binary_frame(audio_header_message(RID, WaveFormat()))
    theirs = parse_binary_frame(load(DATA / "headers" / "pcm16k-mono.bin"))  # type: ignore[arg-type]
    assert set(ours.headers) == set(theirs.headers)
    assert ours.body == theirs.body  # the same 44-byte streaming header
    end = parse_binary_frame(audio_end_message(RID))
    assert end.body == b"" and end.path == "audio" and end.request_id == RID
    config = parse_text_frame(speech_config_message(WaveFormat(48000, 2, 16)))
    assert config.json()["context"]["audio"]["source"]["channelcount"] == "2"
    assert parse_text_frame(telemetry_message(RID, {"a": 1})).json() == {"a": 1}
    with pytest.raises(ValueError):
        audio_message(RID, b"")


def test_header_leniency_case_and_spaces() -> None:
    frame = parse_text_frame("path : speech.config\r\nX-REQUESTID:  abc \r\n\r\n{}")
    assert (frame.path, frame.request_id, frame.header("X-RequestId")) == (
        "speech.config",
        "abc",
        "abc",
    )
    assert encode_text_frame([("Path", "x")], "{}", sep=": ") == "Path: x\r\n\r\n{}"
    with pytest.raises(ValueError):
        encode_text_frame([("Path", "a\r\nb")], "{}")
    with pytest.raises(ValueError):
        encode_binary_frame([("X", "y" * 70000)], b"")


def test_unknown_paths_are_handed_over() -> None:
    conn = opened()
    (text,) = conn.receive("Path:speech.event\r\n\r\nhello")
    assert isinstance(text, Unknown) and text.path == "speech.event" and text.frame.body == "hello"
    (binary,) = conn.receive(encode_binary_frame([("Path", "video")], b"\x00\x01"))
    assert isinstance(binary, Unknown) and binary.frame.body == b"\x00\x01"


context_options = st.builds(
    ContextOptions,
    language=st.none() | st.sampled_from(["en-US", "de-DE", "fr-fr"]),
    mode=st.none() | st.sampled_from(list(RecognitionMode)),
    detailed=st.booleans(),
    word_timings=st.booleans(),
    word_confidence=st.booleans(),
    languages=st.lists(st.sampled_from(["en-US", "de-DE", "ja-JP"]), max_size=3).map(tuple),
    language_id_mode=st.none() | st.sampled_from(list(LidMode)),
    phrases=st.lists(st.text(max_size=20), max_size=4).map(tuple),
    phrase_weight=st.none() | st.floats(0, 2, allow_nan=False),
    profanity=st.none() | st.sampled_from(["raw", "masked", "removed"]),
    initial_silence_timeout=st.none() | st.integers(0, 100_000).map(lambda ms: ms / 1000),
    end_silence_timeout=st.none() | st.integers(0, 100_000).map(lambda ms: ms / 1000),
    continuation=st.none()
    | st.builds(Continuation, st.text(max_size=32), st.integers(0, 10**12).map(lambda t: t / 1e7)),
    translate_to=st.lists(st.sampled_from(["en", "de", "zh-Hans"]), max_size=2).map(tuple),
)


@FUZZ
@given(context_options)
def test_context_options_round_trip(options: ContextOptions) -> None:
    if options.language_id_mode is not None or options.languages:
        # the SDK never sends languageId without a mode: ours defaults to at-start
        mode = options.language_id_mode or LidMode.AT_START
        options = dataclasses.replace(options, language_id_mode=mode)
    message = speech_context_message(RID, options)
    assert parse_context(parse_text_frame(message).json()) == options


@FUZZ
@given(
    st.builds(
        RequestOptions,
        path=st.sampled_from(["/", "/a b/c", "/speech/recognition/x/y"]),
        mode=st.none() | st.sampled_from(list(RecognitionMode)),
        language=st.none() | st.sampled_from(["en-US", "zh-Hans-CN"]),
        detailed=st.booleans(),
        word_timestamps=st.booleans(),
        word_confidence=st.booleans(),
        languages=st.lists(st.sampled_from(["en-US", "de-DE"]), max_size=2).map(tuple),
        profanity=st.none() | st.sampled_from(["raw", "removed"]),
        initial_silence_timeout=st.none() | st.integers(0, 10**6).map(lambda ms: ms / 1000),
        end_silence_timeout=st.none() | st.integers(0, 10**6).map(lambda ms: ms / 1000),
        translate_to=st.lists(st.sampled_from(["en", "de", "zh-Hans"]), max_size=2).map(tuple),
        extra=st.dictionaries(st.sampled_from(["foo", "x-y", "émoji"]), st.text(max_size=8)),
    )
)
def test_request_target_round_trip(options: RequestOptions) -> None:
    parsed = parse_target(options.to_target())
    if options.mode is not None:
        assert parsed.mode is options.mode
        options = dataclasses.replace(options, path=parsed.path)
    assert parsed == options


wave_formats = st.one_of(
    st.builds(
        WaveFormat,
        st.integers(8000, 768_000),
        st.sampled_from(sorted(DECODABLE_CHANNELS)),
        st.sampled_from([8, 16, 24, 32]),
    ),
    st.builds(
        WaveFormat,
        st.integers(8000, 768_000),
        st.integers(1, 8),
        st.sampled_from([32, 64]),
        st.just(WaveEncoding.FLOAT),
    ),
    st.builds(
        WaveFormat,
        st.sampled_from([8000, 16000]),
        st.just(1),
        st.just(8),
        st.sampled_from([WaveEncoding.ALAW, WaveEncoding.MULAW]),
    ),
)


@FUZZ
@given(wave_formats, st.booleans(), st.integers(0, 2**31))
def test_wave_header_round_trip(fmt: WaveFormat, extensible: bool, data_size: int) -> None:
    header = build_wave_header(fmt, data_size=data_size, extensible=extensible)
    assert len(header) == (68 if extensible else 44)
    assert parse_wave_header(header + b"\x01\x02") == (fmt, len(header))


def test_wave_header_skips_other_chunks_and_pads_odd_sizes() -> None:
    plain = build_wave_header(WaveFormat(22050, 1, 8))
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # odd size, one pad byte
    header = plain[:12] + extra + plain[12:]
    assert parse_wave_header(header) == (WaveFormat(22050, 1, 8), len(header))
    assert WaveFormat(16000, 2, 16).seconds(64000) == 1.0


# --- service messages ------------------------------------------------------------------------


def fixed_clock() -> datetime:
    return datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)


def test_replies_round_trip_with_ticks_and_base() -> None:
    replies = Replies(RID, base=2.0, clock=fixed_clock)
    start = parse_service_message(replies.turn_start("tag1"))
    assert (start.path, start.request_id, start.body) == (
        "turn.start",
        RID,
        {"context": {"serviceTag": "tag1"}},
    )
    assert start.headers["x-timestamp"] == "2024-05-01T12:00:00.250Z"
    assert start.headers["content-type"] == "application/json; charset=utf-8"
    assert replies.turn_start().split("\r\n")[0] == "Path: turn.start"
    assert parse_service_message(replies.start_detected(2.5)).body == {"Offset": 5_000_000}
    hyp = parse_service_message(replies.hypothesis(" hello wor ", 2.5, 3.0, language="de-DE"))
    assert hyp.body == {
        "Text": "hello wor",
        "Offset": 5_000_000,
        "Duration": 5_000_000,
        "PrimaryLanguage": {"Language": "de-DE", "Confidence": "Unknown"},
    }
    status = parse_service_message(replies.status(RecognitionStatus.END_OF_DICTATION, 4.0, 4.0))
    assert status.body == {
        "RecognitionStatus": "EndOfDictation",
        "Offset": 20_000_000,
        "Duration": 0,
    }
    assert parse_service_message(replies.end_detected(4.0)).body == {"Offset": 20_000_000}
    end = parse_service_message(replies.turn_end())
    assert (end.path, end.body) == ("turn.end", {})


def test_translation_replies_in_the_shape_the_sdk_reads() -> None:
    """translation.response as SDK 1.53 accepted it (docs/usp-observed.md): the text as said in
    SpeechPhrase / SpeechHypothesis (with the language found), the translations beside it."""
    replies = Replies(RID, base=2.0, clock=fixed_clock)
    segment = Segment(2.5, 4.0, " Las arenas son blancas. ", words=(Word(2.5, 3.0, "Las", 0.9),))
    targets = [("en", " The sand is white. "), ("en-GB", "The sand is white.")]
    phrase = parse_service_message(replies.translated(segment, targets, language="es-ES"))
    translations = [
        {"Language": "en", "Text": "The sand is white."},
        {"Language": "en-GB", "Text": "The sand is white."},
    ]
    assert (phrase.path, phrase.body) == (
        "translation.response",
        {
            "SpeechPhrase": {
                "RecognitionStatus": "Success",
                "Offset": 5_000_000,
                "Duration": 15_000_000,
                "DisplayText": "Las arenas son blancas.",
                "PrimaryLanguage": {"Language": "es-ES", "Confidence": "Unknown"},
            },
            "TranslationStatus": "Success",
            "Translations": translations,
        },
    )
    hyp = parse_service_message(replies.translated_hypothesis(" las are", 2.5, 3.5, targets))
    assert (hyp.path, hyp.body) == (
        "translation.response",
        {
            "SpeechHypothesis": {"Text": "las are", "Offset": 5_000_000, "Duration": 10_000_000},
            "TranslationStatus": "Success",
            "Translations": translations,
        },
    )
    refused = replies.status(RecognitionStatus.BAD_REQUEST, 2.0, 2.0, reason="no 'de' here")
    assert parse_service_message(refused).body == {
        "RecognitionStatus": "BadRequest",
        "Offset": 0,
        "Duration": 0,
        "FailureReason": "no 'de' here",
    }


def test_segment_phrase_simple_and_detailed() -> None:
    words = (Word(10.0, 10.5, " Hello,", 0.91), Word(10.5, 11.25, " World!", 0.8))
    segment = Segment(10.0, 11.25, " Hello, World!", language="en", confidence=None, words=words)
    simple = segment_body(segment, base=8.0, language="en-US", language_probability=0.6)
    assert simple == {
        "RecognitionStatus": "Success",
        "Offset": 20_000_000,
        "Duration": 12_500_000,
        "DisplayText": "Hello, World!",
        "PrimaryLanguage": {"Language": "en-US", "Confidence": "Medium"},
    }
    detailed = segment_body(segment, base=8.0, detailed=True)
    (best,) = detailed["NBest"]
    assert detailed["PrimaryLanguage"]["Language"] == "en"
    assert best["Confidence"] == pytest.approx(0.855)
    assert best["Lexical"] == best["ITN"] == best["MaskedITN"] == "hello world"
    assert best["Display"] == "Hello, World!"
    assert best["Words"] == [
        {"Word": "hello", "Offset": 20_000_000, "Duration": 5_000_000, "Confidence": 0.91},
        {"Word": "world", "Offset": 25_000_000, "Duration": 7_500_000, "Confidence": 0.8},
    ]
    bare = segment_body(segment, detailed=True, word_timings=False)
    assert "Words" not in bare["NBest"][0]
    no_conf = segment_body(segment, detailed=True, word_confidence=False)
    assert all("Confidence" not in w for w in no_conf["NBest"][0]["Words"])
    plain = phrase_body("ok", 0, 1)
    assert "PrimaryLanguage" not in plain and "NBest" not in plain


def test_ticks_conversion() -> None:
    assert seconds_to_ticks(1.5) == 15_000_000
    assert seconds_to_ticks(0.00000006) == 1  # rounds to the nearest tick
    assert seconds_to_ticks(12.0, base=10.0) == 20_000_000
    assert seconds_to_ticks(9.0, base=10.0) == 0  # never negative
    assert ticks_to_seconds(25_000_000, base=1.0) == 3.5


@FUZZ
@given(st.floats(0, 1e6, allow_nan=False), st.floats(0, 1e5, allow_nan=False))
def test_ticks_round_trip(seconds: float, base: float) -> None:
    ticks = seconds_to_ticks(seconds + base, base)
    assert ticks_to_seconds(ticks, base) == pytest.approx(seconds + base, abs=1e-6)


def test_small_helpers() -> None:
    assert [confidence_label(p) for p in (0.95, 0.8, 0.5, 0.1, None)] == [
        "High",
        "High",
        "Medium",
        "Low",
        "Unknown",
    ]
    assert lexical("  It's 5 o'clock, «Jean-Luc»! ... ") == "it's 5 o'clock jean-luc"
    assert timestamp(fixed_clock()) == "2024-05-01T12:00:00.250Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp())


# --- malformed input -------------------------------------------------------------------------

RIFF = build_wave_header(WaveFormat())


def binary(payload: bytes, **headers: str) -> bytes:
    return encode_binary_frame(list(headers.items()), payload)


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        (b"", "no 2-byte header length"),
        (b"\x00", "no 2-byte header length"),
        (b"\x00\x10Path:audio", "truncated"),
        (b"\x00\x02\xff\xfe", "not UTF-8"),
        (b"\x00\x0aPath audio", "malformed header line"),
        (b"\x00\x06:audio", "malformed header line"),
        (b"\x00\x16Path:audio\r\nPath:audio", "appears twice"),
        (b"\x00\x00", "without a Path"),
        (binary(RIFF, Path="audio"), "without an X-RequestId"),
        (binary(RIFF, Path="audio", **{"X-RequestId": "other"}), "before its speech.context"),
        (binary(b"", Path="audio", **{"X-RequestId": RID}), "before its RIFF/WAVE header"),
        (binary(b"RIFX" + RIFF[4:], Path="audio", **{"X-RequestId": RID}), "RIFF/WAVE header"),
        (binary(b"\x00" * 3200, Path="audio", **{"X-RequestId": RID}), "RIFF/WAVE header"),
    ],
)
def test_malformed_binary_frames(data: bytes, cause: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(cause)):
        opened().receive(data)


@pytest.mark.parametrize(
    ("data", "cause"),
    [
        ("Path:speech.config\r\n{}", "no blank line"),
        (b"Path:speech.config\r\n\r\n{\xff}", "not UTF-8"),
        ("Path:speech.config\r\n\r\n{", "not valid JSON"),
        ("Path:speech.config\r\n\r\n[1]", "expected an object"),
        ("Path:speech.config\r\n\r\n" + "[" * 100_000, "not valid JSON"),
        ("Path:telemetry\r\n\r\nnope", "not valid JSON"),
        ("X-RequestId:1\r\n\r\n{}", "without a Path"),
        ("Path:audio\r\nX-RequestId:1\r\n\r\n", "must be binary"),
        ("Path:speech.context\r\n\r\n{}", "without an X-RequestId"),
        (f"Path:speech.context\r\nX-RequestId:{RID}\r\n\r\n{{}}", "second speech.context"),
    ],
)
def test_malformed_text_frames(data: str | bytes, cause: str) -> None:
    conn = opened()
    with pytest.raises(ProtocolError, match=re.escape(cause)):
        if isinstance(data, bytes):
            conn.receive_text(data)
        else:
            conn.receive(data)


@pytest.mark.parametrize(
    ("body", "cause"),
    [
        ({"phraseDetection": {"language": 5}}, "wrong type"),
        ({"phraseDetection": "x"}, "non-object"),
        ({"phraseDetection": {"mode": "karaoke"}}, "unknown recognition mode"),
        ({"languageId": {"languages": ["en", 1]}}, "must be strings"),
        ({"languageId": {"mode": "Sometimes"}}, "unknown languageId.mode"),
        ({"phraseOutput": {"detailed": {"options": [True]}}}, "must be strings"),
        ({"dgi": {"Groups": [{"Items": [{"Txt": "a"}]}]}}, "without a Text"),
        ({"dgi": {"Groups": ["x"]}}, "must be objects"),
        ({"dgi": {"bias": 1e300}}, "out of range"),
        ({"dgi": {"bias": 10**400}}, "out of range"),
        ({"phraseDetection": {"initialSilenceTimeout": -1}}, "out of range"),
        ({"continuation": {"audio": {"streams": {"1": {"offset": "-5"}}}}}, "not ticks"),
        ({"continuation": {"audio": {"streams": {"1": {"offset": "9" * 5000}}}}}, "not ticks"),
        ({"continuation": {"audio": {"streams": {"1": {"offset": 2**70}}}}}, "out of range"),
    ],
)
def test_malformed_context_bodies(body: dict[str, object], cause: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(cause)):
        parse_context(body)


def test_order_and_limits() -> None:
    conn = Connection()
    with pytest.raises(ProtocolError, match=r"before speech\.config"):
        conn.receive(speech_context_message(RID))
    conn = opened()
    conn.receive(audio_header_message(RID, WaveFormat()))
    conn.receive(audio_end_message(RID))
    with pytest.raises(ProtocolError, match="after its end of audio"):
        conn.receive(audio_message(RID, b"\x00\x00"))

    small = Connection(limits=Limits(max_frame_bytes=2000, max_audio_bytes=1000, max_turns=1))
    small.receive(speech_config_message())
    small.receive(speech_context_message(RID))
    small.receive(audio_header_message(RID, WaveFormat()))
    small.receive(audio_message(RID, b"\x00" * 300))
    with pytest.raises(ProtocolError, match="exceeds the limit of 2000"):
        small.receive(audio_message(RID, b"\x00" * 2100))
    small.receive(audio_message(RID, b"\x00" * 300))
    with pytest.raises(ProtocolError, match="more than 1000 bytes of audio"):
        small.receive(audio_message(RID, b"\x00" * 402))
    with pytest.raises(ProtocolError, match="more than 1 turns"):
        small.receive(speech_context_message("another"))


def test_header_and_audio_in_one_frame() -> None:
    conn = opened()
    events = conn.receive(audio_message(RID, RIFF + b"\x01\x02\x03\x04"))
    assert [type(e) for e in events] == [AudioStart, Audio]
    assert events[1] == Audio(RID, b"\x01\x02\x03\x04", 0)


@pytest.mark.parametrize(
    ("header", "cause"),
    [
        (RIFF[:11], "does not start with"),
        (RIFF[:36], "truncated before its data chunk"),
        (RIFF[:30], "truncated"),
        (RIFF[:12] + RIFF[36:], "before any fmt chunk"),
        (RIFF[:20] + struct.pack("<H", 0x55) + RIFF[22:], "unsupported WAVE format tag 0x0055"),
        (RIFF[:32] + struct.pack("<H", 4) + RIFF[34:], "block align 4"),
        (RIFF[:22] + struct.pack("<H", 0) + RIFF[24:], "channel"),
        *[
            (
                RIFF[:22] + struct.pack("<HIIH", n, 16000, 32000 * n, 2 * n) + RIFF[34:],
                f"16-bit PCM in {n} channel(s) at 16000 Hz cannot be decoded",
            )
            for n in (9, 17, 31, 32)  # counts FFmpeg has no layout for: refused at the header
        ],
        *[
            (
                RIFF[:24] + struct.pack("<II", rate, 2 * rate) + RIFF[32:],
                f"1 channel(s) at {rate} Hz (speech needs 8000 to 768000 Hz)",
            )
            for rate in (1, 100, 7999)  # 1 Hz made each byte a second of audio to resample
        ],
        (RIFF[:12] + b"fmt " + struct.pack("<I", 14) + RIFF[20:34] + RIFF[36:], "shorter than 16"),
        (
            build_wave_header(WaveFormat(), extensible=True)[:46]
            + b"\xff" * 14
            + build_wave_header(WaveFormat(), extensible=True)[60:],
            "EXTENSIBLE",
        ),
        (
            build_wave_header(WaveFormat(8000, 1, 8, WaveEncoding.MULAW))[:34]
            + struct.pack("<H", 16)
            + RIFF[36:],
            "cannot be 16-bit",
        ),
    ],
)
def test_malformed_riff_headers(header: bytes, cause: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(cause)):
        parse_wave_header(header)


@pytest.mark.parametrize(
    ("target", "cause"),
    [
        ("speech/recognition", "does not start with '/'"),
        ("/x?format=verbose", "expected simple or detailed"),
        ("/x?wordLevelTimestamps=yes", "expected true or false"),
        ("/x?initialSilenceTimeoutMs=-1", "expected milliseconds"),
        ("/x?initialSilenceTimeoutMs=" + "9" * 5000, "expected milliseconds"),
        ("/speech/recognition/karaoke/cognitiveservices/v1", "unknown recognition mode"),
    ],
)
def test_malformed_targets(target: str, cause: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(cause)):
        parse_target(target)


def test_service_message_parser_rejects_garbage() -> None:
    with pytest.raises(ProtocolError, match="without Path or X-RequestId"):
        parse_service_message("Path: turn.end\r\n\r\n{}")


# --- fuzzing: anything in, only ProtocolError out --------------------------------------------


def feed(conn: Connection, message: str | bytes) -> None:
    try:
        events = conn.receive(message)
    except ProtocolError:
        return
    assert isinstance(events, list) and events


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_binary_frames(data: bytes) -> None:
    feed(opened(), data)
    feed(opened(), (len(data) // 2).to_bytes(2, "big") + data)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_fuzz_text_frames(data: str | bytes) -> None:
    conn = opened()
    with contextlib.suppress(ProtocolError):
        conn.receive_text(data)
    feed(conn, f"Path:speech.context\r\nX-RequestId:r\r\n\r\n{data!s}")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=20,
)
context_keys = st.sampled_from(
    [
        "phraseDetection",
        "phraseOutput",
        "languageId",
        "dgi",
        "continuation",
        "audio",
        "mode",
        "language",
        "languages",
        "detailed",
        "options",
        "Groups",
        "Items",
        "Text",
        "bias",
        "streams",
        "1",
        "offset",
        "previousServiceTag",
        "enrichment",
        "profanity",
        "initialSilenceTimeout",
        "trailingSilenceTimeout",
        "format",
    ]
)
context_like = st.recursive(
    json_values,
    lambda inner: st.dictionaries(context_keys, inner, max_size=5) | st.lists(inner, max_size=3),
    max_leaves=30,
)


@FUZZ
@given(st.dictionaries(context_keys, context_like, max_size=5))
def test_fuzz_context_bodies(body: dict[str, object]) -> None:
    try:
        options = parse_context(body)
    except ProtocolError:
        return
    assert isinstance(options, ContextOptions)
    resolve_settings(RequestOptions(), options)


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 80))
def test_fuzz_riff_headers(data: bytes, keep: int) -> None:
    for candidate in (data, RIFF[:keep] + data, b"RIFF\x00\x00\x00\x00WAVE" + data):
        try:
            fmt, start = parse_wave_header(candidate)
        except ProtocolError:
            continue
        assert 12 < start <= len(candidate) and fmt.block_align >= 1


@FUZZ
@given(st.text(max_size=200))
def test_fuzz_targets(text: str) -> None:
    for target in (text, "/" + text, "/x?" + text):
        with contextlib.suppress(ProtocolError):
            parse_target(target)


@FUZZ
@given(st.lists(st.sampled_from(range(8)), max_size=12), st.binary(max_size=64))
def test_fuzz_message_sequences(order: list[int], noise: bytes) -> None:
    """Valid messages in any order and repetition: the state machine only raises ProtocolError."""
    messages: list[str | bytes] = [
        speech_config_message(),
        speech_context_message(RID),
        audio_header_message(RID, WaveFormat()),
        audio_message(RID, noise or b"\x00"),
        audio_end_message(RID),
        speech_context_message("r2", ContextOptions(continuation=Continuation("t", 1.0))),
        audio_message("r2", RIFF + noise),
        telemetry_message(RID, {}),
    ]
    conn = Connection()
    for i in order:
        feed(conn, messages[i])
    for turn in conn.turns.values():
        assert turn.audio_bytes >= 0 and (not turn.ended or turn.started)


CAPTURED = sorted(DATA.glob("*/*.*"))


@FUZZ
@given(
    st.sampled_from(CAPTURED),
    st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 255)), min_size=1, max_size=4),
    st.integers(0, 2**20),
)
def test_fuzz_mutated_real_frames(path: Path, flips: list[tuple[int, int]], cut: int) -> None:
    """Real SDK frames with bytes overwritten and cut short: ProtocolError or events, no crash."""
    # same-length request id, so that audio frames reach the turn opened for RID
    raw = bytearray(
        re.sub(rb"X-RequestId:[0-9a-f]{32}", b"X-RequestId:" + RID.encode(), path.read_bytes())
    )
    for position, value in flips:
        raw[position % len(raw)] = value
    raw = raw[: len(raw) - cut % 8]
    conn = opened()
    try:
        if path.suffix == ".txt":
            conn.receive_text(bytes(raw))
        else:
            conn.receive_binary(bytes(raw))
    except ProtocolError:
        pass
