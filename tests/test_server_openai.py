"""The real ``openai`` Python client against `voxflow serve`'s OpenAI audio API on loopback, on
real recordings; every answer is checked against the pipeline's own transcript of the file."""

from __future__ import annotations

import dataclasses
import functools
import http.client
import json
import logging
import re
import subprocess
import sys
import tempfile
import threading
import time
import wave
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
from openai import OpenAI
from websockets.sync.client import connect

from serving import BackgroundServer
from voxflow.engines import create_engine
from voxflow.engines.base import DecodeSettings
from voxflow.formats import parse_srt, parse_vtt, render
from voxflow.languages import LanguagePlan
from voxflow.pipeline import TranscribeOptions, transcribe
from voxflow.server.config import ServerConfig
from voxflow.server.usp import speech_config_message
from voxflow.transcript import Transcript

ROOT = Path(__file__).resolve().parent.parent
AUSTEN = ROOT / "samples" / "austen-0870.wav"
SPANISH = ROOT / "samples" / "es-mx.wav"
KEY = "openai-test-key-81c2"
MAX_UPLOAD_MB = 1.0


def words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text.lower())


@functools.cache
def reference(path: Path, language: str | None = None, task: str = "transcribe") -> Transcript:
    """What the pipeline itself makes of the file: the text the API must answer with."""
    plan = LanguagePlan.parse(forced=language) if language else LanguagePlan()
    options = TranscribeOptions(languages=plan, decode=DecodeSettings(task=task))  # type: ignore[arg-type]
    return transcribe(str(path), options=options)


@pytest.fixture(scope="module")
def server() -> BackgroundServer:
    config = ServerConfig(port=0, key=KEY, max_upload_mb=MAX_UPLOAD_MB, max_requests=6)
    with BackgroundServer(config, engine=create_engine()) as running:
        yield running


def client(server: BackgroundServer, key: str = KEY) -> OpenAI:
    return OpenAI(base_url=server.http_url + "/v1", api_key=key, max_retries=0, timeout=180)


def transcribe_file(server: BackgroundServer, path: Path, **kwargs: object):
    with path.open("rb") as f:
        return client(server).audio.transcriptions.create(model="whisper-1", file=f, **kwargs)


# -- response formats ----------------------------------------------------------------------------
def test_json_and_text_are_the_pipelines_transcript(server: BackgroundServer) -> None:
    expected = reference(AUSTEN)
    result = transcribe_file(server, AUSTEN)
    assert isinstance(result, openai.types.audio.Transcription)
    assert result.text == expected.text and "dashwood" in words(result.text)
    assert result.usage is not None and result.usage.seconds == pytest.approx(7.1, abs=0.01)
    text = transcribe_file(server, AUSTEN, response_format="text")
    assert text == expected.text + "\n"


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_subtitles_are_voxflows_own(server: BackgroundServer, fmt: str) -> None:
    body = transcribe_file(server, SPANISH, response_format=fmt)
    assert body == render(reference(SPANISH), fmt)
    cues = (parse_srt if fmt == "srt" else parse_vtt)(body)
    assert len(cues) >= 2 and "distancia" in words(" ".join(c.text for c in cues))


def test_verbose_json_has_openais_schema_with_segment_and_word_times(
    server: BackgroundServer,
) -> None:
    expected = reference(SPANISH)
    result = transcribe_file(
        server, SPANISH, response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )  # fmt: skip
    assert isinstance(result, openai.types.audio.TranscriptionVerbose)
    assert result.language == "spanish" and result.duration == expected.duration
    assert result.text == expected.text
    segments = result.segments or []
    assert [(s.start, s.end, s.text) for s in segments] == [
        (s.start, s.end, s.text) for s in expected.segments
    ]
    assert [s.id for s in segments] == list(range(len(segments)))
    for s in segments:
        assert s.temperature == 0.0 and s.avg_logprob < 0 and s.compression_ratio > 0
        assert s.seek == round(s.start * 100)
    expected_words = [w for s in expected.segments for w in s.words]
    got = result.words or []
    assert [(w.word, w.start, w.end) for w in got] == [
        (w.word.strip(), w.start, w.end) for w in expected_words
    ]
    assert all(w.start <= w.end for w in got)
    assert [w.start for w in got] == sorted(w.start for w in got)
    # One granularity only: the other is left out.
    only_words = transcribe_file(
        server, SPANISH, response_format="verbose_json", timestamp_granularities=["word"]
    )
    assert only_words.segments is None and only_words.words
    default = transcribe_file(server, SPANISH, response_format="verbose_json")
    assert default.words is None and len(default.segments or []) == len(segments)


