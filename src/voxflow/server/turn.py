"""One recognition turn: its audio streamed through the real pipeline, its results as replies.

The audio goes, as it arrives, into an ``AudioPipe`` that the pipeline's decoder thread reads as
raw PCM in the format of the turn's RIFF header (mu-law, A-law, float and 8/24/32-bit too).
Each segment the pipeline yields becomes one ``speech.phrase``. An interactive turn
(``recognize_once``) ends after its first phrase; a continuous one ends at the end of the
audio with ``EndOfDictation`` covering it all, so the SDK replays nothing. Times are session
seconds: a continuation turn's audio starts at its offset, which ``Replies`` subtracts again.
The turn recognises while it holds a slot of the server's admission; one that waits too long
for it is closed with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from voxflow.audio import RawPcm
from voxflow.engines.base import Engine
from voxflow.errors import VoxflowError
from voxflow.languages import LanguagePlan, LidMode
from voxflow.pipeline import LiveSegmentation, TranscribeOptions, speech_clips, stream
from voxflow.server.admission import CLOSE_TRY_AGAIN_LATER, Overloaded, Ticket
from voxflow.server.interim import Hypothesis, InterimDecoder, PartialDecoder
from voxflow.server.pipe import AudioPipe
from voxflow.server.translation import (
    TranslatedHypothesis,
    TranslatingEngine,
    TranslatingPartials,
    check_targets,
)
from voxflow.server.usp import (
    RecognitionStatus,
    Replies,
    Turn,
    TurnSettings,
    WaveEncoding,
    WaveFormat,
)
from voxflow.speakers import DiarizeOptions
from voxflow.transcript import Segment

log = logging.getLogger("voxflow.server")

CLOSE_INTERNAL = 1011
TURN_NAME = "<speech turn>"  # what errors call a turn's audio


def turn_plan(settings: TurnSettings) -> LanguagePlan:
    """The turn's languages, parsed once: the locales to identify among when language id was
    asked for, else its one recognition language (or any); ConfigError names an unknown one, or
    a translation language that cannot be served."""
    check_targets(settings.translate_to)
    if settings.languages:
        mode = settings.language_id_mode or LidMode.AT_START
        return LanguagePlan.parse(settings.languages, lid=mode)
    return LanguagePlan.parse(forced=settings.language)


def raw_format(fmt: WaveFormat) -> str:
    """The RawPcm sample format of a turn's RIFF header."""
    if fmt.encoding is WaveEncoding.MULAW:
        return "mulaw"
    if fmt.encoding is WaveEncoding.ALAW:
        return "alaw"
    if fmt.encoding is WaveEncoding.FLOAT:
        return "f32le" if fmt.bits_per_sample == 32 else "f64le"
    return {8: "u8", 16: "s16le", 24: "s24le", 32: "s32le"}[fmt.bits_per_sample]


def _shift(segment: Segment, by: float) -> Segment:
    if not by:
        return segment
    words = tuple(dataclasses.replace(w, start=w.start + by, end=w.end + by) for w in segment.words)
    return dataclasses.replace(segment, start=segment.start + by, end=segment.end + by, words=words)


Send = Callable[[str], Awaitable[None]]
Fail = Callable[[int, str], Awaitable[None]]  # close the connection: code, reason


