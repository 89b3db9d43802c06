"""The asyncio core: decode → segment → identify → recognise, overlapped, in order.

Decoding and speech segmentation run in a producer thread that hands finished segments to the
event loop through a bounded queue (so a fast decoder cannot run ahead of inference and fill
memory). The loop batches segments, sends each batch to the engine (whose model calls run in
worker threads) and yields results in time order as they complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, cast

import numpy as np

from voxflow.audio.pcm import SAMPLE_RATE
from voxflow.audio.sources import source_name
from voxflow.engines import create_engine
from voxflow.engines.base import (
    Capabilities,
    Clip,
    ClipsFailed,
    DecodeSettings,
    Engine,
    FailedClip,
    SourceReadingEngine,
)
from voxflow.errors import ConfigError, EngineError, ModelError, VoxflowError
from voxflow.handoff import Handoff
from voxflow.languages import Identified, LanguagePlan, LidMode
from voxflow.segments import SegmentOptions
from voxflow.speakers import (
    DiarizeOptions,
    Overlap,
    SpeakerTracker,
    Turn,
    join_sessions,
    label,
    speakers,
)
from voxflow.transcript import Segment, Transcript
from voxflow.vad import VadOptions

# Speech used to decide the language once, at the start (Whisper sees at most 30 s at a time).
AT_START_SPEECH = 30.0
AT_START_MIN = 10.0  # a first clip this long decides alone
# Segmentation errs on the side of keeping audio: quiet onsets get generous padding, and
# stretches between speech regions up to MERGE_GAP long stay inside the segment (a quiet
# phrase the VAD scored low is then still heard by Whisper, which drops true non-speech itself).
SEGMENT_PAD = 0.4
# How long a partly filled batch waits for more segments (decoding + VAD run ~500x real time).
BATCH_WAIT = 1.0
MERGE_GAP = 2.0
# A live phrase closes after this much non-speech (the Azure Speech service's default
# segmentation silence timeout) and is at most this long, so that its final text comes soon
# after it ends; the VAD judges a live stream in runs of this many 32 ms windows (not ~1 s).
LIVE_PAUSE = 0.5
LIVE_MAX_PHRASE = 15.0
LIVE_VAD_WINDOWS = 4
LIVE_PAUSES = (0.1, 5.0)  # the pauses allowed (seconds; the service's own range)
LIVE_PHRASES = (2.0, 30.0)  # the longest phrases allowed (up to Whisper's window)
LIVE_CHUNK = 0.1  # seconds of live audio decoded per chunk (a file's chunks are 0.5 s)


@dataclass(frozen=True)
class LiveSegmentation:
    """How a live source (a microphone, a stream) is cut into phrases: each closes after
    ``pause`` seconds of non-speech and lasts at most ``max_phrase`` seconds, so its final text
    comes a bounded time after it ends. Files merge pauses up to ``MERGE_GAP`` into Whisper's
    30 s windows instead, which is more accurate but gives text a window late."""

    pause: float = LIVE_PAUSE
    max_phrase: float = LIVE_MAX_PHRASE

    def __post_init__(self) -> None:
        if not LIVE_PAUSES[0] <= self.pause <= LIVE_PAUSES[1]:
            raise ConfigError(f"live pause must be {LIVE_PAUSES[0]:g} to {LIVE_PAUSES[1]:g} s, "
                              f"not {self.pause:g}")  # fmt: skip
        if not LIVE_PHRASES[0] <= self.max_phrase <= LIVE_PHRASES[1]:
            raise ConfigError(f"live max_phrase must be {LIVE_PHRASES[0]:g} to "
                              f"{LIVE_PHRASES[1]:g} s, not {self.max_phrase:g}")  # fmt: skip

    def bounded(self, pause: float | None, max_phrase: float | None) -> LiveSegmentation:
        """These settings with a client's ``pause`` and ``max_phrase`` where given, each
        brought into the range allowed (as the Speech service bounds its own)."""
        return LiveSegmentation(
            pause=self.pause if pause is None else min(max(pause, LIVE_PAUSES[0]), LIVE_PAUSES[1]),
            max_phrase=self.max_phrase if max_phrase is None
            else min(max(max_phrase, LIVE_PHRASES[0]), LIVE_PHRASES[1]),
        )  # fmt: skip


@dataclass(frozen=True)
class TranscribeOptions:
    """What to recognise and how, whatever the engine: the languages (a plan parsed once, see
    ``LanguagePlan.parse``), the segmenter, how each clip is decoded, and whether (and
    among how many voices) to say who spoke."""

    languages: LanguagePlan = field(default_factory=LanguagePlan)
    vad: Literal["silero", "silence"] = "silero"
    vad_threshold: float = 0.35  # Silero speech probability that opens a region
    max_segment: float = 30.0
    batch_size: int = 8  # clips handed to the engine per call
    decode: DecodeSettings = field(default_factory=DecodeSettings)
    diarize: DiarizeOptions | None = None  # None: no speaker labels
    live: LiveSegmentation | None = None  # None: a file's segmentation (see LiveSegmentation)

    def __post_init__(self) -> None:
        if self.vad not in ("silero", "silence"):
            raise ConfigError(f"unknown segmenter {self.vad!r}: use silero or silence")
        if self.batch_size < 1:
            raise ConfigError("batch size must be at least 1")

    def fingerprint(self) -> dict[str, object]:
        """What changes a transcript: all but the batch size, which changes only the pace."""
        out = {"languages": self.languages.fingerprint(), "vad": self.vad,
               "vad_threshold": self.vad_threshold, "max_segment": self.max_segment,
               "decode": self.decode.fingerprint()}  # fmt: skip
        if self.diarize is not None:  # absent otherwise, so earlier jobs keep their prints
            out["diarize"] = self.diarize.fingerprint()
        if self.live is not None:
            out["live"] = {"pause": self.live.pause, "max_phrase": self.live.max_phrase}
        return out


@dataclass(frozen=True)
class Progress:
    """Where the transcription of one source stands, in seconds of audio."""

    source: str
    done: float
    total: float | None
    segments: int
    dropped: int = 0  # clips of speech that came back without text (known once finished)
    finished: bool = False


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class _Window(Clip):
    """A whole recording decoded as one window, with the speech the segmenter found in it:
    speech the window's decode leaves without a word is decoded again on its own (with its
    own language evidence), so that one window's decision never costs a sentence."""

    regions: tuple[Clip, ...] = ()

    def unheard(self, segments: Sequence[Segment]) -> list[Clip]:
        """The regions no recognised word (or, without word times, segment) overlaps."""
        spans = [(w.start, w.end) for seg in segments for w in seg.words] or [
            (seg.start, seg.end) for seg in segments
        ]
        return [r for r in self.regions if not any(a < r.end and b > r.start for a, b in spans)]


