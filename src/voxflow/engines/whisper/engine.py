"""The embedded engine: faster-whisper on the bundled base model, batched, in worker threads.

Clips of one language are decoded together in one batched beam search (``WindowDecoder``),
sharing each clip's encoder pass with its language identification and word alignment.
Language identification keeps only the candidate languages' probabilities. A clip whose text
loops or compresses too well is decoded again with repeated phrases blocked, and a clip
Whisper judges to be non-speech is dropped. Nothing is sampled: the same audio gives the same
text on every run, alone or among other files.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import re
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from voxflow.audio.pcm import SAMPLE_RATE
from voxflow.engines.base import Capabilities, Clip, DecodeSettings
from voxflow.engines.whisper.batching import Batcher
from voxflow.engines.whisper.decode import Decoded, Piece, WindowDecoder
from voxflow.engines.whisper.models import resolve_model
from voxflow.engines.whisper.switch import split_at_language_switches
from voxflow.errors import ConfigError, EngineError, ModelError
from voxflow.languages import (
    Identified,
    Language,
    LanguagePlan,
    LidMode,
    candidate_for,
    chinese_script,
    model_code,
    resolve_language,
)
from voxflow.transcript import Segment, Word

# Whisper's own rule for "this window holds no speech".
NO_SPEECH_PROB = 0.6
# Words that fail Whisper's hallucination test are dropped only where the decode itself is
# doubtful: improbable (LOGPROB_FLOOR) or likelier than this not to be speech. Real speech the
# model reads badly (French on the base model) fails the word test too, but is decoded with
# confidence.
NO_SPEECH_DOUBT = 0.5
LOGPROB_FLOOR = -1.0
# Text that gzip shrinks this much is a repetition loop (Whisper's threshold).
COMPRESSION_RATIO_LIMIT = 2.4
# A new output segment starts after a pause this long, or after a sentence end and a shorter one.
PAUSE_SPLIT = 1.0
SENTENCE_PAUSE_SPLIT = 0.3
SENTENCE_ENDS = (".", "?", "!", "。", "？", "！")
PUNCTUATION = "\"'“¿([{-.。,，!！?？:：”)]}、 "  # not words (a phrase of these alone is dropped)
# Decodes of one clip: the first, then continuations of an unfinished phrase.
MAX_ROUNDS = 3
# Audio after an unfinished phrase that is decoded again (less: the phrase is kept as it is).
MIN_RESUME = 0.5
# A clip overrules the language decided at the start when it is this sure of another, and
# gives the decided one less than SWITCH_RULED_OUT.
SWITCH_SURE = 0.8
SWITCH_RULED_OUT = 0.05
MAX_HOTWORDS_CHARS = 600  # phrase-list text given to Whisper as hotwords (its prompt: ~220 tokens)


@dataclass(frozen=True)
class WhisperOptions:
    """How the embedded engine loads and runs the model (how each call decodes is the call's
    ``DecodeSettings``)."""

    model: str | None = None  # None/"base": the bundled weights; a name or a directory
    device: str = "auto"  # "cpu", "cuda" or "auto"
    compute_type: str | None = None  # None: int8 on CPU, float16 on CUDA
    cpu_threads: int = 0  # 0: the machine's cores divided among the workers
    num_workers: int = 2  # parallel model calls
    batch_size: int = 8  # windows per model call on a GPU (a CPU gains nothing from batches)
    # Seconds: windows shorter than 30 s are encoded at this length (or their own plus 1 s)
    # instead of Whisper's 30 s; faster on short clips, outside the model's training. None: 30 s.
    min_window: float | None = None

    def __post_init__(self) -> None:
        if self.min_window is not None and not 0 < self.min_window <= 30:
            raise ConfigError(f"min_window must be in (0, 30] seconds, not {self.min_window}")
        if self.num_workers < 1:
            raise ConfigError(f"the Whisper engine needs at least 1 worker, got {self.num_workers}")
        if self.batch_size < 1:
            raise ConfigError(f"the batch size must be at least 1, got {self.batch_size}")

    def fingerprint(self) -> dict[str, object]:
        """The model, its precision and the window floor change a transcript; the device,
        threads, workers and batch size only how fast it comes."""
        return {"engine": "whisper", "model": self.model or "base",
                "compute_type": self.compute_type, "min_window": self.min_window}  # fmt: skip


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


def hotwords(phrases: Sequence[str]) -> str | None:
    """The phrase list as Whisper's hotwords, trimmed to what fits its prompt."""
    words: list[str] = []
    size = 0
    for phrase in phrases:
        if size + len(phrase) < MAX_HOTWORDS_CHARS:
            words.append(phrase)
            size += len(phrase) + 1
    return " ".join(words) or None


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


@functools.cache
def _script_converter(script: str) -> Any:
    """OpenCC's converter into ``Hans`` (Simplified) or ``Hant`` (Traditional) characters."""
    import opencc

    return opencc.OpenCC("t2s" if script == "Hans" else "s2t")


