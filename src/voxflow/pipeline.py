"""The asyncio core: decode → segment → identify → recognise, overlapped, in order.

Decoding and speech segmentation run in a producer thread that hands finished segments to the
event loop through a bounded queue (so a fast decoder cannot run ahead of inference and fill
memory). The loop batches segments, sends each batch to the engine (whose model calls run in
worker threads) and yields results in time order as they complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from voxflow.engines.base import (
    Capabilities,
    Clip,
    ClipsFailed,
    Engine,
    FailedClip,
    Identified,
    LanguageIdentifyingEngine,
    SourceReadingEngine,
    capabilities,
)
from voxflow.errors import ConfigError, EngineError, VoxflowError
from voxflow.language_switch import split_at_language_switches
from voxflow.languages import Language, LidMode, parse_languages, parse_lid_mode, resolve_language
from voxflow.transcript import Segment, Transcript

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


@dataclass(frozen=True)
class TranscribeOptions:
    """What to recognise and how; engine-independent."""

    language: str | None = None  # force one language (BCP-47 or Whisper code)
    languages: tuple[str, ...] = ()  # candidate languages for identification
    lid: LidMode = "at-start"
    vad: Literal["silero", "silence"] = "silero"
    vad_threshold: float = 0.35  # Silero speech probability that opens a region
    max_segment: float = 30.0
    batch_size: int = 8

    def __post_init__(self) -> None:
        object.__setattr__(self, "lid", parse_lid_mode(self.lid))  # Azure's spellings too
        if self.vad not in ("silero", "silence"):
            raise ConfigError(f"unknown segmenter {self.vad!r}: use silero or silence")
        if self.batch_size < 1:
            raise ConfigError("batch size must be at least 1")


@dataclass(frozen=True)
class Progress:
    """Where the transcription of one source stands, in seconds of audio."""

    source: str
    done: float
    total: float | None
    segments: int
    finished: bool = False


ProgressCallback = Callable[[Progress], None]


@dataclass
class _LanguagePlan:
    """Which language each clip is recognised in, with the confidence of that decision."""

    forced: Language | None
    candidates: tuple[Language, ...]
    mode: LidMode
    decided: Identified | None = None
    by_code: dict[str, Language] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: TranscribeOptions, engine: Engine) -> _LanguagePlan:
        # Map tags onto what the model knows (zh-HK is Cantonese only where the model has it).
        supported = getattr(engine, "supported_languages", None)
        forced = resolve_language(options.language, supported) if options.language else None
        candidates = parse_languages(options.languages, supported) if options.languages else ()
        by_code: dict[str, Language] = {}
        for lang in candidates:
            by_code.setdefault(lang.whisper, lang)  # the first tag given labels a Whisper code
        return cls(forced, candidates, options.lid, by_code=by_code)

    @property
    def codes(self) -> list[str]:
        return list(self.by_code)

    @property
    def tags(self) -> tuple[str, ...]:
        """The languages as the user named them: the forced one, or the candidates."""
        if self.forced:
            return (self.forced.tag,)
        return tuple(lang.tag for lang in self.candidates)

    def label(self, code: str) -> str:
        """The language as the user named it (``es-MX``), or Whisper's code without candidates."""
        lang = self.by_code.get(code)
        return lang.tag if lang else code


