"""The embedded engine: faster-whisper on the bundled base model, batched, in worker threads.

Clips of one language are transcribed together in one batched encoder/decoder call (the
``BatchedInferencePipeline`` of faster-whisper, fed clip boundaries that voxflow planned), so
two cores stay busy. Language identification runs the encoder on each clip and keeps only the
candidate languages' probabilities. A clip whose text loops or compresses too well is decoded
again with temperature fallback, and a clip Whisper judges to be non-speech is dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from voxflow.engines.base import SAMPLE_RATE, Clip, Identified
from voxflow.engines.batching import Batcher
from voxflow.engines.models import resolve_model
from voxflow.errors import ConfigError, EngineError, ModelError
from voxflow.transcript import Segment, Word

# Whisper's own rule for "this window holds no speech".
NO_SPEECH_PROB = 0.6
LOGPROB_FLOOR = -1.0
# Text that gzip shrinks this much is a repetition loop (Whisper's threshold).
COMPRESSION_RATIO_LIMIT = 2.4
FALLBACK_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
# A new output segment starts after a pause this long, or after a sentence end and a shorter one.
PAUSE_SPLIT = 1.0
SENTENCE_PAUSE_SPLIT = 0.3
SENTENCE_ENDS = (".", "?", "!", "。", "？", "！")
# Audio left after the last recognised word that is decoded again (seconds, passes).
MIN_TAIL = 1.0
TAIL_PASSES = 2


@dataclass(frozen=True)
class WhisperOptions:
    """How the embedded engine loads and runs the model."""

    model: str | None = None  # None/"base": the bundled weights; a name or a directory
    device: str = "auto"  # "cpu", "cuda" or "auto"
    compute_type: str | None = None  # None: int8 on CPU, float16 on CUDA
    cpu_threads: int = 0  # 0: the machine's cores divided among the workers
    num_workers: int = 1  # parallel model calls
    beam_size: int = 5
    batch_size: int = 8
    word_timestamps: bool = True
    hotwords: tuple[str, ...] = field(default_factory=tuple)


_models: dict[tuple[Any, ...], Any] = {}
_models_lock = threading.Lock()


def _pick_device(device: str) -> str:
    if device != "auto":
        return device
    try:
        import ctranslate2

        return "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    except Exception:  # a CUDA runtime that cannot even be queried
        return "cpu"


def load_model(options: WhisperOptions) -> Any:
    """Load (once per process and settings) a faster-whisper model, or raise ModelError."""
    path = resolve_model(options.model)
    device = _pick_device(options.device)
    compute_type = options.compute_type or ("int8" if device == "cpu" else "float16")
    threads = options.cpu_threads or max(1, (os.cpu_count() or 1) // options.num_workers)
    key = (path, device, compute_type, threads, options.num_workers)
    with _models_lock:
        if key in _models:
            return _models[key]
        from faster_whisper import WhisperModel

        label = options.model or "base (bundled)"
        try:
            model = WhisperModel(
                path,
                device=device,
                compute_type=compute_type,
                cpu_threads=threads,
                num_workers=options.num_workers,
            )
        except Exception as exc:  # hub client, CTranslate2 and tokenizer errors alike
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if not os.path.isdir(path):
                reason = (
                    "not a local model directory and it could not be fetched from the model "
                    f"hub (offline?): {reason[:200]}"
                )
            raise ModelError(f"cannot load the Whisper model: {reason}", source=label) from None
        _models[key] = model
        return model


def compression_ratio(text: str) -> float:
    """How much zlib shrinks the text: loops of repeated phrases compress far better than speech."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def collapse_repeats(words: list[Word], max_repeats: int = 2) -> list[Word]:
    """Drop runs of a phrase (1-8 words) repeated more than ``max_repeats`` times in a row."""
    out = list(words)
    changed = True
    while changed:
        changed = False
        keys = [_norm(w.word) for w in out]
        for n in range(1, 9):
            i = 0
            while i + n * (max_repeats + 1) <= len(keys):
                unit = keys[i : i + n]
                reps = 1
                while keys[i + reps * n : i + (reps + 1) * n] == unit:
                    reps += 1
                if reps > max_repeats:
                    del out[i + max_repeats * n : i + reps * n]
                    del keys[i + max_repeats * n : i + reps * n]
                    changed = True
                i += 1
    return out


