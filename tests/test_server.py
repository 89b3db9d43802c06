"""`voxflow serve` at the protocol level: a plain websockets client speaking USP via the codec's
client builders, against the real server and the real Whisper engine on real recordings."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import http.client
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from serving import BackgroundServer, LiveAudio
from voxflow.audio import RawPcm, load
from voxflow.engines import create_engine
from voxflow.errors import ConfigError, VoxflowError
from voxflow.languages import LanguagePlan, LidMode
from voxflow.pipeline import LiveSegmentation, TranscribeOptions, transcribe
from voxflow.server.admission import Admission
from voxflow.server.auth import authorized
from voxflow.server.config import Faults, ServerConfig
from voxflow.server.interim import _Resampler, to_mono_float
from voxflow.server.pipe import AudioPipe
from voxflow.server.turn import raw_format, turn_plan
from voxflow.server.usp import (
    ContextOptions,
    Continuation,
    RecognitionMode,
    RecognitionStatus,
    RequestOptions,
    ServiceMessage,
    TurnSettings,
    WaveEncoding,
    WaveFormat,
    audio_end_message,
    audio_header_message,
    audio_message,
    build_wave_header,
    client_messages,
    new_request_id,
    parse_service_message,
    parse_wave_header,
    speech_config_message,
    speech_context_message,
)
from voxflow.server.usp.wave import DECODABLE_CHANNELS
from voxflow.vad import speech_regions

with warnings.catch_warnings():  # the stdlib's G.711 tables: the oracle for the interim decoder
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ROOT = Path(__file__).resolve().parent.parent
CONVERSATION = "/speech/recognition/conversation/cognitiveservices/v1?language=en-US"
INTERACTIVE = "/speech/recognition/interactive/cognitiveservices/v1?language=en-US"
PCM16 = WaveFormat()
KEY = "test-key-7f3a9c"
SERVE = "import sys; from voxflow.cli import main; sys.exit(main(sys.argv[1:]))"

LIVE = LiveSegmentation()  # how the server cuts a turn it is not told how to cut


# -- helpers -------------------------------------------------------------------------------------
def normalise(text: str) -> str:
    """Lower case, no punctuation: the server and the pipeline must agree on the words."""
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text.lower())).strip()


def wav_payload(path: Path) -> tuple[WaveFormat, bytes]:
    """A WAV file's format and sample bytes, through the codec's own RIFF parser."""
    data = path.read_bytes()
    fmt, start = parse_wave_header(data)
    size = int.from_bytes(data[start - 4 : start], "little")
    return fmt, data[start : start + size]


def pcm16(samples: np.ndarray) -> bytes:
    return np.clip(np.round(samples * 32767), -32768, 32767).astype("<i2").tobytes()


@functools.cache
def reference(path: str, language: str | None = "en-US", live: LiveSegmentation = LIVE) -> str:
    """What voxflow.pipeline.transcribe makes of the same audio, read as a stream of unknown
    length as the server receives it: the text the server must send."""
    options = TranscribeOptions(languages=LanguagePlan.parse(forced=language), live=live)
    with LiveAudio(path) as audio:
        return transcribe(audio, options=options).text


def open_ws(url: str, path: str = CONVERSATION, **headers: str) -> ClientConnection:
    """A client that keeps every message it is sent (``max_queue=None``), as the SDK reads all
    of them: with a bounded queue that a test does not read, the client would stop reading,
    and so never answer the server's close frame."""
    return connect(
        url + path,
        subprotocols=["USP"],
        additional_headers=headers or None,
        compression=None,
        open_timeout=30,
        max_size=None,
        max_queue=None,
    )


def read_turn(ws: ClientConnection, timeout: float = 120.0) -> list[ServiceMessage]:
    """Service messages until turn.end."""
    out: list[ServiceMessage] = []
    deadline = time.monotonic() + timeout
    while not out or out[-1].path != "turn.end":
        out.append(parse_service_message(ws.recv(timeout=max(0.1, deadline - time.monotonic()))))
    return out


def converse(
    url: str, messages: list[str | bytes], path: str = CONVERSATION
) -> list[ServiceMessage]:
    with open_ws(url, path) as ws:
        for message in messages:
            ws.send(message)
        return read_turn(ws)


def phrases(replies: list[ServiceMessage]) -> list[dict]:
    return [
        m.body
        for m in replies
        if m.path == "speech.phrase" and m.body["RecognitionStatus"] == "Success"
    ]


def close_code(ws: ClientConnection) -> tuple[int, str]:
    """Wait for the server to close; its close code and reason."""
    with pytest.raises(ConnectionClosed) as info:
        for _ in range(100):
            ws.recv(timeout=30)
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


def two_utterances(corpus: Path, tmp: Path) -> Path:
    """'What's the weather like?' twice, 2 s of silence apart."""
    _, pcm = wav_payload(corpus / "azure-samples/whatstheweatherlike.wav")
    path = tmp / "twice.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm + bytes(64000) + pcm)
    return path


@pytest.fixture(scope="module")
def server() -> BackgroundServer:
    config = ServerConfig(port=0, max_frame_bytes=64 * 1024, max_turn_seconds=10.0)
    with BackgroundServer(config, engine=create_engine()) as running:
        yield running


@pytest.fixture(scope="module")
def weather(corpus: Path) -> Path:
    return corpus / "azure-samples/whatstheweatherlike.wav"


# -- recognition ---------------------------------------------------------------------------------
def test_continuous_turn_sends_the_pipelines_phrases_then_end_of_dictation(
    server: BackgroundServer, corpus: Path, tmp_path: Path
) -> None:
    path = two_utterances(corpus, tmp_path)
    _, pcm = wav_payload(path)
    replies = converse(server.url, list(client_messages(pcm, PCM16)))
    paths = [m.path for m in replies]
    assert paths[0] == "turn.start" and paths[1] == "speech.startDetected"
    assert paths[-2:] == ["speech.endDetected", "turn.end"]
    texts = [p["DisplayText"] for p in phrases(replies)]
    assert len(texts) == 2
    assert normalise(" ".join(texts)) == normalise(reference(str(path)))
    # The last phrase-like message acknowledges all of the audio, so the SDK replays nothing.
    end = round(len(pcm) / 32000 * 1e7)
    final = [m.body for m in replies if m.path == "speech.phrase"][-1]
    assert final == {"RecognitionStatus": "EndOfDictation", "Offset": end, "Duration": 0}
    assert all(m.request_id == replies[0].request_id for m in replies)


