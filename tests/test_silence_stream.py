"""Streaming silence detection over files: the same ranges as ``pydub.AudioSegment.from_file``
followed by ``detect_silence``, chunk size never mattering, memory bounded by the window.

Files are written on the fly (WAV at 8/16/24/32 bits with the stdlib ``wave`` module, FLAC and
MP3 with voxflow.export) and, where present, taken from ../shared/corpus/pydub.
"""

from __future__ import annotations

import itertools
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxflow import silence as vs
from voxflow._silence_scan import BATCH_FRAMES
from voxflow.errors import DecodeError, InputError
from voxflow.export import write_audio
from voxflow.silence import SilenceScanner

pydub = pytest.importorskip("pydub", reason="pydub is the oracle for parity (test dependency)")
ps = pytest.importorskip("pydub.silence")
AudioSegment = pydub.AudioSegment
DTYPES = {1: "i1", 2: "<i2", 4: "<i4"}


def speech_like(rng: np.random.Generator, frames: int, channels: int, width: int) -> np.ndarray:
    """Bursts of noise at varied loudness separated by quiet pauses, as int64 values."""
    full = 2.0 ** (8 * width - 1)
    out = np.zeros((frames, channels))
    pos = 0
    while pos < frames:
        talk = int(rng.integers(1, max(2, frames // 4)))
        level = full * 10 ** (rng.uniform(-45, -3) / 20)
        end = min(pos + talk, frames)
        out[pos:end] = rng.normal(0, level, size=(end - pos, channels))
        pos = end + int(rng.integers(0, max(2, frames // 5)))
    return np.clip(np.rint(out), -full, full - 1).astype(np.int64)


def write_wav(path: Path, values: np.ndarray, width: int, rate: int) -> Path:
    """A plain PCM WAV; ``values`` are signed (8-bit is stored unsigned, as WAV wants)."""
    if width == 1:
        data = (values + 128).astype(np.uint8).tobytes()
    elif width == 3:
        data = values.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    else:
        data = values.astype(DTYPES[width]).tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(values.shape[1])
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data)
    return path


def pydub_ranges(path: Path, *params: float) -> tuple[list, list, list]:
    seg = AudioSegment.from_file(str(path))
    return (
        ps.detect_silence(seg, *params),
        ps.detect_nonsilent(seg, *params),
        vs.split_ranges(seg, *params[:2], 100, *params[2:]),
    )


def stream_ranges(path: Path, *params: float, chunk_frames: int | None = None) -> tuple:
    return (
        list(vs.stream_silence(path, *params, chunk_frames=chunk_frames)),
        list(vs.stream_nonsilent(path, *params, chunk_frames=chunk_frames)),
        vs.stream_split_ranges(path, *params[:2], 100, *params[2:], chunk_frames=chunk_frames),
    )


# -- the scanner: any chunking gives pydub's answer ------------------------------------------


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.sampled_from([1, 2, 4]),
    rate=st.sampled_from([8000, 11025, 44100, 7919, 999]),
    channels=st.sampled_from([1, 2]),
    ms=st.integers(0, 300),
    min_len=st.integers(0, 120),
    step=st.integers(1, 25),
    thresh=st.floats(-60, -5),
    seed=st.integers(0, 2**32 - 1),
    batch=st.sampled_from([1, 50, 3000, BATCH_FRAMES]),
)
def test_any_chunking_gives_pydubs_ranges(
    width, rate, channels, ms, min_len, step, thresh, seed, batch
):
    rng = np.random.default_rng(seed)
    values = speech_like(rng, ms * rate // 1000 + int(rng.integers(0, 3)), channels, width)
    samples = values.astype(DTYPES[width])
    seg = AudioSegment(
        data=samples.tobytes(), sample_width=width, frame_rate=rate, channels=channels
    )
    scanner = SilenceScanner(rate, channels, width, min_len, thresh, step, batch_frames=batch)
    got, pos, promises = [], 0, []
    while pos < len(samples):
        size = int(rng.choice([1, 2, 7, 64, 441, 5000]))
        got += scanner.feed(samples[pos : pos + size])
        pos += size
        promises.append((len(got), scanner.pending_from_ms))
    got += scanner.finish()
    assert got == ps.detect_silence(seg, min_len, thresh, step)
    assert scanner.length_ms == len(seg)
    for reported, earliest in promises:  # later silences never start before the promise
        assert all(start >= earliest for start, _ in got[reported:])


def test_memory_holds_one_window_not_the_recording():
    """Ten minutes fed second by second: the sums held stay near min_silence_len."""
    rng = np.random.default_rng(1)
    rate, min_len, step = 16000, 700, 3
    scanner = SilenceScanner(rate, 1, 2, min_len, -30, step)
    held, found = [], []
    for _ in range(600):
        second = speech_like(rng, rate, 1, 2).astype(np.int16)
        found += scanner.feed(second)
        held.append(scanner.buffered_ms)
    found += scanner.finish()
    batch_ms = BATCH_FRAMES * 1000 // rate
    assert max(held) <= min_len + step + batch_ms + 1000 + 2  # window, step, batch, one feed
    assert max(held) < 600_000 // 50
    assert len(found) > 50  # silences are reported as the audio goes, not at the end
    assert all(a[1] < b[0] for a, b in itertools.pairwise(found))


def test_ranges_are_yielded_before_the_end_of_the_file(tmp_path):
    rng = np.random.default_rng(2)
    path = write_wav(tmp_path / "long.wav", speech_like(rng, 16000 * 60, 1, 2), 2, 16000)
    ranges = vs.stream_silence(path, 300, -30, chunk_frames=4000)
    first = next(ranges)
    assert first == ps.detect_silence(AudioSegment.from_file(str(path)), 300, -30)[0]


# -- real files made on the fly --------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "rate", "channels"),
    [(1, 8000, 1), (2, 11025, 2), (3, 44100, 2), (4, 22050, 1), (2, 7919, 1), (3, 48000, 1),
     (1, 16000, 2), (4, 44100, 2)],
)  # fmt: skip
def test_wav_files_match_pydub_from_file(tmp_path, width, rate, channels):
    rng = np.random.default_rng(width * rate + channels)
    values = speech_like(rng, rate * 3 // 2 + 7, channels, width)
    path = write_wav(tmp_path / "clip.wav", values, width, rate)
    for params in [(300, -30.0, 1), (120, -42.5, 7), (1000, -16.0, 1)]:
        expected = pydub_ranges(path, *params)
        assert stream_ranges(path, *params) == expected
        assert stream_ranges(path, *params, chunk_frames=333) == expected


@pytest.mark.parametrize(("fmt", "width"), [("flac", 2), ("flac", 3), ("mp3", 2)])
def test_encoded_files_match_pydub_from_file(tmp_path, fmt, width):
    """pydub decodes these through the ffmpeg program (imageio-ffmpeg's); voxflow through PyAV's
    FFmpeg."""
    rng = np.random.default_rng(width)
    values = speech_like(rng, 44100 * 2, 2, width)
    path = write_audio(tmp_path / f"clip.{fmt}", values.astype(np.int32), 44100, width)
    seg = AudioSegment.from_file(str(path))
    assert seg.sample_width == {2: 2, 3: 4}[width]
    for params in [(250, -35.0, 1), (90, -50.0, 4)]:
        assert stream_ranges(path, *params) == pydub_ranges(path, *params)


def test_bytes_and_paths_give_the_same_ranges(tmp_path):
    rng = np.random.default_rng(3)
    path = write_wav(tmp_path / "clip.wav", speech_like(rng, 32000, 1, 2), 2, 16000)
    expected = list(vs.stream_silence(path, 200, -30))
    assert list(vs.stream_silence(path.read_bytes(), 200, -30)) == expected
    with path.open("rb") as f:
        assert list(vs.stream_silence(f, 200, -30)) == expected
    assert expected == ps.detect_silence(AudioSegment.from_file(str(path)), 200, -30)


# -- bad input -------------------------------------------------------------------------------


def test_missing_and_empty_files_raise_one_line_errors(tmp_path):
    with pytest.raises(InputError, match=r"nothing\.wav"):
        list(vs.stream_silence(tmp_path / "nothing.wav"))
    empty = write_wav(tmp_path / "empty.wav", np.zeros((0, 1), np.int64), 2, 16000)
    with pytest.raises(DecodeError, match=r"empty\.wav") as info:
        list(vs.stream_nonsilent(empty))
    assert "\n" not in str(info.value)
    seg = AudioSegment.from_file(str(empty))  # pydub reads it as zero milliseconds
    assert list(vs.stream_silence(empty, allow_empty=True)) == ps.detect_silence(seg) == []
    assert list(vs.stream_nonsilent(empty, allow_empty=True)) == ps.detect_nonsilent(seg)
    text = tmp_path / "notes.wav"
    text.write_text("not audio at all\n" * 20)
    with pytest.raises(DecodeError, match=r"notes\.wav"):
        list(vs.stream_silence(text))


# -- the shared corpus -----------------------------------------------------------------------

CORPUS_FILES = [
    "test1.wav", "test1-8bit.wav", "test1-24bit.wav", "test-dc_offset.wav", "test4.wav",
    "test1.mp3", "party.mp3", "test5.webm", "wrong_extension.aac", "bach.ogg",
]  # fmt: skip


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_corpus_files_stream_like_pydub_from_file(corpus, name):
    path = corpus / "pydub" / name
    for params in [(500, -20.0, 1), (300, -35.0, 10)]:
        assert stream_ranges(path, *params) == pydub_ranges(path, *params)


def test_corpus_empty_wav_is_an_error_or_zero_length(corpus):
    path = corpus / "pydub" / "test1_empty.wav"
    with pytest.raises(DecodeError, match=r"test1_empty\.wav"):
        list(vs.stream_silence(path))
    seg = AudioSegment.from_file(str(path))
    assert list(vs.stream_nonsilent(path, allow_empty=True)) == ps.detect_nonsilent(seg)
