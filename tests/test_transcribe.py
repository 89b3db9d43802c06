"""The embedded engine end to end: real Whisper base on real and synthesised speech."""

from __future__ import annotations

import asyncio
import re
import wave
from pathlib import Path

import jiwer
import numpy as np
import pytest

from voxflow.engines import DecodeSettings, create_engine
from voxflow.engines.base import Clip
from voxflow.languages import Identified, LanguagePlan, resolve_language
from voxflow.pipeline import TranscribeOptions, stream, transcribe, transcribe_async

ENGLISH = LanguagePlan.parse(forced="en")

RATE = 16000


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert w.getsampwidth() == 2 and w.getframerate() == RATE and w.getnchannels() == 1
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768


def _write_wav(path: Path, samples: np.ndarray) -> Path:
    pcm = np.clip(samples * 32768, -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())
    return path


def _normalise(text: str) -> str:
    text = text.lower().replace("mr.", "mister").replace("-", " ")
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text)).strip()


def _manifest(corpus: Path) -> list[tuple[str, str, str]]:
    rows = [line.split("\t") for line in (corpus / "manifest.tsv").read_text().splitlines()[1:]]
    return [(p, lang, ref) for p, lang, ref in rows]


@pytest.fixture(scope="module")
def engine():
    return create_engine()


def test_librivox_wer_no_worse_than_plain_faster_whisper(corpus: Path, engine) -> None:
    """voxflow's WER on the LibriVox clips is at most that of WhisperModel.transcribe()."""
    refs, ours, plain = [], [], []
    for path, _lang, ref in _manifest(corpus):
        if not path.startswith("librivox/"):
            continue
        refs.append(_normalise(ref))
        ours.append(_normalise(transcribe(corpus / path, engine=engine).text))
        segments, _ = engine.model.transcribe(str(corpus / path))
        plain.append(_normalise("".join(s.text for s in segments)))
    assert len(refs) == 5
    our_wer, plain_wer = jiwer.wer(refs, ours), jiwer.wer(refs, plain)
    assert our_wer <= plain_wer, (our_wer, plain_wer, ours, plain)
    assert our_wer < 0.15


def test_spanish_sample_is_identified_as_spanish(corpus: Path, engine) -> None:
    options = TranscribeOptions(languages=LanguagePlan.parse("en-US,es-MX,zh-CN"))
    result = transcribe(corpus / "azure-samples/es-mx.wav", engine=engine, options=options)
    assert result.language == "es-MX"
    assert result.segments and all(s.language == "es-MX" for s in result.segments)
    assert all(s.confidence is not None and s.confidence > 0.9 for s in result.segments)
    assert "distancia" in result.text.lower() and "luna" in result.text.lower()


def test_no_speech_gives_an_empty_transcript(tmp_path: Path, engine) -> None:
    rng = np.random.default_rng(7)
    quiet = np.concatenate([np.zeros(RATE * 3), rng.normal(0, 0.003, RATE * 5)])
    result = transcribe(_write_wav(tmp_path / "room-tone.wav", quiet), engine=engine)
    assert result.segments == ()
    assert result.text == ""
    assert result.duration == pytest.approx(8.0, abs=0.01)


def test_language_switches_are_found_in_continuous_mode(corpus: Path, tmp_path: Path, engine):
    """English, Spanish, English joined by short pauses: each part labelled, switches < 1 s."""
    english = _read_wav(corpus / "librivox/sense_and_sensibility_01_austen_64kb-0870.wav")
    spanish = _read_wav(corpus / "azure-samples/es-mx.wav")
    english2 = _read_wav(corpus / "librivox/sense_and_sensibility_01_austen_64kb-0890.wav")
    pause = np.zeros(int(0.4 * RATE), dtype=np.float32)
    mixed = np.concatenate([english, pause, spanish, pause, english2])
    switch1 = (len(english) + len(pause) / 2) / RATE
    switch2 = (len(english) + len(pause) + len(spanish) + len(pause) / 2) / RATE
    path = _write_wav(tmp_path / "en-es-en.wav", mixed)
    options = TranscribeOptions(languages=LanguagePlan.parse("en-US,es-MX", lid="continuous"))
    result = transcribe(path, engine=engine, options=options)
    runs: list[list] = []
    for seg in result.segments:
        if runs and runs[-1][0] == seg.language:
            runs[-1][2] = seg.end
        else:
            runs.append([seg.language, seg.start, seg.end])
    assert [r[0] for r in runs] == ["en-US", "es-MX", "en-US"], result.segments
    # The switch lies between the end of one run and the start of the next.
    assert runs[0][2] - 1.0 <= switch1 <= runs[1][1] + 1.0
    assert runs[1][2] - 1.0 <= switch2 <= runs[2][1] + 1.0
    assert abs(runs[1][1] - switch1) < 1.0 and abs(runs[2][1] - switch2) < 1.0