def test_a_live_turns_phrase_is_final_before_the_next_phrase_is_sent(
    server: BackgroundServer, weather: Path
) -> None:
    """The page's microphone (a turn that names no segmentation): "What's the weather like?"
    twice, 1 s apart; the first phrase comes while the client still holds back the second
    phrase's end, the second once it is sent."""
    _, pcm = wav_payload(weather)
    audio = pcm + bytes(32000) + pcm
    messages = list(client_messages(audio, PCM16))  # config, context, header, 0.1 s frames, end
    first = 3 + (len(pcm) + 32000 + len(pcm) // 2) // 3200
    with open_ws(server.url) as ws:
        for message in messages[:first]:
            ws.send(message)
        early: list[ServiceMessage] = []
        while not phrases(early):  # the recv times out (failing) if no phrase comes
            early.append(parse_service_message(ws.recv(timeout=60)))
        for message in messages[first:]:
            ws.send(message)
        replies = early + read_turn(ws)
    texts = [normalise(p["DisplayText"]) for p in phrases(replies)]
    assert texts == ["what's the weather like"] * 2
    assert len(phrases(early)) == 1


async def test_a_turn_cuts_phrases_as_its_segmentation_options_ask() -> None:
    """Speech_SegmentationSilenceTimeoutMs / MaximumTimeMs (speech.context) set the turn's live
    segmentation, brought into range; without them the server's own; a language-only turn
    keeps a file's clips."""
    from voxflow.server.turn import TurnRunner
    from voxflow.server.usp import Turn, TurnSettings

    def runner(**kw: object) -> TurnRunner:
        settings = TurnSettings(**{
            "mode": RecognitionMode.CONVERSATION, "language": "en-US", "languages": (),
            "language_id_mode": None, "detailed": False, "word_timings": False,
            "word_confidence": False, "phrases": (), "phrase_weight": None, "profanity": None,
            "initial_silence_timeout": None, "end_silence_timeout": None, "offset_base": 0.0,
            "previous_service_tag": None, **kw,
        })  # type: ignore[arg-type]  # fmt: skip
        return TurnRunner(
            Turn(new_request_id(), ContextOptions(), settings, PCM16), PCM16,
            plan=turn_plan(settings), engine=_FailingEngine(),  # type: ignore[arg-type]
            options=TranscribeOptions(), send=None, fail=None,  # type: ignore[arg-type]
            ticket=Admission(max_sessions=1, max_recognitions=1, max_queue_wait=1.0).connect(),
        )  # fmt: skip

    assert runner().options.live == LIVE
    asked = runner(segmentation_silence_timeout=0.8, segmentation_max_time=20.0)
    assert asked.options.live == LiveSegmentation(pause=0.8, max_phrase=20.0)
    extreme = runner(segmentation_silence_timeout=0.001, segmentation_max_time=70.0)
    assert extreme.options.live == LiveSegmentation(pause=0.1, max_phrase=30.0)
    assert runner(language_only=True).options.live is None
    once = RecognitionMode.INTERACTIVE
    assert runner(mode=once).options.live is None  # recognize_once: the whole utterance
    assert runner(mode=once, segmentation_silence_timeout=0.3).options.live == LiveSegmentation(
        pause=0.3
    )


def test_interactive_turn_ends_after_its_first_phrase(
    server: BackgroundServer, corpus: Path, tmp_path: Path
) -> None:
    _, pcm = wav_payload(two_utterances(corpus, tmp_path))
    replies = converse(server.url, list(client_messages(pcm, PCM16)), path=INTERACTIVE)
    said = [m for m in replies if m.path == "speech.phrase"]
    assert len(said) == 1 and normalise(said[0].body["DisplayText"]) == "what's the weather like"
    assert [m.path for m in replies][-2:] == ["speech.endDetected", "turn.end"]


def test_silence_in_an_interactive_turn_is_no_match(server: BackgroundServer) -> None:
    replies = converse(server.url, list(client_messages(bytes(48000), PCM16)), path=INTERACTIVE)
    assert [m.path for m in replies] == ["turn.start", "speech.phrase", "turn.end"]
    assert replies[1].body["RecognitionStatus"] == "NoMatch"
    assert replies[1].body["Duration"] == 15_000_000  # it covers the 1.5 s of audio


@pytest.mark.parametrize("kind", ["mulaw", "alaw", "float48k-stereo", "pcm24"])
def test_the_riff_header_says_how_to_read_the_audio(
    server: BackgroundServer, corpus: Path, weather: Path, kind: str
) -> None:
    """What the SDK passes through unconverted (mu-law, A-law, float, stereo, 48 kHz, 24-bit)."""
    x = load(weather).samples[:, 0]
    if kind == "mulaw":
        fmt, data = wav_payload(corpus / "azure-samples/whatstheweatherlike-mulaw.wav")
        assert fmt.encoding is WaveEncoding.MULAW
    elif kind == "alaw":
        fmt = WaveFormat(16000, 1, 8, WaveEncoding.ALAW)
        data = audioop.lin2alaw(pcm16(x), 2)
    elif kind == "pcm24":
        fmt = WaveFormat(16000, 1, 24)
        data = audioop.lin2lin(pcm16(x), 2, 3)
    else:
        fmt = WaveFormat(48000, 2, 32, WaveEncoding.FLOAT)
        y = load(weather, sample_rate=48000, channels=2).samples
        data = y.astype("<f4").tobytes()
    texts = [
        p["DisplayText"] for p in phrases(converse(server.url, list(client_messages(data, fmt))))
    ]
    assert normalise(" ".join(texts)) == normalise(reference(str(weather)))


def test_a_continuation_turn_reports_times_relative_to_its_replayed_audio(
    server: BackgroundServer, weather: Path
) -> None:
    _, pcm = wav_payload(weather)
    options = ContextOptions(continuation=Continuation("previous-tag", offset=42.0))
    replies = converse(server.url, list(client_messages(pcm, PCM16, options=options)))
    english = TranscribeOptions(languages=LanguagePlan.parse(forced="en-US"))
    expected = transcribe(str(weather), options=english).segments[0]
    (phrase,) = phrases(replies)
    assert phrase["Offset"] == round(expected.start * 1e7)  # not 42 s + start: the SDK adds it
    end = [m.body for m in replies if m.path == "speech.phrase"][-1]
    assert end["RecognitionStatus"] == "EndOfDictation" and end["Offset"] == round(
        len(pcm) / 32e3 * 1e7
    )


def test_hypotheses_come_while_audio_streams_and_never_after_the_phrase(
    server: BackgroundServer, corpus: Path
) -> None:
    path = corpus / "azure-samples/LanguageDetection_enUS.wav"
    _, pcm = wav_payload(path)
    frames = [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]
    rid = new_request_id()
    seen: list[ServiceMessage] = []
    # Phrases that end only at a 2 s pause (Speech_SegmentationSilenceTimeoutMs), so that the
    # sentence's first phrase is long enough for a partial decode to come within it.
    slow = ContextOptions(segmentation_silence_timeout=2.0)
    with open_ws(server.url) as ws:
        ws.send(speech_config_message())
        ws.send(speech_context_message(rid, slow))
        ws.send(audio_header_message(rid, PCM16))
        sent = 0
        # At real time, as a microphone sends it, until a partial decode answers (the 6.5 s
        # sentence, without a pause, is still going on: a partial decode takes about a second
        # on two cores, while at 4x real time the whole sentence was often sent first).
        while sent < len(frames) and "speech.hypothesis" not in [m.path for m in seen]:
            ws.send(audio_message(rid, frames[sent]))
            sent += 1
            time.sleep(0.1)
            try:
                while True:
                    seen.append(parse_service_message(ws.recv(timeout=0)))
            except TimeoutError:
                pass
        for frame in frames[sent:]:
            ws.send(audio_message(rid, frame))
        ws.send(audio_end_message(rid))
        replies = seen + read_turn(ws)
    paths = [m.path for m in replies]
    assert paths[:3] == ["turn.start", "speech.startDetected", "speech.hypothesis"]
    assert sent < len(frames)  # it came while audio was still streaming
    hypothesis = replies[2].body
    heard = normalise(hypothesis["Text"]).split()
    expected = reference(str(path), live=LiveSegmentation(pause=2.0))
    full = normalise(expected).split()
    assert heard and sum(w in full for w in heard) >= 0.7 * len(heard)
    assert hypothesis["Offset"] == 0 and hypothesis["Duration"] >= 15_000_000
    texts = [p["DisplayText"] for p in phrases(replies)]
    assert normalise(" ".join(texts)) == normalise(expected)
    assert "speech.hypothesis" not in paths[paths.index("speech.phrase") :]


def test_speech_start_is_detected_while_the_speech_streams_at_the_speechs_own_offset(
    server: BackgroundServer, tmp_path: Path
) -> None:
    """``speech.startDetected`` comes as soon as the segmenter hears speech, with no phrase or
    hypothesis before it and most of the audio not yet sent, and its offset is where the
    speech begins (after 1.5 s of silence), not the turn's start or its first result's."""
    _, pcm = wav_payload(ROOT / "samples" / "austen-0870.wav")  # 7 s of reading
    lead = 1.5
    samples = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768
    onset = lead + next(iter(speech_regions([samples]))).start / 16000
    path = tmp_path / "late.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(round(lead * 16000) * 2) + pcm)
    fmt, audio = wav_payload(path)
    messages = list(client_messages(audio, fmt))
    first = 3 + round((onset + 2.5) / 0.1)  # config, context, header, then 0.1 s frames
    with open_ws(server.url) as ws:
        for message in messages[:first]:
            ws.send(message)
        seen = [parse_service_message(ws.recv(timeout=30))]
        while seen[-1].path == "turn.start":
            seen.append(parse_service_message(ws.recv(timeout=30)))
        for message in messages[first:]:
            ws.send(message)
        replies = seen + read_turn(ws)
    assert first < len(messages) - 20  # 2 s and more of the speech were still to come
    assert [m.path for m in seen] == ["turn.start", "speech.startDetected"]
    assert abs(seen[1].body["Offset"] / 1e7 - onset) < 0.3, (seen[1].body, onset)
    said = phrases(replies)
    assert normalise(" ".join(p["DisplayText"] for p in said)) == normalise(reference(str(path)))
    ends = [m for m in replies if m.path == "speech.endDetected"]
    assert len(ends) == 1 and ends[0].body["Offset"] >= said[-1]["Offset"]


# -- hostile clients, limits ---------------------------------------------------------------------
MALFORMED: dict[str, list[str | bytes]] = {
    "text without a blank line": ["Path:speech.config\r\ncontent"],
    "binary without a header length": [b"\x00"],
    "binary header longer than the frame": [b"\xff\xffPath:audio"],
    "context before config": [speech_context_message("a" * 32)],
    "audio before its context": [speech_config_message(), audio_message("b" * 32, b"\x00\x00")],
    "context that is not JSON": [
        speech_config_message(),
        "Path:speech.context\r\nX-RequestId:" + "c" * 32 + "\r\n\r\n{not json",
    ],
    "audio that is not RIFF": [
        speech_config_message(),
        speech_context_message("d" * 32),
        audio_message("d" * 32, b"MP3!" * 20),
    ],
    "audio in a text frame": ["Path:audio\r\nX-RequestId:" + "e" * 32 + "\r\n\r\n{}"],
}


def test_malformed_frames_close_only_their_own_connection(
    server: BackgroundServer, weather: Path
) -> None:
    _, pcm = wav_payload(weather)
    result: dict[str, list[ServiceMessage]] = {}

    def good() -> None:
        with open_ws(server.url) as ws:
            for i, message in enumerate(client_messages(pcm, PCM16)):
                ws.send(message)
                if i == 5:
                    started.set()
            result["replies"] = read_turn(ws)

    started = threading.Event()
    worker = threading.Thread(target=good)
    worker.start()
    assert started.wait(60)
    closes = {}
    for name, messages in MALFORMED.items():
        with open_ws(server.url) as ws:
            for message in messages:
                ws.send(message)
            closes[name] = close_code(ws)
    worker.join(120)
    for name, (code, reason) in closes.items():
        assert code == 1002 and reason, name
    assert "RIFF" in closes["audio that is not RIFF"][1]
    texts = [p["DisplayText"] for p in phrases(result["replies"])]
    assert normalise(" ".join(texts)) == normalise(reference(str(weather)))


def pcm16_header_with_channels(channels: int) -> bytes:
    """A streaming 16 kHz 16-bit RIFF header for any channel count (WaveFormat refuses some)."""
    riff = build_wave_header(PCM16)
    return riff[:22] + struct.pack("<HIIH", channels, 16000, 32000 * channels, 2 * channels) + (
        riff[34:])  # fmt: skip


def test_the_header_accepts_exactly_the_channel_counts_the_decoder_opens() -> None:
    for channels in range(1, 65):
        try:
            load(RawPcm(bytes(3200 * channels), 16000, channels), sample_rate=16000, channels=1)
            decodes = True
        except VoxflowError:
            decodes = False
        assert (channels in DECODABLE_CHANNELS) is decodes, channels


@pytest.mark.parametrize("channels", [9, 17, 31, 32])
def test_channel_counts_the_decoder_cannot_open_close_with_1002_at_the_header(
    server: BackgroundServer, channels: int
) -> None:
    rid = new_request_id()
    with open_ws(server.url) as ws:
        ws.send(speech_config_message())
        ws.send(speech_context_message(rid))
        # The header alone is refused (audio sent after it: the test below).
        ws.send(audio_message(rid, pcm16_header_with_channels(channels)))
        code, reason = close_code(ws)
    assert code == 1002
    assert f"16-bit PCM in {channels} channel(s) at 16000 Hz cannot be decoded" in reason


def test_a_refused_turn_waits_for_the_clients_close_while_audio_still_comes(
    server: BackgroundServer,
) -> None:
    """A client that has not yet read the server's close keeps streaming: the server drops
    that audio and waits for the client's close frame before it ends the connection (dropping
    it at once, as aiohttp does when a receive is in progress, made the next frames reset the
    connection, and a client could lose the close and its reason)."""
    import aiohttp

    rid = new_request_id()
    header = audio_message(rid, pcm16_header_with_channels(32))

    async def run() -> tuple[int, int | None]:
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(server.url + CONVERSATION, protocols=["USP"], autoclose=False) as ws,
        ):
            await ws.send_str(speech_config_message())
            await ws.send_str(speech_context_message(rid))
            await ws.send_bytes(header)
            closing = await ws.receive(timeout=30)
            while closing.type is aiohttp.WSMsgType.TEXT:  # turn.start first
                closing = await ws.receive(timeout=30)
            assert closing.type is aiohttp.WSMsgType.CLOSE, closing
            for _ in range(10):  # audio sent before the client saw the close
                await ws.send_bytes(audio_message(rid, bytes(3200)))
                await asyncio.sleep(0.05)
            await ws.close()
            return closing.data, ws.close_code

    code, after = asyncio.run(run())
    assert code == 1002 and after == 1002


