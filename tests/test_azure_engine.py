"""`--engine azure` on the real Azure Speech SDK, against voxflow's own speech server on loopback.

Nothing is mocked: the SDK talks USP over websockets to ``voxflow.server`` (real Whisper behind
it), so the Azure engine's text must be the embedded engine's text for the same audio. Faults
(dropped sockets, error statuses, slow replies, a wrong key, silence) come from the server's
``Faults``. Every test has a timeout: a hang fails it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from serving import BackgroundServer, LiveAudio
from voxflow.engines import DecodeSettings, create_engine
from voxflow.engines.azure.bridge import Canceled
from voxflow.engines.azure.config import AzureOptions
from voxflow.engines.azure.engine import AzureEngine, check_languages
from voxflow.engines.azure.input import SessionAudio, gstreamer_problem
from voxflow.engines.azure.results import LANGUAGE_CONFIDENCE
from voxflow.engines.azure.session import SessionPlan, classify, sdk_message, speech_config
from voxflow.engines.base import Clip
from voxflow.errors import ConfigError, EngineError
from voxflow.formats import render
from voxflow.languages import LanguagePlan, LidMode, confidence_label
from voxflow.pipeline import LiveSegmentation, TranscribeOptions, transcribe_async
from voxflow.server.config import Faults, ServerConfig
from voxflow.server.usp import RecognitionStatus

speechsdk = pytest.importorskip(
    "azure.cognitiveservices.speech", reason="azure-cognitiveservices-speech is not installed"
)

pytestmark = pytest.mark.timeout(120)  # a hang fails the test instead of stalling the suite

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ROOT / "samples" / "austen-0870.wav"  # 7.1 s, one sentence
SPANISH = ROOT / "samples" / "es-mx.wav"  # 6.1 s, two questions
RATE = 16000
KEY = "azure-test-key-7f3c"
LANGUAGES = ("en-US", "es-MX")
ENGLISH_ONLY = TranscribeOptions(languages=LanguagePlan.parse(forced="en-US"))
CANDIDATES = LanguagePlan.parse(LANGUAGES)


# -- helpers -------------------------------------------------------------------------------------
def normalise(text: str) -> str:
    text = text.lower().replace("mr.", "mister").replace("mr ", "mister ")
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text)).strip()


def pcm(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype="<i2")


def write_wav(path: Path, *pieces: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(np.concatenate(pieces).astype("<i2").tobytes())
    return path


_references: dict[tuple[str, TranscribeOptions], object] = {}


async def reference(path: Path, options: TranscribeOptions = ENGLISH_ONLY):
    """The embedded engine's transcript of the same file, read as a live stream cut into
    phrases as the server cuts a session's audio: what the server must send back."""
    key = (str(path), options)
    if key not in _references:
        live = dataclasses.replace(options, live=LiveSegmentation())
        with LiveAudio(str(path)) as audio:
            _references[key] = await transcribe_async(audio, engine=create_engine(), options=live)
    return _references[key]


@pytest.fixture(scope="module")
def server():
    config = ServerConfig(port=0, interim=False)
    with BackgroundServer(config, engine=create_engine()) as running:
        yield running


def engine(url: str, **options) -> AzureEngine:
    """The engine on a test server: quick retries, and audio pushed as fast as the server reads
    it unless a test asks for pacing (the default, 1× real time, would only make tests slow)."""
    options = {"retry_backoff": 0.05, "push_speed": None, **options}
    return AzureEngine(AzureOptions(host=url, **options))


async def run(url: str, path: Path, options: TranscribeOptions = ENGLISH_ONLY, **engine_options):
    azure = engine(url, **engine_options)
    try:
        return await transcribe_async(path, engine=azure, options=options)
    finally:
        await azure.aclose()


def stats(server: BackgroundServer) -> dict[str, int]:
    return dict(server.server.stats)


def assert_words_inside(segments) -> None:
    for seg in segments:
        assert seg.words, seg
        for word in seg.words:
            assert seg.start - 0.01 <= word.start <= word.end <= seg.end + 0.01, (seg, word)
            assert word.probability is None or 0.0 < word.probability <= 1.0