def test_segments_stream_in_order_with_word_times(corpus: Path, engine) -> None:
    async def collect() -> list:
        return [
            s async for s in stream(corpus / "azure-samples/katiesteve_mono.wav", engine=engine)
        ]

    segments = asyncio.run(collect())
    assert len(segments) >= 3
    starts = [s.start for s in segments]
    assert starts == sorted(starts)
    for seg in segments:
        assert 0 <= seg.start < seg.end <= 19.2
        assert seg.words, seg
        assert all(seg.start <= w.start <= w.end <= seg.end + 1e-6 for w in seg.words)
        assert all(0.0 <= w.probability <= 1.0 for w in seg.words)
    text = " ".join(s.text for s in segments).lower()
    assert "good morning" in text and "transcription" in text


def test_forced_language_is_used_without_identification(corpus: Path, engine) -> None:
    options = TranscribeOptions(languages=ENGLISH)
    result = asyncio.run(
        transcribe_async(
            corpus / "azure-samples/whatstheweatherlike.wav", engine=engine, options=options
        )
    )
    assert result.language == "en"
    assert _normalise(result.text) == "what's the weather like"
    assert all(s.confidence == 1.0 for s in result.segments)


def test_identify_restricts_to_candidates(corpus: Path, engine) -> None:
    """Probabilities are renormalised over the candidates only."""
    spanish = _read_wav(corpus / "azure-samples/es-mx.wav")
    (ident,) = asyncio.run(engine.identify([Clip(0.0, spanish)], _languages("en-US,zh-CN")))
    assert set(ident.probabilities) == {"en", "zh"}
    assert sum(ident.probabilities.values()) == pytest.approx(1.0)
    candidates = _languages("en,es-MX,de,fr,it,pt")
    (ident,) = asyncio.run(engine.identify([Clip(0.0, spanish)], candidates))
    assert ident.language.tag == "es-MX"


def test_a_looping_decode_is_decoded_again(engine) -> None:
    """A batched result that repeats itself is replaced by a fallback decode of the same audio.

    The looping result is constructed here (Whisper cannot be made to loop on demand); the
    fallback decode is the real model on the real bundled sample.
    """
    from voxflow.engines.whisper.decode import Decoded, Piece

    audio = _read_wav(Path(__file__).resolve().parent.parent / "samples" / "austen-0870.wav")
    clip = Clip(10.0, audio)
    looping = Piece(0.0, 7.0, " and Mr. John Dashwood" * 20, [])
    first = Decoded([looping], None, None, avg_logprob=-0.2, no_speech_prob=0.01)
    segments = engine._finish_clip(clip, [(10.0, looping)], first, "en", DecodeSettings(), _EN)
    text = _normalise(" ".join(s.text for s in segments))
    assert text.count("dashwood") == 1
    assert "prudently in his power" in text
    assert segments[0].start >= 10.0 and segments[0].words[0].start >= 10.0
    assert segments[-1].end <= clip.end


def test_a_piece_of_bare_punctuation_is_not_a_phrase(engine) -> None:
    """Whisper sometimes closes a window with a piece holding only "."; it must not become a
    segment of its own (the server would send it to the SDK as a recognised phrase)."""
    from voxflow.engines.whisper.decode import Decoded, Piece

    clip = Clip(5.0, np.zeros(3 * RATE, dtype=np.float32))
    said = [("What's", 0.0, 0.3), (" the", 0.3, 0.4), (" weather", 0.4, 0.7), (" like?", 0.7, 1.0)]
    words = [{"word": w, "start": a, "end": b, "probability": 0.9} for w, a, b in said]
    question = Piece(0.0, 1.0, " What's the weather like?", [], words)
    dot = Piece(1.0, 1.6, ".", [], [{"word": ".", "start": 1.1, "end": 1.6, "probability": 0.4}])
    first = Decoded([question, dot], None, None, avg_logprob=-0.2, no_speech_prob=0.01)
    placed = [(5.0, question), (5.0, dot)]
    (segment,) = engine._finish_clip(clip, placed, first, "en", DecodeSettings(), _EN)
    assert segment.text == "What's the weather like?"
    assert (segment.start, segment.end) == (5.0, 6.0)


