"""Interim results: partial decodes of the speech that no phrase covers yet.

While a turn's audio streams, the audio after the last phrase (at most the last 30 s, Whisper's
window) is kept as 16 kHz mono float32. After every ``interval`` seconds of new audio it is
decoded again by the real engine and sent as ``speech.hypothesis``, so the text grows as the
speaker talks. These decodes are best-effort: one runs at a time server-wide (``gate``), a
turn skips a round while the gate is busy, the engine takes them after any final decode
(``DecodeSettings.interim``), and a result is dropped if a phrase overtook it.
Rates other than 16 kHz are resampled linearly, which is good enough for a hypothesis; the
final phrases come from the pipeline's own decoder. A server turn and ``voxflow listen`` both
use this module: ``InterimDecoder`` for when to decode, ``PartialDecoder`` for how.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from voxflow.engines.base import SAMPLE_RATE, Clip, DecodeSettings, Engine
from voxflow.languages import LanguagePlan, LidMode
from voxflow.server.usp import WaveEncoding, WaveFormat

log = logging.getLogger("voxflow.server")

WINDOW = 30.0  # seconds of audio a partial decode looks at, at most
MIN_AUDIO = 1.5  # no hypothesis from less audio than this (Whisper loops on tiny clips)
QUIET_RMS = 1e-3  # about -60 dBFS: nothing to hear


@dataclass(frozen=True)
class Hypothesis:
    """A partial result: text heard between ``start`` and ``end`` (session seconds)."""

    text: str
    start: float
    end: float
    language: str | None = None
    probability: float | None = None


Decode = Callable[[Clip], Awaitable[Hypothesis | None]]
Send = Callable[[Hypothesis], Awaitable[None]]

#: Audio as 16 kHz mono float32 bytes: what ``voxflow listen`` feeds the decoder and pipeline.
FLOAT_MONO = WaveFormat(SAMPLE_RATE, 1, 32, WaveEncoding.FLOAT)


class PartialDecoder:
    """Decodes clips for hypotheses with the real engine: greedy and without word times (cheap,
    and only interim). Until a phrase decides the language, each clip's is identified."""

    def __init__(self, engine: Engine, plan: LanguagePlan, decode: DecodeSettings) -> None:
        self.engine = engine
        self.plan = dataclasses.replace(plan, mode=LidMode.AT_START)
        self.identify = plan.mode is LidMode.AT_START
        self.settings = dataclasses.replace(
            decode, beam_size=1, word_timestamps=False, interim=True
        )

    def decided(self, language: str | None) -> None:
        """A phrase was heard in ``language``: with language id at the start, the partials
        keep to it from now on."""
        if not language or self.plan.fixed is not None or not self.identify:
            return
        chosen = next((c for c in self.plan.candidates if c.tag == language), None)
        if chosen is not None:
            self.plan = LanguagePlan(forced=chosen)

    async def __call__(self, clip: Clip) -> Hypothesis | None:
        plan = self.plan
        (segments,) = await self.engine.recognize([clip], plan, self.settings)
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        if not text:
            return None
        language = segments[0].language
        # A probability only where this decode identified the language itself.
        probability = segments[0].confidence if language and plan.fixed is None else None
        return Hypothesis(text, clip.start, clip.end, language, probability)


def _g711_tables() -> tuple[np.ndarray, np.ndarray]:
    """Sample values of every mu-law and A-law byte (ITU-T G.711), as float32 in [-1, 1]."""
    b = np.arange(256, dtype=np.int32)
    u = ~b & 0xFF
    mu = (((u & 0x0F) << 3) + 0x84 << ((u >> 4) & 7)) - 0x84
    mu = np.where(u & 0x80, -mu, mu)
    a = b ^ 0x55
    exp, man = (a >> 4) & 7, a & 0x0F
    al = np.where(exp == 0, (man << 4) + 8, ((man << 4) + 0x108) << np.maximum(exp - 1, 0))
    al = np.where(a & 0x80, al, -al)
    return (mu / 32768.0).astype(np.float32), (al / 32768.0).astype(np.float32)


_MULAW, _ALAW = _g711_tables()


