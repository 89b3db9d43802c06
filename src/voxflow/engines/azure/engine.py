"""Azure Speech behind voxflow's engine protocol, on the real Speech SDK.

Each clip the pipeline plans (speech packed up to ``session_seconds``, cut at silences) is one
continuous-recognition session; up to ``sessions`` of them run at once, across all files.
Language identification is the service's own (at the start of each session, or continuous),
given the caller's candidate locales. A session that fails transiently (dropped connection,
throttling, service error, timeout) is run again from its start after an exponential backoff;
one that still fails is reported as a ``FailedClip`` with its time range. A permanent failure
(credentials, bad request) stops everything at once with the service's reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from voxflow.audio import SAMPLE_RATE
from voxflow.engines.azure.config import AzureOptions
from voxflow.engines.azure.input import SessionAudio, compressed_audio, gstreamer_problem
from voxflow.engines.azure.session import (
    CREDENTIAL_CODES,
    SessionError,
    SessionPlan,
    check_locales,
    import_sdk,
    run_session,
)
from voxflow.engines.base import Capabilities, Clip, ClipsFailed, DecodeSettings, FailedClip
from voxflow.errors import ConfigError, EngineError, VoxflowError
from voxflow.languages import Identified, Language, LanguagePlan, LidMode, resolve_language
from voxflow.transcript import Segment

log = logging.getLogger("voxflow.azure")

DEFAULT_LANGUAGE = "en-US"  # the service's own default recognition language
AT_START_LIMIT = 4  # candidate languages the service identifies among at the start
CONTINUOUS_LIMIT = 10  # ... and continuously
MAX_MERGE_GAP = 10.0  # pauses longer than this end a session (and are not sent)
IDENTIFY_SECONDS = 30.0  # audio that identify() sends per clip
MAX_BACKOFF = 60.0


def check_languages(languages: Sequence[str], lid: LidMode) -> tuple[str, ...]:
    """The session languages for these tags and LID mode; ConfigError names a broken limit."""
    tags = tuple(dict.fromkeys(t.strip() for t in languages if t.strip())) or (DEFAULT_LANGUAGE,)
    check_locales(tags)
    if len(tags) > 1:
        limit = AT_START_LIMIT if lid is LidMode.AT_START else CONTINUOUS_LIMIT
        if len(tags) > limit:
            hint = " (continuous identification takes up to 10)" if lid is LidMode.AT_START else ""
            raise ConfigError(
                f"Azure Speech identifies {lid} among at most {limit} candidate languages, "
                f"got {len(tags)}: {', '.join(tags)}{hint}"
            )
    return tags


def plan_languages(plan: LanguagePlan) -> tuple[str, ...]:
    """A session's languages for the plan: its fixed locale, or the candidates to identify."""
    fixed = plan.fixed
    return check_languages((fixed.language.tag,) if fixed else plan.tags, plan.mode)


def check_task(settings: DecodeSettings) -> None:
    """Refuse Whisper's translate task: the Speech service translates only through its own
    translation recogniser and endpoint, which this engine does not drive."""
    if settings.task != "transcribe":
        raise ConfigError(
            "the Azure engine only transcribes: use the whisper engine to translate into English"
        )


def _span(start: float, end: float) -> str:
    def clock(t: float) -> str:
        m, s = divmod(max(t, 0.0), 60)
        h, m = divmod(int(m), 60)
        return f"{h}:{m:02d}:{s:06.3f}" if h else f"{m}:{s:06.3f}"

    return f"{clock(start)}-{clock(end)}"