def _source_name(source: Any) -> str:
    if isinstance(source, (str, Path)):
        return str(source)
    return getattr(source, "name", None) or f"<{type(source).__name__}>"


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
    ) -> None:
        self.source = source
        self.options = options
        self.name = name
        self.caps = caps or Capabilities()
        self.duration: float | None = None
        self.total: float | None = None
        self._stop = threading.Event()
        queued = 2 * (batch_size or options.batch_size)
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queued)
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="voxflow-decode", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _put(self, item: Any) -> bool:
        put = self._queue.put(item)
        try:
            future = asyncio.run_coroutine_threadsafe(put, self._loop)
        except RuntimeError:  # the loop has closed (the caller gave up, e.g. a timeout)
            put.close()
            return False
        while not self._stop.is_set():
            try:
                future.result(timeout=0.5)
                return True
            except TimeoutError:
                continue
            except Exception:  # the loop is closing
                return False
        future.cancel()
        return False

    def _run(self) -> None:
        from voxflow.audio import open_audio
        from voxflow.segments import SegmentOptions, speech_segments
        from voxflow.vad import VadOptions

        try:
            with open_audio(self.source, sample_rate=16000, channels=1, name=self.name) as audio:
                self.total = audio.info.duration
                frames = 0

                def counted() -> Iterable[Any]:
                    nonlocal frames
                    for chunk in audio:
                        frames = chunk.start + len(chunk.samples)
                        yield chunk

                caps = self.caps  # an engine that takes long clips gets speech packed into them
                segments = speech_segments(
                    counted(),
                    detector=self.options.vad,
                    options=SegmentOptions(
                        max_duration=caps.max_clip or self.options.max_segment,
                        pad=SEGMENT_PAD,
                        merge_gap=max(MERGE_GAP, caps.merge_gap or 0.0),
                    ),
                    vad_options=VadOptions(threshold=self.options.vad_threshold),
                )
                for seg in segments:
                    if self._stop.is_set():
                        return
                    if not self._put(Clip(seg.start, seg.samples.reshape(-1))):
                        return
                self.duration = frames / 16000
        except VoxflowError as exc:
            self._put(exc)
            return
        except Exception as exc:  # an unexpected failure still ends the stream with a reason
            self._put(VoxflowError(f"{type(exc).__name__}: {exc}", source=self.name))
            return
        self._put(self._DONE)

    async def batches(self, size: int) -> AsyncIterator[list[Clip]]:
        """Full batches of clips; a short one only when the source ends or pauses BATCH_WAIT s."""
        done = False
        while not done:
            item = await self._queue.get()
            if item is self._DONE:
                return
            if isinstance(item, BaseException):
                raise item
            batch = [item]
            while len(batch) < size:
                try:
                    item = await asyncio.wait_for(self._queue.get(), BATCH_WAIT)
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
        self._stop.set()


async def stream(
    source: Any,
    *,
    engine: Engine | None = None,
    options: TranscribeOptions | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
    info: dict[str, Any] | None = None,
) -> AsyncIterator[Segment]:
    """Yield the source's segments in time order as soon as each is recognised.

    ``info``, when given, receives ``duration`` and ``language`` once the stream ends, and
    ``failed_sessions`` (dicts of start, end, error) when the engine lost stretches of audio
    after its retries; a source whose every clip failed raises EngineError instead.
    """
    options = options or TranscribeOptions()
    engine = engine or default_engine()
    name = name or _source_name(source)
    plan = _LanguagePlan.from_options(options, engine)
    caps = capabilities(engine)
    info = info if info is not None else {}
    if caps.reads_source:
        async for seg in _from_engine_source(engine, source, plan, name, info, progress):
            yield seg
        return
    # An engine that works on many clips at once gets each clip on its own, that many in flight.
    batch_size = 1 if caps.parallel_clips > 1 else options.batch_size
    producer = _Producer(source, options, name, caps, batch_size)
    producer.start()
    count = 0
    done_s = 0.0
    pending: list[asyncio.Task[tuple[list[list[Segment]], float]]] = []
    workers = max(1, getattr(getattr(engine, "options", None), "num_workers", 1))
    max_in_flight = max(workers, caps.parallel_clips)
    failures: list[FailedClip] = []
    recognised = 0  # clips recognised without failure
    batches = aiter(producer.batches(batch_size))
    exhausted = False
    try:
        while not exhausted or pending:
            if not exhausted:
                batch = await anext(batches, None)
                if batch is None:
                    exhausted = True
                else:
                    if caps.identifies_languages:
                        work = _recognize_identifying(engine, batch, plan)
                    else:
                        clips, languages, idents = await _assign_languages(engine, plan, batch)
                        work = _recognize(engine, clips, languages, idents, plan)
                    pending.append(asyncio.ensure_future(work))
            # Results leave in submission order, so segments come out in time order.
            while pending and (exhausted or len(pending) >= max_in_flight or pending[0].done()):
                try:
                    results, batch_end = await pending.pop(0)
                except ClipsFailed as exc:  # keep what was recognised; report what was lost
                    failures.extend(exc.failures)
                    results, batch_end = exc.results, max(f.end for f in exc.failures)
                recognised += sum(1 for segs in results if segs)
                for segs in results:
                    for seg in segs:
                        count += 1
                        yield seg
                done_s = max(done_s, batch_end)
                if progress:
                    progress(Progress(name, done_s, producer.total, count))
        total = producer.duration if producer.duration is not None else producer.total
        if failures:
            _report_failures(failures, recognised, name, info)
        info["duration"] = total
        info["language"] = _overall_language(plan)
        if progress:
            progress(Progress(name, total or done_s, total, count, finished=True))
    finally:
        producer.stop()
        for task in pending:
            task.cancel()


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
    plan: _LanguagePlan,
    name: str,
    info: dict[str, Any],
    progress: ProgressCallback | None,
) -> AsyncIterator[Segment]:
    """An engine that reads the whole source itself (e.g. compressed bytes sent as they are)."""
    count = 0
    reader = cast(SourceReadingEngine, engine)
    async for seg in reader.recognize_source(source, plan.tags, plan.mode, name=name, info=info):
        count += 1
        yield seg
    total = info.get("duration")
    info["language"] = _overall_language(plan)
    if progress:
        progress(Progress(name, total or 0.0, total, count, finished=True))