def test_a_frame_over_the_size_limit_is_refused(server: BackgroundServer) -> None:
    rid = new_request_id()
    with open_ws(server.url) as ws:
        ws.send(speech_config_message())
        ws.send(speech_context_message(rid))
        ws.send(audio_header_message(rid, PCM16))
        ws.send(audio_message(rid, bytes(100 * 1024)))
        assert close_code(ws)[0] == 1009  # message too big


def test_audio_beyond_the_turn_limit_closes_the_connection(server: BackgroundServer) -> None:
    with open_ws(server.url) as ws:
        for message in client_messages(bytes(11 * 32000), PCM16, chunk_seconds=0.5):
            try:
                ws.send(message)
            except ConnectionClosed:
                break
        code, reason = close_code(ws)
    assert code == 1008 and "10 s" in reason


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/", 404),
        ("/speech/recognition/bogus/cognitiveservices/v1", 404),
        ("/speech/synthesis/cognitiveservices/v1", 404),
        ("/x/speech/recognition/conversation/cognitiveservices/v1", 404),  # the whole path only
        ("/speech/recognition/conversation/cognitiveservices/v1/x", 404),
        ("/speech/recognition/conversation/cognitiveservices/v1%0A", 404),
        ("/speech/recognition/conversation/cognitiveservices/v1?format=weird", 400),
        ("/speech/recognition/conversation/cognitiveservices/v1?wordLevelTimestamps=maybe", 400),
    ],
)
def test_bad_upgrade_targets(server: BackgroundServer, path: str, status: int) -> None:
    with pytest.raises(InvalidStatus) as info:
        open_ws(server.url, path)
    assert info.value.response.status_code == status