def to_mono_float(data: bytes, fmt: WaveFormat) -> np.ndarray:
    """Whole sample frames of ``data`` as mono float32 in [-1, 1], at the format's own rate."""
    width = fmt.bits_per_sample // 8
    usable = len(data) - len(data) % fmt.block_align
    raw = np.frombuffer(data, dtype=np.uint8, count=usable)
    if fmt.encoding is WaveEncoding.MULAW:
        x = _MULAW[raw]
    elif fmt.encoding is WaveEncoding.ALAW:
        x = _ALAW[raw]
    elif fmt.encoding is WaveEncoding.FLOAT:  # NaN and inf as silence, the rest at full scale
        x = raw.view("<f4" if width == 4 else "<f8")
        x = np.clip(np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0), -1.0, 1.0)
        x = x.astype(np.float32)
    elif width == 1:
        x = (raw.astype(np.float32) - 128.0) / 128.0
    elif width == 3:
        b = raw.reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = (np.where(v >= 1 << 23, v - (1 << 24), v) / float(1 << 23)).astype(np.float32)
    else:
        full_scale = float(1 << (8 * width - 1))
        x = raw.view("<i2" if width == 2 else "<i4").astype(np.float32) / full_scale
    return x.reshape(-1, fmt.channels).mean(axis=1, dtype=np.float32)


class _Resampler:
    """Linear resampling to 16 kHz across chunk boundaries, without drift."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.taken = 0  # input samples seen
        self.made = 0  # output samples made
        self.last = np.zeros(1, dtype=np.float32)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.rate == SAMPLE_RATE or not len(x):
            return x
        ext = np.concatenate([self.last, x])  # ext[0] is input sample taken - 1
        end = (self.taken + len(x) - 1) * SAMPLE_RATE // self.rate + 1
        wanted = np.arange(self.made, end) * (self.rate / SAMPLE_RATE) - (self.taken - 1)
        out = np.interp(wanted, np.arange(len(ext)), ext).astype(np.float32)
        self.taken += len(x)
        self.made = end
        self.last = x[-1:]
        return out


class InterimDecoder:
    """Keeps the turn's uncovered audio and sends a hypothesis every ``interval`` s of it."""

    def __init__(
        self,
        fmt: WaveFormat,
        *,
        start: float,
        interval: float,
        gate: asyncio.Semaphore,
        decode: Decode,
        send: Send,
    ) -> None:
        self.fmt = fmt
        self.interval = interval
        self.gate = gate
        self._decode = decode
        self._send = send
        self._resample = _Resampler(fmt.sample_rate)
        self._rest = b""
        self._blocks: list[np.ndarray] = []
        self._held = 0
        self.start = start  # session time of the first sample held
        self._pending = 0.0  # seconds since the last decode began
        self._generation = 0
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.sent = 0  # hypotheses sent

    @property
    def end(self) -> float:
        return self.start + self._held / SAMPLE_RATE

    def feed(self, data: bytes) -> None:
        """Audio of the turn as it arrives; may start a partial decode."""
        if self._closed:
            return
        data = self._rest + data
        cut = len(data) - len(data) % self.fmt.block_align
        self._rest = data[cut:]
        x = self._resample(to_mono_float(data[:cut], self.fmt))
        if len(x):
            self._blocks.append(x)
            self._held += len(x)
            self._pending += len(x) / SAMPLE_RATE
            self._trim(self.end - WINDOW)
        busy = self._task is not None and not self._task.done()
        enough = self._held >= MIN_AUDIO * SAMPLE_RATE
        if self._pending >= self.interval and enough and not busy and not self.gate.locked():
            self._pending = 0.0
            self._task = asyncio.ensure_future(self._run(self._clip(), self._generation))

    def advance(self, to: float) -> None:
        """A phrase covers the audio up to ``to``: forget it, and drop any decode in flight
        (one still waiting for the engine gives way at once)."""
        self._generation += 1
        self._trim(to)
        if self._task is not None:
            self._task.cancel()

    async def aclose(self) -> None:
        """No more hypotheses for this turn."""
        self._closed = True
        self._generation += 1
        self._blocks.clear()
        self._held = 0
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _trim(self, to: float) -> None:
        drop = min(self._held, round((to - self.start) * SAMPLE_RATE))
        if drop <= 0:
            return
        self.start += drop / SAMPLE_RATE
        self._held -= drop
        while drop:
            block = self._blocks[0]
            if len(block) <= drop:
                self._blocks.pop(0)
                drop -= len(block)
            else:
                self._blocks[0] = block[drop:]
                drop = 0

    def _clip(self) -> Clip:
        samples = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)
        return Clip(self.start, samples)

    async def _run(self, clip: Clip, generation: int) -> None:
        if clip.duration < MIN_AUDIO or float(np.sqrt(np.mean(clip.samples**2))) < QUIET_RMS:
            return
        async with self.gate:
            if generation != self._generation:
                return
            try:
                result = await self._decode(clip)
            except Exception as exc:  # a hypothesis is optional; the phrase will tell
                log.debug("partial decode failed: %s", exc)
                return
        if result is not None and result.text and generation == self._generation:
            self.sent += 1
            await self._send(result)
