"""The unmodified Azure Speech SDK's TranslationRecognizer against `voxflow serve`, on real
non-English recordings.

The text as said must be what ``voxflow.pipeline.transcribe`` gives for the same audio, and the
English what it gives with the translate task (``voxflow transcribe --task translate``): the
pipeline is the oracle (punctuation and case aside). A target language other than English
cannot be served offline and must cancel with a reason naming it.
"""

from __future__ import annotations

import functools
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from serving import BackgroundServer, LiveAudio
from voxflow.engines import create_engine
from voxflow.engines.base import Clip, DecodeSettings
from voxflow.languages import LanguagePlan
from voxflow.pipeline import TranscribeOptions, transcribe
from voxflow.server.config import ServerConfig
from voxflow.server.usp import parse_wave_header

ROOT = Path(__file__).resolve().parent.parent

speechsdk = pytest.importorskip(
    "azure.cognitiveservices.speech", reason="azure-cognitiveservices-speech is not installed"
)
translation = speechsdk.translation

# leopard/: one sentence (Picovoice's test audio, 8.7 s); words its English must have.
SPANISH = ("leopard/test_es.wav", "es-ES", {"sand", "white"})
INTERVAL = 3.0  # seconds of audio between interim decodes


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


@functools.cache
def reference(path: str, language: str, task: str = "transcribe") -> str:
    """The pipeline's text for the file read as a stream of unknown length (as the server gets
    a turn's audio), as said or in English."""
    options = TranscribeOptions(
        languages=LanguagePlan.parse(forced=language), decode=DecodeSettings(task=task)
    )
    with LiveAudio(path) as audio:
        return normalise(transcribe(audio, options=options).text)


@pytest.fixture(scope="module")
def server() -> BackgroundServer:
    # The first interim decode after INTERVAL s of audio: enough speech for a few words.
    config = ServerConfig(port=0, interim_interval=INTERVAL)
    with BackgroundServer(config, engine=create_engine()) as running:
        yield running


@pytest.fixture(scope="module")
def eval_dir(corpus: Path) -> Path:
    return corpus / "eval"


def recognizer(speech_config, audio, **kwargs: object):
    return translation.TranslationRecognizer(
        translation_config=speech_config, audio_config=audio, **kwargs
    )


def translation_config(server: BackgroundServer, targets: tuple[str, ...], form: str = "host"):
    if form == "host":
        speech_config = translation.SpeechTranslationConfig(host=server.url)
    else:  # the translation service's own path, as a user may give it
        speech_config = translation.SpeechTranslationConfig(
            endpoint=server.url + "/speech/translation/cognitiveservices/v1"
        )
    for target in targets:
        speech_config.add_target_language(target)
    return speech_config