def in_script(segment: Segment, script: str) -> Segment:
    """A Chinese segment's text and words in one script: Whisper mixes them, and often writes
    Traditional characters for Mandarin asked for as ``zh`` or ``zh-CN``."""
    convert = _script_converter(script).convert
    words = tuple(dataclasses.replace(w, word=convert(w.word)) for w in segment.words)
    return dataclasses.replace(segment, text=convert(segment.text), words=words)


def _own_language(decided: Identified, own: Identified) -> Identified:
    """The file's language for a clip, unless the clip's own identification overrules it: it
    is sure of another language while the file's is all but ruled out for it."""
    ruled_out = own.probabilities.get(decided.language.whisper, 0.0) < SWITCH_RULED_OUT
    if own.language != decided.language and own.confidence >= SWITCH_SURE and ruled_out:
        return own
    return decided


def _cut(clip: Clip, at: float) -> Clip:
    """The clip from ``at`` seconds on."""
    index = int(at * SAMPLE_RATE)
    return Clip(clip.start + index / SAMPLE_RATE, clip.samples[index:])


class WhisperEngine:
    """faster-whisper behind voxflow's async engine protocol; model calls run in worker threads."""

    name = "whisper"

    def __init__(self, options: WhisperOptions | None = None) -> None:
        self.options = options or WhisperOptions()
        self.model = load_model(self.options)
        self.capabilities = Capabilities(
            workers=self.options.num_workers,
            languages=frozenset(self.model.supported_languages),
        )
        self.decoder = WindowDecoder(self.model, min_window=self.options.min_window)
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

    # -- async protocol ------------------------------------------------------------------
    async def identify(
        self, clips: Sequence[Clip], candidates: Sequence[Language]
    ) -> list[Identified]:
        """The language of each clip among the candidates (all Whisper languages when none)."""
        return await self._identify(clips, candidates, background=False)

    async def _identify(
        self, clips: Sequence[Clip], candidates: Sequence[Language], *, background: bool
    ) -> list[Identified]:
        codes = tuple(dict.fromkeys(self._code(lang) for lang in candidates))
        found = await self._batcher.run(("identify", codes), list(clips), background=background)
        return [
            Identified(candidate_for(code, candidates) or resolve_language(code), p, probs)
            for code, p, probs in found
        ]

    async def recognize(
        self, clips: Sequence[Clip], plan: LanguagePlan, settings: DecodeSettings
    ) -> list[list[Segment]]:
        """Each clip in the plan's fixed language (one decided at the start gives way where a
        clip is sure of another); else identified among the candidates, clip by clip, and in
        continuous mode split where its language switches. Chinese comes out in the script
        its tag asks for; with the translate task the text is English, labelled with the
        language spoken."""
        fixed, background = plan.fixed, settings.interim
        if plan.forced is None and plan.decided is not None:
            # Decided from the file's first speech: a clip whose own evidence contradicts it
            # (a code switch, a second speaker) is recognised in its own language instead.
            found = await self._identify(clips, plan.candidates, background=background)
            parts = [
                [(clip, _own_language(plan.decided, own))]
                for clip, own in zip(clips, found, strict=True)
            ]
        elif fixed is not None:
            parts = [[(clip, fixed)] for clip in clips]
        elif plan.mode is LidMode.CONTINUOUS:
            parts = list(
                await asyncio.gather(
                    *(split_at_language_switches(self, clip, plan.candidates) for clip in clips)
                )
            )
        else:
            found = await self._identify(clips, plan.candidates, background=background)
            parts = [[(clip, ident)] for clip, ident in zip(clips, found, strict=True)]
        flat = [(i, part, ident) for i, pieces in enumerate(parts) for part, ident in pieces]
        codes = [self._code(ident.language) for _, _, ident in flat]
        groups: dict[str, list[int]] = {}
        for k, code in enumerate(codes):
            groups.setdefault(code, []).append(k)
        outs = await asyncio.gather(
            *(
                self._batcher.run(
                    ("recognize", code, settings),
                    [(flat[k][1], flat[k][2]) for k in indices],
                    background=background,
                )
                for code, indices in groups.items()
            )
        )
        by_part: dict[int, list[Segment]] = {}
        for indices, out in zip(groups.values(), outs, strict=True):
            by_part.update(zip(indices, out, strict=True))
        for k, ((_, _, ident), code) in enumerate(zip(flat, codes, strict=True)):
            if code == "zh" and settings.task == "transcribe":  # one script, as the tag asks
                script = chinese_script(ident.language)
                by_part[k] = [in_script(segment, script) for segment in by_part[k]]
        results: list[list[Segment]] = [[] for _ in clips]
        for k, (i, _, _) in enumerate(flat):
            results[i].extend(by_part[k])
        return results

    def _code(self, language: Language) -> str:
        """The model's code for a language (``yue`` → ``zh`` on models without Cantonese)."""
        return model_code(language, self.capabilities.languages or ())

    def _run_batch(self, key: Any, items: list[Any]) -> list[Any]:
        """One model call for the batcher, in a worker thread."""
        if key[0] == "identify":
            return self._identify_sync(items, key[1])
        _, code, settings = key
        return self._recognize_group([c for c, _ in items], code, settings, [i for _, i in items])

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- blocking work, run in the worker threads -------------------------------------------
    def _identify_sync(
        self, clips: Sequence[Clip], codes: Sequence[str]
    ) -> list[tuple[str, float, dict[str, float]]]:
        """(code, probability, probabilities among ``codes``) per clip; all languages when
        ``codes`` is empty."""
        if not self.model.model.is_multilingual:
            return [("en", 1.0, {"en": 1.0}) for _ in clips]
        try:
            rankings = self.decoder.detect([clip.samples for clip in clips])
        except Exception as exc:
            raise EngineError(f"language identification failed: {exc}") from None
        identified = []
        for probs in rankings:
            if codes:
                probs = {code: probs.get(code, 0.0) for code in codes}
            total = sum(probs.values()) or 1.0
            probs = {code: p / total for code, p in probs.items()}
            best = max(probs, key=probs.__getitem__)
            identified.append((best, probs[best], probs))
        return identified

    def _decode(
        self, windows: Sequence[np.ndarray], code: str, settings: DecodeSettings
    ) -> list[Decoded]:
        try:
            return self.decoder.decode(
                windows,
                code,
                beam_size=settings.beam_size,
                hotwords=hotwords(settings.phrases),
                word_timestamps=settings.word_timestamps,
                task=settings.task,
            )
        except Exception as exc:
            raise EngineError(f"Whisper inference failed: {exc}") from None

    def _recognize_group(
        self,
        clips: Sequence[Clip],
        code: str,
        settings: DecodeSettings,
        idents: Sequence[Identified],
    ) -> list[list[Segment]]:
        """Decode clips of one language together. A clip whose last phrase was left
        unfinished is decoded on from that phrase's start (as sequential Whisper seeks); these
        follow-ups from all clips share the next batched round. (Decoding again what follows
        the last word when the text seems to end early invented endings on real speech, and
        is not done.)"""
        placed: list[list[tuple[float, Piece]]] = [[] for _ in clips]  # (clip start, piece)
        pending = list(enumerate(clips))
        firsts = self._decode([c.samples for c in clips], code, settings)
        decoded = firsts
        for round_ in range(1, MAX_ROUNDS + 1):
            last = round_ == MAX_ROUNDS
            follow: list[tuple[int, Clip]] = []
            for (i, clip), result in zip(pending, decoded, strict=True):
                kept = result.pieces
                if (
                    not last
                    and result.resume is not None
                    and (clip.duration - result.resume >= MIN_RESUME)
                ):
                    follow.append((i, _cut(clip, result.resume)))
                else:
                    kept = kept + ([result.unfinished] if result.unfinished else [])
                placed[i].extend((clip.start, piece) for piece in kept)
            pending = follow
            if not pending:
                break
            decoded = self._decode([c.samples for _, c in pending], code, settings)
        return [
            self._finish_clip(clip, placed[i], first, code, settings, idents[i])
            for i, (clip, first) in enumerate(zip(clips, firsts, strict=True))
        ]

    def _finish_clip(
        self,
        clip: Clip,
        placed: list[tuple[float, Piece]],
        first: Decoded,
        code: str,
        settings: DecodeSettings,
        ident: Identified,
    ) -> list[Segment]:
        """A clip's segments from its decoded pieces, by Whisper's rules: none for silence or a
        made-up phrase in a doubtful decode, a second decode for a loop. Segments carry the
        language as the user named it and the confidence of its identification."""
        text = "".join(piece.text for _, piece in placed).strip()
        if not text:
            return []
        if first.no_speech_prob > NO_SPEECH_PROB and first.avg_logprob < LOGPROB_FLOOR:
            return []  # Whisper itself says this is not speech
        language, confidence = ident.language.tag, round(float(ident.confidence), 4)
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
        if is_looping(text):
            # Decode again, blocking repeated phrases; at temperature 0 (Whisper's fallback
            # samples at rising temperatures, which would make the text differ run to run).
            text, words = self._redecode(clip, code, settings)
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
        doubtful = first.avg_logprob < LOGPROB_FLOOR or first.no_speech_prob > NO_SPEECH_DOUBT
        if doubtful and is_hallucination(words):
            return []  # words Whisper's own test calls made up, in a decode it doubts
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

    def _redecode(self, clip: Clip, code: str, settings: DecodeSettings) -> tuple[str, list[Word]]:
        """Decode a clip again (its text looped), sequentially, by beam search with repeated
        3-grams blocked."""
        segments, _ = self.model.transcribe(
            clip.samples,
            language=code,
            task=settings.task,
            beam_size=max(5, settings.beam_size),
            temperature=0.0,
            compression_ratio_threshold=COMPRESSION_RATIO_LIMIT,
            condition_on_previous_text=False,
            word_timestamps=settings.word_timestamps,
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