class SpeechClips:
    """The clips a source is recognised in: decoded and segmented as the engine's capabilities
    ask (the same clips on every run). ``total`` (the declared length) is known once iteration
    starts, ``duration`` (the decoded length) once it ends.

    A recording no longer than one window (Whisper's 30 s) that has speech is one clip from its
    start, as faster-whisper decodes it: cutting it at the speech could only move Whisper's
    window, which changes its text both ways (docs/accuracy-findings.md, finding 3), and saves
    no work."""

    def __init__(
        self,
        source: Any,
        options: TranscribeOptions,
        name: str,
        caps: Capabilities,
        on_speech: Callable[[float], None] | None = None,
    ) -> None:
        self.source = source
        self.options = options
        self.name = name
        self.caps = caps
        self.on_speech = on_speech  # told once, when the first speech is heard (seconds)
        self.total: float | None = None
        self.duration: float | None = None

    def __iter__(self) -> Generator[Clip, None, None]:
        from voxflow.audio import open_audio
        from voxflow.segments import speech_segments

        live = self.options.live
        chunk = round(LIVE_CHUNK * SAMPLE_RATE) if live is not None else None
        with open_audio(
            self.source, sample_rate=SAMPLE_RATE, channels=1, chunk_frames=chunk, name=self.name
        ) as audio:
            self.total = audio.info.duration
            caps = self.caps  # an engine that takes long clips gets speech packed into them
            window = caps.max_clip or self.options.max_segment
            if live is not None:
                window = min(window, live.max_phrase)
            # A recording the header says fits one window is held whole (at most one
            # window's samples), to be decoded as that window if it has speech; a live
            # source's phrases are decoded as each ends.
            whole = live is None and self.total is not None and self.total <= window
            frames = 0
            held: list[np.ndarray] | None = [] if whole else None

            def counted() -> Iterable[Any]:
                nonlocal frames, held
                for chunk in audio:
                    frames = chunk.start + len(chunk.samples)
                    if held is not None:
                        held.append(chunk.samples.reshape(-1))
                        if frames > window * SAMPLE_RATE:  # the header was wrong
                            held = None
                    yield chunk

            detector, planning, vad = self._planning(window)
            segments = speech_segments(
                counted(), detector=detector, options=planning, vad_options=vad,
                on_speech=self.on_speech,
            )
            found: list[Clip] = []
            for seg in segments:
                found.append(Clip(seg.start, seg.samples.reshape(-1)))
                if held is None:
                    yield from found
                    found = []
            if held is not None and found:
                found = [_Window(0.0, np.concatenate(held), tuple(found))]
            yield from found
            self.duration = frames / SAMPLE_RATE

    def _planning(self, window: float) -> tuple[Any, SegmentOptions, VadOptions]:
        """The detector (a name or one built here), segment and VAD options: a file's, whose
        pauses up to MERGE_GAP stay inside a segment, or a live source's, whose phrase closes
        ``live.pause`` after its speech, judged by the VAD in short runs."""
        from voxflow.vad import SileroDetector

        o, live = self.options, self.options.live
        vad = VadOptions(threshold=o.vad_threshold)
        if live is None:
            gap = max(MERGE_GAP, self.caps.merge_gap or 0.0)
            return o.vad, SegmentOptions(max_duration=window, pad=SEGMENT_PAD, merge_gap=gap), vad
        quiet = min(vad.min_silence_duration_ms, round(live.pause * 1000))
        pad_ms = min(vad.speech_pad_ms, quiet)
        vad = replace(vad, min_silence_duration_ms=quiet, speech_pad_ms=pad_ms)
        # The segment's pads wait for as much silence as they take (twice the right pad).
        planning = SegmentOptions(
            max_duration=window, pad=min(SEGMENT_PAD, live.pause / 2), merge_gap=live.pause
        )
        if o.vad == "silero":
            return SileroDetector(vad, batch_windows=LIVE_VAD_WINDOWS), planning, vad
        return o.vad, planning, vad


