"""One recognition turn: its audio streamed through the real pipeline, its results as replies.

The audio goes, as it arrives, into an ``AudioPipe`` that the pipeline's decoder thread reads as
raw PCM in the format of the turn's RIFF header (mu-law, A-law, float and 8/24/32-bit too).
Each segment the pipeline yields becomes one ``speech.phrase``. An interactive turn
(``recognize_once``) ends after its first phrase; a continuous one ends at the end of the
audio with ``EndOfDictation`` covering it all, so the SDK replays nothing. Times are session
seconds: a continuation turn's audio starts at its offset, which ``Replies`` subtracts again.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from voxflow.audio import RawPcm
from voxflow.engines.base import Clip, Engine
from voxflow.errors import VoxflowError
from voxflow.languages import Language, candidate_for, parse_languages, resolve_language
from voxflow.pipeline import TranscribeOptions, stream
from voxflow.server.interim import Hypothesis, InterimDecoder
from voxflow.server.pipe import AudioPipe
from voxflow.server.usp import (
    LanguageIdMode,
    RecognitionStatus,
    Replies,
    Turn,
    TurnSettings,
    WaveEncoding,
    WaveFormat,
)
from voxflow.transcript import Segment, Word

log = logging.getLogger("voxflow.server")

# Phrase-list text handed to Whisper as hotwords, at most (its prompt holds ~220 tokens).
MAX_HOTWORDS_CHARS = 600


@dataclass(frozen=True)
class TurnLanguages:
    """What a turn asks about language: one forced, or candidates to identify among."""

    forced: Language | None
    candidates: tuple[Language, ...]
    continuous: bool
    report: bool  # language id was asked for: every phrase names its PrimaryLanguage

    @classmethod
    def from_settings(cls, settings: TurnSettings) -> TurnLanguages:
        """Resolve the turn's locales; ConfigError names an unknown one."""
        continuous = settings.language_id_mode is LanguageIdMode.CONTINUOUS
        if settings.languages:
            candidates = parse_languages(list(settings.languages))
            forced = candidates[0] if len(candidates) == 1 else None
            return cls(forced, candidates, continuous, report=True)
        forced = resolve_language(settings.language) if settings.language else None
        return cls(forced, (), False, report=False)

    def locale(self, language: str | None) -> str | None:
        """The candidate a recognised language stands for, as the client named it (``es-MX``)."""
        if self.forced is not None:
            return self.forced.tag
        if language is None or not self.candidates:
            return language
        if any(c.tag == language for c in self.candidates):
            return language
        with contextlib.suppress(VoxflowError):
            found = candidate_for(resolve_language(language).whisper, self.candidates)
            if found is not None:
                return found.tag
        return language

    def options(self, base: TranscribeOptions) -> TranscribeOptions:
        """The pipeline options for this turn."""
        if self.forced is not None:
            return dataclasses.replace(base, language=self.forced.tag, languages=())
        return dataclasses.replace(
            base,
            language=None,
            languages=tuple(c.tag for c in self.candidates),
            lid="continuous" if self.continuous else "at-start",
        )


def raw_format(fmt: WaveFormat) -> str:
    """The RawPcm sample format of a turn's RIFF header."""
    if fmt.encoding is WaveEncoding.MULAW:
        return "mulaw"
    if fmt.encoding is WaveEncoding.ALAW:
        return "alaw"
    if fmt.encoding is WaveEncoding.FLOAT:
        return "f32le" if fmt.bits_per_sample == 32 else "f64le"
    return {8: "u8", 16: "s16le", 24: "s24le", 32: "s32le"}[fmt.bits_per_sample]


def engine_variant(engine: Engine, **changes: Any) -> Engine:
    """The engine with some ``options`` fields changed, where it has them (Whisper does).

    The engine protocol takes no per-call settings, so this is a shallow copy that shares the
    loaded model and worker threads; fields the engine lacks are left out, and an engine
    without dataclass options is returned as it is.
    """
    options = getattr(engine, "options", None)
    if not dataclasses.is_dataclass(options) or isinstance(options, type):
        return engine
    known = {f.name for f in dataclasses.fields(options)}
    changes = {k: v for k, v in changes.items() if k in known}
    if not changes:
        return engine
    sibling = copy.copy(engine)
    sibling.options = dataclasses.replace(options, **changes)  # type: ignore[attr-defined]
    return sibling


def hotwords(phrases: tuple[str, ...]) -> tuple[str, ...]:
    """The phrase list, trimmed to what fits Whisper's prompt (about 220 tokens)."""
    words: list[str] = []
    size = 0
    for phrase in (p.strip() for p in phrases):
        if phrase and size + len(phrase) < MAX_HOTWORDS_CHARS:
            words.append(phrase)
            size += len(phrase) + 1
    return tuple(words)


def _shift(segment: Segment, by: float) -> Segment:
    if not by:
        return segment
    words = tuple(Word(w.start + by, w.end + by, w.word, w.probability) for w in segment.words)
    return dataclasses.replace(segment, start=segment.start + by, end=segment.end + by, words=words)


Send = Callable[[str], Awaitable[None]]
Fail = Callable[[str], Awaitable[None]]


