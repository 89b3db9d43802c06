"""The embedded engine: faster-whisper on the bundled base model, batched, in worker threads.

Clips of one language are decoded together in one batched beam search (``WindowDecoder``),
sharing each clip's encoder pass with its language identification and word alignment.
Language identification keeps only the candidate languages' probabilities. A clip whose text
loops, compresses too well or has a low log-probability is decoded again with temperature
fallback, and a clip Whisper judges to be non-speech is dropped.
"""

from __future__ import annotations

import asyncio
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
from voxflow.engines.whisper.batching import Batcher
from voxflow.engines.whisper.decode import Decoded, Piece, WindowDecoder
from voxflow.engines.whisper.models import resolve_model
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
PUNCTUATION = "\"'“¿([{-.。,，!！?？:：”)]}、 "  # not words (a phrase of these alone is dropped)
# Decodes of one clip: the first, then continuations of an unfinished phrase or a tail.
MAX_ROUNDS = 3
# Audio after an unfinished phrase that is decoded again (less: the phrase is kept as it is).
MIN_RESUME = 0.5
# Audio left after the last recognised word that is decoded again if it sounds like speech.
MIN_TAIL = 1.0
MAX_DECODERS = 8  # decoders kept for engine variants (each option set has its own)


@dataclass(frozen=True)
class WhisperOptions:
    """How the embedded engine loads and runs the model."""

    model: str | None = None  # None/"base": the bundled weights; a name or a directory
    device: str = "auto"  # "cpu", "cuda" or "auto"
    compute_type: str | None = None  # None: int8 on CPU, float16 on CUDA
    cpu_threads: int = 0  # 0: the machine's cores divided among the workers
    num_workers: int = 1  # parallel model calls
    beam_size: int = 5
    batch_size: int = 8  # windows per model call on a GPU (a CPU gains nothing from batches)
    word_timestamps: bool = True
    hotwords: tuple[str, ...] = field(default_factory=tuple)
    # Seconds: windows shorter than 30 s are encoded at this length (or their own plus 1 s)
    # instead of Whisper's 30 s; faster on short clips, outside the model's training. None: 30 s.
    min_window: float | None = None

    def __post_init__(self) -> None:
        if self.min_window is not None and not 0 < self.min_window <= 30:
            raise ConfigError(f"min_window must be in (0, 30] seconds, not {self.min_window}")


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


def is_hallucination(words: Sequence[Word]) -> bool:
    """Whisper's test for a segment it made up: its first eight words (punctuation aside) too
    improbable (below 0.15), too short (under 133 ms) or too long (over 2 s) taken together."""
    spoken = [w for w in words if w.word.strip(PUNCTUATION)][:8]
    score = 0.0
    for word in spoken:
        duration = word.end - word.start
        score += 1.0 if word.probability < 0.15 else 0.0
        score += max(0.0, 0.133 - duration) * 15 + max(0.0, duration - 2.0)
    return bool(spoken) and (score >= 3 or score + 0.01 >= len(spoken))


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


def _by_language(
    languages: Sequence[str | None], found: dict[int, Identified]
) -> tuple[list[Identified | None], dict[str, list[int]]]:
    """Each clip's identification (None where its language was given), and the clips' indices
    grouped by language: the given one, else the identified one."""
    idents = [found.get(i) for i in range(len(languages))]
    groups: dict[str, list[int]] = {}
    for i, lang in enumerate(languages):
        groups.setdefault(lang or found[i].language, []).append(i)
    return idents, groups


def _cut(clip: Clip, at: float) -> Clip:
    """The clip from ``at`` seconds on."""
    index = int(at * SAMPLE_RATE)
    return Clip(clip.start + index / SAMPLE_RATE, clip.samples[index:])


def _speech_tail(clip: Clip, pieces: Sequence[Piece]) -> Clip | None:
    """What follows the last recognised word, when it is long and loud enough to be speech
    that the decode skipped (Whisper sometimes ends its text early)."""
    if not pieces:
        return None
    last = pieces[-1]
    end = float(last.words[-1]["end"]) if last.words else last.end
    if clip.duration - end < MIN_TAIL or not has_speech_after(clip.samples, int(end * SAMPLE_RATE)):
        return None
    return _cut(clip, end)


