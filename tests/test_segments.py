"""The segment planner: invariants over many region lists, merging, padding, splitting long
speech at pauses, chunk-size independence and bounded memory, on synthetic and real speech."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from speech import RATE, read_wav, say, write_wav
from voxflow.errors import ConfigError
from voxflow.segments import SegmentOptions, SegmentPlanner, SpeechSegment, speech_segments
from voxflow.vad import Region, RegionList, VadOptions

# --- helpers ------------------------------------------------------------------------------------


def plan(
    audio: np.ndarray, regions: list[tuple[int, int]], options: SegmentOptions, sizes: list[int]
) -> list[SpeechSegment]:
    """Run the streaming planner over ``audio`` cut into chunks of the given sizes (cycled)."""
    planner = SegmentPlanner(RegionList(regions), options)
    out: list[SpeechSegment] = []
    at, k = 0, 0
    while at < len(audio):
        n = sizes[k % len(sizes)]
        out += planner.feed(audio[at : at + n])
        at, k = at + n, k + 1
    return out + planner.finish()


def spans(segments: list[SpeechSegment]) -> list[tuple[int, int]]:
    return [(s.start_sample, s.end_sample) for s in segments]


def check_invariants(
    audio: np.ndarray,
    regions: list[tuple[int, int]],
    options: SegmentOptions,
    segments: list[SpeechSegment],
) -> None:
    """Order, no overlap, bounded length, exact samples, and every speech sample covered once."""
    limit = round(options.max_duration * RATE)
    covered = np.zeros(len(audio), dtype=np.int32)
    for i, s in enumerate(segments):
        assert s.index == i
        assert 0 <= s.start_sample < s.end_sample <= len(audio)
        assert s.end_sample - s.start_sample <= limit
        assert s.start == s.start_sample / RATE and s.end == s.end_sample / RATE
        assert s.samples.dtype == np.float32 and s.samples.ndim == 1
        np.testing.assert_array_equal(s.samples, audio[s.start_sample : s.end_sample])
        covered[s.start_sample : s.end_sample] += 1
        if i:
            assert segments[i - 1].end_sample <= s.start_sample
    assert covered.max(initial=0) <= 1
    for a, b in regions:
        assert covered[a : min(b, len(audio))].all(), f"speech {a}..{b} not covered"


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, list[tuple[int, int]], SegmentOptions]:
    """A noise recording with a loudness envelope, regions in it, and planner options."""
    ms = RATE // 1000
    length = draw(st.integers(1, 80_000)) * ms
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    envelope = np.repeat(rng.uniform(0.0, 1.0, length // (40 * ms) + 1), 40 * ms)[:length]
    audio = (rng.standard_normal(length) * envelope * 0.3).astype(np.float32)
    cuts = sorted(set(draw(st.lists(st.integers(0, length // ms), max_size=24))))
    bounds = [c * ms for c in cuts]
    regions = [(a, b) for a, b in zip(bounds[::2], bounds[1::2], strict=False) if b > a]
    max_duration = draw(st.sampled_from([0.5, 2.0, 5.0, 12.5, 30.0]))
    options = SegmentOptions(
        max_duration=max_duration,
        min_duration=draw(st.floats(0.0, max_duration)),
        pad=draw(st.floats(0.0, 1.0)),
        merge_gap=draw(st.floats(0.0, 3.0)),
        split_search=draw(st.floats(0.1, 40.0)),
    )
    return audio, regions, options


# --- properties ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.lists(st.integers(160, 60_000), min_size=1, max_size=5))
def test_invariants_hold_and_chunking_does_not_matter(
    case: tuple[np.ndarray, list[tuple[int, int]], SegmentOptions], sizes: list[int]
) -> None:
    audio, regions, options = case
    streamed = plan(audio, regions, options, sizes)
    check_invariants(audio, regions, options, streamed)
    whole = plan(audio, regions, options, [len(audio)])
    assert spans(streamed) == spans(whole)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 20_000), st.integers(1, 20_000)), min_size=1, max_size=8),
    st.floats(0.0, 2.0),
)
def test_regions_closer_than_merge_gap_share_a_segment(
    pieces: list[tuple[int, int]], merge_gap: float
) -> None:
    """With room to spare, each segment boundary falls in a gap wider than ``merge_gap``."""
    regions, at = [], 0
    for gap, length in pieces:
        regions.append((at + gap, at + gap + length))
        at += gap + length
    audio = np.zeros(at + RATE, dtype=np.float32)
    options = SegmentOptions(max_duration=60.0, merge_gap=merge_gap, pad=0.0, min_duration=0.0)
    segments = plan(audio, regions, options, [4000])
    groups = [regions[0]]
    for a, b in regions[1:]:
        if a - groups[-1][1] <= round(merge_gap * RATE):
            groups[-1] = (groups[-1][0], b)
        else:
            groups.append((a, b))
    assert spans(segments) == groups


def test_padding_stops_halfway_to_a_close_neighbour() -> None:
    audio = np.zeros(10 * RATE, dtype=np.float32)
    regions = [(2 * RATE, 3 * RATE), (3 * RATE + 4000, 5 * RATE)]  # 0.25 s apart
    options = SegmentOptions(pad=0.2, merge_gap=0.1, min_duration=0.0)
    segments = plan(audio, regions, options, [RATE])
    assert spans(segments) == [
        (2 * RATE - 3200, 3 * RATE + 2000),
        (3 * RATE + 2000, 5 * RATE + 3200),
    ]


def test_short_segments_widen_towards_min_duration() -> None:
    audio = np.zeros(10 * RATE, dtype=np.float32)
    options = SegmentOptions(pad=0.1, min_duration=1.0)
    (segment,) = plan(audio, [(5 * RATE, 5 * RATE + 1600)], options, [RATE])
    assert segment.duration == pytest.approx(1.0)
    assert segment.start_sample < 5 * RATE and segment.end_sample > 5 * RATE + 1600


def test_nothing_in_gives_nothing_out() -> None:
    audio = np.zeros(3 * RATE, dtype=np.float32)
    assert plan(audio, [], SegmentOptions(), [1000]) == []


def test_memory_stays_bounded_on_a_long_stream() -> None:
    """20 min of audio holding a 10 min utterance and many short ones: the buffer stays small."""
    minute = 60 * RATE
    regions = [(RATE, 10 * minute)]
    regions += [(at, at + 3 * RATE) for at in range(11 * minute, 20 * minute, 5 * RATE)]
    planner = SegmentPlanner(RegionList(regions), SegmentOptions())
    chunk = np.full(RATE, 0.01, dtype=np.float32)
    count = 0
    for _ in range(20 * 60):
        count += len(planner.feed(chunk))
    count += len(planner.finish())
    assert count > 20 + 100  # every piece of the long one and every short one came out
    assert planner.peak_held <= 32 * RATE  # max_duration + pad + one chunk, not 20 minutes


def test_options_that_contradict_each_other_are_refused() -> None:
    with pytest.raises(ConfigError):
        SegmentOptions(max_duration=0)
    with pytest.raises(ConfigError):
        SegmentOptions(min_duration=40.0)
    with pytest.raises(ConfigError):
        SegmentOptions(split_search=0.0)
    with pytest.raises(ConfigError):
        RegionList([Region(0, 10), Region(5, 20)])
    with pytest.raises(ConfigError):
        list(speech_segments([np.zeros(RATE, dtype=np.float32)], detector="webrtc"))  # type: ignore[arg-type]


# --- real speech --------------------------------------------------------------------------------

SENTENCES = [
    "The ship sailed at dawn.",
    "Nobody knew where it was going.",
    "Rain fell on the harbour.",
    "A bell rang twice.",
    "The market opened late that morning.",
    "Children ran along the wall.",
    "Bread was cheap and fresh.",
    "An old man sold maps.",
    "The wind turned cold.",
    "Letters arrived from the north.",
    "Nobody answered them.",
    "The lamps were lit at six.",
]
TINY_GAP = 0.2  # shorter than the detector's min silence: one long utterance


@pytest.fixture(scope="module")
def long_utterance(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[int, int]]]:
    """About 70 s of espeak-ng speech with 0.2 s pauses; returns the file and the pauses."""
    workdir = tmp_path_factory.mktemp("long")
    clips = [say(text, wpm=150) for text in SENTENCES]
    gap = np.zeros(round(TINY_GAP * RATE), dtype=np.float32)
    parts, pauses, at = [np.zeros(RATE // 2, dtype=np.float32)], [], RATE // 2
    while at < 70 * RATE:
        for clip in clips:
            parts += [clip, gap]
            at += len(clip)
            pauses.append((at, at + len(gap)))
            at += len(gap)
    return write_wav(workdir / "long.wav", np.concatenate(parts)), pauses


def test_long_utterance_is_cut_in_pauses_below_max_duration(
    long_utterance: tuple[Path, list[tuple[int, int]]],
) -> None:
    path, pauses = long_utterance
    audio = read_wav(path)
    vad = VadOptions(min_silence_duration_ms=1000)  # the 0.2 s pauses do not end the speech
    options = SegmentOptions(max_duration=30.0, merge_gap=0.0)
    chunks = [audio[i : i + RATE] for i in range(0, len(audio), RATE)]
    segments = list(speech_segments(chunks, options=options, vad_options=vad))
    assert len(segments) >= 3
    assert all(s.duration <= 30.0 for s in segments)
    cuts = [
        b.start_sample for a, b in itertools.pairwise(segments) if a.end_sample == b.start_sample
    ]
    assert len(cuts) >= 2, "70 s of speech without a real pause needs at least two cuts"
    for cut in cuts:
        assert any(a <= cut < b for a, b in pauses), f"cut at {cut / RATE:.2f} s is mid-speech"
    loud = np.flatnonzero(np.abs(audio) > 0.05)
    assert segments[0].start_sample <= loud[0] and loud[-1] < segments[-1].end_sample


def test_chunk_size_does_not_change_segments(
    long_utterance: tuple[Path, list[tuple[int, int]]],
) -> None:
    audio = read_wav(long_utterance[0])
    vad = VadOptions(min_silence_duration_ms=1000)

    def run(seconds: float) -> list[SpeechSegment]:
        n = round(seconds * RATE)
        chunks = [audio[i : i + n] for i in range(0, len(audio), n)]
        return list(speech_segments(chunks, vad_options=vad))

    one, odd = run(1.0), run(7.3)
    assert spans(one) == spans(odd)
    for a, b in zip(one, odd, strict=True):
        np.testing.assert_array_equal(a.samples, b.samples)


def test_librivox_clips_are_covered(corpus: Path) -> None:
    """Every 30 ms frame within 20 dB of the clip's loudest (its words) lies inside a segment.

    The clips carry a noise floor 25-30 dB below their peak, so that is where words end.
    """
    for path in sorted((corpus / "librivox").glob("*.wav")):
        audio = read_wav(path)
        segments = list(speech_segments(audio[i : i + 8000] for i in range(0, len(audio), 8000)))
        assert segments, path.name
        frame = 480
        n = len(audio) // frame
        rms = np.sqrt((audio[: n * frame].reshape(n, frame) ** 2).mean(axis=1))
        words = np.flatnonzero(20 * np.log10(rms + 1e-12) > 20 * np.log10(rms.max()) - 20)
        inside = np.zeros(len(audio), dtype=bool)
        for s in segments:
            inside[s.start_sample : s.end_sample] = True
        for k in words:
            assert inside[k * frame : (k + 1) * frame].all(), f"{path.name}: {k * 0.03:.2f} s"