def test_an_upgrade_without_a_websocket_key_is_a_400(server: BackgroundServer) -> None:
    conn = http.client.HTTPConnection(server.url.removeprefix("ws://"), timeout=30)
    conn.request("GET", CONVERSATION, headers={"Upgrade": "websocket", "Connection": "Upgrade"})
    assert conn.getresponse().status == 400
    conn.close()


def test_unknown_language_is_a_bad_request(server: BackgroundServer) -> None:
    replies = converse(
        server.url,
        list(client_messages(bytes(3200), PCM16)),
        path="/speech/recognition/conversation/cognitiveservices/v1?language=xx-Nowhere",
    )
    assert [m.path for m in replies] == ["turn.start", "speech.phrase", "turn.end"]
    assert replies[1].body["RecognitionStatus"] == "BadRequest"
    assert "xx-Nowhere" in replies[1].body["FailureReason"]  # the SDK shows it in its details


def test_key_is_checked_in_constant_time_headers_and_never_echoed() -> None:
    with BackgroundServer(ServerConfig(port=0, key=KEY), engine=create_engine()) as keyed:
        for headers in ({}, {"Ocp-Apim-Subscription-Key": "wrong"}, {"Authorization": KEY}):
            with pytest.raises(InvalidStatus) as info:
                open_ws(keyed.url, **headers)
            assert info.value.response.status_code == 401
            assert KEY.encode() not in info.value.response.body
        for headers in ({"Ocp-Apim-Subscription-Key": KEY}, {"Authorization": f"Bearer {KEY}"}):
            with open_ws(keyed.url, **headers) as ws:
                ws.send(speech_config_message())
        assert keyed.server.stats["unauthorized"] == 3
    assert KEY not in repr(ServerConfig(key=KEY))