class TurnRunner:
    """Recognises one turn's audio as it streams and sends the turn's messages."""

    def __init__(
        self,
        turn: Turn,
        fmt: WaveFormat,
        *,
        languages: TurnLanguages,
        engine: Engine,
        options: TranscribeOptions,
        send: Send,
        fail: Fail,
        interim_gate: asyncio.Semaphore | None = None,
        interim_interval: float = 1.0,
    ) -> None:
        self.turn = turn
        self.settings = turn.settings
        self.languages = languages
        phrases = hotwords(self.settings.phrases)
        self.engine = engine_variant(engine, hotwords=phrases) if phrases else engine
        # Partial decodes are greedy and without word times: cheap, and only interim.
        self.partial_engine = engine_variant(self.engine, beam_size=1, word_timestamps=False)
        self.options = languages.options(options)
        self.replies = Replies(turn.request_id, self.settings.offset_base)
        self._send = send
        self._fail = fail
        self.pipe = AudioPipe()
        self.source = RawPcm(self.pipe, fmt.sample_rate, fmt.channels, raw_format(fmt))
        self.interim = (
            InterimDecoder(
                fmt,
                start=self.settings.offset_base,
                interval=interim_interval,
                gate=interim_gate,
                decode=self._partial,
                send=self._hypothesis,
            )
            if interim_gate is not None
            else None
        )
        self.phrases = 0
        self.audio_ended = False
        self.finished = False  # turn.end sent
        self._start_sent = False
        self._decided: str | None = None  # Whisper code fixed by the first phrase (at-start)
        self._task: asyncio.Task[None] | None = None

    @property
    def working(self) -> bool:
        """True while the turn's recognition runs."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def feed(self, data: bytes) -> None:
        """Audio bytes of the turn, in order; waits while the recogniser is behind."""
        if self.finished:
            return
        if self.interim is not None:
            self.interim.feed(data)
        await self.pipe.write(data)

    async def end_audio(self) -> None:
        """The client sent the empty audio frame: no more hypotheses, the phrases come next."""
        self.audio_ended = True
        self.pipe.close()
        if self.interim is not None:
            await self.interim.aclose()

    async def wait(self) -> None:
        """Until the turn's recognition has finished."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def aclose(self) -> None:
        """Abandon the turn: stop reading, stop recognising, release the decoder thread."""
        self.pipe.abort()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.interim is not None:
            await self.interim.aclose()

    # -- the turn's results ------------------------------------------------------------------
    async def _run(self) -> None:
        interactive = not self.settings.mode.continuous
        try:
            async for segment in stream(
                self.source, engine=self.engine, options=self.options, name="<speech turn>"
            ):
                await self._phrase(_shift(segment, self.settings.offset_base))
                if interactive:  # recognize_once: the first phrase ends the turn
                    await self._finish(segment.end + self.settings.offset_base)
                    return
        except VoxflowError as exc:
            if self.turn.audio_bytes or not self.audio_ended:
                log.warning("turn %s failed: %s", self.turn.request_id, exc)
                await self._fail(f"recognition failed: {exc.reason}"[:120])
                return
            # No audio at all (the empty frame came first): a turn without speech.
        except Exception:  # a bug must not leave the client waiting for turn.end
            log.exception("turn %s failed", self.turn.request_id)
            await self._fail("internal server error")
            return
        end, base = self.turn.audio_end, self.settings.offset_base
        if interactive:
            await self._send(self.replies.status(RecognitionStatus.NO_MATCH, base, end))
        else:  # acknowledge all the audio, so that the SDK does not replay any of it
            await self._send(self.replies.status(RecognitionStatus.END_OF_DICTATION, end, end))
        await self._finish(end)

    async def _finish(self, end: float) -> None:
        self.pipe.abort()
        if self.interim is not None:
            await self.interim.aclose()
        if self._start_sent:
            await self._send(self.replies.end_detected(end))
        await self._send(self.replies.turn_end())
        self.finished = True

    async def _started(self, at: float) -> None:
        if not self._start_sent:
            self._start_sent = True
            await self._send(self.replies.start_detected(at))

    async def _phrase(self, segment: Segment) -> None:
        await self._started(segment.start)
        if self.interim is not None:
            self.interim.advance(segment.end)
        label = self.languages.locale(segment.language) if self.languages.report else None
        if label and self._decided is None and not self.languages.continuous:
            with contextlib.suppress(VoxflowError):
                self._decided = resolve_language(label).whisper
        settings = self.settings
        body_segment = dataclasses.replace(segment, language=None, confidence=None)
        message = self.replies.segment(
            body_segment,
            detailed=settings.detailed,
            language=label,
            language_probability=segment.confidence if label else None,
            word_timings=settings.word_timings,
            word_confidence=settings.word_confidence,
        )
        self.phrases += 1
        await self._send(message)

    # -- interim results ---------------------------------------------------------------------
    async def _partial(self, clip: Clip) -> Hypothesis | None:
        code, label, probability = await self._partial_language(clip)
        (segments,) = await self.partial_engine.recognize([clip], [code])
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        if not text:
            return None
        return Hypothesis(text, clip.start, clip.end, label, probability)

    async def _partial_language(self, clip: Clip) -> tuple[str | None, str | None, float | None]:
        langs = self.languages
        report = langs.report
        if langs.forced is not None:
            return langs.forced.whisper, langs.forced.tag if report else None, None
        if not langs.candidates:
            return None, None, None
        if self._decided is not None:
            found = candidate_for(self._decided, langs.candidates)
            return self._decided, found.tag if found else self._decided, None
        codes = list(dict.fromkeys(c.whisper for c in langs.candidates))
        (ident,) = await self.partial_engine.identify([clip], codes)
        found = candidate_for(ident.language, langs.candidates)
        return ident.language, found.tag if found else ident.language, ident.confidence

    async def _hypothesis(self, hyp: Hypothesis) -> None:
        if self.finished:
            return
        await self._started(hyp.start)
        await self._send(
            self.replies.hypothesis(
                hyp.text,
                hyp.start,
                hyp.end,
                language=hyp.language,
                language_probability=hyp.probability,
            )
        )