class WhisperEngine:
    """faster-whisper behind voxflow's async engine protocol; model calls run in worker threads."""

    name = "whisper"

    def __init__(self, options: WhisperOptions | None = None) -> None:
        self.options = options or WhisperOptions()
        self.model = load_model(self.options)
        self.supported_languages: list[str] = list(self.model.supported_languages)
        self._decoders: dict[tuple[Any, ...], WindowDecoder] = {}  # shared by engine variants
        self._decoders_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(
            max_workers=self.options.num_workers, thread_name_prefix="voxflow-whisper"
        )
        # Clips from concurrent calls (several files at once) share batched model calls on a
        # GPU. On a CPU neither the encoder nor the beam search runs faster per window in a
        # batch (benchmarks/bench_transcribe.py), so each call takes one window and the
        # workers share the windows evenly.
        self._batcher = Batcher(
            self._run_batch,
            self._executor,
            workers=self.options.num_workers,
            batch_size=self.options.batch_size if self.model.model.device == "cuda" else 1,
        )

    @property
    def decoder(self) -> WindowDecoder:
        """The window decoder for this engine's options. Variants of the engine (copies with
        other options, as ``voxflow serve`` makes) share the model but not the decoder."""
        o = self.options
        key = (o.beam_size, o.hotwords, o.word_timestamps, o.min_window)
        with self._decoders_lock:  # worker threads ask for it too
            found = self._decoders.get(key)
            if found is None:
                if len(self._decoders) >= MAX_DECODERS:  # e.g. a server's many phrase lists
                    del self._decoders[next(iter(self._decoders))]
                found = self._decoders[key] = WindowDecoder(
                    self.model,
                    beam_size=o.beam_size,
                    hotwords=o.hotwords,
                    word_timestamps=o.word_timestamps,
                    min_window=o.min_window,
                )
            return found

    # -- async protocol ------------------------------------------------------------------
    # Batch keys carry the engine itself: a variant's clips are decoded with its own options.
    async def identify(self, clips: Sequence[Clip], candidates: Sequence[str]) -> list[Identified]:
        return await self._batcher.run(("identify", tuple(candidates), self), list(clips))

    async def recognize(
        self, clips: Sequence[Clip], languages: Sequence[str | None]
    ) -> list[list[Segment]]:
        if len(clips) != len(languages):
            raise ConfigError("recognize() needs one language (or None) per clip")
        undecided = [i for i, lang in enumerate(languages) if lang is None]
        decided = await self.identify([clips[i] for i in undecided], []) if undecided else []
        idents, groups = _by_language(languages, dict(zip(undecided, decided, strict=True)))
        results: list[list[Segment]] = [[] for _ in clips]
        outs = await asyncio.gather(
            *(
                self._batcher.run(("recognize", lang, self), [(clips[i], idents[i]) for i in idx])
                for lang, idx in groups.items()
            )
        )
        for idx, out in zip(groups.values(), outs, strict=True):
            for i, segs in zip(idx, out, strict=True):
                results[i] = segs
        return results

    def _run_batch(self, key: Any, items: list[Any]) -> list[Any]:
        """One model call for the batcher (in a worker thread), by the engine (variant) that
        queued it."""
        kind, arg, engine = key
        if kind == "identify":
            return engine.identify_sync(items, list(arg))
        return engine._recognize_group([c for c, _ in items], arg, [i for _, i in items])

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- blocking work, run in the worker threads -------------------------------------------
    def identify_sync(self, clips: Sequence[Clip], candidates: Sequence[str]) -> list[Identified]:
        """Language of each clip among the candidates (all Whisper languages when empty)."""
        if not clips:
            return []
        if not self.model.model.is_multilingual:
            return [Identified("en", 1.0, {"en": 1.0}) for _ in clips]
        try:
            rankings = self.decoder.detect([clip.samples for clip in clips])
        except Exception as exc:
            raise EngineError(f"language identification failed: {exc}") from None
        identified = []
        for probs in rankings:
            if candidates:
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
        idents, groups = _by_language(languages, dict(zip(undecided, decided, strict=True)))
        results: list[list[Segment]] = [[] for _ in clips]
        for lang, indices in groups.items():
            for start in range(0, len(indices), self.options.batch_size):
                batch = indices[start : start + self.options.batch_size]
                out = self._recognize_group(
                    [clips[i] for i in batch], lang, [idents[i] for i in batch]
                )
                for i, segs in zip(batch, out, strict=True):
                    results[i] = segs
        return results

    def _decode(self, windows: Sequence[np.ndarray], language: str) -> list[Decoded]:
        try:
            return self.decoder.decode(windows, language)
        except Exception as exc:
            raise EngineError(f"Whisper inference failed: {exc}") from None

    def _recognize_group(
        self, clips: Sequence[Clip], language: str, idents: Sequence[Identified | None]
    ) -> list[list[Segment]]:
        """Decode clips of one language together. A clip whose last phrase was left
        unfinished is decoded on from that phrase's start (as sequential Whisper seeks), and
        one whose text ends early while speech goes on has that tail decoded; these follow-ups
        from all clips share the next batched round."""
        placed: list[list[tuple[float, Piece]]] = [[] for _ in clips]  # (clip start, piece)
        pending = list(enumerate(clips))
        firsts = self._decode([c.samples for c in clips], language)
        decoded = firsts
        for round_ in range(1, MAX_ROUNDS + 1):
            last = round_ == MAX_ROUNDS
            follow: list[tuple[int, Clip]] = []
            for (i, clip), result in zip(pending, decoded, strict=True):
                then: Clip | None = None
                kept = result.pieces
                if (
                    not last
                    and result.resume is not None
                    and (clip.duration - result.resume >= MIN_RESUME)
                ):
                    then = _cut(clip, result.resume)
                else:
                    kept = kept + ([result.unfinished] if result.unfinished else [])
                    then = None if last else _speech_tail(clip, kept)
                placed[i].extend((clip.start, piece) for piece in kept)
                if then is not None:
                    follow.append((i, then))
            pending = follow
            if not pending:
                break
            decoded = self._decode([c.samples for _, c in pending], language)
        return [
            self._finish_clip(clip, placed[i], first, language, idents[i])
            for i, (clip, first) in enumerate(zip(clips, firsts, strict=True))
        ]

    def _finish_clip(
        self,
        clip: Clip,
        placed: list[tuple[float, Piece]],
        first: Decoded,
        language: str,
        ident: Identified | None,
    ) -> list[Segment]:
        """A clip's segments from its decoded pieces, by Whisper's rules: none for silence or a
        made-up phrase, a fallback decode for a loop or an improbable text."""
        text = "".join(piece.text for _, piece in placed).strip()
        if not text:
            return []
        if first.no_speech_prob > NO_SPEECH_PROB and first.avg_logprob < LOGPROB_FLOOR:
            return []  # Whisper itself says this is not speech
        confidence = ident.confidence if ident else None
        words = [
            Word(
                start=round(at + float(w["start"]), 3),
                end=round(at + float(w["end"]), 3),
                word=w["word"],
                probability=round(float(w["probability"]), 4),
            )
            for at, piece in placed
            for w in piece.words
        ]
        if is_looping(text) or first.avg_logprob < LOGPROB_FLOOR:
            # Whisper's own fallback: decode again with beam search and rising temperature.
            text, words = self._redecode(clip, language)
            if not text.strip(PUNCTUATION):
                return []
            if not words:
                return [Segment(clip.start, clip.end, text, language, confidence)]
        if not words:
            return [
                Segment(round(at + p.start, 3), round(at + p.end, 3), p.text.strip(), language,
                        confidence)
                for at, p in placed
                if p.text.strip(PUNCTUATION)
            ]  # fmt: skip
        if is_hallucination(words):
            return []  # a clip cut from silence holds nothing but a made-up phrase
        spoken = [w for w in words if w.word.strip(PUNCTUATION)]  # a lone "." is no phrase
        return [
            Segment(
                start=group[0].start,
                end=group[-1].end,
                text="".join(w.word for w in group).strip(),
                language=language,
                confidence=confidence,
                words=tuple(group),
            )
            for group in split_by_pauses(spoken)
        ]

    def _redecode(self, clip: Clip, language: str) -> tuple[str, list[Word]]:
        """Decode a clip again (its text looped or was improbable), sequentially, with beam
        search and temperature fallback."""
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
