"""The bundled model's verification and loading, and the loop / pause helpers of the engine."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from voxflow.engines import models
from voxflow.engines.whisper import (
    WhisperOptions,
    collapse_repeated_text,
    collapse_repeats,
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