class AzureEngine:
    """Recognises clips as Azure Speech sessions; see the module docstring."""

    name = "azure"

    def __init__(self, options: AzureOptions | None = None) -> None:
        self.options = (options or AzureOptions.from_env()).checked()
        self.sdk = import_sdk()
        o = self.options
        if o.compressed and (problem := gstreamer_problem()):
            raise ConfigError(problem)
        self.capabilities = Capabilities(
            max_clip=o.session_seconds,
            merge_gap=min(MAX_MERGE_GAP, o.session_seconds / 2),
            parallel_clips=o.sessions,
            identifies_languages=True,
            reads_source=o.compressed,
            identifies_speakers=True,
        )
        # Blocking SDK calls: building, starting, writing audio, and stopping and releasing
        # (which may take 20 s for a session that timed out): a few per running session.
        self._pool = ThreadPoolExecutor(4 * o.sessions + 4, thread_name_prefix="voxflow-azure")
        self._gates: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self._fatal: VoxflowError | None = None
        self.stats: Counter[str] = Counter()  # sessions, attempts, retries, failed

    def __repr__(self) -> str:
        return f"AzureEngine({self.options!r})"

    # -- the engine protocol -------------------------------------------------------------------
    async def recognize(
        self, clips: Sequence[Clip], plan: LanguagePlan, settings: DecodeSettings
    ) -> list[list[Segment]]:
        """Transcribe each clip as a session: in the plan's fixed locale, or the service
        identifying among its candidates (none: en-US, the service's default)."""
        check_task(settings)
        tags = plan_languages(plan)
        return await self._recognize_all(clips, tags, plan.mode, settings)

    async def identify(
        self, clips: Sequence[Clip], candidates: Sequence[Language]
    ) -> list[Identified]:
        """The language of each clip's first 30 s among candidate locales, by the service."""
        tags = check_languages([c.tag for c in candidates], LidMode.AT_START)
        heads = [Clip(c.start, c.samples[: int(IDENTIFY_SECONDS * SAMPLE_RATE)]) for c in clips]
        results = await self._recognize_all(heads, tags, LidMode.AT_START, DecodeSettings())
        out = []
        for segs in results:
            first = next((s for s in segs if s.language), None)
            tag = str(first.language) if first is not None else tags[0]
            language = next((c for c in candidates if c.tag == tag), None)
            p = first.confidence if first is not None and first.confidence is not None else 0.0
            out.append(Identified(language or resolve_language(tag), p, {tag: p} if first else {}))
        return out

    async def recognize_source(
        self,
        source: Any,
        plan: LanguagePlan,
        settings: DecodeSettings,
        *,
        name: str,
        info: dict[str, Any],
    ) -> AsyncIterator[Segment]:
        """The whole source as one session of its own compressed bytes (``compressed=True``)."""
        check_task(settings)
        tags = plan_languages(plan)
        audio = await asyncio.get_running_loop().run_in_executor(
            self._pool, compressed_audio, source, name
        )
        info["duration"] = audio.duration
        outcome = await self._with_retries(SessionPlan(audio, 0.0, tags, plan.mode, settings))
        if isinstance(outcome, FailedClip):
            raise EngineError(
                f"Azure session {_span(0, audio.duration)} failed: {outcome.error}", source=name
            )
        for segment in outcome:
            yield segment

    async def aclose(self) -> None:
        """Release the worker threads; sessions still stopping finish on their own (their SDK
        objects must be released there, not here on the loop)."""
        self._pool.shutdown(wait=False)

    # -- sessions --------------------------------------------------------------------------------
    async def _recognize_all(
        self,
        clips: Sequence[Clip],
        tags: tuple[str, ...],
        mode: LidMode,
        settings: DecodeSettings,
    ) -> list[list[Segment]]:
        tasks = [
            asyncio.ensure_future(
                self._with_retries(
                    SessionPlan(
                        SessionAudio(clip.duration, samples=clip.samples),
                        clip.start,
                        tags,
                        mode,
                        settings,
                    )
                )
            )
            for clip in clips
        ]
        try:
            outcomes = await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        failures = [o for o in outcomes if isinstance(o, FailedClip)]
        results = [[] if isinstance(o, FailedClip) else o for o in outcomes]
        if failures:
            spans = ", ".join(_span(f.start, f.end) for f in failures)
            raise ClipsFailed(
                f"{len(failures)} Azure session(s) failed ({spans}): {failures[0].error}",
                results=results,
                failures=failures,
            )
        return results

    def _gate(self) -> asyncio.Semaphore:
        """The semaphore of the running loop (asyncio primitives belong to one loop)."""
        loop = asyncio.get_running_loop()
        gate = self._gates.get(loop)
        if gate is None:
            self._gates = {k: v for k, v in self._gates.items() if not k.is_closed()}
            gate = self._gates[loop] = asyncio.Semaphore(self.options.sessions)
        return gate

    async def _with_retries(self, plan: SessionPlan) -> list[Segment] | FailedClip:
        """Run the session, again from its start after transient failures; a FailedClip when
        every attempt failed; raise at once on a permanent failure."""
        o = self.options
        attempts = o.max_retries + 1
        span = _span(plan.start, plan.end)
        last: SessionError | None = None
        self.stats["sessions"] += 1
        for attempt in range(1, attempts + 1):
            if self._fatal is not None:
                raise self._fatal
            try:
                async with self._gate():
                    self.stats["attempts"] += 1
                    return await run_session(self.sdk, o, plan, self._pool)
            except SessionError as exc:
                if not exc.transient:
                    self._fatal = self._permanent(exc)
                    raise self._fatal from None
                last = exc
            if attempt < attempts:
                self.stats["retries"] += 1
                delay = min(MAX_BACKOFF, o.retry_backoff * 2 ** (attempt - 1))
                delay *= random.uniform(0.8, 1.2)
                log.warning(
                    "Azure session %s failed (%s); retrying in %.1f s (attempt %d of %d)",
                    span,
                    last.reason,
                    delay,
                    attempt + 1,
                    attempts,
                )
                await asyncio.sleep(delay)
        assert last is not None
        self.stats["failed"] += 1
        log.warning("Azure session %s failed after %d attempts: %s", span, attempts, last.reason)
        return FailedClip(plan.start, plan.end, f"{last.reason} (after {attempts} attempts)")

    def _permanent(self, exc: SessionError) -> VoxflowError:
        where = self.options.where
        if exc.code in CREDENTIAL_CODES:
            return ConfigError(f"Azure Speech ({where}) refused the credentials: {exc.reason}")
        return EngineError(f"Azure Speech ({where}) rejected the request: {exc.reason}")
