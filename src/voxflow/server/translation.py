"""Speech translation for the SDK's ``TranslationRecognizer``: the speech as said and in English.

Offline, the one translation there is is Whisper's own translate task, which gives English
only; a turn that asks for any other target language is refused (``refused_targets``) with a
reason naming it, so that the SDK cancels with that reason rather than return results without
the translation asked for. (Serving the English and naming the refused language in the same
result is not possible: the SDK drops every translation of a phrase whose TranslationStatus is
Error.)

A translation turn runs the real pipeline over a ``TranslatingEngine``: each clip the pipeline
cuts is recognised twice by the server's engine, as said and with the translate task (the two
calls batched together), and comes back as one segment whose English waits in ``english``
until the turn sends it (``translation.response`` with a ``SpeechPhrase``, which carries the
identified language too). So a phrase is a clip of speech (cut at pauses, at most 30 s), its
text what ``voxflow transcribe`` gives for that clip, and its English what ``voxflow
transcribe --task translate`` gives. Interim results (``TranslatingPartials``) are translated
too: a second greedy decode of the same partial clip, in the language the first found.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from voxflow.engines.base import Clip, ClipsFailed, DecodeSettings, Engine
from voxflow.errors import ConfigError
from voxflow.languages import Identified, Language, LanguagePlan, resolve_language
from voxflow.server.interim import Hypothesis, PartialDecoder
from voxflow.transcript import Segment

ENGLISH = "en"  # Whisper's code of the one language its translate task writes


def _english(tag: str) -> bool:
    try:
        return resolve_language(tag).whisper == ENGLISH
    except ConfigError:
        return False


def refused_targets(targets: Sequence[str]) -> tuple[str, ...]:
    """The target languages that cannot be served offline: all but English (any region)."""
    return tuple(t for t in targets if not _english(t))


def check_targets(targets: Sequence[str]) -> None:
    """ConfigError naming the targets other than English, which offline translation lacks."""
    refused = refused_targets(targets)
    if refused:
        names = ", ".join(repr(t) for t in refused)
        raise ConfigError(
            f"translation into {names} is not available offline: voxflow serve translates "
            f"into English ('en') only, with Whisper's translate task; ask for 'en' alone"
        )


def _joined(segments: Sequence[Segment]) -> Segment | None:
    """A clip's segments as one: its text, words and span; None when it has no text."""
    spoken = [s for s in segments if s.text.strip()]
    if not spoken:
        return None
    first = spoken[0]
    return dataclasses.replace(
        first,
        end=max(s.end for s in spoken),
        text=" ".join(s.text.strip() for s in spoken),
        words=tuple(w for s in spoken for w in s.words),
    )


class TranslatingEngine:
    """The server's engine for one translation turn: each clip as said and in English, one
    segment per clip; ``english`` maps each segment returned to its English text."""

    def __init__(self, engine: Engine) -> None:
        self.inner = engine
        self.name = engine.name
        self.options = engine.options
        self.capabilities = dataclasses.replace(engine.capabilities, reads_source=False)
        self.english: dict[Segment, str] = {}

    async def identify(
        self, clips: Sequence[Clip], candidates: Sequence[Language]
    ) -> list[Identified]:
        return await self.inner.identify(clips, candidates)

    async def recognize(
        self, clips: Sequence[Clip], plan: LanguagePlan, settings: DecodeSettings
    ) -> list[list[Segment]]:
        """Both decodes of the clips at once; the English of a clip whose translation failed
        is empty (its text as said still counts), a failure of the text as said is raised."""
        translate = dataclasses.replace(settings, task="translate")
        said, english = await asyncio.gather(
            self.inner.recognize(clips, plan, settings),
            self.inner.recognize(clips, plan, translate),
            return_exceptions=True,
        )
        if isinstance(said, BaseException):
            raise said
        if isinstance(english, ClipsFailed):
            english = english.results
        elif isinstance(english, BaseException):
            raise english
        out: list[list[Segment]] = []
        for source, target in zip(said, english, strict=True):
            joined = _joined(source)
            if joined is None:
                out.append([])
                continue
            self.english[joined] = " ".join(s.text.strip() for s in target if s.text.strip())
            out.append([joined])
        return out

    async def aclose(self) -> None:
        """Nothing of its own: the server's engine stays open."""


@dataclass(frozen=True)
class TranslatedHypothesis(Hypothesis):
    """A partial result of a translation turn: its text as said and in English."""

    english: str = ""


class TranslatingPartials:
    """Interim decodes of a translation turn: the partial text as said (``PartialDecoder``), then
    the same clip in English, in the language that decode found."""

    def __init__(self, engine: Engine, plan: LanguagePlan, decode: DecodeSettings) -> None:
        self.said = PartialDecoder(engine, plan, decode)
        self.engine = engine
        self.translate = dataclasses.replace(self.said.settings, task="translate")

    def decided(self, language: str | None) -> None:
        """A phrase was heard in ``language`` (see ``PartialDecoder.decided``)."""
        self.said.decided(language)

    async def __call__(self, clip: Clip) -> Hypothesis | None:
        hyp = await self.said(clip)
        if hyp is None:
            return None
        plan = LanguagePlan.parse(forced=hyp.language) if hyp.language else self.said.plan
        (segments,) = await self.engine.recognize([clip], plan, self.translate)
        english = " ".join(s.text.strip() for s in segments if s.text.strip())
        return TranslatedHypothesis(**dataclasses.asdict(hyp), english=english)
