"""voxflow.silence against pydub 0.25.1 itself: same arguments, same results, to the millisecond.

Signals are blocks of noise, DC and silence at levels around the threshold, at 8/16/24/32-bit,
odd and usual rates, mono to 3 channels; parameters include windows longer than the audio and
seek steps that do not divide it. pydub is the oracle; its O(n * window) loop is why the clips
stay short.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voxflow import silence as vs
from voxflow._silence_core import threshold_amplitude
from voxflow.audio import Audio
from voxflow.errors import ConfigError

pydub = pytest.importorskip("pydub", reason="pydub is the oracle for parity (test dependency)")
ps = pytest.importorskip("pydub.silence")
AudioSegment = pydub.AudioSegment

RATES = [8000, 11025, 16000, 22050, 44100, 48000, 7919, 1000, 999, 500]
DTYPES = {1: "i1", 2: "<i2", 4: "<i4"}


def examples(count: int) -> settings:
    """Hypothesis settings for pydub-bound tests: no deadline (pydub is slow), ``count`` runs."""
    return settings(max_examples=count, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def noise_blocks(
    rng: np.random.Generator, frames: int, channels: int, full: float, thresh_db: float
) -> np.ndarray:
    """Blocks of silence, full scale, DC or noise at levels within ±8 dB of the threshold."""
    out = np.zeros((frames, channels))
    pos = 0
    level_at_threshold = 10 ** (thresh_db / 20) * full
    while pos < frames:
        size = int(rng.integers(1, max(2, frames // 3)))
        kind = rng.integers(0, 6)
        level = (
            0.0
            if kind == 0
            else full
            if kind == 1
            else level_at_threshold * 10 ** (rng.uniform(-8, 8) / 20)
        )
        shape = (min(size, frames - pos), channels)
        if kind == 2:
            block = np.full(shape, level * rng.choice([-1.0, 1.0]))
        else:
            block = rng.normal(0.0, level, size=shape)
        out[pos : pos + len(block)] = block
        pos += len(block)
    return np.clip(np.rint(out), -full, full - 1).astype(np.int64)


@st.composite
def clips(draw: st.DrawFn, widths: tuple[int, ...] = (1, 2, 4), max_ms: int = 320):
    """(pydub segment, threshold dBFS) with blocks of sound around that threshold."""
    width = draw(st.sampled_from(widths))
    rate = draw(st.sampled_from(RATES))
    channels = draw(st.sampled_from([1, 1, 2, 2, 3]))
    ms = draw(st.one_of(st.integers(0, 12), st.integers(max_ms // 4, max_ms)))
    frames = ms * rate // 1000 + draw(st.integers(0, 3))
    thresh = draw(st.floats(-70, 0, allow_nan=False))
    seed = draw(st.integers(0, 2**32 - 1))
    full = float(2 ** (8 * width - 1))
    data = noise_blocks(np.random.default_rng(seed), frames, channels, full, thresh)
    raw = data.astype(DTYPES[width]).tobytes()
    seg = AudioSegment(data=raw, sample_width=width, frame_rate=rate, channels=channels)
    return seg, thresh


@st.composite
def window_params(draw: st.DrawFn, length_ms: int) -> tuple[int, int]:
    """min_silence_len and seek_step: tiny, huge, longer than the audio, non-dividing steps."""
    min_len = draw(
        st.one_of(
            st.integers(0, 12),
            st.integers(0, length_ms + 30),
            st.sampled_from([1000, length_ms, max(length_ms - 1, 0)]),
        )
    )
    step = draw(st.one_of(st.integers(1, 12), st.integers(1, length_ms + 40), st.just(1)))
    return min_len, step


def raws(chunks: list) -> list[bytes]:
    return [c.raw_data for c in chunks]


# -- pydub's own vectors (corpus) ------------------------------------------------------------


def test_pydub_test_vectors(corpus):
    seg = AudioSegment.from_file(corpus / "pydub" / "test1.wav")
    assert vs.detect_silence(seg, min_silence_len=500, silence_thresh=-20) == [
        [0, 775], [3141, 4033], [5516, 6051]
    ]  # fmt: skip
    assert vs.detect_silence(seg, min_silence_len=500, silence_thresh=-20, seek_step=10) == [
        [0, 770], [3150, 4030], [5520, 6050]
    ]  # fmt: skip
    assert len(vs.split_on_silence(seg, min_silence_len=500, silence_thresh=-20)) == 3


@pytest.mark.parametrize(
    "name",
    ["test1.wav", "test1-8bit.wav", "test1-24bit.wav", "test-dc_offset.wav", "test4.wav",
     "party.mp3", "test5.webm"],
)  # fmt: skip
def test_corpus_files_match_pydub(corpus, name):
    seg = AudioSegment.from_file(corpus / "pydub" / name)
    for min_len, thresh, step in [(500, -20, 1), (300, -35, 7), (1000, -16, 1), (150, -50, 64)]:
        expected = ps.detect_silence(seg, min_len, thresh, step)
        assert vs.detect_silence(seg, min_len, thresh, step) == expected
        assert vs.detect_nonsilent(seg, min_len, thresh, step) == ps.detect_nonsilent(
            seg, min_len, thresh, step
        )
    assert raws(vs.split_on_silence(seg, 400, -30, 150)) == raws(
        ps.split_on_silence(seg, 400, -30, 150)
    )
    for thresh in (-50.0, -30.0, -20.0):
        assert vs.detect_leading_silence(seg, thresh) == ps.detect_leading_silence(seg, thresh)


# -- generated inputs ------------------------------------------------------------------------


@examples(300)
@given(st.data())
def test_detect_silence_and_nonsilent_match_pydub(data):
    seg, thresh = data.draw(clips())
    min_len, step = data.draw(window_params(len(seg)))
    assert vs.detect_silence(seg, min_len, thresh, step) == ps.detect_silence(
        seg, min_len, thresh, step
    )
    assert vs.detect_nonsilent(seg, min_len, thresh, step) == ps.detect_nonsilent(
        seg, min_len, thresh, step
    )


@examples(100)
@given(st.data())
def test_split_on_silence_matches_pydub(data):
    seg, thresh = data.draw(clips())
    min_len, step = data.draw(window_params(len(seg)))
    keep = data.draw(st.one_of(st.integers(0, 150), st.booleans()))
    expected = ps.split_on_silence(seg, min_len, thresh, keep, step)
    assert raws(vs.split_on_silence(seg, min_len, thresh, keep, step)) == raws(expected)
    timed = vs.split_on_silence_with_timings(seg, min_len, thresh, keep, step)
    assert [c.raw_data for _, _, c in timed] == raws(expected)
    for start, end, chunk in timed:  # the timings cut the same audio out of the original
        assert start >= 0 and end <= len(seg)
        assert seg[start:end].raw_data == chunk.raw_data
    assert vs.split_ranges(seg, min_len, thresh, keep, step) == [(a, b) for a, b, _ in timed]


@examples(120)
@given(clips(), st.integers(1, 60), st.floats(-90, 5, allow_nan=False))
def test_detect_leading_silence_matches_pydub(clip, chunk_size, threshold):
    seg, thresh = clip
    for t in (thresh, threshold):
        assert vs.detect_leading_silence(seg, t, chunk_size) == ps.detect_leading_silence(
            seg, t, chunk_size
        )


@examples(60)
@given(st.data())
def test_voxflow_audio_matches_pydub_on_the_same_samples(data):
    """Audio of every width (24-bit in int32, float) measures as its ``to_pydub()`` does."""
    width = data.draw(st.sampled_from([0, 1, 2, 3, 4]))
    rate = data.draw(st.sampled_from(RATES))
    channels = data.draw(st.sampled_from([1, 2]))
    frames = data.draw(st.integers(width == 3, rate // 4))  # pydub cannot build empty 24-bit
    thresh = data.draw(st.floats(-70, -1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    full = 2.0 ** (8 * (width or 2) - 1)
    ints = noise_blocks(rng, frames, channels, full, thresh)
    if width == 0:
        audio = Audio((ints / full).astype(np.float32), rate, 0)
    else:
        audio = Audio(ints.astype({1: np.int8, 2: np.int16}.get(width, np.int32)), rate, width)
    seg = audio.to_pydub()
    min_len, step = data.draw(window_params(len(seg)))
    assert vs.detect_silence(audio, min_len, thresh, step) == ps.detect_silence(
        seg, min_len, thresh, step
    )
    expected = ps.split_on_silence(seg, min_len, thresh, 60, step)
    chunks = vs.split_on_silence(audio, min_len, thresh, 60, step)
    assert all(isinstance(c, Audio) for c in chunks)
    assert [c.to_pydub().raw_data if c.frames else b"" for c in chunks] == raws(expected)
    assert vs.detect_leading_silence(audio, thresh, 7) == ps.detect_leading_silence(seg, thresh, 7)


# -- audioop's double-precision sum ----------------------------------------------------------


def _exact_rms(values: np.ndarray) -> int:
    return math.isqrt(sum(int(v) * int(v) for v in values.tolist()) // len(values))


@examples(80)
@given(
    st.floats(-30, -1),
    st.sampled_from([1000, 2000, 8000]),
    st.integers(20, 150),
    st.integers(1, 12),
    st.integers(0, 2**32 - 1),
)
def test_32bit_windows_at_the_threshold_match_audioops_rounding(thresh, rate, ms, min_len, seed):
    """Samples of ±K, K the first RMS above the threshold: only audioop's rounded double sum
    tells silent from not, and the exact integer RMS often disagrees with it."""
    rng = np.random.default_rng(seed)
    k = math.floor(threshold_amplitude(thresh, 4)) + 1
    n = ms * rate // 1000
    v = (k + rng.integers(-2, 3, size=n)) * rng.choice([-1, 1], size=n)
    v[rng.random(n) < 0.02] = 0
    seg = AudioSegment(data=v.astype("<i4").tobytes(), sample_width=4, frame_rate=rate, channels=1)
    assert vs.detect_silence(seg, min_len, thresh, 1) == ps.detect_silence(seg, min_len, thresh, 1)


def test_rounding_case_exists_where_exact_integers_would_be_wrong():
    """Guard for the test above: some ±K windows have an exact RMS different from audioop's,
    and detect_silence follows audioop there."""
    audioop = pytest.importorskip("audioop", reason="audioop (or audioop-lts) ships with pydub")
    rng = np.random.default_rng(7)
    for _ in range(2000):
        k = int(rng.integers(2**27, 2**31 - 4))
        v = (k + rng.integers(-2, 3, size=int(rng.integers(2, 64)))).astype(np.int64)
        if audioop.rms(v.astype("<i4").tobytes(), 4) != _exact_rms(v):
            break
    else:
        pytest.fail("no window found where audioop's double sum differs from the exact sum")
    rms = audioop.rms(v.astype("<i4").tobytes(), 4)
    # a threshold between the two answers: silent by audioop, not silent by exact arithmetic
    full = 2.0**31
    thresh = 20 * math.log10((min(rms, _exact_rms(v)) + 0.5) / full)
    seg = AudioSegment(data=v.astype("<i4").tobytes(), sample_width=4, frame_rate=1000, channels=1)
    expected = ps.detect_silence(seg, len(v), thresh, 1)
    assert vs.detect_silence(seg, len(v), thresh, 1) == expected
    assert expected == ([[0, len(v)]] if rms < _exact_rms(v) else [])


@pytest.mark.parametrize("k", [32767, 32765])
def test_16bit_windows_past_2_to_the_53_follow_audioops_rounding(k):
    """A 100 s stereo window of ±k sums to more than 2**53: audioop's double sum rounds below
    the exact n*k*k, its RMS drops to k-1 and pydub calls the window silent at k-0.5."""
    rng = np.random.default_rng(k)
    values = k * rng.choice(np.array([-1, 1], dtype="<i2"), size=(48000 * 101, 2))
    seg = AudioSegment(data=values.tobytes(), sample_width=2, frame_rate=48000, channels=2)
    thresh = 20 * math.log10((k - 0.5) / 32768)  # exact RMS k: not silent by exact arithmetic
    expected = ps.detect_silence(seg, 100_000, thresh, 500)
    assert vs.detect_silence(seg, 100_000, thresh, 500) == expected
    if k == 32767:
        assert expected == [[0, 101_000]]


# -- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [2, 4])
def test_long_input_processed_in_pieces_matches_pydub(width):
    """Over a million frames: the scanner works through it in pieces of 2**20 frames."""
    rng = np.random.default_rng(width)
    full = float(2 ** (8 * width - 1))
    values = np.concatenate([noise_blocks(rng, 44100 * 2, 2, full, -35.0) for _ in range(13)])
    seg = AudioSegment(
        data=values.astype(DTYPES[width]).tobytes(),
        sample_width=width,
        frame_rate=44100,
        channels=2,
    )
    for min_len, step in [(1000, 50), (333, 41)]:
        expected = ps.detect_silence(seg, min_len, -35, step)
        assert len(expected) > 3
        assert vs.detect_silence(seg, min_len, -35, step) == expected


def test_windows_longer_than_the_audio_find_nothing_and_everything_is_nonsilent():
    seg = AudioSegment.silent(duration=300, frame_rate=8000)
    assert vs.detect_silence(seg, 301) == ps.detect_silence(seg, 301) == []
    assert vs.detect_nonsilent(seg, 301) == ps.detect_nonsilent(seg, 301) == [[0, 300]]
    assert vs.detect_silence(seg, 300) == [[0, 300]]
    assert vs.detect_nonsilent(seg, 300) == ps.detect_nonsilent(seg, 300) == []


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"min_silence_len": -1}, "min_silence_len"),
        ({"seek_step": 0}, "seek_step"),
        ({"seek_step": 2.5}, "whole milliseconds"),
    ],
)
def test_invalid_parameters_raise_config_error(kwargs, fragment):
    seg = AudioSegment.silent(duration=50)
    with pytest.raises(ConfigError, match=fragment):
        vs.detect_silence(seg, **kwargs)


def test_leading_silence_needs_a_positive_chunk_and_a_known_input_type():
    with pytest.raises(ConfigError, match="chunk_size"):
        vs.detect_leading_silence(AudioSegment.silent(duration=50), chunk_size=0)
    with pytest.raises(ConfigError, match="AudioSegment or voxflow Audio"):
        vs.detect_silence(b"\x00\x01")
