"""The pipeline's plumbing on a fake engine (tests/fakes.py): order, the language plan handed to
engines, decode settings, failures, one clip per call for parallel engines. No model loads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fakes import FakeEngine
from speech import read_wav, write_wav
from voxflow.audio import RawPcm
from voxflow.engines.base import Capabilities, DecodeSettings
from voxflow.errors import EngineError
from voxflow.languages import LanguagePlan, LidMode
from voxflow.pipeline import TranscribeOptions, stream, transcribe_async
from voxflow.transcript import Segment

RATE = 16000
BURSTS = (1.0, 5.0, 9.0, 13.0)  # a second of tone at each, 3 s of silence between (> MERGE_GAP)


@pytest.fixture(scope="module")
def bursts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """16 s: four one-second tones in silence, which the silence segmenter cuts apart."""
    x = np.zeros(16 * RATE, dtype=np.float32)
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32)
    for at in BURSTS:
        x[int(at * RATE) : int(at * RATE) + RATE] = tone
    return write_wav(tmp_path_factory.mktemp("bursts") / "bursts.wav", x)


def options(**kw: object) -> TranscribeOptions:
    """Silence segmentation (no VAD model), one clip per batch, so each burst is one call;
    segments of at most 10 s, so that the 16 s file is cut rather than taken as one window."""
    kw = {"batch_size": 1, "max_segment": 10.0, **kw}
    return TranscribeOptions(vad="silence", **kw)  # type: ignore[arg-type]


async def test_segments_leave_in_time_order_though_calls_finish_out_of_order(bursts) -> None:
    engine = FakeEngine(
        capabilities=Capabilities(workers=4), delays=(0.3, 0.2, 0.1, 0.0)
    )
    got = [s async for s in stream(bursts, engine=engine, options=options())]
    assert len(got) == len(BURSTS)
    assert [s.start for s in got] == sorted(s.start for s in got)
    for segment, at in zip(got, BURSTS, strict=True):
        assert segment.start <= at and segment.end >= at + 1.0


async def test_at_start_decides_once_and_every_call_gets_the_decision(bursts) -> None:
    engine = FakeEngine(identified="es-MX")
    plan = LanguagePlan.parse("en-US,es-MX")
    result = await transcribe_async(bursts, engine=engine, options=options(languages=plan))
    assert len(engine.identify_calls) == 1
    assert result.language == "es-MX"
    assert {s.language for s in result.segments} == {"es-MX"}
    assert all(call[1].fixed is not None for call in engine.recognize_calls)
    assert all(call[1].fixed.confidence == 0.75 for call in engine.recognize_calls)


async def test_an_engine_that_identifies_languages_gets_the_candidates(bursts) -> None:
    engine = FakeEngine(capabilities=Capabilities(identifies_languages=True))
    plan = LanguagePlan.parse("en-US,es-MX", lid="continuous")
    await transcribe_async(bursts, engine=engine, options=options(languages=plan))
    assert engine.identify_calls == []
    assert {call[1] for call in engine.recognize_calls} == {plan}


async def test_continuous_mode_leaves_identification_to_the_engine(bursts) -> None:
    engine = FakeEngine()
    plan = LanguagePlan.parse("en-US,es-MX", lid=LidMode.CONTINUOUS)
    result = await transcribe_async(bursts, engine=engine, options=options(languages=plan))
    assert engine.identify_calls == [] and result.language is None
    assert all(call[1] == plan for call in engine.recognize_calls)


async def test_decode_settings_reach_every_call(bursts) -> None:
    engine = FakeEngine()
    settings = DecodeSettings(beam_size=2, word_timestamps=False, phrases=("Contoso",))
    await transcribe_async(bursts, engine=engine, options=options(decode=settings))
    assert [call[2] for call in engine.recognize_calls] == [settings] * len(BURSTS)


async def test_a_parallel_engine_gets_one_clip_per_call(bursts) -> None:
    engine = FakeEngine(capabilities=Capabilities(parallel_clips=3))
    await transcribe_async(bursts, engine=engine, options=options(batch_size=8))
    assert [len(call[0]) for call in engine.recognize_calls] == [1] * len(BURSTS)


async def test_lost_clips_are_reported_and_the_rest_kept(bursts) -> None:
    first = [s.start for s in (await transcribe_async(bursts, engine=FakeEngine(),
                                                      options=options())).segments]  # fmt: skip
    engine = FakeEngine(failing=frozenset({round(first[1], 1)}))
    result = await transcribe_async(bursts, engine=engine, options=options())
    assert len(result.segments) == len(BURSTS) - 1
    (lost,) = result.extra["failed_sessions"]
    assert lost["error"] == "fake failure" and lost["start"] == pytest.approx(first[1], abs=0.05)
    everything = FakeEngine(failing=frozenset(round(s, 1) for s in first))
    with pytest.raises(EngineError, match="recognition failed"):
        await transcribe_async(bursts, engine=everything, options=options())


def test_the_sync_wrapper_gives_the_same_transcript(bursts) -> None:
    from voxflow.pipeline import transcribe

    sync = transcribe(bursts, engine=FakeEngine(), options=options())
    again = asyncio.run(transcribe_async(bursts, engine=FakeEngine(), options=options()))
    assert sync == again


class _PausingReader:
    """16-bit PCM that stops after its first part until ``resume`` is set, as a live client
    pauses after an utterance (read in the pipeline's decoder thread)."""

    def __init__(self, first: bytes, rest: bytes) -> None:
        self.parts = [first, rest]
        self.resume = threading.Event()

    def read(self, n: int = -1) -> bytes:
        if len(self.parts) == 2 and not self.parts[0]:
            self.parts.pop(0)
            assert self.resume.wait(30), "the pipeline never handed on the first result"
        part = self.parts[0]
        size = len(part) if n < 0 else n
        self.parts[0] = part[size:]
        return part[:size]


async def test_results_leave_while_a_live_source_pauses() -> None:
    """With room for more work (two workers), a finished result is handed on although no
    more audio comes: a server's client waits for it before it sends the next utterance.
    (Silero VAD: the silence segmenter, like pydub, settles a silence only when it ends.)"""
    speech = read_wav(Path(__file__).resolve().parent.parent / "samples" / "austen-0870.wav")
    pcm = np.concatenate([np.zeros(RATE), speech[: 3 * RATE], np.zeros(5 * RATE)])
    data = (pcm * 32767).astype("<i2").tobytes()
    reader = _PausingReader(data, data)
    engine = FakeEngine(capabilities=Capabilities(workers=2))
    live = TranscribeOptions(batch_size=1)
    segments = stream(RawPcm(reader, RATE, 1, "s16le"), engine=engine, options=live)
    first = await asyncio.wait_for(anext(segments), 20)
    assert first.start < 1.5 and first.end < 5.0
    reader.resume.set()
    rest = [s async for s in segments]
    assert len(rest) == 1 and rest[0].start > 9.0


async def test_progress_moves_with_each_clip_and_ends_at_the_duration(bursts) -> None:
    """Progress counts the audio each finished clip settles (the silence before it too), one
    event per clip even when a batch holds several, so a bar moves steadily and can tell an
    ETA; the last event is the whole duration."""
    events = []
    engine = FakeEngine(delays=(0.05,))
    await transcribe_async(
        bursts, engine=engine, options=TranscribeOptions(vad="silence", max_segment=10),
        progress=events.append,
    )
    assert len(engine.recognize_calls) == len(BURSTS)  # one call per clip of the batch
    moving = [e.done for e in events if not e.finished]
    assert len(moving) == len(BURSTS)
    assert moving == sorted(moving) and moving[0] > 0
    assert moving[-1] <= 16.0 and events[-1].finished and events[-1].done == pytest.approx(16.0)
    assert all(e.total == pytest.approx(16.0) for e in events)


async def test_the_start_decision_hears_the_same_speech_whatever_the_batches(bursts) -> None:
    """Batches are cut by timing; the audio that decides the language must not be, or the
    same file could get another language (and text) on another run."""
    heard = []
    for size in (1, 2, 8):
        engine = FakeEngine()
        plan = LanguagePlan.parse("en-US,es-MX")
        opts = TranscribeOptions(vad="silence", batch_size=size, languages=plan, max_segment=10)
        await transcribe_async(bursts, engine=engine, options=opts)
        ((clip,),) = engine.identify_calls
        heard.append(clip.samples)
    assert len(heard[0]) >= len(BURSTS) * RATE  # every burst: less than 30 s of speech in all
    assert all(np.array_equal(heard[0], other) for other in heard[1:])


async def test_speech_that_comes_back_without_text_is_counted(bursts) -> None:
    """A clip the engine returns no text for is not lost silently: the transcript and the
    last progress event say which stretches came back empty."""

    class Silent(FakeEngine):
        async def recognize(self, clips, plan, settings):  # type: ignore[no-untyped-def]
            results = await super().recognize(clips, plan, settings)
            return [[] if round(c.start) == 5 else r for c, r in zip(clips, results, strict=True)]

    events = []
    result = await transcribe_async(
        bursts, engine=Silent(), options=options(), progress=events.append
    )
    (dropped,) = result.extra["dropped"]
    assert dropped["start"] < 5.0 < 6.0 < dropped["end"]
    assert len(result.segments) == len(BURSTS) - 1
    assert events[-1].finished and events[-1].dropped == 1
    clean = await transcribe_async(bursts, engine=FakeEngine(), options=options())
    assert "dropped" not in clean.extra


async def test_a_recording_that_fits_one_window_is_one_clip_from_its_start(bursts) -> None:
    """16 s of bursts with 30 s windows: one call, the whole file from 0 s (as Whisper
    decodes it), however the speech lies in it."""
    engine = FakeEngine()
    result = await transcribe_async(bursts, engine=engine, options=options(max_segment=30.0))
    (((clip,), _, _),) = engine.recognize_calls
    assert clip.start == 0.0 and clip.end == pytest.approx(16.0)
    assert [s.text for s in result.segments] == ["clip 0.0"]


async def test_speech_a_window_leaves_unheard_is_recognised_on_its_own(bursts) -> None:
    """The window's text covers the first burst only (as when Whisper writes one language
    and skips a sentence in another): the other bursts are recognised again, each alone."""

    class FirstOnly(FakeEngine):
        async def recognize(self, clips, plan, settings):  # type: ignore[no-untyped-def]
            results = await super().recognize(clips, plan, settings)
            return [[Segment(0.9, 2.0, "first", None, None)] if c.start == 0.0 else r
                    for c, r in zip(clips, results, strict=True)]  # fmt: skip

    engine = FirstOnly()
    result = await transcribe_async(bursts, engine=engine, options=options(max_segment=30.0))
    assert [len(clips) for clips, _, _ in engine.recognize_calls] == [1, len(BURSTS) - 1]
    again = engine.recognize_calls[1][0]
    for clip, at in zip(again, BURSTS[1:], strict=True):
        assert clip.start <= at and clip.end >= at + 1.0 and clip.duration < 3.0
    assert result.segments[0].text == "first"
    assert len(result.segments) == len(BURSTS)
    assert [s.start for s in result.segments] == sorted(s.start for s in result.segments)
    assert "dropped" not in result.extra



class _Stalling:
    """Decoded audio that stalls once, ``seconds`` long, at ``at`` seconds of the file (a
    busy machine, a slow disk): longer than the pipeline waits for a live source."""

    def __init__(self, audio: object, at: float, seconds: float) -> None:
        self.audio, self.info, self.at, self.seconds = audio, audio.info, at, seconds

    def __iter__(self):  # type: ignore[no-untyped-def]
        for chunk in self.audio:
            if chunk.start >= self.at * RATE and self.seconds:
                time.sleep(self.seconds)
                self.seconds = 0.0
            yield chunk


async def test_a_file_decides_its_language_on_the_same_speech_however_slowly_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stall in decoding a file (of known length) must not make the start decision hear
    less of it, or a loaded machine would write another confidence (or language). The stall
    is simulated by wrapping the real decoder."""
    import voxflow.audio

    x = np.zeros(60 * RATE, dtype=np.float32)
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE).astype(np.float32)
    for at in range(1, 60, 4):
        x[at * RATE : (at + 1) * RATE] = tone
    path = write_wav(tmp_path / "bursts60.wav", x)
    real_open = voxflow.audio.open_audio
    plan = LanguagePlan.parse("en-US,es-MX")
    heard = []
    for stall in (0.0, 2.5):

        @contextlib.contextmanager
        def stalling(source, stall=stall, **kw):  # type: ignore[no-untyped-def]
            with real_open(source, **kw) as audio:
                yield _Stalling(audio, at=20.0, seconds=stall)

        monkeypatch.setattr(voxflow.audio, "open_audio", stalling)
        engine = FakeEngine()
        await transcribe_async(path, engine=engine, options=options(languages=plan))
        ((clip,),) = engine.identify_calls
        heard.append(clip.samples)
    assert len(heard[0]) >= 25 * RATE  # the speech of the first 30 s window, all of it
    assert np.array_equal(heard[0], heard[1])
