"""The unmodified Azure Speech SDK for Python against `voxflow serve`, on real recordings.

The recognised text must be the embedded engine's own transcript of the same audio, so each
result is compared with ``voxflow.pipeline.transcribe`` (punctuation and case aside).
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from serving import BackgroundServer, LiveAudio
from voxflow.engines import create_engine
from voxflow.engines.azure.input import gstreamer_problem
from voxflow.languages import LanguagePlan
from voxflow.pipeline import LiveSegmentation, TranscribeOptions, transcribe
from voxflow.server.config import Faults, ServerConfig
from voxflow.server.usp import lexical, parse_wave_header

speechsdk = pytest.importorskip(
    "azure.cognitiveservices.speech", reason="azure-cognitiveservices-speech is not installed"
)

ROOT = Path(__file__).resolve().parent.parent
KEY = "sdk-test-key-5d1e"
LANGUAGES = ["en-US", "es-MX"]

LIVE = LiveSegmentation()  # how the server cuts a turn it is not told how to cut


# -- helpers -------------------------------------------------------------------------------------
def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


@functools.cache
def reference(
    path: str, languages: tuple[str, ...] = (), lid: str = "at-start", *, once: bool = False
):
    """The pipeline's own transcript of the file read as a stream of unknown length, as the
    server receives a turn's audio: what the server must send back (cut as a continuous turn
    is, or with ``once`` as a recognize-once turn, whose one phrase is the whole utterance)."""
    plan = LanguagePlan.parse(languages, lid=lid)
    if not languages:
        plan = LanguagePlan.parse(forced="en-US")
    with LiveAudio(path) as audio:
        live = None if once else LIVE
        return transcribe(audio, options=TranscribeOptions(languages=plan, live=live))


def pcm_of(path: Path) -> bytes:
    data = path.read_bytes()
    _fmt, start = parse_wave_header(data)
    return data[start : start + int.from_bytes(data[start - 4 : start], "little")]


def write_wav(path: Path, pcm: bytes) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    return path


def continuous(recognizer, feed: Callable[[], None] | None = None, timeout: float = 180.0):
    """Run continuous recognition to its end; the recognised results and the cancellation."""
    results, cancelled, done = [], [], threading.Event()
    recognizer.recognized.connect(lambda e: results.append(e.result))
    recognizer.canceled.connect(lambda e: cancelled.append(e.cancellation_details))
    recognizer.session_stopped.connect(lambda e: done.set())
    recognizer.start_continuous_recognition()
    if feed is not None:
        feed()
    assert done.wait(timeout), "the session did not stop"
    recognizer.stop_continuous_recognition()
    recognised = [r for r in results if r.reason == speechsdk.ResultReason.RecognizedSpeech]
    return recognised, list(cancelled)  # copies: a later server shutdown adds an error


def push_stream(pcm: bytes) -> tuple[object, Callable[[], None]]:
    stream = speechsdk.audio.PushAudioInputStream()

    def feed() -> None:
        for i in range(0, len(pcm), 3200):
            stream.write(pcm[i : i + 3200])
        stream.close()

    return stream, feed


@pytest.fixture(scope="module")
def server() -> BackgroundServer:
    # Slots for all 32 of test_32_concurrent_sdk_sessions: these tests are about the protocol;
    # admission under load is test_an_overloaded_server_answers_or_refuses_each_client's.
    config_ = ServerConfig(port=0, max_recognitions=32)
    with BackgroundServer(config_, engine=create_engine()) as running:
        yield running


@pytest.fixture(scope="module")
def samples(corpus: Path) -> Path:
    return corpus / "azure-samples"


def config(server: BackgroundServer, **kwargs: object):
    return speechsdk.SpeechConfig(host=server.url, **kwargs)


# -- recognition ---------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["host", "endpoint"])
def test_recognize_once_from_a_wav_file(server: BackgroundServer, samples: Path, form: str) -> None:
    path = samples / "whatstheweatherlike.wav"
    audio = speechsdk.audio.AudioConfig(filename=str(path))
    if form == "host":
        speech_config = config(server)
    else:  # the path and query as given; the mode comes in speech.context
        speech_config = speechsdk.SpeechConfig(
            endpoint=server.url
            + "/speech/recognition/interactive/cognitiveservices/v1?language=en-US"
        )
    result = speechsdk.SpeechRecognizer(speech_config, audio_config=audio).recognize_once()
    assert result.reason == speechsdk.ResultReason.RecognizedSpeech
    expected = reference(str(path))
    assert normalise(result.text) == normalise(expected.text)
    assert result.offset == round(expected.segments[0].start * 1e7)


def test_continuous_recognition_from_a_push_stream(server: BackgroundServer, samples: Path) -> None:
    path = samples / "katiesteve_mono.wav"
    stream, feed = push_stream(pcm_of(path))
    audio = speechsdk.audio.AudioConfig(stream=stream)
    recognizer = speechsdk.SpeechRecognizer(config(server), audio_config=audio)
    results, cancelled = continuous(recognizer, feed)
    expected = reference(str(path)).segments
    assert [normalise(r.text) for r in results] == [normalise(s.text) for s in expected]
    assert [r.offset for r in results] == [round(s.start * 1e7) for s in expected]
    assert [c.reason for c in cancelled] == [speechsdk.CancellationReason.EndOfStream]


def test_mp3_push_stream_decoded_by_the_sdk(server: BackgroundServer, samples: Path) -> None:
    if problem := gstreamer_problem():
        pytest.skip(f"the SDK cannot decode compressed audio here: {problem}")
    path = samples / "whatstheweatherlike.mp3"
    fmt = speechsdk.audio.AudioStreamFormat(
        compressed_stream_format=speechsdk.AudioStreamContainerFormat.MP3
    )
    stream = speechsdk.audio.PushAudioInputStream(stream_format=fmt)
    stream.write(path.read_bytes())
    stream.close()
    audio = speechsdk.audio.AudioConfig(stream=stream)
    result = speechsdk.SpeechRecognizer(config(server), audio_config=audio).recognize_once()
    assert result.reason == speechsdk.ResultReason.RecognizedSpeech, result.cancellation_details
    assert normalise(result.text) == normalise(reference(str(path)).text)


def test_detailed_output_has_the_engines_words_and_times(
    server: BackgroundServer, samples: Path
) -> None:
    path = samples / "whatstheweatherlike.wav"
    speech_config = config(server)
    speech_config.output_format = speechsdk.OutputFormat.Detailed
    speech_config.request_word_level_timestamps()
    audio = speechsdk.audio.AudioConfig(filename=str(path))
    result = speechsdk.SpeechRecognizer(speech_config, audio_config=audio).recognize_once()
    body = json.loads(result.json)
    (best,) = body["NBest"]
    (segment,) = reference(str(path), once=True).segments
    assert best["Lexical"] == lexical(segment.text) and best["Display"] == result.text
    assert [(w["Word"], w["Offset"], w["Duration"]) for w in best["Words"]] == [
        (lexical(w.word), round(w.start * 1e7), round(w.end * 1e7) - round(w.start * 1e7))
        for w in segment.words
    ]
    confidence = sum(w.probability for w in segment.words) / len(segment.words)
    assert best["Confidence"] == pytest.approx(confidence, abs=1e-6)
    assert all(0 < w["Confidence"] <= 1 for w in best["Words"])


@pytest.mark.parametrize(
    ("name", "language"), [("es-mx.wav", "es-MX"), ("LanguageDetection_enUS.wav", "en-US")]
)
def test_language_id_at_start(
    server: BackgroundServer, samples: Path, name: str, language: str
) -> None:
    path = samples / name
    auto = speechsdk.languageconfig.AutoDetectSourceLanguageConfig(languages=LANGUAGES)
    recognizer = speechsdk.SpeechRecognizer(
        config(server),
        auto_detect_source_language_config=auto,
        audio_config=speechsdk.audio.AudioConfig(filename=str(path)),
    )
    results, _ = continuous(recognizer)
    expected = reference(str(path), tuple(LANGUAGES))
    assert results and [normalise(r.text) for r in results] == [
        normalise(s.text) for s in expected.segments
    ]
    found = [speechsdk.AutoDetectSourceLanguageResult(r).language for r in results]
    assert found == [language] * len(results)


def test_continuous_language_id_names_each_phrases_language(
    server: BackgroundServer, samples: Path, tmp_path: Path
) -> None:
    english, spanish = pcm_of(samples / "LanguageDetection_enUS.wav"), pcm_of(samples / "es-mx.wav")
    path = write_wav(tmp_path / "en-then-es.wav", english + bytes(64000) + spanish)
    speech_config = config(server)
    speech_config.set_property(
        speechsdk.PropertyId.SpeechServiceConnection_LanguageIdMode, "Continuous"
    )
    auto = speechsdk.languageconfig.AutoDetectSourceLanguageConfig(languages=LANGUAGES)
    recognizer = speechsdk.SpeechRecognizer(
        speech_config,
        auto_detect_source_language_config=auto,
        audio_config=speechsdk.audio.AudioConfig(filename=str(path)),
    )
    results, _ = continuous(recognizer)
    found = [
        (speechsdk.AutoDetectSourceLanguageResult(r).language, normalise(r.text)) for r in results
    ]
    expected = reference(str(path), tuple(LANGUAGES), "continuous").segments
    assert found == [(s.language, normalise(s.text)) for s in expected]
    languages = [language for language, _ in found]
    assert languages[0] == "en-US" and languages[-1] == "es-MX"
    assert languages == sorted(languages)  # English first, then Spanish: one switch


def language_recognizer(server: BackgroundServer, path: Path, each_phrase: bool = False):
    """The SDK's SourceLanguageRecognizer (the language only, no text) on a file, with host=;
    ``each_phrase``: continuous language identification."""
    speech_config = config(server)
    if each_phrase:
        speech_config.set_property(
            speechsdk.PropertyId.SpeechServiceConnection_LanguageIdMode, "Continuous"
        )
    return speechsdk.SourceLanguageRecognizer(
        speech_config,
        auto_detect_source_language_config=speechsdk.languageconfig.AutoDetectSourceLanguageConfig(
            languages=LANGUAGES
        ),
        audio_config=speechsdk.audio.AudioConfig(filename=str(path)),
    )


@pytest.mark.parametrize(
    ("name", "language"), [("es-mx.wav", "es-MX"), ("LanguageDetection_enUS.wav", "en-US")]
)
def test_source_language_recognizer_at_start(
    server: BackgroundServer, samples: Path, name: str, language: str
) -> None:
    """recognize_once: one result naming the language of the speech, over its span, no text."""
    path = samples / name
    result = language_recognizer(server, path).recognize_once()
    assert result.reason == speechsdk.ResultReason.RecognizedSpeech, result.cancellation_details
    assert speechsdk.AutoDetectSourceLanguageResult(result).language == language
    assert result.text == ""
    body = json.loads(result.json)
    assert body["PrimaryLanguage"]["Confidence"] in ("High", "Medium", "Low")
    seconds = len(pcm_of(path)) / 32000
    assert result.offset >= 0 and result.duration > 0
    assert (result.offset + result.duration) / 1e7 <= seconds + 0.5  # the speech, not beyond


def test_source_language_recognizer_continuous_follows_a_switch(
    server: BackgroundServer, samples: Path, tmp_path: Path
) -> None:
    """Continuous detection on English, 2 s of silence, then Spanish: each result names the
    language of its own stretch of speech, and the switch falls where the Spanish begins."""
    english, spanish = pcm_of(samples / "LanguageDetection_enUS.wav"), pcm_of(samples / "es-mx.wav")
    path = write_wav(tmp_path / "en-then-es.wav", english + bytes(64000) + spanish)
    results, cancelled = continuous(language_recognizer(server, path, each_phrase=True))
    assert [c.reason for c in cancelled] == [speechsdk.CancellationReason.EndOfStream]
    recognized = speechsdk.ResultReason.RecognizedSpeech
    assert all(r.reason == recognized and r.text == "" for r in results)
    found = [speechsdk.AutoDetectSourceLanguageResult(r).language for r in results]
    assert found[0] == "en-US" and found[-1] == "es-MX" and found == sorted(found), found
    switch = (len(english) + 64000) / 32000  # seconds where the Spanish audio begins
    for result, language in zip(results, found, strict=True):
        start, end = result.offset / 1e7, (result.offset + result.duration) / 1e7
        if language == "en-US":
            assert end <= switch, (start, end)
        else:
            assert start >= len(english) / 32000, (start, end)


def test_phrase_list_reaches_the_engine(server: BackgroundServer, samples: Path) -> None:
    path = samples / "whatstheweatherlike.wav"
    recognizer = speechsdk.SpeechRecognizer(
        config(server), audio_config=speechsdk.audio.AudioConfig(filename=str(path))
    )
    phrase_list = speechsdk.PhraseListGrammar.from_recognizer(recognizer)
    phrase_list.addPhrase("weather")
    before = server.server.stats["phrase_lists"]
    result = recognizer.recognize_once()
    assert server.server.stats["phrase_lists"] == before + 1
    assert normalise(result.text) == "what's the weather like"


# -- keys, faults, load --------------------------------------------------------------------------
def test_wrong_key_is_an_authentication_failure(samples: Path) -> None:
    path = str(samples / "whatstheweatherlike.wav")
    with BackgroundServer(ServerConfig(port=0, key=KEY), engine=create_engine()) as keyed:
        wrong = speechsdk.SpeechConfig(host=keyed.url, subscription="not-the-key")
        audio = speechsdk.audio.AudioConfig(filename=path)
        result = speechsdk.SpeechRecognizer(wrong, audio_config=audio).recognize_once()
        assert result.reason == speechsdk.ResultReason.Canceled
        details = result.cancellation_details
        assert details.reason == speechsdk.CancellationReason.Error
        assert details.code == speechsdk.CancellationErrorCode.AuthenticationFailure
        right = speechsdk.SpeechConfig(host=keyed.url, subscription=KEY)
        audio = speechsdk.audio.AudioConfig(filename=path)
        result = speechsdk.SpeechRecognizer(right, audio_config=audio).recognize_once()
        assert normalise(result.text) == normalise(reference(path).text)


def test_a_dropped_connection_resumes_with_a_continuation_turn(
    samples: Path, tmp_path: Path
) -> None:
    """The SDK reconnects and replays the audio after the last phrase; times stay session times."""
    pcm = pcm_of(samples / "whatstheweatherlike.wav")
    audio = pcm + bytes(64000) + pcm + bytes(64000)
    first_part = 5 * 32000  # the first utterance and 3 s of silence after it
    faults = Faults(close_after_bytes=6 * 32000, close_connections=1)  # in the second utterance
    with BackgroundServer(ServerConfig(port=0, faults=faults), engine=create_engine()) as srv:
        stream = speechsdk.audio.PushAudioInputStream()
        recognizer = speechsdk.SpeechRecognizer(
            config(srv), audio_config=speechsdk.audio.AudioConfig(stream=stream)
        )
        first = threading.Event()
        recognizer.recognized.connect(lambda e: first.set())

        def feed() -> None:
            stream.write(audio[:first_part])
            assert first.wait(120)  # acknowledged before the drop: the replay starts after it
            for i in range(first_part, len(audio), 3200):
                stream.write(audio[i : i + 3200])
            stream.close()

        results, cancelled = continuous(recognizer, feed)
        stats = dict(srv.server.stats)
    assert stats["connections"] == 2 and stats["continuations"] == 1
    assert stats["audio_bytes"] < 1.9 * len(audio)  # the first phrase was not sent again
    expected = reference(str(write_wav(tmp_path / "twice.wav", audio))).segments
    assert len(expected) == 2
    assert [normalise(r.text) for r in results] == [normalise(s.text) for s in expected]
    for result, segment in zip(results, expected, strict=True):
        assert abs(result.offset / 1e7 - segment.start) < 0.3
    assert cancelled[0].reason == speechsdk.CancellationReason.EndOfStream


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def test_32_concurrent_sdk_sessions(server: BackgroundServer, samples: Path) -> None:
    path = str(samples / "whatstheweatherlike.wav")
    expected = normalise(reference(path).text)
    errors_before = server.server.stats["protocol_errors"]

    def one(_: int) -> tuple[object, str]:
        audio = speechsdk.audio.AudioConfig(filename=path)
        result = speechsdk.SpeechRecognizer(config(server), audio_config=audio).recognize_once()
        return result.reason, normalise(result.text)

    with ThreadPoolExecutor(4) as pool:  # warm-up: SDK libraries, model caches, thread pools
        list(pool.map(one, range(4)))
    before = _rss()
    with ThreadPoolExecutor(32) as pool:
        outcomes = list(pool.map(one, range(32)))
    grown = _rss() - before
    assert outcomes == [(speechsdk.ResultReason.RecognizedSpeech, expected)] * 32
    assert server.server.stats["protocol_errors"] == errors_before
    assert grown < 150 * 2**20, f"RSS grew by {grown / 2**20:.0f} MiB"


def test_an_overloaded_server_answers_or_refuses_each_client(samples: Path) -> None:
    """16 clients at once against one recognition slot and a 1 s bound on the wait for it: each
    ends with the right text or a prompt refusal (503 at the upgrade, or 1013 for a turn that
    waited too long), never a timeout. The 64-client run: benchmarks/bench_server.py --burst."""
    path = str(samples / "whatstheweatherlike.wav")
    expected = normalise(reference(path).text)
    codes = speechsdk.CancellationErrorCode
    config_ = ServerConfig(port=0, max_recognitions=1, max_queue_wait=1.0)
    with BackgroundServer(config_, engine=create_engine()) as busy:

        def one(_: int) -> tuple[str, float]:
            began = time.monotonic()
            audio = speechsdk.audio.AudioConfig(filename=path)
            result = speechsdk.SpeechRecognizer(config(busy), audio_config=audio).recognize_once()
            took = time.monotonic() - began
            if result.reason == speechsdk.ResultReason.RecognizedSpeech:
                return ("right text" if normalise(result.text) == expected else result.text), took
            details = result.cancellation_details
            if details.code == codes.ServiceUnavailable:  # 503 at the upgrade, and retries
                return "refused", took
            if details.code == codes.ServiceError and "1013" in details.error_details:
                return "refused", took
            return f"{details.code}: {details.error_details}", took

        assert one(0)[0] == "right text"  # warm-up; the slot's hold time is measured
        with ThreadPoolExecutor(16) as pool:
            outcomes = list(pool.map(one, range(16)))
        stats = dict(busy.server.stats)
    kinds = [kind for kind, _ in outcomes]
    assert set(kinds) <= {"right text", "refused"}, kinds
    assert "right text" in kinds and "refused" in kinds, kinds
    assert stats["refused"] > 0
    # Prompt: well before the SDK's own 80 s timeout (a bound on behaviour, not on speed).
    assert max(took for kind, took in outcomes if kind == "refused") < 30, outcomes


# -- the documentation's snippet -----------------------------------------------------------------
def test_the_snippet_in_docs_serve_md_works(server: BackgroundServer, samples: Path) -> None:
    text = (ROOT / "docs/serve.md").read_text()
    match = re.search(r"<!-- tested -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/serve.md lost its tested snippet"
    code = match.group(1)
    assert "ws://127.0.0.1:5000" in code and "whatstheweatherlike.wav" in code
    path = samples / "whatstheweatherlike.wav"
    code = code.replace("ws://127.0.0.1:5000", server.url)
    code = code.replace('"whatstheweatherlike.wav"', repr(str(path)))
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert normalise(run.stdout) == normalise(reference(str(path)).text)