class TurnRunner:
    """Recognises one turn's audio as it streams and sends the turn's messages."""

    def __init__(
        self,
        turn: Turn,
        fmt: WaveFormat,
        *,
        plan: LanguagePlan,
        engine: Engine,
        options: TranscribeOptions,
        send: Send,
        fail: Fail,
        ticket: Ticket,
        interim_gate: asyncio.Semaphore | None = None,
        interim_interval: float = 1.0,
    ) -> None:
        self.turn = turn
        self.settings = turn.settings
        self.report = bool(self.settings.languages)  # every phrase names its language
        self.engine = engine
        decode = dataclasses.replace(options.decode, phrases=self.settings.phrases)
        diarize = DiarizeOptions() if self.settings.speakers else options.diarize
        # A continuous turn's audio is a live stream: phrases as the client asked, or as the
        # server does. Recognize-once keeps a file's segments (its one phrase is the whole
        # utterance) unless the client asks for a pause; language-only and translation turns
        # keep them too (more speech to identify from; translation not measured live yet).
        asked = self.settings.segmentation_silence_timeout, self.settings.segmentation_max_time
        live = (options.live or LiveSegmentation()).bounded(*asked)
        wanted = self.settings.mode.continuous or any(x is not None for x in asked)
        if self.settings.language_only or self.settings.translate_to or not wanted:
            live = None
        self.options = dataclasses.replace(
            options, languages=plan, decode=decode, diarize=diarize, live=live
        )
        self._partial: PartialDecoder | TranslatingPartials = PartialDecoder(engine, plan, decode)
        # A TranslationRecognizer's turn: its text as said and in English (server/translation.py).
        self.translating: TranslatingEngine | None = None
        if self.settings.translate_to:
            self.engine = self.translating = TranslatingEngine(engine)
            self._partial = TranslatingPartials(engine, plan, decode)
        self.replies = Replies(turn.request_id, self.settings.offset_base)
        self._send = send
        self._fail = fail
        self._ticket = ticket
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
            if interim_gate is not None and not self.settings.language_only
            else None
        )
        self.phrases = 0
        self.audio_ended = False
        self.finished = False  # turn.end sent
        self._start: asyncio.Future[None] | None = None  # sending speech.startDetected
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
            async with self._ticket.recognition():
                if self.settings.language_only:
                    if await self._languages(interactive):
                        return
                else:
                    async for segment in stream(
                        self.source,
                        engine=self.engine,
                        options=self.options,
                        name=TURN_NAME,
                        on_speech=self._heard,
                    ):
                        await self._phrase(segment)
                        if interactive:  # recognize_once: the first phrase ends the turn
                            await self._finish(segment.end + self.settings.offset_base)
                            return
        except Overloaded as exc:
            log.info("turn %s refused: %s", self.turn.request_id, exc)
            await self._abandon(CLOSE_TRY_AGAIN_LATER, exc.reason)
            return
        except VoxflowError as exc:
            if self.turn.audio_bytes or not self.audio_ended:
                log.warning("turn %s failed: %s", self.turn.request_id, exc)
                await self._abandon(CLOSE_INTERNAL, f"recognition failed: {exc.reason}"[:120])
                return
            # No audio at all (the empty frame came first): a turn without speech.
        except Exception:  # a bug must not leave the client waiting for turn.end
            log.exception("turn %s failed", self.turn.request_id)
            await self._abandon(CLOSE_INTERNAL, "internal server error")
            return
        end, base = self.turn.audio_end, self.settings.offset_base
        if interactive:
            await self._send(self.replies.status(RecognitionStatus.NO_MATCH, base, end))
        else:  # acknowledge all the audio, so that the SDK does not replay any of it
            await self._send(self.replies.status(RecognitionStatus.END_OF_DICTATION, end, end))
        await self._finish(end)

    async def _languages(self, interactive: bool) -> bool:
        """A language-only turn (SourceLanguageRecognizer): the language of the speech among the
        turn's candidates, by the engine's identification, and no text. At the start: one
        phrase for the first speech, the rest of the audio read and dropped; continuous: one
        phrase per speech clip. True when the turn has ended (interactive, after a phrase)."""
        plan, base = self.options.languages, self.settings.offset_base
        async for clip in speech_clips(
            self.source,
            engine=self.engine,
            options=self.options,
            name=TURN_NAME,
            on_speech=self._heard,
        ):
            if self.phrases and plan.mode is LidMode.AT_START:
                continue
            found = plan.fixed
            if found is None:
                (found,) = await self.engine.identify([clip], plan.candidates)
            start, end = clip.start + base, clip.end + base
            await self._started(start)
            self.phrases += 1
            tag = found.language.tag
            await self._send(self.replies.language(tag, found.confidence, start, end))
            if interactive:
                await self._finish(end)
                return True
        return False

    async def _abandon(self, code: int, reason: str) -> None:
        """The turn failed or was refused: nobody reads its audio any more, so the pipe is
        dropped (waking a feed that waits for room, which would hold the session for good),
        then the connection is closed with ``code`` and the reason."""
        self.pipe.abort()
        if self.interim is not None:
            await self.interim.aclose()
        await self._fail(code, reason)

    async def _finish(self, end: float) -> None:
        self.pipe.abort()
        if self.interim is not None:
            await self.interim.aclose()
        if self._start is not None:
            await self._start
            await self._send(self.replies.end_detected(end))
        await self._send(self.replies.turn_end())
        self.finished = True

    def _heard(self, at: float) -> None:
        """The segmenter heard speech begin at ``at`` (seconds of the turn's audio): the
        ``speech.startDetected`` goes now, while the speech still streams, as the service's."""
        self._announce(at + self.settings.offset_base)

    def _announce(self, at: float) -> asyncio.Future[None]:
        """``speech.startDetected`` at ``at`` (session seconds), once a turn; its send."""
        if self._start is None:
            self._start = asyncio.ensure_future(self._send(self.replies.start_detected(at)))
        return self._start

    async def _started(self, at: float) -> None:
        """Before a result: ``speech.startDetected`` has gone (at ``at`` if the segmenter has
        not told its own time first)."""
        await self._announce(at)

    async def _phrase(self, found: Segment) -> None:
        """A segment the pipeline found (turn seconds) as the service's phrase."""
        segment = _shift(found, self.settings.offset_base)
        await self._started(segment.start)
        if self.interim is not None:
            self.interim.advance(segment.end)
        label = segment.language if self.report else None
        self._partial.decided(label)  # the first phrase fixes the partials' language too
        settings = self.settings
        body_segment = dataclasses.replace(segment, language=None, confidence=None)
        if self.translating is not None:
            english = self.translating.english.pop(found, "")
            await self._send(
                self.replies.translated(
                    body_segment,
                    [(target, english) for target in settings.translate_to],
                    language=label,
                    language_probability=segment.confidence if label else None,
                )
            )
            self.phrases += 1
            return
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
    async def _hypothesis(self, hyp: Hypothesis) -> None:
        if self.finished:
            return
        await self._started(hyp.start)
        if isinstance(hyp, TranslatedHypothesis):
            await self._send(
                self.replies.translated_hypothesis(
                    hyp.text,
                    hyp.start,
                    hyp.end,
                    [(target, hyp.english) for target in self.settings.translate_to],
                    language=hyp.language if self.report else None,
                    language_probability=hyp.probability if self.report else None,
                )
            )
            return
        await self._send(
            self.replies.hypothesis(
                hyp.text,
                hyp.start,
                hyp.end,
                language=hyp.language if self.report else None,
                language_probability=hyp.probability if self.report else None,
            )
        )