def test_authorized() -> None:
    def headers(**values: list[str]):
        return lambda name: values.get(name.replace("-", "_"), [])

    assert authorized(headers(), None)
    assert authorized(headers(Ocp_Apim_Subscription_Key=["k1"]), "k1")
    assert authorized(headers(Authorization=["bearer k1"]), "k1")
    assert not authorized(headers(Authorization=["Basic k1"]), "k1")
    assert not authorized(headers(Ocp_Apim_Subscription_Key=["k1", "k2"]), "k1")  # repeated
    assert not authorized(headers(Ocp_Apim_Subscription_Key=["k"]), "k1")


def test_sessions_beyond_the_limit_get_503_until_one_closes() -> None:
    config = ServerConfig(port=0, max_sessions=2)
    with BackgroundServer(config, engine=create_engine()) as small:
        first, second = contextlib.ExitStack(), contextlib.ExitStack()
        first.enter_context(open_ws(small.url))
        second.enter_context(open_ws(small.url))
        with pytest.raises(InvalidStatus) as info:
            open_ws(small.url)
        assert info.value.response.status_code == 503
        second.close()
        for _ in range(100):  # the server frees the slot once the handler has returned
            if len(small.server.sessions) < 2:
                break
            time.sleep(0.05)
        with open_ws(small.url) as ws:
            ws.send(speech_config_message())
        first.close()


def test_an_idle_client_is_closed() -> None:
    config = ServerConfig(port=0, idle_timeout=0.5)
    with BackgroundServer(config, engine=create_engine()) as srv, open_ws(srv.url) as ws:
        ws.send(speech_config_message())
        assert close_code(ws) == (1000, "idle timeout")


# -- test controls -------------------------------------------------------------------------------
def test_fault_close_after_bytes_hits_only_the_first_connections(weather: Path) -> None:
    _, pcm = wav_payload(weather)
    faults = Faults(close_after_bytes=16000, close_connections=1, close_code=4001)
    with BackgroundServer(ServerConfig(port=0, faults=faults), engine=create_engine()) as srv:
        with open_ws(srv.url) as ws:
            for message in client_messages(pcm, PCM16):
                try:
                    ws.send(message)
                except ConnectionClosed:
                    break
            code, reason = close_code(ws)
        assert code == 4001 and "16000" in reason
        texts = [
            p["DisplayText"] for p in phrases(converse(srv.url, list(client_messages(pcm, PCM16))))
        ]
    assert normalise(" ".join(texts)) == normalise(reference(str(weather)))


def test_fault_error_status_and_reply_delay() -> None:
    faults = Faults(error_status=RecognitionStatus.ERROR, reply_delay=0.3)
    with BackgroundServer(ServerConfig(port=0, faults=faults), engine=create_engine()) as srv:
        began = time.monotonic()
        replies = converse(srv.url, list(client_messages(bytes(32000), PCM16)))
        took = time.monotonic() - began
    assert [m.path for m in replies] == ["turn.start", "speech.phrase", "turn.end"]
    assert replies[1].body["RecognitionStatus"] == "Error"
    assert took >= 3 * 0.3  # three replies, each delayed


def test_fault_force_401() -> None:
    config = ServerConfig(port=0, faults=Faults(force_401=True))
    with (
        BackgroundServer(config, engine=create_engine()) as srv,
        pytest.raises(InvalidStatus) as info,
    ):
        open_ws(srv.url)
    assert info.value.response.status_code == 401


def test_pace_reads_audio_no_faster_than_asked(weather: Path) -> None:
    _, pcm = wav_payload(weather)
    with BackgroundServer(ServerConfig(port=0, pace=2.0), engine=create_engine()) as srv:
        began = time.monotonic()
        replies = converse(srv.url, list(client_messages(pcm, PCM16)))
        took = time.monotonic() - began
    assert took >= len(pcm) / 32000 / 2.0 * 0.9
    texts = [p["DisplayText"] for p in phrases(replies)]
    assert normalise(" ".join(texts)) == normalise(reference(str(weather)))


def test_config_rejects_nonsense() -> None:
    for bad in (
        {"port": 70000}, {"key": " "}, {"max_sessions": 0}, {"pace": 0.0},
        {"max_recognitions": 0}, {"max_queue_wait": 0.0}, {"max_queue_wait": float("nan")},
    ):  # fmt: skip
        with pytest.raises(ConfigError):
            ServerConfig(**bad)
    with pytest.raises(ConfigError):
        Faults(close_code=1005)
    with pytest.raises(ConfigError):
        Faults(error_status=RecognitionStatus.SUCCESS)


# -- the pieces ----------------------------------------------------------------------------------
async def test_audio_pipe_back_pressure_eof_and_abort() -> None:
    pipe = AudioPipe(limit=10)
    await pipe.write(b"0123456789")
    blocked = asyncio.ensure_future(pipe.write(b"abc"))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # full: the writer waits for the reader
    assert await asyncio.to_thread(pipe.read, 4) == b"0123"
    await asyncio.wait_for(blocked, 5)
    pipe.close()
    assert await asyncio.to_thread(pipe.read) == b"456789abc"
    assert await asyncio.to_thread(pipe.read) == b""

    pipe = AudioPipe(limit=10)
    reader = asyncio.ensure_future(asyncio.to_thread(pipe.read, 5))
    await asyncio.sleep(0.05)
    assert not reader.done()  # nothing yet: the reader blocks
    pipe.abort()
    assert await asyncio.wait_for(reader, 5) == b""
    await pipe.write(b"ignored")
    assert pipe.held == 0