def test_batched_clips_keep_their_own_text(corpus: Path, engine) -> None:
    """Clips recognised in one batch (and from concurrent calls) get exactly their own text."""
    paths = [p for p, lang, _ in _manifest(corpus) if p.startswith("librivox/")]
    clips = [Clip(100.0 * i + 0.0123 * i, _read_wav(corpus / p)) for i, p in enumerate(paths)]
    settings = DecodeSettings()
    alone = [asyncio.run(engine.recognize([c], ENGLISH, settings))[0] for c in clips]

    async def together() -> list:
        halves = await asyncio.gather(
            engine.recognize(clips[:3], ENGLISH, settings),
            engine.recognize(clips[3:], ENGLISH, settings),
        )
        return halves[0] + halves[1]

    for clip, one, batched in zip(clips, alone, asyncio.run(together()), strict=True):
        assert _normalise(" ".join(s.text for s in batched)) == _normalise(
            " ".join(s.text for s in one)
        )
        assert batched
        assert all(clip.start - 1e-3 <= s.start < s.end <= clip.end + 1e-3 for s in batched)
        assert all(type(s.start) is float and type(s.end) is float for s in batched)


class _CountingEncoder:
    """The real CTranslate2 model, with its encoder passes counted (a spy, not a stand-in)."""

    def __init__(self, model) -> None:
        self._model = model
        self.encoded = 0

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def encode(self, features, **kwargs):
        self.encoded += features.shape[0]
        self.frames = features.shape[2]
        return self._model.encode(features, **kwargs)


def test_a_window_is_encoded_once_for_identification_and_decoding(corpus: Path, engine) -> None:
    """Language identification and the decode that follows share one encoder pass."""
    # Quieter than the file, so that no earlier test has left this exact window in the cache.
    clip = Clip(0.0, _read_wav(corpus / "azure-samples/es-mx.wav") * np.float32(0.9))
    spy = _CountingEncoder(engine.model.model)
    engine.model.model = spy
    try:
        (ident,) = asyncio.run(engine.identify([clip], _languages("en,es")))
        plan = LanguagePlan(forced=ident.language)
        (segments,) = asyncio.run(engine.recognize([clip], plan, DecodeSettings()))
    finally:
        engine.model.model = spy._model
    assert ident.language.whisper == "es"
    assert "luna" in " ".join(s.text for s in segments).lower()
    assert spy.encoded == 1


def test_min_window_encodes_a_short_clip_in_a_shorter_window(corpus: Path, engine) -> None:
    """With ``min_window`` a 6 s clip is encoded as 20 s of features, not 30 s, and is still
    identified and transcribed; the default engine keeps Whisper's 30 s."""
    from voxflow.engines.whisper import WhisperOptions

    clip = Clip(0.0, _read_wav(corpus / "azure-samples/es-mx.wav") * np.float32(0.8))
    short = create_engine(WhisperOptions(min_window=20.0))  # the same loaded model
    assert short.model is engine.model
    spy = _CountingEncoder(engine.model.model)
    engine.model.model = spy
    try:
        (ident,) = asyncio.run(short.identify([clip], _languages("en,es")))
        plan = LanguagePlan(forced=ident.language)
        (segments,) = asyncio.run(short.recognize([clip], plan, DecodeSettings()))
        shortened = spy.frames
        asyncio.run(engine.identify([clip], _languages("en,es")))
    finally:
        engine.model.model = spy._model
        asyncio.run(short.aclose())
    assert (shortened, spy.frames) == (2000, 3000)
    assert ident.language.whisper == "es"
    text = " ".join(s.text for s in segments).lower()
    assert "distancia" in text and "luna" in text


def test_each_call_decodes_with_its_own_settings(corpus: Path, engine) -> None:
    """Concurrent calls with other decode settings (as ``voxflow serve`` makes greedy partial
    decodes) are decoded with their own, though the model calls run on shared workers."""
    clip = Clip(0.0, _read_wav(corpus / "librivox/sense_and_sensibility_01_austen_64kb-0880.wav"))
    greedy = DecodeSettings(beam_size=1, word_timestamps=False)

    async def both() -> list:
        return await asyncio.gather(
            engine.recognize([clip], ENGLISH, DecodeSettings()),
            engine.recognize([clip], ENGLISH, greedy),
        )

    (worded,), (bare,) = asyncio.run(both())
    assert worded and all(s.words for s in worded)
    assert bare and not any(s.words for s in bare)
    assert "young man" in _normalise(" ".join(s.text for s in bare))