def test_language_is_forced_and_a_bad_one_is_a_400(server: BackgroundServer) -> None:
    result = transcribe_file(server, SPANISH, language="es", response_format="verbose_json")
    assert result.language == "spanish"
    assert result.text == reference(SPANISH, "es").text
    with pytest.raises(openai.BadRequestError) as info:
        transcribe_file(server, SPANISH, language="xx-Nowhere")
    assert info.value.status_code == 400
    assert info.value.body["param"] == "language" and "xx-Nowhere" in info.value.message


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")  # newer clients mark it so
def test_translation_is_english(server: BackgroundServer) -> None:
    with SPANISH.open("rb") as f:
        result = client(server).audio.translations.create(
            model="whisper-1", file=f, response_format="verbose_json"
        )
    assert result.language == "english"
    assert result.text == reference(SPANISH, task="translate").text
    said = set(words(result.text))
    assert {"distance", "moon", "mountain"} <= said
    assert not said & {"distancia", "luna", "montaña", "tierra"}
    with SPANISH.open("rb") as f:
        plain = client(server).audio.translations.create(model="whisper-1", file=f)
    assert plain.text == result.text


def test_streaming_sends_a_delta_per_segment_then_the_whole_text(
    server: BackgroundServer,
) -> None:
    expected = reference(SPANISH)
    with SPANISH.open("rb") as f:
        events = list(
            client(server).audio.transcriptions.create(model="whisper-1", file=f, stream=True)
        )
    types = [e.type for e in events]
    assert types == ["transcript.text.delta"] * len(expected.segments) + ["transcript.text.done"]
    assert "".join(e.delta for e in events[:-1]) == events[-1].text == expected.text


def test_a_verbose_stream_adds_segment_times_languages_and_the_files(
    server: BackgroundServer,
) -> None:
    """voxflow's extension for its web page: ``transcript.text.segment`` events, and the
    finished transcript in every format in the last event."""
    expected = reference(SPANISH)
    with SPANISH.open("rb") as f:
        events = list(client(server).audio.transcriptions.create(
            model="whisper-1", file=f, stream=True, response_format="verbose_json"
        ))  # fmt: skip
    segments = [e for e in events if e.type == "transcript.text.segment"]
    assert [(e.start, e.end, e.text, e.language) for e in segments] == [  # type: ignore[attr-defined]
        (s.start, s.end, s.text, s.language) for s in expected.segments
    ]
    done = events[-1]
    assert done.type == "transcript.text.done" and done.text == expected.text
    named = dataclasses.replace(expected, source=SPANISH.name)  # the upload's name
    assert done.files == {fmt: render(named, fmt) for fmt in ("txt", "srt", "vtt", "json")}  # type: ignore[attr-defined]


# -- the same port, the same engine --------------------------------------------------------------
def test_models_and_the_speech_endpoint_share_the_port(server: BackgroundServer) -> None:
    (model,) = client(server).models.list().data
    assert model.id == "whisper-base" and model.owned_by == "voxflow"
    assert client(server).models.retrieve("whisper-base").id == "whisper-base"
    assert server.url.removeprefix("ws://") == server.http_url.removeprefix("http://")
    target = "/speech/recognition/conversation/cognitiveservices/v1?language=en-US"
    with connect(server.url + target, subprotocols=["USP"],
                 additional_headers={"Ocp-Apim-Subscription-Key": KEY}) as ws:  # fmt: skip
        assert ws.subprotocol == "USP"
        ws.send(speech_config_message())


def test_concurrent_requests_share_the_engine(server: BackgroundServer) -> None:
    files = [AUSTEN, SPANISH, AUSTEN, SPANISH]
    with ThreadPoolExecutor(len(files)) as pool:
        texts = list(pool.map(lambda p: transcribe_file(server, p).text, files))
    assert texts == [reference(p).text for p in files]


