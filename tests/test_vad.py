"""Speech detection: the Silero stream against whole-recording runs, regions on real and
synthetic speech, the hysteresis rules, and the silence detector against pydub itself."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speech import RATE, read_wav, speech_with_pauses
from voxflow.errors import ConfigError
from voxflow.segments import SegmentOptions, SegmentPlanner, speech_segments
from voxflow.vad import (
    WINDOW,
    Hysteresis,
    LevelRescue,
    Region,
    SilenceDetector,
    SilenceOptions,
    SileroDetector,
    SileroStream,
    VadOptions,
    as_mono_float32,
    make_detector,
    silero_session,
    speech_probabilities,
    speech_regions,
)

THREE = ["The weather is lovely today.", "I would like a cup of tea.", "Seven hundred and twelve."]


@pytest.fixture(scope="module")
def three_sentences(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """espeak-ng speech: three sentences, 1.5 s of digital silence between them."""
    return speech_with_pauses(tmp_path_factory.mktemp("three"), THREE, pause=1.5)


def feed_in_pieces(stream: SileroStream, audio: np.ndarray, seed: int) -> np.ndarray:
    """Feed ``audio`` in random chunk sizes (1 sample to 1.2 s) and flush."""
    rng = np.random.default_rng(seed)
    out, at = [], 0
    while at < len(audio):
        n = int(rng.choice([1, 63, 511, 512, 513, int(rng.integers(1, 20_000))]))
        out.append(stream.feed(audio[at : at + n]))
        at += n
    return np.concatenate([*out, stream.flush()])


def check_stream_matches_whole(audio: np.ndarray) -> None:
    whole = speech_probabilities(audio)
    assert len(whole) == -(-len(audio) // WINDOW)
    for seed, batch in ((1, 1), (2, 32), (3, 1000)):  # model calls of any size
        np.testing.assert_array_equal(feed_in_pieces(SileroStream(None, batch), audio, seed), whole)
    # faster-whisper's own whole-array batching of the same model is an independent oracle,
    # except for the last window: it zeroes that window's last 64 samples in place (its
    # ``context[-1] = 0`` writes through a view of the input), so it judges slightly less audio.
    from faster_whisper.vad import get_vad_model

    padded = np.pad(audio, (0, WINDOW - len(audio) % WINDOW))
    theirs = np.asarray(get_vad_model()(padded)).reshape(-1)[: len(whole)]
    np.testing.assert_allclose(whole[:-1], theirs[:-1], atol=1e-6)
    assert whole.max() > 0.9 and whole.min() < 0.2  # it heard speech and pauses


def test_stream_equals_whole_recording_on_librivox(corpus: Path) -> None:
    clips = sorted((corpus / "librivox").glob("*.wav"))
    check_stream_matches_whole(np.concatenate([read_wav(p) for p in clips[:3]]))


def test_stream_equals_whole_recording_on_synthetic_speech(three_sentences: tuple) -> None:
    check_stream_matches_whole(read_wav(three_sentences[0]))


def test_one_session_is_shared_by_concurrent_streams(three_sentences: tuple) -> None:
    audio = read_wav(three_sentences[0])
    expected = speech_probabilities(audio)
    results: list[np.ndarray] = []

    def work(seed: int) -> None:
        results.append(feed_in_pieces(SileroStream(), audio, seed))

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert silero_session() is silero_session()
    assert len(results) == 3
    for r in results:
        np.testing.assert_array_equal(r, expected)


def test_three_sentences_give_three_regions_near_the_truth(three_sentences: tuple) -> None:
    from voxflow.audio import open_audio  # the real decoder hands Chunk objects

    path, truth = three_sentences
    with open_audio(path) as stream:
        regions = list(speech_regions(stream))
    assert len(regions) == 3
    for region, (start, end) in zip(regions, truth, strict=True):
        assert abs(region.start / RATE - start) < 0.3
        assert abs(region.end / RATE - end) < 0.3
    segments = list(speech_segments([read_wav(path)]))  # pauses > merge_gap: kept apart
    assert len(segments) == 3


def test_speech_cut_off_by_the_end_of_the_file_ends_with_it(three_sentences: tuple) -> None:
    path, truth = three_sentences
    audio = read_wav(path)
    end = round((truth[2][0] + 0.6) * RATE) + 100  # mid-sentence, not on a window boundary
    assert end % WINDOW
    regions = list(speech_regions([audio[:end]]))
    assert len(regions) == 3 and regions[-1].end == end
    segments = list(speech_segments([audio[:end]]))
    assert (
        segments[-1].end_sample == end
        and len(segments[-1].samples) == end - segments[-1].start_sample
    )


@pytest.mark.parametrize("detector", ["silero", "silence"])
def test_digital_silence_has_no_speech(detector: str) -> None:
    silence = np.zeros(10 * RATE, dtype=np.float32)
    chunks = [silence[i : i + 7000] for i in range(0, len(silence), 7000)]
    assert list(speech_segments(chunks, detector=detector)) == []  # type: ignore[arg-type]


def test_white_noise_is_not_speech() -> None:
    noise = np.random.default_rng(7).normal(0.0, 0.1, 10 * RATE).astype(np.float32)
    assert list(speech_regions([noise])) == []
    assert list(speech_segments([noise[: 5 * RATE], noise[5 * RATE :]])) == []


# --- hysteresis ---------------------------------------------------------------------------------


def regions_of(probs: list[float], options: VadOptions, splits: list[int] | None = None) -> list:
    machine = Hysteresis(options)
    out, at = [], 0
    for n in splits or [len(probs)]:
        out += machine.push(probs[at : at + n])
        at += n
    out += machine.push(probs[at:])
    return out + machine.finish(len(probs) * WINDOW)


def test_hysteresis_rules() -> None:
    o = VadOptions(min_silence_duration_ms=200, min_speech_duration_ms=100, speech_pad_ms=0)
    # 200 ms = 6.25 windows of 32 ms: a dip of 6 windows does not end speech, 7 windows do
    speech, dip, gap = [0.9] * 10, [0.1] * 6, [0.1] * 7
    assert regions_of(speech + dip + speech + gap, o) == [Region(0, 26 * WINDOW)]
    assert regions_of(speech + gap + speech + gap, o) == [
        Region(0, 10 * WINDOW),
        Region(17 * WINDOW, 27 * WINDOW),
    ]
    # between the thresholds speech goes on, silence goes on
    assert regions_of([0.9] * 4 + [0.4] * 20 + [0.0] * 8, o) == [Region(0, 24 * WINDOW)]
    assert regions_of([0.0] * 4 + [0.4] * 20, o) == []
    # a 64 ms click is dropped, a 128 ms word is kept
    assert regions_of([0.9] * 2 + [0.0] * 10, o) == []
    assert regions_of([0.9] * 4 + [0.0] * 10, o) == [Region(0, 4 * WINDOW)]
    # speech still going at the end of the stream ends with it
    assert regions_of([0.0] * 3 + [0.9] * 5, o) == [Region(3 * WINDOW, 8 * WINDOW)]


def test_padding_never_reaches_into_the_previous_region() -> None:
    o = VadOptions(min_silence_duration_ms=100, speech_pad_ms=100)
    probs = [0.9] * 5 + [0.0] * 4 + [0.9] * 5 + [0.0] * 10
    first, second = regions_of(probs, o)
    assert first == Region(0, 5 * WINDOW + 1600)
    assert second.start == first.end and second.end == 14 * WINDOW + 1600


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), max_size=400),
    st.lists(st.integers(0, 50), max_size=10),
    st.integers(0, 500),
    st.integers(0, 40),
)
def test_hysteresis_streams_and_covers_all_confident_speech(
    probs: list[float], splits: list[int], min_silence: int, pad: int
) -> None:
    o = VadOptions(
        min_silence_duration_ms=max(min_silence, pad), speech_pad_ms=pad, min_speech_duration_ms=0
    )
    regions = regions_of(probs, o, splits)
    assert regions == regions_of(probs, o)
    total = len(probs) * WINDOW
    for a, b in itertools.pairwise(regions):
        assert a.end <= b.start
    covered = np.zeros(total, dtype=bool)
    for r in regions:
        assert 0 <= r.start < r.end <= total
        covered[r.start : r.end] = True
    for i, p in enumerate(probs):
        if p >= o.threshold:
            assert covered[i * WINDOW : (i + 1) * WINDOW].all()


# --- silence detector ---------------------------------------------------------------------------


def test_silence_detector_equals_pydub(three_sentences: tuple) -> None:
    from pydub import AudioSegment
    from pydub.silence import detect_nonsilent

    path = three_sentences[0]
    audio = read_wav(path)
    for min_len, thresh in [(500, -40.0), (300, -30.0), (1000, -50.0)]:
        expected = detect_nonsilent(AudioSegment.from_wav(path), min_len, thresh)
        opts = SilenceOptions(min_silence_len=min_len, silence_thresh=thresh)
        chunks = [audio[i : i + 3000] for i in range(0, len(audio), 3000)]
        got = list(speech_regions(chunks, detector="silence", silence_options=opts))
        assert len(expected) == 3
        assert [(r.start, r.end) for r in got] == [(a * 16, b * 16) for a, b in expected]


def test_silence_detector_bounds_memory_on_endless_sound() -> None:
    """Three minutes without a pause: the planner cuts at 30 s instead of holding it all."""
    rng = np.random.default_rng(3)
    planner = SegmentPlanner(SilenceDetector(), SegmentOptions())
    segments = []
    for _ in range(180):
        segments += planner.feed(rng.normal(0.0, 0.1, RATE).astype(np.float32))
    segments += planner.finish()
    assert [s.start_sample for s in segments[1:]] == [s.end_sample for s in segments[:-1]]
    assert segments[0].start_sample == 0 and segments[-1].end_sample == 180 * RATE
    assert all(s.duration <= 30.0 for s in segments)
    assert planner.peak_held < 35 * RATE


# --- inputs and options -------------------------------------------------------------------------


def test_chunks_of_any_shape_become_mono_float32() -> None:
    stereo = np.array([[16384, -16384], [32767, 32767]], dtype=np.int16)
    np.testing.assert_allclose(as_mono_float32(stereo), [0.0, 32767 / 32768])
    assert as_mono_float32(np.zeros((5, 1), np.float64)).dtype == np.float32
    with pytest.raises(ConfigError):
        as_mono_float32(np.zeros((2, 2, 2)))


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError):
        VadOptions(threshold=1.5)
    with pytest.raises(ConfigError):
        VadOptions(threshold=0.5, neg_threshold=0.7)
    with pytest.raises(ConfigError):
        VadOptions(min_silence_duration_ms=100, speech_pad_ms=200)
    with pytest.raises(ConfigError):
        SilenceOptions(seek_step=0)
    with pytest.raises(ConfigError):
        make_detector("silero", sample_rate=8000)


def test_level_rescue_marks_speech_loud_windows_as_speech() -> None:
    """Windows scored low but as loud as the confident speech count as speech; quiet ones don't."""
    rng = np.random.default_rng(3)

    def windows(count: int, dbfs: float) -> np.ndarray:
        noise = rng.normal(0, 1, count * WINDOW)
        return (noise / np.sqrt(np.mean(noise**2)) * 10 ** (dbfs / 20)).astype(np.float32)

    rescue = LevelRescue(margin_db=15.0, threshold=0.5)
    # Before enough confident speech is known, nothing is rescued.
    early = rescue.apply(windows(4, -20.0), np.full(4, 0.1))
    assert early.tolist() == [0.1] * 4
    confident = rescue.apply(windows(40, -20.0), np.full(40, 0.9))
    assert confident.tolist() == [0.9] * 40
    samples = np.concatenate([windows(3, -30.0), windows(3, -40.0), windows(3, -60.0)])
    scores = rescue.apply(samples, np.full(9, 0.1))
    assert scores[:3].tolist() == [0.5] * 3  # 10 dB under the speech: rescued
    assert scores[3:].tolist() == [0.1] * 6  # 20 dB under, and under the -50 dBFS floor: not
    off = SileroDetector(VadOptions(rescue_db=None))
    assert off._rescue is None