def test_phrases_become_hotwords_that_fit_whisper_s_prompt() -> None:
    """A long phrase list is cut to what Whisper's prompt holds, keeping the first phrases."""
    from voxflow.engines.whisper.engine import MAX_HOTWORDS_CHARS, hotwords

    assert hotwords(()) is None
    assert hotwords(("Contoso", "Jessie")) == "Contoso Jessie"
    many = tuple(f"Name{i:03d}" for i in range(200))
    kept = hotwords(many)
    assert kept is not None and len(kept) < MAX_HOTWORDS_CHARS
    assert kept.split() == list(many[: len(kept.split())]) and len(kept.split()) > 50


_EN = Identified(resolve_language("en"), 1.0)


def _languages(spec: str) -> tuple:
    return LanguagePlan.parse(spec).candidates


def test_a_code_switch_keeps_its_sentence_with_default_options(
    corpus: Path, tmp_path: Path, engine
) -> None:
    """Mandarin first (so identification at the start decides Chinese), then an English
    sentence: with default options the English is recognised in English, not lost."""
    mandarin = _read_wav(corpus / "eval/whisperstt/fleurs_zh_1883_clip5.wav")
    english = _read_wav(corpus / "azure-samples/whatstheweatherlike.wav")
    pause = np.zeros(int(2.5 * RATE), dtype=np.float32)
    path = _write_wav(tmp_path / "zh-en.wav", np.concatenate([mandarin, pause, english, pause]))
    result = transcribe(path, engine=engine)
    assert result.language == "zh"
    after = [s for s in result.segments if s.start >= len(mandarin) / RATE]
    assert [s.language for s in after] == ["en"], result.segments
    assert _normalise(after[0].text) == "what's the weather like"
    assert any(s.language == "zh" and s.end <= len(mandarin) / RATE for s in result.segments)


@pytest.mark.parametrize(
    "path",
    [
        "eval/leopard/test_de.wav",
        "eval/leopard/test_fr.wav",
        "eval/fleurs-cuttledoc/fleurs-pt-002.ogg",
    ],
)
def test_a_recording_that_fits_one_window_gets_whisper_s_own_text(
    corpus: Path, engine, path: str
) -> None:
    """Under 30 s, the whole recording is Whisper's window and its samples are rounded to
    16 bits as faster-whisper decodes them (an Ogg file here): the words are those of plain
    ``WhisperModel.transcribe`` (cutting the window at the speech changed a word in each)."""
    ours = transcribe(corpus / path, engine=engine)
    segments, _ = engine.model.transcribe(str(corpus / path))
    plain = "".join(s.text for s in segments)
    assert _normalise(ours.text) == _normalise(plain), (ours.text, plain)
    assert ours.segments[0].start < 1.0 < ours.segments[-1].end


def test_real_french_speech_read_badly_is_not_dropped(corpus: Path, engine) -> None:
    """Whisper base reads this FLEURS clip poorly, so its words fail Whisper's hallucination
    test; the decode is confident, so the words are kept (they used to vanish)."""
    result = transcribe(corpus / "eval/fleurs-cuttledoc/fleurs-fr-002.ogg", engine=engine)
    text = _normalise(result.text)
    assert result.language == "fr" and "ajouté" in text and "obligations" in text
    assert "dropped" not in result.extra


def test_a_read_sentence_gets_no_invented_ending(corpus: Path, engine) -> None:
    """Decoding again what followed the last word made up "I'm sorry, I'm sorry." here."""
    result = transcribe(corpus / "eval/fleurs-cuttledoc/fleurs-en-001.ogg", engine=engine)
    text = _normalise(result.text)
    assert text.endswith("in the middle of a sentence") and "sorry" not in text


def test_mandarin_comes_out_in_the_script_its_tag_asks_for(corpus: Path, engine) -> None:
    """Whisper base writes this FLEURS Mandarin clip in Traditional characters; zh (and
    zh-CN) mean Simplified, zh-TW Traditional, whatever Whisper mixed."""
    path = corpus / "eval/whisperstt/fleurs_zh_1883_clip5.wav"
    simplified = transcribe(path, engine=engine)
    assert simplified.language == "zh"
    assert "该项目于" in simplified.text and "該項目於" not in simplified.text
    taiwan = TranscribeOptions(languages=LanguagePlan.parse(forced="zh-TW"))
    traditional = transcribe(path, engine=engine, options=taiwan)
    assert "該項目於" in traditional.text and "该项目于" not in traditional.text
    assert all(w.word in traditional.text for s in traditional.segments for w in s.words)