# -- refusals ------------------------------------------------------------------------------------
def test_a_wrong_key_is_a_401_that_does_not_echo_it(server: BackgroundServer) -> None:
    with pytest.raises(openai.AuthenticationError) as info, AUSTEN.open("rb") as f:
        client(server, key="wrong-key-99").audio.transcriptions.create(
            model="whisper-1", file=f
        )
    assert info.value.status_code == 401 and info.value.code == "invalid_api_key"
    assert "wrong-key-99" not in info.value.response.text and KEY not in info.value.response.text
    with pytest.raises(openai.AuthenticationError):
        client(server, key="wrong-key-99").models.list()


def test_each_request_is_one_log_line_with_its_status_and_never_the_key(
    server: BackgroundServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="voxflow.server"):
        transcribe_file(server, AUSTEN, response_format="text")
        with pytest.raises(openai.AuthenticationError):
            client(server, key="wrong-key-99").models.list()
        with pytest.raises(openai.BadRequestError), AUSTEN.open("rb") as f:
            client(server).audio.transcriptions.create(model="whisper-1", file=f, language="xx")
    lines = [r.getMessage() for r in caplog.records if r.name == "voxflow.server"]
    assert any(re.fullmatch(r"answered POST '/v1/audio/transcriptions': 200 in [\d.]+ s", line)
               for line in lines), lines  # fmt: skip
    assert "refused GET '/v1/models': 401 a valid API key is required" in " ".join(lines)
    assert any(line.startswith("refused POST '/v1/audio/transcriptions': 400 ") for line in lines)
    assert not any(KEY in line or "wrong-key-99" in line for line in lines)


