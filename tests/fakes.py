"""A fake engine for pipeline tests, as httpx's MockTransport is for its clients: it implements
the engine protocol without a model, records what the pipeline asks of it, and answers each
clip with a segment that says where the clip lay, so ordering, language plans, settings and
failures can be checked in milliseconds. The real-model tests stay (tests/test_transcribe.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from voxflow.engines.base import Capabilities, Clip, ClipsFailed, DecodeSettings, FailedClip
from voxflow.languages import Identified, Language, LanguagePlan, resolve_language
from voxflow.transcript import Segment


@dataclass(frozen=True)
class FakeOptions:
    """The fake's options: only a name, which is all its output depends on."""

    label: str = "fake"

    def fingerprint(self) -> dict[str, object]:
        return {"engine": self.label}


@dataclass
class FakeEngine:
    """Answers ``clip START-END`` per clip in the plan's fixed language (``identify``: the
    ``identified`` candidate, else the first); ``delays`` make calls finish out of order;
    ``failing`` clip starts are lost as ``ClipsFailed``."""

    capabilities: Capabilities = field(default_factory=Capabilities)
    identified: str | None = None
    delays: Sequence[float] = ()
    failing: frozenset[float] = frozenset()
    name: str = "fake"
    options: FakeOptions = field(default_factory=FakeOptions)
    identify_calls: list[list[Clip]] = field(default_factory=list)
    recognize_calls: list[tuple[list[Clip], LanguagePlan, DecodeSettings]] = field(
        default_factory=list
    )

    async def identify(
        self, clips: Sequence[Clip], candidates: Sequence[Language]
    ) -> list[Identified]:
        self.identify_calls.append(list(clips))
        chosen = next((c for c in candidates if c.tag == self.identified), None)
        language = chosen or (candidates[0] if candidates else resolve_language("en"))
        return [Identified(language, 0.75) for _ in clips]

    async def recognize(
        self, clips: Sequence[Clip], plan: LanguagePlan, settings: DecodeSettings
    ) -> list[list[Segment]]:
        call = len(self.recognize_calls)
        self.recognize_calls.append((list(clips), plan, settings))
        if call < len(self.delays):
            await asyncio.sleep(self.delays[call])
        fixed = plan.fixed
        language = fixed.language.tag if fixed else None
        confidence = fixed.confidence if fixed else None
        results = [
            []
            if round(c.start, 1) in self.failing
            else [Segment(c.start, c.end, f"clip {c.start:.1f}", language, confidence)]
            for c in clips
        ]
        lost = [FailedClip(c.start, c.end, "fake failure") for c in clips
                if round(c.start, 1) in self.failing]  # fmt: skip
        if lost:
            raise ClipsFailed("fake failure", results=results, failures=lost)
        return results

    async def aclose(self) -> None:
        return None