def test_interim_decoding_matches_the_g711_tables_and_pcm() -> None:
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 256, 4000, dtype=np.uint8).tobytes()
    mono = WaveFormat(8000, 1, 8, WaveEncoding.MULAW)
    ulaw = np.frombuffer(audioop.ulaw2lin(raw, 2), "<i2") / 32768
    np.testing.assert_allclose(to_mono_float(raw, mono), ulaw, atol=1e-7)
    alaw = np.frombuffer(audioop.alaw2lin(raw, 2), "<i2") / 32768
    np.testing.assert_allclose(
        to_mono_float(raw, WaveFormat(8000, 1, 8, WaveEncoding.ALAW)), alaw, atol=1e-7
    )
    x = rng.uniform(-0.9, 0.9, (3000, 2)).astype(np.float32)
    for fmt, data in (
        (WaveFormat(16000, 2, 32, WaveEncoding.FLOAT), x.tobytes()),
        (WaveFormat(16000, 2, 16), pcm16(x)),
        (WaveFormat(16000, 2, 24), audioop.lin2lin(pcm16(x), 2, 3)),
        (WaveFormat(16000, 2, 8), audioop.bias(audioop.lin2lin(pcm16(x), 2, 1), 1, 128)),
    ):
        np.testing.assert_allclose(to_mono_float(data + b"\x01", fmt), x.mean(axis=1), atol=0.01)
    # Resampling 48 kHz → 16 kHz chunk by chunk: the same tone, no drift at chunk edges.
    t = np.arange(48000) / 48000
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    resample = _Resampler(48000)
    out = np.concatenate([resample(tone[i : i + 1234]) for i in range(0, len(tone), 1234)])
    expected = np.sin(2 * np.pi * 440 * np.arange(len(out)) / 16000)
    assert abs(len(out) - 16000) <= 1 and np.max(np.abs(out - expected)) < 0.01


def impossible_floats(speech: np.ndarray, huge: float) -> np.ndarray:
    """Real speech with NaN, ±inf and huge samples sprinkled through it."""
    x = speech.astype(np.float64)
    x[::50], x[1::97], x[2::89], x[3::61] = np.nan, np.inf, -np.inf, huge
    return x


def test_interim_decoding_makes_non_finite_floats_silence_without_warnings() -> None:
    for bits, huge in ((64, 1e300), (32, 1e30)):
        x = impossible_floats(np.full(4000, 0.25), huge)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a numpy RuntimeWarning fails the test
            y = to_mono_float(x.astype(f"<f{bits // 8}").tobytes(),
                              WaveFormat(16000, 1, bits, WaveEncoding.FLOAT))  # fmt: skip
        assert y.dtype == np.float32
        expected = np.select([~np.isfinite(x), x == huge], [0.0, 1.0], 0.25)
        np.testing.assert_array_equal(y, expected)  # silence; full scale; the rest as it was


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for process {pid}")


def _low_rate_header(rate: int) -> bytes:
    header = bytearray(build_wave_header(WaveFormat(16000, 1, 8)))
    header[24:32] = struct.pack("<II", rate, rate)
    return bytes(header)