class _Producer:
    """Runs decode + segmentation in a thread, handing clips to the loop with back-pressure."""

    _DONE = object()

    def __init__(
        self,
        source: Any,
        options: TranscribeOptions,
        name: str,
        caps: Capabilities | None = None,
        batch_size: int | None = None,
        on_speech: Callable[[float], None] | None = None,
    ) -> None:
        self.source = source
        self.options = options
        self.name = name
        self.caps = caps or Capabilities()
        self.duration: float | None = None
        self.total: float | None = None
        self._handoff: Handoff[Any] = Handoff(2 * (batch_size or options.batch_size))
        self._on_speech = on_speech
        self._thread = threading.Thread(target=self._run, name="voxflow-decode", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        tell = self._on_speech  # on the loop, in order with the clips
        heard = functools.partial(self._handoff.call, tell) if tell is not None else None
        clips = SpeechClips(self.source, self.options, self.name, self.caps, heard)
        found = iter(clips)
        try:
            for clip in found:
                self.total = clips.total
                if not self._handoff.put(clip):
                    return
            self.total, self.duration = clips.total, clips.duration
        except VoxflowError as exc:
            self._handoff.put(exc)
            return
        except Exception as exc:  # an unexpected failure still ends the stream with a reason
            self._handoff.put(VoxflowError(f"{type(exc).__name__}: {exc}", source=self.name))
            return
        finally:
            found.close()  # stop decoding (and close the source) when the loop gave up
        self._handoff.put(self._DONE)

    async def batches(self, size: int) -> AsyncIterator[list[Clip]]:
        """Full batches of clips; a short one only when the source ends or pauses BATCH_WAIT s."""
        done = False
        while not done:
            item = await self._handoff.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            batch = [item]
            while len(batch) < size:
                try:
                    item = await asyncio.wait_for(self._handoff.get(), BATCH_WAIT)
                except TimeoutError:
                    break
                if item is self._DONE:
                    done = True
                    break
                if isinstance(item, BaseException):
                    raise item
                batch.append(item)
            yield batch

    def stop(self) -> None:
        self._handoff.close()


async def speech_clips(
    source: Any,
    *,
    engine: Engine,
    options: TranscribeOptions,
    name: str,
    on_speech: Callable[[float], None] | None = None,
) -> AsyncIterator[Clip]:
    """The source's speech, cut into clips as ``stream`` cuts it for ``engine``, each as soon as
    it is found (decoding and segmentation in a thread, with back-pressure): for work that needs
    the speech but not its words, such as the server's language detection. ``on_speech`` as
    ``stream`` takes it."""
    producer = _Producer(source, options, name, engine.capabilities, 1, on_speech)
    producer.start()
    try:
        async for batch in producer.batches(1):
            for clip in batch:
                yield clip
    finally:
        producer.stop()


async def stream(
    source: Any,
    *,
    engine: Engine | None = None,
    options: TranscribeOptions | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
    info: dict[str, Any] | None = None,
    on_speech: Callable[[float], None] | None = None,
) -> AsyncIterator[Segment]:
    """Yield the source's segments in time order as soon as each is recognised.

    ``on_speech`` is called on the loop once, with the time in source seconds, as soon as the
    segmenter hears the first speech, before any of its words (the Speech protocol's
    ``speech.startDetected``); engines that read the source themselves do not call it.

    With ``options.diarize`` the segments come once the source ends, labelled with their
    speakers, and ``info`` gets ``speakers``. An engine that identifies speakers itself
    (Azure) is asked to, and its per-session ids are joined into one label per voice by the
    offline diarization where its model is installed; otherwise ``info`` gets
    ``speaker_labels: "per session"`` when there were several sessions.

    ``info``, when given, receives ``duration`` and ``language`` once the stream ends,
    ``dropped`` (dicts of start, end) for speech the segmenter found that the engine returned
    no text for, and ``failed_sessions`` (dicts of start, end, error) when the engine lost
    stretches of audio after its retries; a source whose every clip failed raises EngineError.
    """
    options = options or TranscribeOptions()
    engine = engine or create_engine()
    name = name or source_name(source)
    caps = engine.capabilities
    info = info if info is not None else {}
    by_engine = options.diarize is not None and caps.identifies_speakers
    settings = replace(options.decode, speakers=True) if by_engine else options.decode
    if caps.reads_source:
        segments = _from_engine_source(engine, source, options, settings, name, info, progress)
        async for seg in segments:
            yield seg
        return
    # An engine that works on many clips at once gets each clip on its own, that many in flight.
    # So does a live source's phrase: it goes as soon as it ends, not waiting for a batch.
    batch_size = 1 if caps.parallel_clips > 1 or options.live else options.batch_size
    tracker = _tracker(options.diarize, required=not by_engine)
    by_clip: list[list[Segment]] = []  # each clip's segments, held for their speakers
    producer = _Producer(source, options, name, caps, batch_size, on_speech)
    producer.start()
    plan = options.languages
    count = 0
    settled = 0.0  # seconds of the source whose clips are recognised (silence between too)
    covered = 0.0  # where the audio handed to the engine so far ends

    def clip_done(seconds: float) -> None:
        nonlocal settled
        settled += seconds
        if progress:
            progress(Progress(name, settled, producer.total, count))

    pending: list[tuple[list[Clip], asyncio.Task[list[list[Segment]]]]] = []
    max_in_flight = max(caps.workers, caps.parallel_clips)
    outcomes = ClipOutcomes()
    batches = aiter(producer.batches(batch_size))
    upcoming: asyncio.Task[list[Clip] | None] | None = asyncio.ensure_future(anext(batches, None))
    held: list[list[Clip]] = []  # batches taken from the source, not yet submitted
    try:
        while upcoming is not None or pending or held:
            # With room for more work, wait for the next batch or the oldest result, whichever
            # comes first: a live source that pauses must not hold back finished results.
            if upcoming is not None and len(pending) < max_in_flight:
                oldest = {pending[0][1]} if pending else set()
                await asyncio.wait({upcoming, *oldest}, return_when=asyncio.FIRST_COMPLETED)
                if upcoming.done():
                    batch = upcoming.result()
                    upcoming = None
                    if batch is not None:
                        held.append(batch)
                        upcoming = asyncio.ensure_future(anext(batches, None))
            if held and plan.fixed is None and _decides_at_start(plan, caps):
                # From the first speech, however the batches happened to cut it (their sizes
                # depend on timing), so that the same file decides the same language on every
                # run; a live source (of unknown length) that stalls for BATCH_WAIT is
                # decided on what came. A file is waited for, however slow the machine.
                first = [clip for batch in held for clip in batch]
                if upcoming is not None and not _enough_to_decide(first):
                    wait = BATCH_WAIT if producer.total is None else None
                    more, _ = await asyncio.wait({upcoming}, timeout=wait)
                    if more:
                        continue
                plan = await starting_plan(engine, plan, first)
            for batch in held:
                spans = []
                for clip in batch:  # each clip settles the audio since the last one
                    spans.append(max(0.0, clip.end - covered))
                    covered = max(covered, clip.end)
                    if tracker is not None:
                        for speech in voiced(clip):
                            await tracker.feed(speech.start, speech.samples)
                work = _recognize(engine, batch, spans, plan, settings, clip_done)
                pending.append((batch, asyncio.ensure_future(work)))
            held = []
            # Results leave in submission order, so segments come out in time order.
            while pending and (
                upcoming is None or len(pending) >= max_in_flight or pending[0][1].done()
            ):
                clips, task = pending.pop(0)
                lost: list[FailedClip] = []
                try:
                    results = await task
                except ClipsFailed as exc:  # keep what was recognised; report what was lost
                    lost = exc.failures
                    results = exc.results
                outcomes.add(clips, results, lost)
                for segs in results:
                    count += len(segs)
                    if options.diarize is not None:
                        by_clip.append(segs)
                        continue
                    for seg in segs:
                        yield seg
        if options.diarize is not None:
            found = await tracker.result() if tracker is not None else None
            turns = found.turns if found is not None else None
            if by_engine:
                labelled = join_sessions(by_clip, turns)
                sessions = sum(1 for segs in by_clip if any(s.speaker for s in segs))
                if turns is None and sessions > 1:
                    info["speaker_labels"] = "per session"
                info["speakers"] = speakers(labelled)
            else:
                segments = [seg for segs in by_clip for seg in segs]
                labelled = with_speakers(segments, turns, info, found.overlaps if found else ())
            for seg in labelled:
                yield seg
        total = producer.duration if producer.duration is not None else producer.total
        outcomes.finish(name, plan, total, info)
        if progress:
            dropped = len(outcomes.dropped)
            progress(Progress(name, total or settled, total, count, dropped, finished=True))
    finally:
        producer.stop()
        if tracker is not None:
            tracker.close()
        for task in [*(t for _, t in pending), *([upcoming] if upcoming is not None else [])]:
            task.cancel()


def voiced(clip: Clip) -> Sequence[Clip]:
    """The speech of a clip whose voices diarization takes: a whole-recording window's
    regions, not its pauses; any other clip itself."""
    return clip.regions if isinstance(clip, _Window) else (clip,)


def with_speakers(
    segments: Sequence[Segment],
    turns: Sequence[Turn] | None,
    info: dict[str, Any],
    overlaps: Sequence[Overlap] = (),
) -> list[Segment]:
    """The segments labelled with the speakers' turns, and the speakers (and where two of
    them speak at once) in ``info``."""
    info["speakers"] = speakers(turns or ())
    if overlaps:
        info["overlaps"] = [o.to_dict() for o in overlaps]
    return label(segments, turns or ())


def _tracker(options: DiarizeOptions | None, *, required: bool) -> SpeakerTracker | None:
    """The offline diarization for ``options``; without its model, None where it is only an
    aid (joining an engine's speakers across sessions), else the model's ModelError."""
    if options is None:
        return None
    try:
        return SpeakerTracker(options)
    except ModelError:
        if required:
            raise
        return None


class ClipOutcomes:
    """What came back for a source's clips, gathered in time order (from one run of the
    pipeline, or piece by piece): stretches the engine lost after its retries, kept apart from
    speech that came back without text (dropped); ``finish`` turns them into the ``info`` of
    :func:`stream`."""

    def __init__(self) -> None:
        self.failures: list[FailedClip] = []
        self.recognised = 0  # clips recognised without failure
        self.dropped: list[tuple[float, float]] = []  # (start, end) of speech without text

    def add(
        self, clips: Sequence[Clip], results: Sequence[list[Segment]], lost: Sequence[FailedClip]
    ) -> None:
        """The results of the next clips (one list of segments each) and what was lost."""
        self.failures.extend(lost)
        self.recognised += sum(1 for segs in results if segs)
        failed_at = {f.start for f in lost}
        self.dropped += [(c.start, c.end) for c, segs in zip(clips, results, strict=True)
                         if not segs and c.start not in failed_at]  # fmt: skip

    def extend(self, later: ClipOutcomes) -> None:
        """Append the outcomes of the clips that follow (the next piece of the source)."""
        self.failures.extend(later.failures)
        self.recognised += later.recognised
        self.dropped.extend(later.dropped)

    def finish(
        self, name: str, plan: LanguagePlan, duration: float | None, info: dict[str, Any]
    ) -> None:
        """Fill ``info``: duration, language, dropped, failed sessions; raise EngineError
        when clips failed and none was recognised."""
        if self.failures:
            _report_failures(self.failures, self.recognised, name, info)
        info["duration"] = duration
        info["language"] = _overall_language(plan)
        if self.dropped:
            info["dropped"] = [{"start": round(start, 3), "end": round(end, 3)}
                               for start, end in self.dropped]  # fmt: skip


async def starting_plan(engine: Engine, plan: LanguagePlan, clips: Sequence[Clip]) -> LanguagePlan:
    """The plan a source's clips are recognised by: with the language decided from the first
    clips (see :func:`_decide_at_start`; more clips than it needs change nothing) when it is
    decided once at the start, else the plan as given."""
    if clips and plan.fixed is None and _decides_at_start(plan, engine.capabilities):
        return plan.deciding(await _decide_at_start(engine, plan, list(clips)))
    return plan


async def recognize_clip(
    engine: Engine, clip: Clip, plan: LanguagePlan, settings: DecodeSettings
) -> tuple[list[Segment], list[FailedClip]]:
    """One clip in a call of its own: its segments, and the stretches lost (after retries). A
    whole-recording window's speech that came back without a word is recognised again on its
    own."""

    async def recognize(clips: list[Clip]) -> tuple[list[Segment], list[FailedClip]]:
        try:
            results = await engine.recognize(clips, plan, settings)
            lost: list[FailedClip] = []
        except ClipsFailed as exc:
            results, lost = exc.results, exc.failures
        return [seg for segments in results for seg in segments], lost

    segments, lost = await recognize([clip])
    if isinstance(clip, _Window) and not lost and (unheard := clip.unheard(segments)):
        more, lost = await recognize(unheard)
        segments = sorted([*segments, *more], key=lambda seg: seg.start)
    return segments, lost


def _decides_at_start(plan: LanguagePlan, caps: Capabilities) -> bool:
    """Whether the pipeline identifies the language once, from the first speech: in at-start
    mode, unless the engine identifies languages itself."""
    return plan.mode is LidMode.AT_START and not caps.identifies_languages


def _report_failures(
    failures: list[FailedClip], recognised: int, name: str, info: dict[str, Any]
) -> None:
    """Failed stretches go to ``info``; when nothing at all was recognised, raise instead."""
    failures.sort(key=lambda f: f.start)
    if not recognised:
        first = failures[0]
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        raise EngineError(
            f"recognition failed for {first.start:.1f}-{first.end:.1f} s{more}: {first.error}",
            source=name,
        )
    info["failed_sessions"] = [f.to_dict() for f in failures]


async def _from_engine_source(
    engine: Engine,
    source: Any,
    options: TranscribeOptions,
    settings: DecodeSettings,
    name: str,
    info: dict[str, Any],
    progress: ProgressCallback | None,
) -> AsyncIterator[Segment]:
    """An engine that reads the whole source itself (e.g. compressed bytes sent as they are),
    in one session: its speaker ids, when asked for, are relabelled S1, S2 …"""
    count = 0
    reader = cast(SourceReadingEngine, engine)
    segments = reader.recognize_source(source, options.languages, settings, name=name, info=info)
    if settings.speakers:
        labelled = join_sessions([[seg async for seg in segments]], None)
        info["speakers"] = speakers(labelled)
        segments = _aiter(labelled)
    elif options.diarize is not None:
        raise ConfigError("this engine reads the source itself and cannot say who spoke")
    async for seg in segments:
        count += 1
        yield seg
    total = info.get("duration")
    info["language"] = _overall_language(options.languages)
    if progress:
        progress(Progress(name, total or 0.0, total, count, finished=True))


async def _aiter(items: Sequence[Segment]) -> AsyncIterator[Segment]:
    for item in items:
        yield item


def _overall_language(plan: LanguagePlan) -> str | None:
    """The source's language as the user named it, when one was forced or decided."""
    fixed = plan.fixed
    return fixed.language.tag if fixed else None


def _enough_to_decide(clips: Sequence[Clip]) -> bool:
    """Whether the first clips hold enough speech to decide the language at the start."""
    return clips[0].duration >= AT_START_MIN or sum(c.duration for c in clips) >= AT_START_SPEECH


async def _decide_at_start(engine: Engine, plan: LanguagePlan, clips: list[Clip]) -> Identified:
    """Decide the language once from the first seconds of speech (up to Whisper's window): the
    first clip alone when it is long enough (the engine then reuses that work to decode it),
    else the first clips joined."""
    if clips[0].duration >= AT_START_MIN:
        (ident,) = await engine.identify([clips[0]], plan.candidates)
        return ident
    pieces, total = [], 0.0
    for clip in clips:
        take = clip.samples[: int((AT_START_SPEECH - total) * SAMPLE_RATE)]
        pieces.append(take)
        total += len(take) / SAMPLE_RATE
        if total >= AT_START_SPEECH:
            break
    speech = Clip(clips[0].start, np.concatenate(pieces))
    (ident,) = await engine.identify([speech], plan.candidates)
    return ident


async def _recognize(
    engine: Engine,
    clips: Sequence[Clip],
    spans: Sequence[float],
    plan: LanguagePlan,
    settings: DecodeSettings,
    clip_done: Callable[[float], None],
) -> list[list[Segment]]:
    """Recognise a batch, each clip in a call of its own (an engine batches concurrent calls
    itself), so that progress moves as each clip finishes: ``clip_done`` gets the seconds of
    the source the clip settles (its span, the silence before it included)."""

    async def one(clip: Clip, span: float) -> tuple[list[Segment], list[FailedClip]]:
        done = await recognize_clip(engine, clip, plan, settings)
        clip_done(span)
        return done

    done = await asyncio.gather(*(one(c, s) for c, s in zip(clips, spans, strict=True)))
    results = [segments for segments, _ in done]
    failures = [f for _, lost in done for f in lost]
    if failures:
        raise ClipsFailed(failures[0].error, results=results, failures=failures)
    return results


async def transcribe_async(
    source: Any,
    *,
    engine: Engine | None = None,
    options: TranscribeOptions | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
) -> Transcript:
    """Transcribe one source completely and return its Transcript."""
    name = name or source_name(source)
    info: dict[str, Any] = {}
    segments = [
        seg
        async for seg in stream(
            source, engine=engine, options=options, progress=progress, name=name, info=info
        )
    ]
    return assemble(name, segments, info)


def assemble(name: str, segments: Sequence[Segment], info: dict[str, Any]) -> Transcript:
    """The Transcript of a source from its segments in time order and the ``info`` that
    :func:`stream` (or :meth:`ClipOutcomes.finish`) filled."""
    language = info.get("language")
    if language is None and segments:
        language = segments[0].language
    kept = ("dropped", "failed_sessions", "speaker_labels", "overlaps")
    extra = {key: info[key] for key in kept if info.get(key)}
    return Transcript(
        source=name,
        duration=round(float(info.get("duration") or 0.0), 3),
        segments=tuple(segments),
        language=language,
        speakers=tuple(info.get("speakers") or ()),
        extra=extra,
    )


def transcribe(
    source: Any,
    *,
    engine: Engine | None = None,
    options: TranscribeOptions | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
) -> Transcript:
    """Synchronous twin of :func:`transcribe_async` (runs its own event loop)."""
    return asyncio.run(
        transcribe_async(source, engine=engine, options=options, progress=progress, name=name)
    )


async def transcribe_many(
    sources: Sequence[Any],
    *,
    engine: Engine | None = None,
    options: TranscribeOptions | None = None,
    concurrency: int = 2,
    progress: ProgressCallback | None = None,
) -> AsyncIterator[tuple[Any, Transcript | VoxflowError]]:
    """Transcribe many sources, ``concurrency`` at a time; yield each (source, result or error)
    as it finishes. A bad source yields its error and the others go on."""
    if concurrency < 1:
        raise ConfigError("concurrency must be at least 1")
    engine = engine or create_engine()
    gate = asyncio.Semaphore(concurrency)

    async def one(src: Any) -> tuple[Any, Transcript | VoxflowError]:
        async with gate:
            try:
                return src, await transcribe_async(
                    src, engine=engine, options=options, progress=progress
                )
            except VoxflowError as exc:
                return src, exc

    tasks = [asyncio.ensure_future(one(s)) for s in sources]
    try:
        for fut in asyncio.as_completed(tasks):
            yield await fut
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*tasks, return_exceptions=True)
