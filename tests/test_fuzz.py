"""Property and fuzz tests: bad bytes and odd values meet only voxflow's own errors.

What other tests already cover is left to them (test_bad_input.py: each kind of bad file;
test_usp.py: single frames, mutated captured frames, valid messages in any order;
test_formats.py: layout invariants and round trips of strings; test_silence_parity.py:
valid parameters against pydub). Here: mutated real media through the decoder, arbitrary
parameters through the silence API, transcripts through the writers into real files and back,
garbage frames inside a live protocol session, and fuzzed files through the whole command.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from speech import read_wav, write_wav
from voxflow.audio import open_audio
from voxflow.errors import ConfigError, OutputError, ProtocolError, VoxflowError
from voxflow.formats import cues, parse_srt, parse_vtt, render, transcript_from_json
from voxflow.outputs import write_atomic
from voxflow.transcript import Segment, Transcript, Word

ROOT = Path(__file__).resolve().parent.parent
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # fmt: skip
pytestmark = pytest.mark.timeout(120)  # a hang fails the test instead of stalling the suite

REAL = ["tone.wav", "tone.mp3", "tone.flac", "tone.opus", "tone.m4a", "tone.webm", "tone.ogg",
        "tone.mka", "video.mp4", "tone_mulaw.wav", "stereo_f32.wav", "stereo_s24.wav"]  # fmt: skip
MAGIC = [b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC\x00\x00\x00\x22", b"ID3\x03\x00\x00",
         b"OggS\x00\x02", b"\x1aE\xdf\xa3", b"\x00\x00\x00\x20ftypisom", b"\xff\xfb\x90\x64",
         b"#!AMR\n", b".snd\x00\x00\x00\x18"]  # fmt: skip


def decode_all(data: bytes) -> int:
    """Decode every chunk; check they are contiguous and shaped; return the frame count."""
    at = 0
    with open_audio(data) as stream:
        for chunk in stream:
            assert chunk.start == at and chunk.samples.ndim == 2 and chunk.samples.shape[1] == 1
            at = chunk.end
    return at


@FUZZ
@given(st.sampled_from(MAGIC), st.binary(max_size=3000))
def test_decoder_on_arbitrary_bytes_raises_only_voxflow_errors(magic: bytes, data: bytes) -> None:
    try:
        decode_all(magic + data)
    except VoxflowError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("<bytes>: ")


@FUZZ
@given(
    st.sampled_from(REAL),
    st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=8),
    st.booleans(),
    st.floats(0, 1),
)
def test_decoder_on_mutated_real_files_raises_only_voxflow_errors(
    media: Path, name: str, flips: list[tuple[float, int]], near_start: bool, cut: float
) -> None:
    """Bytes overwritten (mostly in the headers, where parsers live) and the file cut short."""
    data = bytearray((media / name).read_bytes())
    for where, value in flips:
        span = min(len(data), 512) if near_start else len(data)
        data[int(where * (span - 1))] = value
    data = data[: max(1, int(len(data) * (0.5 + cut / 2)))] if cut < 0.5 else data
    try:
        decode_all(bytes(data))
    except VoxflowError as exc:
        assert "\n" not in str(exc)


# --- the silence API: arbitrary parameters ----------------------------------------------------

pydub = pytest.importorskip("pydub", reason="pydub is the oracle for silence parity")
import pydub.silence as ps  # noqa: E402

import voxflow.silence as vs  # noqa: E402

numbers = (st.integers(-10, 400) | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True)
           | st.booleans() | st.sampled_from([0.0, 1.0, 2.5, -0.0, 1e-300]))  # fmt: skip


def segment(seed: int, width: int, rate: int, ms: int) -> pydub.AudioSegment:
    rng = np.random.default_rng(seed)
    frames = rate * ms // 1000
    full = 2 ** (8 * width - 1)
    loud = rng.integers(-full // 4, full // 4, frames) * (rng.random(frames) < 0.5)
    dtype = {1: "i1", 2: "<i2", 4: "<i4"}[width]
    return pydub.AudioSegment(data=loud.astype(dtype).tobytes(), sample_width=width,
                              frame_rate=rate, channels=1)  # fmt: skip


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 2, 4]), st.sampled_from([8000, 1000, 44100]),
       st.integers(0, 150), st.integers(0, 200) | st.integers(0, 200) | numbers,
       st.floats(-100, 10) | st.floats(-100, 10) | numbers,
       st.integers(1, 30) | st.integers(1, 30) | numbers)  # fmt: skip
@example(0, 2, 8000, 100, -1, -16, 1).via("negative length: pydub answers, voxflow refuses")
@example(0, 2, 8000, 100, 50, float("nan"), 1).via("NaN threshold")
@example(0, 2, 8000, 100, 50, -16, 3.0).via("a whole float step")
def test_silence_api_on_any_parameters_matches_pydub_or_says_why_not(
    seed: int, width: int, rate: int, ms: int, min_len: object, thresh: object, step: object
) -> None:
    seg = segment(seed, width, rate, ms)
    try:
        ours = vs.detect_silence(seg, min_len, thresh, step)  # type: ignore[arg-type]
    except ConfigError as exc:
        assert "\n" not in str(exc)
        event("refused with a ConfigError")
        return
    try:
        theirs = ps.detect_silence(seg, min_len, thresh, step)
    except Exception:  # pydub fails where voxflow takes whole floats: nothing to compare
        event("only voxflow answers")
        return
    event("compared with pydub")
    assert ours == theirs


@pytest.mark.parametrize(("min_len", "thresh"), [(float("inf"), -16), (1000, 1e308)])
def test_silence_api_overflowing_parameters(min_len: float, thresh: float) -> None:
    with pytest.raises(ConfigError):
        vs.detect_silence(segment(0, 2, 8000, 100), min_len, thresh, 1)  # type: ignore[arg-type]


# --- writers: any transcript into real files and back ------------------------------------------

pieces = st.characters(codec="utf-8") | st.sampled_from(
    ["-->", "\r\n", "<b>", "&amp;", "\u2028", "\ufeff", "\udcff", "1\n00:00:01,000 --> x"])
texts = st.lists(pieces, max_size=30).map("".join)
times = st.floats(-5, 1e5, allow_nan=False) | st.sampled_from([0.0, 0.0005, 59.9995, 3599.9999])
words = st.builds(Word, times, times, texts, st.none() | st.floats(0, 1))
segments = st.builds(Segment, times, times, texts, st.none() | st.sampled_from(["en", "es-MX"]),
                     st.none() | st.floats(0, 1), st.lists(words, max_size=4).map(tuple))
transcripts = st.builds(
    Transcript, texts, st.floats(0, 1e5), st.lists(segments, max_size=6).map(tuple),
    st.none() | st.just("en"),
    st.dictionaries(st.text(max_size=8).filter(lambda k: k not in
                    ("source", "duration", "language", "segments")), st.integers(), max_size=2),
)  # fmt: skip


@settings(FUZZ, max_examples=60)  # each example writes and fsyncs four real files
@given(transcripts)
def test_any_transcript_is_written_to_files_that_read_back(
    tmp_path_factory: pytest.TempPathFactory, t: Transcript
) -> None:
    out = tmp_path_factory.mktemp("w")
    written = {}
    for fmt in ("txt", "json", "srt", "vtt"):
        target = out / f"t.{fmt}"
        try:
            write_atomic(target, render(t, fmt))
        except OutputError as exc:  # only text that UTF-8 cannot hold is refused
            assert "cannot be written as UTF-8" in str(exc) and "\n" not in str(exc)
            assert not target.exists()
            continue
        written[fmt] = target.read_bytes().decode("utf-8")
    if "json" in written:
        back = transcript_from_json(written["json"])
        assert [s.text for s in back.segments] == [s.text for s in t.segments]
        assert back.extra == t.extra
    expected = len(cues(t))
    if "srt" in written:
        assert len(parse_srt(written["srt"])) == expected
    if "vtt" in written:
        assert len(parse_vtt(written["vtt"])) == expected
    if "txt" in written:
        assert len(written["txt"].splitlines()) <= len(t.segments)


# --- the protocol codec: garbage inside a live session ------------------------------------------

from voxflow.server.usp import (  # noqa: E402
    Connection,
    ContextOptions,
    WaveFormat,
    audio_header_message,
    encode_binary_frame,
    encode_text_frame,
    speech_config_message,
    speech_context_message,
)

RID = "0123456789abcdef0123456789abcdef"
paths = st.sampled_from(["audio", "speech.config", "speech.context", "telemetry", "Audio",
                         "speech.event", ""]) | st.text(max_size=12)  # fmt: skip
header_values = st.sampled_from([RID, "r2", "", "audio/x-wav", "application/json"]) | st.text(
    max_size=20)
headers = st.lists(st.tuples(st.sampled_from(["Path", "X-RequestId", "Content-Type",
                                              "X-Timestamp", "path"]), header_values),
                   max_size=4)  # fmt: skip
bodies = st.binary(max_size=200) | st.sampled_from([b"", b"RIFF", b"{}", b'{"context":{}}'])


@st.composite
def frames(draw: st.DrawFn) -> str | bytes:
    """Frames that parse as frames, with any headers and bodies, or raw garbage."""
    kind = draw(st.sampled_from(["text", "binary", "raw"]))
    pairs = [("Path", draw(paths)), *draw(headers)]
    body = draw(bodies)
    try:
        if kind == "text":
            return encode_text_frame(pairs, body.decode("utf-8", "replace"))
        if kind == "binary":
            return encode_binary_frame(pairs, body)
    except (ValueError, UnicodeError):
        pass
    return draw(st.binary(max_size=200) | st.text(max_size=200))


@FUZZ
@given(st.integers(0, 3), st.lists(frames(), min_size=1, max_size=10))
def test_garbage_inside_a_live_session_raises_only_protocol_errors(
    opened: int, messages: list[str | bytes]
) -> None:
    conn = Connection("/speech/recognition/conversation/cognitiveservices/v1?language=en-US")
    prefix = [speech_config_message(), speech_context_message(RID, ContextOptions()),
              audio_header_message(RID, WaveFormat())][:opened]  # fmt: skip
    for message in [*prefix, *messages]:
        try:
            events = conn.receive(message)
        except ProtocolError as exc:
            assert "\n" not in str(exc)
            continue
        assert isinstance(events, list)


# --- the whole command on fuzzed files -----------------------------------------------------------


def fuzzed_batch(media: Path, root: Path) -> list[Path]:
    """Random bytes, mutated real files, impossible samples and a mutated speech clip."""
    rng = np.random.default_rng(11)
    root.mkdir()
    made = []
    for i, size in enumerate((1, 100, 3000, 40_000)):
        made.append(root / f"random{i}.{['wav', 'mp3', 'm4a', 'ogg'][i]}")
        made[-1].write_bytes(rng.bytes(size))
    for i, name in enumerate(["tone.wav", "tone.mp3", "tone.m4a", "tone.flac", "tone.webm",
                              "video.mp4", "stereo_f32.wav"]):  # fmt: skip
        data = bytearray((media / name).read_bytes())
        for _ in range(6):
            data[int(rng.integers(0, min(len(data), 300)))] = int(rng.integers(0, 256))
        if i % 2:
            data = data[: len(data) * 2 // 3]
        made.append(root / f"mutated{i}-{name}")
        made[-1].write_bytes(bytes(data))
    impossible = np.full(16000, np.nan, dtype="<f4")
    impossible[::3], impossible[1::3] = np.inf, -1e30
    import media as media_files

    made.append(media_files.write_raw_wav(root / "nan-inf.wav", impossible.tobytes(), 16000, 1,
                                          3, 32))  # fmt: skip
    speech = read_wav(ROOT / "samples" / "austen-0870.wav")[16000:36000]
    speech[rng.integers(0, len(speech), 500)] = rng.uniform(-1, 1, 500)
    made.append(write_wav(root / "clicky-speech.wav", speech))
    return made


@pytest.mark.timeout(300)
def test_fuzzed_files_through_the_whole_command(media: Path, tmp_path: Path) -> None:
    inputs = fuzzed_batch(media, tmp_path / "in")
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "voxflow", "transcribe", str(tmp_path / "in"), "-o", str(out),
         "-f", "json,srt", "--beam-size", "1", "--timeout", "90", "--max-duration", "60", "-q"],
        capture_output=True, text=True, timeout=280,
    )  # fmt: skip
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    failed = {}
    if done.returncode == 1:
        total, count = len(inputs), len(lines) - 1
        assert lines[0] == f"voxflow: {total - count} of {total} files transcribed; {count} failed:"
        for line in lines[1:]:
            name, _, reason = line.strip().partition(": ")
            assert line.startswith("  ") and reason and Path(name) in inputs
            failed[Path(name)] = reason
    for path in inputs:
        if path in failed:
            assert not (out / f"{path.stem}.json").exists()
            continue
        data = json.loads((out / f"{path.stem}.json").read_text())  # whole and valid
        assert data["source"] == str(path) and math.isfinite(data["duration"])
        parse_srt((out / f"{path.stem}.srt").read_text())
    assert failed, "random bytes must fail somewhere"
    assert tmp_path / "in" / "random0.wav" in failed