# -- recognize_once ------------------------------------------------------------------------------
def test_recognize_once_gives_the_text_as_said_and_in_english(
    server: BackgroundServer, eval_dir: Path
) -> None:
    """The snippet of docs/serve.md, run as written (but for the address and the file)."""
    name, language, words = SPANISH
    path = str(eval_dir / name)
    text = (ROOT / "docs/serve.md").read_text()
    match = re.search(r"<!-- tested: translation -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/serve.md lost its tested translation snippet"
    code = match.group(1)
    assert "ws://127.0.0.1:5000" in code and '"test_es.wav"' in code and f'"{language}"' in code
    code = code.replace("ws://127.0.0.1:5000", server.url).replace('"test_es.wav"', repr(path))
    namespace: dict[str, object] = {}
    exec(compile(code, "docs/serve.md", "exec"), namespace)
    result = namespace["result"]
    assert result.reason == speechsdk.ResultReason.TranslatedSpeech, result.cancellation_details
    assert normalise(result.text) == reference(path, language)
    assert set(result.translations) == {"en"}
    english = normalise(result.translations["en"])
    assert english == reference(path, language, "translate")
    assert words <= set(english.split()), english
    assert normalise(result.text) != english  # the text as said is Spanish, not the English


@pytest.mark.parametrize("form", ["host", "endpoint"])
def test_the_source_language_is_identified_among_candidates(
    server: BackgroundServer, eval_dir: Path, form: str
) -> None:
    """AutoDetectSourceLanguageConfig: the translation from the language found, which the result
    names. On the translation service's own path (``endpoint=``) the SDK sends no candidates at
    all, so the language is identified among all and the result names none."""
    name, language, _ = SPANISH
    path = str(eval_dir / name)
    auto = speechsdk.languageconfig.AutoDetectSourceLanguageConfig(languages=["de-DE", language])
    audio = speechsdk.audio.AudioConfig(filename=path)
    speech_config = translation_config(server, ("en",), form)
    result = recognizer(
        speech_config, audio, auto_detect_source_language_config=auto
    ).recognize_once()
    assert result.reason == speechsdk.ResultReason.TranslatedSpeech, result.cancellation_details
    found = speechsdk.AutoDetectSourceLanguageResult(result).language
    assert found == (language if form == "host" else None)
    assert normalise(result.text) == reference(path, language)
    assert normalise(result.translations["en"]) == reference(path, language, "translate")


# -- continuous ----------------------------------------------------------------------------------
def partial(server: BackgroundServer, pcm: bytes, ticks: int, language: str, task: str) -> str:
    """What the engine makes of the first ``ticks`` of the audio, decoded as an interim result
    is (greedy, no word times): the oracle of a ``recognizing`` event."""
    samples = np.frombuffer(pcm, "<i2")[: round(ticks * 16_000 / 10**7)]
    clip = Clip(0.0, samples.astype(np.float32) / 32768.0)
    settings = DecodeSettings(beam_size=1, word_timestamps=False, task=task)
    plan = LanguagePlan.parse(forced=language)
    engine = server.server.engine
    (segments,) = server.submit(engine.recognize([clip], plan, settings)).result(120)
    return normalise(" ".join(s.text for s in segments))


def test_continuous_translation_with_interim_results(
    server: BackgroundServer, eval_dir: Path
) -> None:
    """A push stream held open (no end, no trailing pause long enough to end a phrase) until
    the first interim result: ``recognizing`` events carry the partial text as said and in
    English, each what the engine makes of the audio it covers; ``recognized`` ones the whole,
    as the pipeline gives it; the session ends with EndOfStream."""
    name, language, words = SPANISH
    path = eval_dir / name
    data = path.read_bytes()
    _fmt, start = parse_wave_header(data)
    pcm = data[start : start + int.from_bytes(data[start - 4 : start], "little")]
    stream = speechsdk.audio.PushAudioInputStream()
    speech_config = translation_config(server, ("en",))
    speech_config.speech_recognition_language = language
    reco = recognizer(speech_config, speechsdk.audio.AudioConfig(stream=stream))
    interim, final, cancelled = [], [], []
    heard, done = threading.Event(), threading.Event()

    def recognizing(event) -> None:
        interim.append(event.result)
        heard.set()

    reco.recognizing.connect(recognizing)
    reco.recognized.connect(lambda e: final.append(e.result))
    reco.canceled.connect(lambda e: cancelled.append(e.cancellation_details))
    reco.session_stopped.connect(lambda e: done.set())
    reco.start_continuous_recognition()
    for i in range(0, len(pcm), 3200):
        stream.write(pcm[i : i + 3200])
        time.sleep(0.025)  # 4x real time
    assert heard.wait(120), "no interim result while the stream was open"
    stream.close()
    assert done.wait(120), "the session did not stop"
    reco.stop_continuous_recognition()
    assert [c.reason for c in cancelled] == [speechsdk.CancellationReason.EndOfStream]
    for result in interim:
        assert result.reason == speechsdk.ResultReason.TranslatingSpeech
        assert result.offset == 0 and result.duration >= INTERVAL * 10**7
    first = interim[0]  # the decodes it was made of, made again (the others alike, and dearer)
    assert normalise(first.text) == partial(server, pcm, first.duration, language, "transcribe")
    english = partial(server, pcm, first.duration, language, "translate")
    assert english and normalise(first.translations["en"]) == english
    assert final and all(r.reason == speechsdk.ResultReason.TranslatedSpeech for r in final)
    assert normalise(" ".join(r.text for r in final)) == reference(str(path), language)
    english = normalise(" ".join(r.translations["en"] for r in final))
    assert english == reference(str(path), language, "translate")
    assert words <= set(english.split()), english


# -- what cannot be served -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("targets", "form"), [(("de",), "host"), (("en", "de"), "endpoint")], ids=["de", "en+de"]
)
def test_a_target_other_than_english_is_cancelled_with_the_reason(
    server: BackgroundServer, eval_dir: Path, targets: tuple[str, ...], form: str
) -> None:
    """Offline there is English only: German, alone or beside English, cancels the request with
    an Error naming it, never a result without the translation asked for."""
    name, language, _ = SPANISH
    speech_config = translation_config(server, targets, form)
    speech_config.speech_recognition_language = language
    audio = speechsdk.audio.AudioConfig(filename=str(eval_dir / name))
    result = recognizer(speech_config, audio).recognize_once()
    assert result.reason == speechsdk.ResultReason.Canceled
    details = result.cancellation_details
    assert details.reason == speechsdk.CancellationReason.Error
    assert details.code == speechsdk.CancellationErrorCode.BadRequest
    assert "translation into 'de' is not available offline" in details.error_details
    assert "English ('en') only" in details.error_details