def _abuse(url: str, key: str, speech: np.ndarray) -> dict[str, object]:
    """The abuse cases of issue 13 that reach the server, one after another; what each got."""
    auth = {"Ocp-Apim-Subscription-Key": key}
    seen: dict[str, object] = {}

    def refused_upgrade(**headers: str) -> int:
        with pytest.raises(InvalidStatus) as info:
            open_ws(url, **headers)
        return info.value.response.status_code

    def open_when_free() -> ClientConnection:
        """A connection as soon as a session slot is free: sessions of clients that left must
        end within seconds (a stuck one would hold its --max-sessions slot for good)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return open_ws(url, **auth)
            except InvalidStatus as exc:
                assert exc.response.status_code == 503
                assert time.monotonic() < deadline, "the sessions of clients that left never ended"
                time.sleep(0.2)

    def closed_at_the_header(header: bytes, frame: bytes) -> tuple[int, str]:
        rid = new_request_id()
        with open_ws(url, **auth) as ws:
            ws.send(speech_config_message())
            ws.send(speech_context_message(rid))
            with contextlib.suppress(ConnectionClosed):
                ws.send(audio_message(rid, header))
                ws.send(audio_message(rid, frame))
                ws.send(audio_end_message(rid))
            return close_code(ws)

    seen["wrong key"] = refused_upgrade(**{"Ocp-Apim-Subscription-Key": "nope"})
    seen["speech path inside the path"] = refused_upgrade(
        **auth, path="/x/speech/recognition/conversation/cognitiveservices/v1"
    )
    # Case 2: a 1 Hz header and a 3,500-byte frame (it used to add about 1 GB each), six times.
    seen["1 Hz header"] = {closed_at_the_header(_low_rate_header(1), bytes(3500))[0]
                           for _ in range(6)}  # fmt: skip
    # Case 9: a channel count FFmpeg cannot open.
    seen["32 channels"] = closed_at_the_header(pcm16_header_with_channels(32), bytes(320 * 32))[0]
    for name in ("binary header longer than the frame", "audio that is not RIFF"):
        with open_ws(url, **auth) as ws:
            for message in MALFORMED[name]:
                ws.send(message)
            seen[name] = close_code(ws)[0]
    # Case 1's shape: a client floods a turn with more audio than its pipe holds, then drops
    # the socket without a close; each time its session (and --max-sessions slot) must end.
    for _ in range(4):
        with open_when_free() as ws, contextlib.suppress(ConnectionClosed, OSError):
            for message in client_messages(bytes(32000 * 30), PCM16, chunk_seconds=2.0):
                ws.send(message)
            ws.close_socket()
    # Case 3: connections beyond --max-sessions (3) are refused at once while the others stay.
    with contextlib.ExitStack() as held:
        for _ in range(3):
            held.enter_context(open_when_free()).send(speech_config_message())
        seen["a fourth connection"] = refused_upgrade(**auth)
    # Non-finite float audio (NaN, ±inf, huge) with interim results on.
    for bits, huge in ((32, 1e30), (64, 1e300)):
        fmt = WaveFormat(16000, 1, bits, WaveEncoding.FLOAT)
        pcm = impossible_floats(speech, huge).astype(f"<f{bits // 8}").tobytes()
        with open_ws(url, **auth) as ws:
            for message in client_messages(pcm, fmt, chunk_seconds=0.5):
                ws.send(message)
            seen[f"float{bits} NaN/inf"] = read_turn(ws)[-1].path
    return seen


def test_after_abuse_the_server_recognises_at_its_baseline_memory_and_sigterm_stops_it(
    weather: Path,
) -> None:
    """One real ``voxflow serve`` (a key, 3 sessions at most, interim results on) through the
    abuse cases of issue 13 that reach a server; after them a normal SDK recognition still
    works, the server's memory is back near its baseline after warm-up, nothing reached its
    stderr, and SIGTERM stops it within a few seconds while a client is mid-turn."""
    speechsdk = pytest.importorskip(
        "azure.cognitiveservices.speech", reason="azure-cognitiveservices-speech is not installed"
    )
    speech = load(ROOT / "samples" / "austen-0870.wav", sample_rate=16000, channels=1).samples
    expected = normalise(reference(str(weather)))
    env = {**os.environ, "VOXFLOW_SERVE_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-c", SERVE, "serve", "--port", "0",
                             "--max-sessions", "3"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip

    def recognise(url: str) -> str:
        config = speechsdk.SpeechConfig(host=url, subscription=KEY)
        audio = speechsdk.audio.AudioConfig(filename=str(weather))
        result = speechsdk.SpeechRecognizer(config, audio_config=audio).recognize_once()
        return normalise(result.text)

    try:
        line = proc.stdout.readline()
        url = line.rpartition(" ")[2].strip()
        assert url.startswith("ws://"), line
        assert recognise(url) == expected  # warm-up
        _abuse(url, KEY, speech[:, 0])  # once more to warm every path
        baseline = _rss_mib(proc.pid)
        seen = _abuse(url, KEY, speech[:, 0])
        assert recognise(url) == expected
        grown = _rss_mib(proc.pid) - baseline
        with open_ws(url, **{"Ocp-Apim-Subscription-Key": KEY}) as mid_turn:
            for message in list(client_messages(pcm16(speech[:, 0]), PCM16))[:-1]:  # no end
                mid_turn.send(message)
            proc.send_signal(signal.SIGTERM)
            began = time.monotonic()
            _, err = proc.communicate(timeout=60)
            stopped_in = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
    assert seen == {
        "wrong key": 401,
        "speech path inside the path": 404,
        "1 Hz header": {1002},
        "32 channels": 1002,
        "binary header longer than the frame": 1002,
        "audio that is not RIFF": 1002,
        "a fourth connection": 503,
        "float32 NaN/inf": "turn.end",
        "float64 NaN/inf": "turn.end",
    }
    assert grown < 200, f"the server's RSS grew by {grown:.0f} MiB over its {baseline:.0f} MiB"
    # The client answers the 1001 at once: waiting out a close timeout (10 s) would be a bug.
    assert proc.returncode == 0 and stopped_in < 5, (proc.returncode, stopped_in)
    assert "Warning" not in err and "encountered" not in err and "Traceback" not in err, err
    assert KEY not in err


def test_turn_settings_map_to_pipeline_options() -> None:
    def settings(**kw: object) -> TurnSettings:
        base = dict(
            mode=RecognitionMode.CONVERSATION, language="en-us", languages=(),
            language_id_mode=None,
            detailed=False, word_timings=False, word_confidence=False, phrases=(),
            phrase_weight=None, profanity=None, initial_silence_timeout=None,
            end_silence_timeout=None, offset_base=0.0, previous_service_tag=None,
        )  # fmt: skip
        return TurnSettings(**{**base, **kw})

    plain = turn_plan(settings())
    assert plain.forced is not None and plain.forced.tag == "en-US" and plain.candidates == ()
    lid = turn_plan(settings(languages=("en-US", "es-MX"), language_id_mode=LidMode.CONTINUOUS))
    assert lid.tags == ("en-US", "es-MX") and lid.mode is LidMode.CONTINUOUS
    assert lid.forced is None and lid.fixed is None
    assert lid.language("es").tag == "es-MX"  # a detection is labelled as the client named it
    one = turn_plan(settings(languages=("de-DE",)))
    assert one.fixed is not None and one.fixed.language.tag == "de-DE"
    assert turn_plan(settings(languages=("de-DE", "fr-FR"))).mode is LidMode.AT_START
    with pytest.raises(ConfigError):
        turn_plan(settings(language="xx-Nowhere"))
    # translation: English in any region is served; any other target is named in the refusal
    assert turn_plan(settings(translate_to=("en", "en-GB", "EN-us"))).forced is not None
    for targets in (("de",), ("en", "zh-Hans"), ("xx-Nowhere",)):
        with pytest.raises(ConfigError, match=re.escape(repr(targets[-1]))):
            turn_plan(settings(translate_to=targets))
    assert [raw_format(f) for f in (WaveFormat(), WaveFormat(8000, 1, 8, WaveEncoding.MULAW))] == [
        "s16le",
        "mulaw",
    ]
    target = RequestOptions(mode=RecognitionMode.DICTATION).to_target()
    assert target.startswith("/speech/recognition/dictation/")


# -- the command ---------------------------------------------------------------------------------
def test_serve_help() -> None:
    from voxflow.cli import main

    assert main(["serve", "--help"]) == 0


@pytest.mark.parametrize("given", ["VOXFLOW_SERVE_KEY", "--key-file"])
def test_serve_command_listens_refuses_wrong_keys_and_stops_on_sigterm(
    tmp_path: Path, given: str
) -> None:
    env, args = dict(os.environ), ["serve", "--port", "0"]
    env.pop("VOXFLOW_SERVE_KEY", None)
    if given == "--key-file":
        (tmp_path / "key").write_text(KEY + "\n")
        args += ["--key-file", str(tmp_path / "key")]
    else:
        env["VOXFLOW_SERVE_KEY"] = KEY
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # the model loads first; pytest-timeout bounds this
        if sys.platform == "linux":  # what `ps` shows: the key is not on the command line
            assert KEY not in Path(f"/proc/{proc.pid}/cmdline").read_text()
        match = re.fullmatch(r"voxflow serve: listening on (ws://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        with pytest.raises(InvalidStatus) as info:
            open_ws(match.group(1), **{"Ocp-Apim-Subscription-Key": "nope"})
        assert info.value.response.status_code == 401
        with pytest.raises(InvalidStatus) as info:  # a key in the query stays out of the log
            open_ws(match.group(1), f"/nowhere?key={KEY}", **{"Ocp-Apim-Subscription-Key": KEY})
        assert info.value.response.status_code == 404
        with open_ws(match.group(1), **{"Ocp-Apim-Subscription-Key": KEY}) as ws:
            ws.send(speech_config_message())
            ws.send("not a USP message")
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1002
        with open_ws(match.group(1), **{"Ocp-Apim-Subscription-Key": KEY}) as ws:
            ws.send(speech_config_message())  # and the client closes (1000)
        api = proc.stdout.readline()  # the OpenAI API, on the same port
        assert api == f"voxflow serve: OpenAI audio API at http{match.group(1)[2:]}/v1\n"
        for key, status in (("nope", 401), (KEY, 200)):
            conn = http.client.HTTPConnection(match.group(1).removeprefix("ws://"), timeout=60)
            conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {key}"})
            assert conn.getresponse().status == status
            conn.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    assert "stopped" in err
    assert KEY not in line + api + out + err
    # One line per refusal (path, HTTP status, reason), connection (number, path, mode) and
    # close (who, code), at the default level.
    path = CONVERSATION.partition("?")[0]
    assert re.search(rf"refused '{path}': 401 a valid subscription key", err), err
    assert "refused '/nowhere': 404 not a speech path" in err, err
    assert f"connection 1 accepted: '{path}' (conversation, en-US)" in err, err
    assert re.search(r"connection 1 closing: 1002 \S", err), err
    assert "connection 1 closed by the server: 1002" in err, err
    assert "connection 2 closed by the client: 1000" in err, err


def test_serve_key_file_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from voxflow.cli import main

    monkeypatch.delenv("VOXFLOW_SERVE_KEY", raising=False)
    empty, two = tmp_path / "empty", tmp_path / "two"
    empty.write_text("\n")
    two.write_text("a\nb\n")
    cases = {
        ("--key-file", str(tmp_path / "gone")): f"{tmp_path / 'gone'}: cannot read the key file: "
                                                "No such file or directory",
        ("--key-file", str(empty)): f"{empty}: a key file holds the key on one line",
        ("--key-file", str(two)): f"{two}: a key file holds the key on one line",
        ("--key", "k", "--key-file", str(two)): "give one key: --key (or VOXFLOW_SERVE_KEY) or "
                                                "--key-file",
    }  # fmt: skip
    for args, message in cases.items():
        assert main(["serve", "--port", "0", *args]) == 1
        assert capsys.readouterr().err == f"voxflow: error: {message}\n"


class _FailingEngine:
    """An engine whose recognition always fails (a stand-in: the point is the server's
    behaviour when a turn fails while its client still streams, not the failure's cause)."""

    name = "failing"

    def __init__(self) -> None:
        from fakes import FakeOptions
        from voxflow.engines.base import Capabilities

        self.options = FakeOptions("failing")
        self.capabilities = Capabilities()

    async def identify(self, clips, candidates):  # type: ignore[no-untyped-def]
        raise VoxflowError("the model fell over")

    async def recognize(self, clips, plan, settings):  # type: ignore[no-untyped-def]
        await asyncio.sleep(2.0)  # long enough for the turn's queue and audio pipe to fill
        raise VoxflowError("the model fell over")

    async def aclose(self) -> None:
        return None


async def test_a_failed_turn_releases_a_feed_that_waits_for_room(weather: Path) -> None:
    """A turn whose recognition fails while its audio pipe is full: the feed that waits for
    room returns (before, it waited for good, holding the session's slot and blocking
    shutdown), and the client is told why."""
    from voxflow.server.turn import TurnRunner
    from voxflow.server.usp import ContextOptions, Turn, TurnSettings

    settings = TurnSettings(
        mode=RecognitionMode.CONVERSATION, language="en-US", languages=(),
        language_id_mode=None, detailed=False, word_timings=False, word_confidence=False,
        phrases=(), phrase_weight=None, profanity=None, initial_silence_timeout=None,
        end_silence_timeout=None, offset_base=0.0, previous_service_tag=None,
    )  # fmt: skip
    turn = Turn(new_request_id(), ContextOptions(), settings, PCM16)
    failures: list[str] = []

    async def send(message: str) -> None:
        return None

    async def fail(code: int, reason: str) -> None:
        failures.append(f"{code} {reason}")

    admission = Admission(max_sessions=1, max_recognitions=1, max_queue_wait=5.0)
    runner = TurnRunner(
        turn, PCM16, plan=turn_plan(settings), engine=_FailingEngine(),  # type: ignore[arg-type]
        options=TranscribeOptions(), send=send, fail=fail, ticket=admission.connect(),
    )  # fmt: skip
    _, pcm = wav_payload(weather)
    frames = [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)] * 40  # more than it holds

    async def stream_frames() -> None:  # as the session feeds a client's audio frames
        for frame in frames:
            await runner.feed(frame)

    runner.start()
    feeding = asyncio.ensure_future(stream_frames())
    await asyncio.wait_for(runner.wait(), 30)
    await asyncio.wait_for(feeding, 5)  # released, not waiting for room
    assert failures and failures[0].startswith("1011 recognition failed: the model fell over")
    await runner.aclose()
    assert admission.recognising == 0  # the failed turn gave its slot back


@pytest.mark.parametrize("rate", [1, 4000])
def test_a_sample_rate_too_low_for_speech_closes_with_1002_at_the_header(
    server: BackgroundServer, rate: int
) -> None:
    """A 1 Hz header made each byte a second of audio to upsample (about 1 GB per frame of
    3,500 bytes, on the event loop); such a turn is refused before any audio is read."""
    header = bytearray(build_wave_header(PCM16))
    header[24:32] = struct.pack("<II", rate, 2 * rate)
    rid = new_request_id()
    with open_ws(server.url) as ws:
        ws.send(speech_config_message())
        ws.send(speech_context_message(rid))
        with contextlib.suppress(ConnectionClosed):
            ws.send(audio_message(rid, bytes(header)))
            ws.send(audio_message(rid, bytes(3500)))
            ws.send(audio_end_message(rid))
        code, reason = close_code(ws)
    assert code == 1002 and f"at {rate} Hz (speech needs 8000" in reason