# -- recognition ---------------------------------------------------------------------------------
async def test_pcm_push_gives_the_embedded_engines_text_and_words(server) -> None:
    before = stats(server)
    result = await run(server.url, ENGLISH)
    expected = await reference(ENGLISH)
    assert normalise(result.text) == normalise(expected.text)
    assert [s.language for s in result.segments] == ["en-US"] * len(result.segments)
    assert all(s.confidence == 1.0 for s in result.segments)  # forced, as the pipeline says
    assert result.language == "en-US" and result.duration == pytest.approx(7.1, abs=0.01)
    # Seconds, not ticks: the segment lies within the audio and near the embedded one.
    (seg,) = result.segments
    assert 0.0 <= seg.start < seg.end <= 7.2
    assert seg.start == pytest.approx(expected.segments[0].start, abs=0.5)
    assert_words_inside(result.segments)
    assert " ".join(w.word for w in seg.words) == normalise(expected.text).replace("mister", "mr")
    assert stats(server)["connections"] - before.get("connections", 0) == 1


async def test_compressed_mp3_push_is_decoded_by_the_sdk(server, tmp_path: Path) -> None:
    if problem := gstreamer_problem():
        pytest.skip(f"the SDK cannot decode compressed audio here: {problem}")
    import av

    mp3 = tmp_path / "austen.mp3"
    samples = pcm(ENGLISH)
    with av.open(str(mp3), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono")
        for part in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(part):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    before = stats(server)
    result = await run(server.url, mp3, compressed=True)
    expected = await reference(mp3)  # voxflow's own decoding of the same MP3
    assert normalise(result.text) == normalise(expected.text)
    assert result.duration == pytest.approx(7.1, abs=0.2)
    assert_words_inside(result.segments)
    # One session for the whole file: the SDK decoded the MP3 and sent PCM.
    assert stats(server)["connections"] - before.get("connections", 0) == 1


async def test_compressed_mode_refuses_formats_it_cannot_pass_through(server) -> None:
    if problem := gstreamer_problem():
        pytest.skip(f"the SDK cannot decode compressed audio here: {problem}")
    with pytest.raises(ConfigError, match=r"MP3, OGG/Opus, FLAC.*drop --azure-compressed"):
        await run(server.url, ENGLISH, compressed=True)  # 16-bit PCM WAV


def test_compressed_mode_without_gstreamer_is_a_clear_error(monkeypatch) -> None:
    # The library cannot be uninstalled for a test: only its lookup is made to fail here.
    import ctypes.util

    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    with pytest.raises(ConfigError, match="needs GStreamer") as err:
        AzureEngine(AzureOptions(host="ws://127.0.0.1:9", compressed=True))
    assert "\n" not in str(err.value) and "gstreamer1.0-plugins-good" in str(err.value)


def test_compressed_mode_names_the_missing_gstreamer_elements(monkeypatch) -> None:
    # Plugins cannot be uninstalled for a test: the registry is asked for one element that
    # every GStreamer has (identity, in the core library's package) and one that none has.
    import ctypes.util

    if ctypes.util.find_library("gstreamer-1.0") is None:
        pytest.skip("libgstreamer-1.0 is not installed: its registry cannot be asked")
    elements = {"MP3": ("identity", "voxflow-no-such-element")}
    monkeypatch.setattr("voxflow.engines.azure.input._SDK_ELEMENTS", elements)
    with pytest.raises(ConfigError, match=r"elements voxflow-no-such-element \(MP3\) are missing"):
        AzureEngine(AzureOptions(host="ws://127.0.0.1:9", compressed=True))
    monkeypatch.setattr("voxflow.engines.azure.input._SDK_ELEMENTS", {"MP3": ("identity",)})
    assert gstreamer_problem() is None


@pytest.mark.parametrize(("path", "language"), [(SPANISH, "es-MX"), (ENGLISH, "en-US")])
async def test_language_id_at_start_labels_every_segment(server, path, language) -> None:
    options = TranscribeOptions(languages=CANDIDATES)
    result = await run(server.url, path, options)
    expected = await reference(path, options)
    assert [normalise(s.text) for s in result.segments] == [
        normalise(s.text) for s in expected.segments
    ]
    assert result.segments and {s.language for s in result.segments} == {language}
    assert result.language == language
    assert all(s.confidence in LANGUAGE_CONFIDENCE.values() for s in result.segments)


async def test_continuous_language_id_labels_each_phrase(server, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "en-es.wav", pcm(ENGLISH), silence(2.0), pcm(SPANISH))
    options = TranscribeOptions(languages=LanguagePlan.parse(LANGUAGES, lid="continuous"))
    before = stats(server).get("connections", 0)
    result = await run(server.url, path, options)
    assert stats(server)["connections"] == before + 1  # one session, the service switched
    english = [s for s in result.segments if s.end <= 9.1]  # Spanish starts at 9.1 s
    spanish = [s for s in result.segments if s.start >= 8.5]
    assert english and spanish and len(english) + len(spanish) == len(result.segments)
    assert {s.language for s in english} == {"en-US"} and {s.language for s in spanish} == {"es-MX"}
    assert "dashwood" in normalise(" ".join(s.text for s in english))
    assert {"distancia", "luna", "montaña"} <= set(
        normalise(" ".join(s.text for s in spanish)).split()
    )
    assert all(s.confidence in LANGUAGE_CONFIDENCE.values() for s in result.segments)


async def test_identify_asks_the_service(server) -> None:
    azure = engine(server.url)
    try:
        clip = Clip(3.0, pcm(SPANISH).astype(np.float32) / 32768)
        (found,) = await azure.identify([clip], CANDIDATES.candidates)
    finally:
        await azure.aclose()
    assert found.language == CANDIDATES.candidates[1]
    assert found.confidence in LANGUAGE_CONFIDENCE.values()


async def test_phrase_list_reaches_the_service(server) -> None:
    before = stats(server).get("phrase_lists", 0)
    phrases = DecodeSettings(phrases=("Dashwood", "prudently"))
    options = TranscribeOptions(languages=ENGLISH_ONLY.languages, decode=phrases)
    result = await run(server.url, ENGLISH, options)
    assert stats(server)["phrase_lists"] == before + 1
    assert "dashwood" in normalise(result.text)


def test_profanity_output_and_buffer_are_set_on_the_sdk() -> None:
    options = AzureOptions(host="ws://127.0.0.1:9", profanity="removed")
    plan = SessionPlan(SessionAudio(120.0), 0.0, ("en-US",), LidMode.AT_START, DecodeSettings())
    config = speech_config(speechsdk, options, plan)
    prop = speechsdk.PropertyId
    assert config.get_property(prop.SpeechServiceResponse_ProfanityOption).lower() == "removed"
    assert config.output_format == speechsdk.OutputFormat.Detailed
    assert config.get_property(prop.SpeechServiceResponse_RequestWordLevelTimestamps) == "true"
    assert config.speech_recognition_language == "en-US"
    # Room for the whole session's unacknowledged audio (the SDK's default is about a minute).
    assert config.get_property_by_name("SPEECH-MaxBufferSizeMs") == "180000"


# -- long audio ----------------------------------------------------------------------------------
async def test_long_audio_runs_as_sessions_rebased_in_order(server, tmp_path: Path) -> None:
    """~34 s of speech in 9 s sessions, two at a time, pushed at real time after their first
    5 s: every utterance once, at its own time."""
    speech = pcm(ENGLISH)
    pauses = [1.0, 1.5, 2.0, 1.5]
    pieces, truth, at = [], [], 0.0
    for pause in pauses:
        pieces += [silence(pause), speech]
        truth.append(at + pause)
        at += pause + len(speech) / RATE
    path = write_wav(tmp_path / "four-times.wav", *pieces, silence(1.0))
    before = stats(server)
    started = time.monotonic()
    result = await run(server.url, path, session_seconds=9.0, sessions=2, push_speed=1.0)
    took = time.monotonic() - started
    sessions = stats(server)["connections"] - before.get("connections", 0)
    assert sessions == 4  # one session per utterance: each is 7.1 s and the limit is 9 s
    # Each session holds one utterance, so each segment must be the embedded engine's
    # transcript of that utterance alone, shifted to where the utterance lies in the file.
    (alone,) = (await reference(ENGLISH)).segments
    said = normalise(alone.text)
    assert [normalise(s.text) for s in result.segments] == [said] * 4
    assert normalise(result.text) == " ".join([said] * 4)
    assert all(a.end <= b.start for a, b in zip(result.segments, result.segments[1:], strict=False))
    for seg, at in zip(result.segments, truth, strict=True):  # re-based to the file, in order
        assert seg.start == pytest.approx(at + alone.start, abs=0.3)
        assert seg.end == pytest.approx(at + alone.end, abs=0.3)
    assert_words_inside(result.segments)
    assert "failed_sessions" not in result.extra
    assert took >= 2 * (7.9 - 5.0)  # two rounds of sessions, each paced after its first 5 s


# -- faults --------------------------------------------------------------------------------------
async def test_a_dropped_connection_is_resumed_and_the_transcript_is_complete() -> None:
    faults = Faults(close_after_bytes=3 * 32000, close_connections=1)
    with BackgroundServer(
        ServerConfig(port=0, interim=False, faults=faults), engine=create_engine()
    ) as srv:
        result = await run(srv.url, ENGLISH)
        seen = stats(srv)
    assert seen["connections"] == 2  # the dropped one and its replacement
    assert normalise(result.text) == normalise((await reference(ENGLISH)).text)
    assert len(result.segments) == 1 and "failed_sessions" not in result.extra


async def test_a_persistent_error_is_retried_then_reported_with_its_cause(caplog) -> None:
    faults = Faults(error_status=RecognitionStatus.ERROR)
    config = ServerConfig(port=0, interim=False, key=KEY, faults=faults)
    caplog.set_level(logging.DEBUG)
    with BackgroundServer(config, engine=create_engine()) as srv:
        started = time.monotonic()
        with pytest.raises(EngineError) as err:
            await run(srv.url, ENGLISH, key=KEY, max_retries=2)
        took = time.monotonic() - started
        seen = stats(srv)
    message = str(err.value)
    assert "ServiceError" in message and "internal error" in message
    assert "0.0-7.1 s" in message and "after 3 attempts" in message  # which stretch, how often
    assert "\n" not in message and KEY not in message
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 2 and "attempt 3 of 3" in retries[-1]
    assert seen["connections"] >= 3  # each attempt connected again
    assert KEY not in caplog.text
    assert took < 60


async def test_a_session_lost_for_good_is_named_in_the_transcript(tmp_path: Path) -> None:
    """Only the long first session trips the fault; the second is kept, the first reported."""
    head = pcm(ENGLISH)[: int(2.5 * RATE)]
    path = write_wav(tmp_path / "two.wav", silence(0.5), pcm(ENGLISH), silence(3.0), head)
    faults = Faults(close_after_bytes=5 * 32000)  # every connection; a 7 s session never passes
    with BackgroundServer(
        ServerConfig(port=0, interim=False, faults=faults), engine=create_engine()
    ) as srv:
        result = await run(srv.url, path, session_seconds=8.0, max_retries=1)
    (failed,) = result.extra["failed_sessions"]
    assert failed["start"] == pytest.approx(0.1, abs=0.5)
    assert failed["end"] == pytest.approx(7.9, abs=0.5)
    assert "ServiceError" in failed["error"] and "1011" in failed["error"]
    assert result.segments and all(s.start >= 10.0 for s in result.segments)
    assert json.loads(render(result, "json"))["failed_sessions"] == [failed]


async def test_a_slow_server_still_completes() -> None:
    faults = Faults(reply_delay=0.2)
    with BackgroundServer(
        ServerConfig(port=0, interim=False, faults=faults), engine=create_engine()
    ) as srv:
        result = await run(srv.url, ENGLISH)
    assert normalise(result.text) == normalise((await reference(ENGLISH)).text)


async def test_a_server_that_never_answers_times_out_instead_of_hanging() -> None:
    faults = Faults(reply_delay=4.0)  # longer than the session's timeout of 2 s + 1 s
    head = Clip(0.0, pcm(ENGLISH)[: 2 * RATE].astype(np.float32) / 32768)
    with BackgroundServer(
        ServerConfig(port=0, interim=False, faults=faults), engine=create_engine()
    ) as srv:
        azure = engine(srv.url, timeout_factor=1.0, timeout_slack=1.0, max_retries=1)
        started = time.monotonic()
        try:
            with pytest.raises(EngineError) as err:
                await azure.recognize([head], ENGLISH_ONLY.languages, DecodeSettings())
        finally:
            await azure.aclose()
        took = time.monotonic() - started
    assert "Timeout" in str(err.value) and "after 2 attempts" in str(err.value)
    assert err.value.failures[0].start == 0.0 and err.value.failures[0].end == 2.0  # type: ignore[attr-defined]
    assert took < 30


async def test_a_wrong_key_fails_at_once_without_retry_or_leak(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-key-0d1e9a"
    progress = []
    with BackgroundServer(
        ServerConfig(port=0, interim=False, key=KEY), engine=create_engine()
    ) as srv:
        azure = engine(srv.url, key=wrong)
        started = time.monotonic()
        try:
            with pytest.raises(ConfigError) as err:
                await transcribe_async(
                    ENGLISH, engine=azure, options=ENGLISH_ONLY, progress=progress.append
                )
        finally:
            await azure.aclose()
        took = time.monotonic() - started
        refused = stats(srv)["unauthorized"]
        # The right credential, as an authorization token this time, is accepted.
        result = await run(srv.url, ENGLISH, token=KEY)
    message = str(err.value)
    assert "AuthenticationFailure" in message and "refused the credentials" in message
    assert "\n" not in message
    assert refused == 1 and took < 10  # not retried
    for text in (message, repr(azure), repr(azure.options), caplog.text, repr(progress)):
        assert wrong not in text and KEY not in text
    assert normalise(result.text) == normalise((await reference(ENGLISH)).text)


# -- configuration -------------------------------------------------------------------------------
def test_options_come_from_the_environment_and_hide_the_key() -> None:
    env = {"SPEECH_KEY": "env-key-123", "SPEECH_REGION": "westeurope"}
    options = AzureOptions.from_env(env).checked()
    assert (options.key, options.region, options.host) == ("env-key-123", "westeurope", None)
    assert "env-key-123" not in repr(options) and "env-key-123" not in options.where
    assert options.redact("bad key env-key-123 here") == "bad key *** here"
    # An explicit location replaces the environment's; so does an explicit credential.
    local = AzureOptions.from_env(env, host="ws://127.0.0.1:5000", token="tok-456").checked()
    assert (local.region, local.host, local.key, local.token) == (
        None,
        "ws://127.0.0.1:5000",
        None,
        "tok-456",
    )
    assert "tok-456" not in repr(local)
    endpoint = AzureOptions.from_env({"SPEECH_ENDPOINT": "wss://x.example/speech?k=1"}).checked()
    assert endpoint.where == "wss://x.example/speech"


@pytest.mark.parametrize(
    ("env", "given", "match"),
    [
        ({}, {}, "SPEECH_KEY and SPEECH_REGION"),
        ({"SPEECH_REGION": "westeurope"}, {}, "needs a key"),
        ({"SPEECH_REGION": "r", "SPEECH_HOST": "ws://h:1"}, {}, "one of region, endpoint or host"),
        ({}, {"host": "ws://h:1", "key": "k", "token": "t"}, "not both"),
        ({}, {"endpoint": "westeurope"}, "not a ws://"),
        ({}, {"host": "ws://h:1", "sessions": 0}, "at least 1"),
        ({}, {"host": "ws://h:1", "profanity": "bleep"}, "profanity"),
        ({}, {"host": "ws://h:1", "beam_size": 5}, "unknown Azure option"),
    ],
)
def test_unusable_settings_are_config_errors(env, given, match) -> None:
    with pytest.raises(ConfigError, match=match):
        AzureOptions.from_env(env, **given).checked()


def test_the_registry_builds_the_azure_engine(monkeypatch) -> None:
    for name in ("SPEECH_KEY", "SPEECH_TOKEN", "SPEECH_REGION", "SPEECH_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPEECH_HOST", "ws://127.0.0.1:5000")
    azure = create_engine(AzureOptions.from_env(sessions=3))
    assert isinstance(azure, AzureEngine)
    assert azure.options.host == "ws://127.0.0.1:5000"
    assert azure.capabilities.parallel_clips == 3 and azure.capabilities.identifies_languages


def test_language_limits_are_the_services() -> None:
    five = ["en-US", "es-MX", "de-DE", "fr-FR", "it-IT"]
    start, continuous = LidMode.AT_START, LidMode.CONTINUOUS
    assert check_languages(five[:4], start) == tuple(five[:4])
    with pytest.raises(ConfigError, match="at most 4"):
        check_languages(five, start)
    eleven = [*five, "pt-BR", "ja-JP", "ko-KR", "zh-CN", "nl-NL", "sv-SE"]
    assert len(check_languages(eleven[:10], continuous)) == 10
    with pytest.raises(ConfigError, match="at most 10"):
        check_languages(eleven, continuous)
    with pytest.raises(ConfigError, match="locales such as en-US"):
        check_languages(["en", "es-MX"], start)
    assert check_languages([], start) == ("en-US",)  # the service's default


async def test_too_many_candidates_fail_before_any_session(server) -> None:
    before = stats(server).get("connections", 0)
    options = TranscribeOptions(languages=LanguagePlan.parse("en-US,es-MX,de-DE,fr-FR,it-IT"))
    with pytest.raises(ConfigError, match="at most 4"):
        await run(server.url, ENGLISH, options)
    assert stats(server).get("connections", 0) == before


def test_confidence_words_round_trip_through_the_servers_labels() -> None:
    for word, value in LANGUAGE_CONFIDENCE.items():
        assert confidence_label(value) == word.capitalize()


@pytest.mark.parametrize(
    ("code", "details", "transient"),
    [
        ("AuthenticationFailure", "WebSocket upgrade failed: Authentication error (401)", False),
        ("BadRequest", "Invalid parameter", False),
        ("Forbidden", "quota", False),
        ("ServiceError", "Connection was closed by the remote host. Error code: 1011.", True),
        ("ServiceError", "Connection was closed by the remote host. Error code: 1007.", False),
        ("ConnectionFailure", "connection refused", True),
        ("TooManyRequests", "throttled", True),
        ("ServiceTimeout", "no response", True),
        ("RuntimeError", "internal codec/GStreamer error", False),
    ],
)
def test_cancellations_are_sorted_into_retryable_and_final(code, details, transient) -> None:
    options = AzureOptions(host="ws://h:1", key="sekret-key")
    error = classify(Canceled("Error", code, details + " key sekret-key\r\nmore"), options)
    assert error.transient is transient and error.code == code
    assert str(error).startswith(f"{code}: ") and "sekret-key" not in str(error)
    assert "\n" not in str(error) and "\r" not in str(error)


def test_sdk_exceptions_lose_the_native_call_stack() -> None:
    # The shape of a real SDK RuntimeError (seen from Connection.close during recognition).
    raw = (
        "Exception with error code: \n[CALL STACK BEGIN]\n\n/x/libMicrosoft.CognitiveServices"
        ".Speech.core.so(+0xe1768) [0x7f7171ee1768]\n[CALL STACK END]\n\nException with an "
        "error code: 0x1f (SPXERR_CHANGE_CONNECTION_STATUS_NOT_ALLOWED) key sekret-key"
    )
    options = AzureOptions(host="ws://h:1", key="sekret-key")
    assert sdk_message(RuntimeError(raw), options) == (
        "Exception with an error code: 0x1f (SPXERR_CHANGE_CONNECTION_STATUS_NOT_ALLOWED) key ***"
    )


# -- the documentation's snippet -----------------------------------------------------------------
def test_the_snippet_in_docs_azure_md_works(server) -> None:
    text = (ROOT / "docs/azure.md").read_text()
    match = re.search(r"<!-- tested -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/azure.md lost its tested snippet"
    code = match.group(1)
    assert "ws://127.0.0.1:5000" in code and '"samples/es-mx.wav"' in code
    code = code.replace("ws://127.0.0.1:5000", server.url)
    code = code.replace('"samples/es-mx.wav"', repr(str(SPANISH)))
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 2 and all(" es-MX " in line for line in lines), run.stdout
    assert "distancia" in lines[0] and "montaña" in lines[1]