def test_a_text_file_named_wav_is_a_400_naming_it(
    server: BackgroundServer, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("these are my meeting notes, not audio\n" * 20)
    with pytest.raises(openai.BadRequestError) as info:
        transcribe_file(server, notes)
    assert info.value.status_code == 400 and info.value.body["param"] == "file"
    assert info.value.body["message"].startswith("notes.wav: ")
    with pytest.raises(openai.BadRequestError) as info, notes.open("rb") as f:
        client(server).audio.transcriptions.create(model="whisper-1", file=f, stream=True)
    assert info.value.body["message"].startswith("notes.wav: ")


def test_an_upload_over_the_limit_is_a_413(server: BackgroundServer, tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    with wave.open(str(big), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(round(MAX_UPLOAD_MB * 1024**2) + 100_000))
    with pytest.raises(openai.APIStatusError) as info:
        transcribe_file(server, big)
    assert info.value.status_code == 413 and info.value.body["code"] == "file_too_large"


def request(
    server: BackgroundServer, method: str, path: str, body: object = None, **headers: str
) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP request (the stdlib's client): status, headers, body."""
    conn = http.client.HTTPConnection(server.http_url.removeprefix("http://"), timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers)  # type: ignore[arg-type]
        answer = conn.getresponse()
        return answer.status, dict(answer.getheaders()), answer.read()
    finally:
        conn.close()


def test_bad_bodies_and_fields(server: BackgroundServer) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    path = "/v1/audio/transcriptions"
    status, _, body = request(server, "POST", path, b'{"file": "x"}',
                              **auth, **{"Content-Type": "application/json"})  # fmt: skip
    assert status == 415 and json.loads(body)["error"]["type"] == "invalid_request_error"
    form = b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper-1\r\n--b--\r\n"
    multipart = {"Content-Type": "multipart/form-data; boundary=b"}
    status, _, body = request(server, "POST", path, form, **auth, **multipart)
    assert status == 400 and json.loads(body)["error"]["param"] == "file"
    with pytest.raises(openai.BadRequestError) as info:
        transcribe_file(server, AUSTEN, response_format="diarized_json")
    assert info.value.body["param"] == "response_format"
    with pytest.raises(openai.BadRequestError) as info:
        transcribe_file(server, AUSTEN, temperature=3.0)
    assert info.value.body["param"] == "temperature"
    long_prompt = form.replace(b'"model"\r\n\r\nwhisper-1', b'"prompt"\r\n\r\n' + b"x" * 70_000)
    status, _, body = request(server, "POST", path, long_prompt, **auth, **multipart)
    assert status == 400 and json.loads(body)["error"]["param"] == "prompt"
    status, _, body = request(server, "GET", "/v1/nothing", **auth)
    assert status == 404 and "error" in json.loads(body)


def test_a_full_server_answers_429_and_uploads_stream_to_a_removed_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One request slot, held by an upload that stalls half way: the file is on disk (not in
    memory) while it comes, a second request gets 429, and once the first ends no temporary
    file is left."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    config = ServerConfig(port=0, max_requests=1)
    boundary = "voxflowtestboundary"
    audio = AUSTEN.read_bytes()
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"austen.wav\"\r\nContent-Type: audio/wav\r\n\r\n").encode()  # fmt: skip
    tail = f"\r\n--{boundary}--\r\n".encode()
    resume = threading.Event()

    def body():
        yield head + audio[: len(audio) // 2]
        resume.wait(60)
        yield audio[len(audio) // 2 :] + tail

    with BackgroundServer(config, engine=create_engine()) as srv:
        first: dict[str, tuple[int, dict[str, str], bytes]] = {}

        def slow() -> None:  # chunked: the body is sent as the generator yields it
            first["answer"] = request(
                srv, "POST", "/v1/audio/transcriptions", body(),
                **{"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )  # fmt: skip

        worker = threading.Thread(target=slow)
        worker.start()
        uploads: list[Path] = []
        for _ in range(200):
            uploads = list(tmp_path.glob("voxflow-upload-*/*"))
            if uploads and uploads[0].stat().st_size > 0:
                break
            time.sleep(0.05)
        assert uploads and 0 < uploads[0].stat().st_size < len(audio)
        with pytest.raises(openai.RateLimitError) as info, AUSTEN.open("rb") as f:
            OpenAI(base_url=srv.http_url + "/v1", api_key="none", max_retries=0
                   ).audio.transcriptions.create(model="whisper-1", file=f)  # fmt: skip
        assert info.value.status_code == 429
        assert info.value.response.headers["Retry-After"] == "1"
        resume.set()
        worker.join(120)
    status, _, answer = first["answer"]
    assert status == 200 and json.loads(answer)["text"] == reference(AUSTEN).text
    assert not list(tmp_path.glob("voxflow-upload-*"))


def test_a_request_that_finds_no_recognition_slot_gets_503_and_the_next_one_its_text() -> None:
    """Transcriptions share the engine's recognition slots with speech turns: with the one slot
    held (here by a stand-in for a long turn), a request waits its bound, then gets 503 with
    Retry-After; once the slot is free a request is answered."""
    import asyncio

    config = ServerConfig(port=0, max_recognitions=1, max_queue_wait=0.5)
    with BackgroundServer(config, engine=create_engine()) as srv:
        held, free = threading.Event(), threading.Event()

        async def long_turn() -> None:
            ticket = srv.server.admission.connect()
            try:
                async with ticket.recognition():
                    held.set()
                    await asyncio.to_thread(free.wait, 60)
            finally:
                ticket.close()

        turn = srv.submit(long_turn())
        assert held.wait(30)
        with pytest.raises(openai.InternalServerError) as info, AUSTEN.open("rb") as f:
            OpenAI(base_url=srv.http_url + "/v1", api_key="none", max_retries=0
                   ).audio.transcriptions.create(model="whisper-1", file=f)  # fmt: skip
        assert info.value.status_code == 503 and "recognition slot" in str(info.value)
        assert info.value.response.headers["Retry-After"] == "1"
        free.set()
        turn.result(30)
        with AUSTEN.open("rb") as f:
            answer = OpenAI(base_url=srv.http_url + "/v1", api_key="none", max_retries=0
                            ).audio.transcriptions.create(model="whisper-1", file=f)  # fmt: skip
        assert answer.text == reference(AUSTEN).text


# -- the documentation's snippet -----------------------------------------------------------------
def test_the_openai_snippet_in_docs_serve_md_works(server: BackgroundServer) -> None:
    text = (ROOT / "docs/serve.md").read_text()
    match = re.search(r"<!-- tested: openai -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/serve.md lost its tested openai snippet"
    code = match.group(1)
    assert "http://127.0.0.1:5000/v1" in code and '"es-mx.wav"' in code
    code = code.replace("http://127.0.0.1:5000", server.http_url).replace('"KEY"', repr(KEY))
    code = code.replace('"es-mx.wav"', repr(str(SPANISH)))
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    expected = reference(SPANISH)
    first, *segments = run.stdout.splitlines()
    assert first == f"spanish {expected.text}"
    assert segments == [f"{s.start:.2f}-{s.end:.2f} {s.text}" for s in expected.segments]