async def _recognize_identifying(
    engine: Engine, clips: list[Clip], plan: _LanguagePlan
) -> tuple[list[list[Segment]], float]:
    """An engine that identifies languages itself gets the user's tags and the LID mode."""
    end = max((c.end for c in clips), default=0.0)
    identifier = cast(LanguageIdentifyingEngine, engine)
    results = await identifier.recognize_languages(clips, plan.tags, plan.mode)
    return results, end


def _overall_language(plan: _LanguagePlan) -> str | None:
    if plan.forced:
        return plan.forced.tag
    if plan.decided:
        return plan.label(plan.decided.language)
    return None


async def _assign_languages(
    engine: Engine, plan: _LanguagePlan, batch: list[Clip]
) -> tuple[list[Clip], list[str], list[Identified | None]]:
    """Pick each clip's language by the plan; continuous mode may split clips at switches."""
    if plan.forced:
        return batch, [plan.forced.whisper] * len(batch), [None] * len(batch)
    if plan.mode == "at-start" or len(plan.codes) == 1:
        if plan.decided is None:
            plan.decided = await _decide_at_start(engine, plan, batch)
        return batch, [plan.decided.language] * len(batch), [plan.decided] * len(batch)
    clips: list[Clip] = []
    idents: list[Identified | None] = []
    for clip in batch:
        for part, ident in await split_at_language_switches(engine, clip, plan.codes):
            clips.append(part)
            idents.append(ident)
    if plan.decided is None and idents:
        plan.decided = idents[0]
    return clips, [i.language for i in idents if i], idents


async def _decide_at_start(engine: Engine, plan: _LanguagePlan, batch: list[Clip]) -> Identified:
    """Decide the language once from the first seconds of speech (up to Whisper's window): the
    first clip alone when it is long enough (the engine then reuses that work to decode it),
    else the first clips joined."""
    import numpy as np

    if len(plan.codes) == 1:
        return Identified(plan.codes[0], 1.0, {plan.codes[0]: 1.0})
    if batch[0].duration >= AT_START_MIN:
        (ident,) = await engine.identify([batch[0]], plan.codes)
        return ident
    pieces, total = [], 0.0
    for clip in batch:
        take = clip.samples[: int((AT_START_SPEECH - total) * 16000)]
        pieces.append(take)
        total += len(take) / 16000
        if total >= AT_START_SPEECH:
            break
    speech = Clip(batch[0].start, np.concatenate(pieces))
    (ident,) = await engine.identify([speech], plan.codes)
    return ident


async def _recognize(
    engine: Engine,
    clips: Sequence[Clip],
    languages: Sequence[str],
    idents: Sequence[Identified | None],
    plan: _LanguagePlan,
) -> tuple[list[list[Segment]], float]:
    """Recognise a batch; each segment is labelled as the user named its language."""
    results = await engine.recognize(clips, list(languages))
    out = []
    for segs, lang, ident in zip(results, languages, idents, strict=True):
        confidence = ident.confidence if ident else (1.0 if plan.forced else None)
        out.append(
            [
                dataclasses.replace(s, language=plan.label(lang), confidence=_round(confidence))
                for s in segs
            ]
        )
    return out, max((c.end for c in clips), default=0.0)


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


_default_engine: Engine | None = None


def default_engine() -> Engine:
    """The embedded Whisper engine on the bundled model, created once per process."""
    global _default_engine
    if _default_engine is None:
        from voxflow.engines.whisper import WhisperEngine

        _default_engine = WhisperEngine()
    return _default_engine


async def transcribe_async(
    source: Any,
    *,
    engine: Engine | None = None,
    options: TranscribeOptions | None = None,
    progress: ProgressCallback | None = None,
    name: str | None = None,
) -> Transcript:
    """Transcribe one source completely and return its Transcript."""
    name = name or _source_name(source)
    info: dict[str, Any] = {}
    segments = [
        seg
        async for seg in stream(
            source, engine=engine, options=options, progress=progress, name=name, info=info
        )
    ]
    language = info.get("language")
    if language is None and segments:
        language = segments[0].language
    extra = {"failed_sessions": info["failed_sessions"]} if info.get("failed_sessions") else {}
    return Transcript(
        source=name,
        duration=round(float(info.get("duration") or 0.0), 3),
        segments=tuple(segments),
        language=language,
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
    engine = engine or default_engine()
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