def collapse_repeated_text(text: str, max_repeats: int = 2) -> str:
    """The text form of :func:`collapse_repeats`, for clips decoded without word times."""
    words = [Word(0.0, 0.0, w, 0.0) for w in re.findall(r"\S+\s*", text)]
    return "".join(w.word for w in collapse_repeats(words, max_repeats)).strip()


def _norm(word: str) -> str:
    return re.sub(r"[^\w']+", "", word.lower())


def is_looping(text: str) -> bool:
    """True when text repeats itself the way Whisper's decoding loops do."""
    if compression_ratio(text) > COMPRESSION_RATIO_LIMIT:
        return True
    return collapse_repeated_text(text, max_repeats=3) != text.strip()


def has_speech_after(samples: np.ndarray, start: int, frame: int = 480) -> bool:
    """Whether ``samples[start:]`` holds 300 ms within 20 dB of the clip's loud frames."""
    usable = len(samples) // frame * frame
    if usable == 0 or start >= usable:
        return False
    power = np.square(samples[:usable].astype(np.float64)).reshape(-1, frame).mean(axis=1)
    level = 10 * np.log10(power + 1e-12)
    loud = level > np.percentile(level, 90) - 20
    run = 0
    for is_loud in loud[start // frame :]:
        run = run + 1 if is_loud else 0
        if run >= 10:
            return True
    return False


def split_by_pauses(words: Sequence[Word]) -> list[list[Word]]:
    """Group words into phrases at long pauses, or at sentence ends followed by a short pause."""
    groups: list[list[Word]] = []
    for word in words:
        if groups:
            prev = groups[-1][-1]
            gap = word.start - prev.end
            sentence_end = prev.word.strip().endswith(SENTENCE_ENDS)
            if gap >= PAUSE_SPLIT or (sentence_end and gap >= SENTENCE_PAUSE_SPLIT):
                groups.append([word])
                continue
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


class WhisperEngine:
    """faster-whisper behind voxflow's async engine protocol; model calls run in worker threads."""

    name = "whisper"

    def __init__(self, options: WhisperOptions | None = None) -> None:
        self.options = options or WhisperOptions()
        self.model = load_model(self.options)
        self.supported_languages: list[str] = list(self.model.supported_languages)
        self._executor = ThreadPoolExecutor(
            max_workers=self.options.num_workers, thread_name_prefix="voxflow-whisper"
        )
        # Clips from concurrent calls (several files at once) share batched model calls.
        self._batcher = Batcher(
            self._run_batch,
            self._executor,
            workers=self.options.num_workers,
            batch_size=self.options.batch_size,
        )

    # -- async protocol ------------------------------------------------------------------
    async def identify(self, clips: Sequence[Clip], candidates: Sequence[str]) -> list[Identified]:
        return await self._batcher.run(("identify", tuple(candidates)), list(clips))

    async def recognize(
        self, clips: Sequence[Clip], languages: Sequence[str | None]
    ) -> list[list[Segment]]:
        if len(clips) != len(languages):
            raise ConfigError("recognize() needs one language (or None) per clip")
        undecided = [i for i, lang in enumerate(languages) if lang is None]
        decided = await self.identify([clips[i] for i in undecided], []) if undecided else []
        found = dict(zip(undecided, decided, strict=True))
        groups: dict[str, list[int]] = {}
        for i, lang in enumerate(languages):
            groups.setdefault(lang or found[i].language, []).append(i)
        results: list[list[Segment]] = [[] for _ in clips]
        outs = await asyncio.gather(
            *(
                self._batcher.run(("recognize", lang), [(clips[i], found.get(i)) for i in idx])
                for lang, idx in groups.items()
            )
        )
        for idx, out in zip(groups.values(), outs, strict=True):
            for i, segs in zip(idx, out, strict=True):
                results[i] = segs
        return results

    def _run_batch(self, key: Any, items: list[Any]) -> list[Any]:
        """One batched model call for the batcher (in a worker thread)."""
        kind, arg = key
        if kind == "identify":
            return self.identify_sync(items, list(arg))
        return self._recognize_group([c for c, _ in items], arg, [i for _, i in items])

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- blocking work, run in the worker threads -------------------------------------------
    def identify_sync(self, clips: Sequence[Clip], candidates: Sequence[str]) -> list[Identified]:
        """Language of each clip among the candidates (all Whisper languages when empty)."""
        from faster_whisper.audio import pad_or_trim

        if not clips:
            return []
        model = self.model
        if not model.model.is_multilingual:
            return [Identified("en", 1.0, {"en": 1.0}) for _ in clips]
        n_samples = model.feature_extractor.n_samples
        features = np.stack(
            [
                pad_or_trim(model.feature_extractor(clip.samples[:n_samples])[..., :-1])
                for clip in clips
            ]
        )
        try:
            encoded = model.encode(features)
            results = model.model.detect_language(encoded)
        except Exception as exc:
            raise EngineError(f"language identification failed: {exc}") from None
        allowed = set(candidates)
        identified = []
        for ranking in results:
            probs = {token[2:-2]: float(p) for token, p in ranking}
            if allowed:
                probs = {code: probs.get(code, 0.0) for code in candidates}
            total = sum(probs.values()) or 1.0
            probs = {code: p / total for code, p in probs.items()}
            best = max(probs, key=probs.__getitem__)
            identified.append(Identified(best, probs[best], probs))
        return identified

    def recognize_sync(
        self, clips: Sequence[Clip], languages: Sequence[str | None]
    ) -> list[list[Segment]]:
        """Transcribe clips, batching those that share a language; one result list per clip."""
        if len(clips) != len(languages):
            raise ConfigError("recognize() needs one language (or None) per clip")
        undecided = [i for i, lang in enumerate(languages) if lang is None]
        decided = self.identify_sync([clips[i] for i in undecided], [])
        found = dict(zip(undecided, decided, strict=True))
        chosen = [lang or found[i].language for i, lang in enumerate(languages)]
        by_language: dict[str, list[int]] = {}
        for i, lang in enumerate(chosen):
            by_language.setdefault(lang, []).append(i)
        results: list[list[Segment]] = [[] for _ in clips]
        for lang, indices in by_language.items():
            for start in range(0, len(indices), self.options.batch_size):
                batch = indices[start : start + self.options.batch_size]
                out = self._recognize_group(
                    [clips[i] for i in batch], lang, [found.get(i) for i in batch]
                )
                for i, segs in zip(batch, out, strict=True):
                    results[i] = segs
        return results

    def _recognize_group(
        self,
        clips: Sequence[Clip],
        language: str,
        idents: Sequence[Identified | None],
        depth: int = 0,
    ) -> list[list[Segment]]:
        from faster_whisper import BatchedInferencePipeline

        opts = self.options
        # One array holding the clips back to back; clip boundaries are exact sample indices
        # (half a sample is added because faster-whisper truncates seconds * rate).
        bounds = np.cumsum([0] + [len(c.samples) for c in clips])
        audio = np.concatenate([c.samples for c in clips]).astype(np.float32, copy=False)
        stamps = [
            {"start": (a + 0.5) / SAMPLE_RATE, "end": (b + 0.5) / SAMPLE_RATE}
            for a, b in itertools.pairwise(bounds)
        ]
        pipeline = BatchedInferencePipeline(self.model)
        try:
            segments, _info = pipeline.transcribe(
                audio,
                language=language,
                clip_timestamps=stamps,
                batch_size=len(clips),
                beam_size=opts.beam_size,
                word_timestamps=opts.word_timestamps,
                vad_filter=False,
                without_timestamps=True,
                hotwords=" ".join(opts.hotwords) or None,
            )
            raw = list(segments)
        except Exception as exc:
            raise EngineError(f"Whisper inference failed: {exc}") from None
        frames_per_second = self.model.frames_per_second
        # faster-whisper marks each result with its window's offset in frames, computed from
        # the sample index it cut at; the same arithmetic maps results back to clips.
        seek_to_clip = {
            int(int(s["start"] * SAMPLE_RATE) / SAMPLE_RATE * frames_per_second): i
            for i, s in enumerate(stamps)
        }
        per_clip: list[list[Any]] = [[] for _ in clips]
        for seg in raw:
            index = seek_to_clip.get(seg.seek)
            if index is None:  # fall back to the clip whose span holds the segment start
                at = (seg.start + 0.0005) * SAMPLE_RATE  # starts are rounded to the millisecond
                index = int(np.searchsorted(bounds, at, side="right")) - 1
            per_clip[min(max(index, 0), len(clips) - 1)].append(seg)
        out = []
        for i, clip in enumerate(clips):
            offset = clip.start - float(bounds[i]) / SAMPLE_RATE
            out.append(self._finish_clip(clip, per_clip[i], offset, language, idents[i]))
        if depth < TAIL_PASSES:
            self._recover_tails(clips, out, language, idents, depth)
        return out

    def _recover_tails(
        self,
        clips: Sequence[Clip],
        out: list[list[Segment]],
        language: str,
        idents: Sequence[Identified | None],
        depth: int,
    ) -> None:
        """Decode again what follows the last recognised word when it still sounds like speech.

        A batched decode has no second pass over its window: when Whisper ends its text early,
        the rest of the clip would be lost. The tail is decoded as a clip of its own.
        """
        tails: list[tuple[int, Clip]] = []
        for i, (clip, segs) in enumerate(zip(clips, out, strict=True)):
            if not segs or clip.end - segs[-1].end < MIN_TAIL:
                continue
            cut = int((segs[-1].end - clip.start) * SAMPLE_RATE)
            if has_speech_after(clip.samples, cut):
                tails.append((i, Clip(clip.start + cut / SAMPLE_RATE, clip.samples[cut:])))
        if not tails:
            return
        more = self._recognize_group(
            [t for _, t in tails], language, [idents[i] for i, _ in tails], depth + 1
        )
        for (i, _), segs in zip(tails, more, strict=True):
            out[i].extend(segs)

    def _finish_clip(
        self,
        clip: Clip,
        raw: list[Any],
        offset: float,
        language: str,
        ident: Identified | None,
    ) -> list[Segment]:
        text = "".join(s.text for s in raw).strip()
        if not text:
            return []
        if all(s.no_speech_prob > NO_SPEECH_PROB and s.avg_logprob < LOGPROB_FLOOR for s in raw):
            return []  # Whisper itself says this is not speech
        words = [
            Word(
                start=round(float(w.start) + offset, 3),
                end=round(float(w.end) + offset, 3),
                word=w.word,
                probability=round(float(w.probability), 4),
            )
            for s in raw
            for w in (s.words or ())
        ]
        if is_looping(text):
            text, words = self._redecode(clip, language)
            if not text:
                return []
        confidence = ident.confidence if ident else None
        if not words:
            return [Segment(clip.start, clip.end, text, language, confidence)]
        return [
            Segment(
                start=group[0].start,
                end=group[-1].end,
                text="".join(w.word for w in group).strip(),
                language=language,
                confidence=confidence,
                words=tuple(group),
            )
            for group in split_by_pauses(words)
        ]

    def _redecode(self, clip: Clip, language: str) -> tuple[str, list[Word]]:
        """Decode a looping clip again, sequentially, with beam search and temperature fallback."""
        segments, _ = self.model.transcribe(
            clip.samples,
            language=language,
            beam_size=max(5, self.options.beam_size),
            temperature=FALLBACK_TEMPERATURES,
            compression_ratio_threshold=COMPRESSION_RATIO_LIMIT,
            condition_on_previous_text=False,
            word_timestamps=self.options.word_timestamps,
            vad_filter=False,
            no_repeat_ngram_size=3,
        )
        raw = list(segments)
        words = collapse_repeats(
            [
                Word(
                    round(float(w.start) + clip.start, 3),
                    round(float(w.end) + clip.start, 3),
                    w.word,
                    round(float(w.probability), 4),
                )
                for s in raw
                for w in (s.words or ())
            ]
        )
        if words:
            return "".join(w.word for w in words).strip(), words
        return collapse_repeated_text("".join(s.text for s in raw)), []
