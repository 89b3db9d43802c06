"""The bundled model's verification and loading, and the engine's text helpers: loops, pauses,
timestamped decodes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from voxflow.engines.whisper import models
from voxflow.engines.whisper.decode import split_at_timestamps
from voxflow.engines.whisper.engine import (
    WhisperOptions,
    collapse_repeated_text,
    collapse_repeats,
    is_hallucination,
    is_looping,
    load_model,
    split_by_pauses,
)
from voxflow.errors import ModelError
from voxflow.transcript import Word


def test_bundled_model_is_joined_once_and_verified(tmp_path: Path) -> None:
    target = tmp_path / "model"
    first = models.bundled_model_dir(target)
    model_bin = first / "model.bin"
    assert model_bin.stat().st_size == 2 * 72608766
    assert {p.name for p in first.iterdir()} >= {"model.bin", "config.json", "tokenizer.json"}
    stamp = model_bin.stat().st_mtime_ns
    # A second start reuses the verified file without rewriting it.
    assert models.bundled_model_dir(target) == first
    assert model_bin.stat().st_mtime_ns == stamp
    # A changed file (here: truncated) is noticed and rebuilt from the packages.
    with model_bin.open("r+b") as f:
        f.truncate(1000)
    models.bundled_model_dir(target)
    assert model_bin.stat().st_size == 2 * 72608766
    assert not list(target.glob(".model.bin.*")), "no temporary file left behind"


def test_bundled_model_with_the_wrong_digest_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(models, "BUNDLED_SHA256", "0" * 64)
    with pytest.raises(ModelError, match="checksum mismatch"):
        models.bundled_model_dir(tmp_path / "model")
    assert not (tmp_path / "model" / "model.bin").exists()


def test_model_that_cannot_be_loaded_gives_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a directory"):
        load_model(WhisperOptions(model=str(tmp_path / "missing-model")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match=r"no model\.bin"):
        load_model(WhisperOptions(model=str(tmp_path / "empty")))
    started = time.monotonic()
    with pytest.raises(ModelError, match="cannot load the Whisper model") as err:
        load_model(WhisperOptions(model="no-such-model-name"))
    assert "\n" not in str(err.value)
    assert time.monotonic() - started < 60  # offline: fails, never hangs


def _words(text: str, step: float = 0.3) -> list[Word]:
    return [Word(i * step, i * step + 0.2, " " + w, 0.9) for i, w in enumerate(text.split())]


def test_repetition_loops_are_detected_and_collapsed() -> None:
    loop = "Thank you. " * 12
    assert is_looping(loop)
    assert collapse_repeated_text(loop) == "Thank you. Thank you."
    words = _words("and then I said no no no no no no no to him")
    kept = "".join(w.word for w in collapse_repeats(words)).split()
    assert kept == ["and", "then", "I", "said", "no", "no", "to", "him"]
    phrase = _words("we go on " * 6 + "and stop")
    assert "".join(w.word for w in collapse_repeats(phrase)).split() == (
        ["we", "go", "on", "we", "go", "on", "and", "stop"]
    )
    normal = "He was not an ill disposed young man, and he was rather cold hearted."
    assert not is_looping(normal)
    assert collapse_repeated_text(normal) == normal


def test_words_are_grouped_into_phrases_at_pauses() -> None:
    words = [
        Word(0.0, 0.3, " Hello", 0.9),
        Word(0.35, 0.6, " there.", 0.9),
        Word(1.0, 1.2, " How", 0.9),  # 0.4 s after a sentence end: new phrase
        Word(1.25, 1.5, " are", 0.9),
        Word(1.6, 1.9, " you", 0.9),
        Word(3.2, 3.5, " today", 0.9),  # 1.3 s pause: new phrase
    ]
    groups = split_by_pauses(words)
    assert ["".join(w.word for w in g).strip() for g in groups] == [
        "Hello there.",
        "How are you",
        "today",
    ]


def test_timestamped_decodes_are_read_as_whisper_reads_them() -> None:
    """Phrases between timestamp pairs; a decode that stops inside a phrase says where to go on."""
    t = 1000  # the first timestamp token (0.00 s); text tokens are below it

    def at(seconds: float) -> int:
        return t + round(seconds / 0.02)

    # Finished: <0.00> a b <2.00><2.40> c <4.00>
    done = [at(0), 1, 2, at(2.0), at(2.4), 3, at(4.0)]
    phrases, resume, rest = split_at_timestamps(done, t, 0.02, 10.0)
    assert phrases == [(0.0, 2.0, [1, 2]), (2.4, 4.0, [3])]
    assert resume is None and rest == []
    # Unfinished: the last phrase has no closing timestamp; go on from the end of the last
    # finished one, as Whisper seeks.
    cut = [at(0), 1, 2, at(2.0), at(2.4), 3, 4]
    phrases, resume, rest = split_at_timestamps(cut, t, 0.02, 10.0)
    assert phrases == [(0.0, 2.0, [1, 2])]
    assert resume == pytest.approx(2.0) and rest == [at(2.4), 3, 4]
    # One phrase and no pair: it ends at its last timestamp, or at the window's end.
    assert split_at_timestamps([at(0.5), 1, at(3.0)], t, 0.02, 9.0)[0] == [(0.5, 3.0, [1])]
    assert split_at_timestamps([1, 2], t, 0.02, 9.0) == ([(0.0, 9.0, [1, 2])], None, [])


def test_made_up_phrases_are_told_from_speech_by_their_words() -> None:
    """Whisper's anomaly test, on words as the engine produced them: a phrase it invented for a
    1.5 s fragment of a word, and the real sentence in the same recording."""
    invented = [
        Word(1.06, 2.58, " Thank", 0.02),
        Word(2.58, 2.58, " you", 0.96),
        Word(2.58, 2.58, " very", 0.05),
        Word(2.58, 2.58, " much.", 0.99),
    ]
    spoken = [
        Word(0.0, 0.42, " What's", 0.86),
        Word(0.42, 0.52, " the", 0.98),
        Word(0.52, 0.74, " weather", 0.99),
        Word(0.74, 1.04, " like?", 0.99),
    ]
    assert is_hallucination(invented)
    assert not is_hallucination(spoken)
    assert not is_hallucination([])
