"""Batched Whisper decoding on CTranslate2: one encoder pass per window, shared by language
identification, timestamped beam search and word alignment.

faster-whisper's pipelines run the encoder again for each of those steps. On a CPU the encoder
is most of the cost of a short window (and batching does not make it cheaper there), so voxflow
encodes a window once and keeps the result in a small cache, keyed by the audio's digest, until
the window is decoded. Decoding is in Whisper's timestamp mode, as the sequential
``WhisperModel.transcribe`` decodes; a window whose last phrase is left unfinished reports where
to continue, as the sequential decoder seeks.

Optionally (``min_window``) a short window is encoded at its own length plus a second rather
than at 30 s: the encoder's cost falls about threefold at 20 s. Whisper was trained on 30 s
windows only, so this is a trade of accuracy for speed and is off by default.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# faster-whisper's defaults: punctuation joined to the neighbouring word in word timings.
PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"
MAX_INITIAL_TIMESTAMP = 1.0  # seconds: the first timestamp Whisper may emit in a window
CACHE_WINDOWS = 32  # encoder outputs kept (about 3 MB each for the base model)
WINDOW_MARGIN = 1.0  # seconds of padding after the audio in a shortened window


@dataclass
class Piece:
    """Text between two timestamps of a window, times in seconds from the window's start."""

    start: float
    end: float
    text: str
    tokens: list[int]
    words: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Decoded:
    """One window's decode: its finished pieces, and where the audio must be decoded again
    (``resume``, seconds into the window) when the last phrase was left unfinished; that
    phrase is kept in ``unfinished`` for when the caller does not go on."""

    pieces: list[Piece]
    resume: float | None
    unfinished: Piece | None
    avg_logprob: float
    no_speech_prob: float


def split_at_timestamps(
    tokens: Sequence[int], timestamp_begin: int, precision: float, duration: float
) -> tuple[list[tuple[float, float, list[int]]], float | None, list[int]]:
    """Whisper's reading of a timestamped decode: ``(start, end, text tokens)`` per phrase;
    the time to resume from when the output stops inside a phrase (else None), and the tokens
    of that unfinished phrase (its opening timestamp included)."""
    is_time = [t >= timestamp_begin for t in tokens]
    pairs = [i for i in range(1, len(tokens)) if is_time[i] and is_time[i - 1]]
    single_ending = len(tokens) >= 2 and is_time[-1] and not is_time[-2]

    def seconds(token: int) -> float:
        return (token - timestamp_begin) * precision

    def text(part: Sequence[int]) -> list[int]:
        return [t for t in part if t < timestamp_begin]

    if not pairs:  # one phrase: to its last timestamp, else to the end of the window
        stamps = [t for t in tokens if t > timestamp_begin]
        end = seconds(stamps[-1]) if stamps else duration
        start = seconds(tokens[0]) if tokens and is_time[0] else 0.0
        return [(start, end, text(tokens))], None, []
    cuts = [*pairs, len(tokens)] if single_ending else pairs
    phrases, last = [], 0
    for cut in cuts:
        part = tokens[last:cut]
        phrases.append((seconds(part[0]), seconds(part[-1]), text(part)))
        last = cut
    if single_ending:
        return phrases, None, []
    return phrases, seconds(tokens[last - 1]), list(tokens[last:])


class WindowDecoder:
    """Encodes, identifies and decodes windows of at most 30 s with one faster-whisper model.

    Thread-safe: the model's workers may call it from several threads at once.
    """

    def __init__(self, model: Any, *, min_window: float | None = None) -> None:
        self.model = model
        self.min_window = min_window
        self._cache: OrderedDict[tuple[int, bytes], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self._tokenizers: dict[tuple[str, str], Any] = {}
        # A GPU encodes a batch at the cost of one window; a CPU gains nothing from batching.
        self._batched = model.model.device != "cpu"

    # -- encoder ---------------------------------------------------------------------------
    def _frames(self, samples: np.ndarray) -> int:
        """The encoder's input length for a window, in feature frames: Whisper's 30 s, or with
        ``min_window`` the window's own length plus a margin, at least ``min_window``."""
        extractor = self.model.feature_extractor
        full = extractor.nb_max_frames
        if self.min_window is None:
            return full
        per_second = extractor.sampling_rate / extractor.hop_length
        wanted = -(-len(samples) // extractor.hop_length) + round(WINDOW_MARGIN * per_second)
        frames = min(full, max(wanted, round(self.min_window * per_second)))
        return frames + frames % 2  # the encoder's convolution halves it

    def _features(self, samples: np.ndarray, frames: int) -> np.ndarray:
        """The window's log-Mel features, zero-padded to ``frames`` as faster-whisper pads
        them to 30 s. The samples are first rounded to 16 bits, as faster-whisper's own decoder
        delivers them: half a 16-bit step is enough to change Whisper's text, so a compressed
        source then gives the features (and the text) the reference implementation gives."""
        from faster_whisper.audio import pad_or_trim

        extractor = self.model.feature_extractor
        pcm16 = np.clip(np.round(samples[: extractor.n_samples] * 32768.0), -32768, 32767)
        return pad_or_trim(extractor((pcm16 / 32768.0).astype(np.float32))[..., :-1], frames)

    def encode(self, windows: Sequence[np.ndarray], *, keep: bool = True) -> list[np.ndarray]:
        """Encoder outputs of the windows: from the cache, else computed (and cached if
        ``keep``; a cached output used without ``keep`` is dropped, its window being done)."""
        import ctranslate2

        keys = [(len(w), hashlib.blake2b(w.tobytes(), digest_size=16).digest()) for w in windows]
        out: list[np.ndarray | None] = []
        with self._lock:
            for key in keys:
                found = self._cache.get(key) if keep else self._cache.pop(key, None)
                if found is not None and keep:
                    self._cache.move_to_end(key)
                out.append(found)
        missing = [i for i, found in enumerate(out) if found is None]
        step = max(1, len(missing)) if self._batched else 1
        for at in range(0, len(missing), step):
            chunk = missing[at : at + step]
            frames = max(self._frames(windows[i]) for i in chunk)
            features = np.stack([self._features(windows[i], frames) for i in chunk])
            encoded = self.model.model.encode(
                ctranslate2.StorageView.from_array(features), to_cpu=True
            )
            for i, array in zip(chunk, np.array(encoded), strict=True):
                out[i] = array
        if keep:
            with self._lock:
                for i in missing:
                    self._cache[keys[i]] = out[i]  # type: ignore[assignment]
                while len(self._cache) > CACHE_WINDOWS:
                    self._cache.popitem(last=False)
        return out  # type: ignore[return-value]

    @staticmethod
    def _per_batch(encoded: Sequence[np.ndarray], call: Any) -> list[Any]:
        """``call(batch, indices)`` once per group of equally long encoder outputs (stacked into
        one CTranslate2 batch); its results, one per index, back in the input order."""
        import ctranslate2

        groups: dict[int, list[int]] = {}
        for i, array in enumerate(encoded):
            groups.setdefault(len(array), []).append(i)
        out: list[Any] = [None] * len(encoded)
        for indices in groups.values():
            stacked = np.ascontiguousarray(np.stack([encoded[i] for i in indices]))
            results = call(ctranslate2.StorageView.from_array(stacked), indices)
            for i, result in zip(indices, results, strict=True):
                out[i] = result
        return out

    # -- language identification -----------------------------------------------------------
    def detect(self, windows: Sequence[np.ndarray]) -> list[dict[str, float]]:
        """Every language's probability per window, by Whisper code. The encoder outputs stay
        cached for the decode that usually follows."""
        ranked = self._per_batch(
            self.encode(windows), lambda batch, _: self.model.model.detect_language(batch)
        )
        return [{token[2:-2]: float(p) for token, p in ranking} for ranking in ranked]

    # -- decoding --------------------------------------------------------------------------
    def _tokenizer(self, language: str, task: str) -> Any:
        """faster-whisper's tokenizer for ``task`` (transcribe or translate) from ``language``,
        one per pair: its start sequence names both."""
        from faster_whisper.tokenizer import Tokenizer

        found = self._tokenizers.get((language, task))
        if found is None:
            multilingual = self.model.model.is_multilingual
            found = Tokenizer(self.model.hf_tokenizer, multilingual, task, language)
            self._tokenizers[language, task] = found
        return found

    def decode(
        self,
        windows: Sequence[np.ndarray],
        language: str,
        *,
        beam_size: int = 5,
        hotwords: str | None = None,
        word_timestamps: bool = True,
        task: str = "transcribe",
    ) -> list[Decoded]:
        """Beam-search each window in timestamp mode (``beam_size`` 1: greedy), in one batch,
        with ``hotwords`` in the prompt, for ``task`` (``translate``: English text of speech
        in ``language``); then align words if asked for. Each window's encoder output is taken
        from the cache (and dropped from it), or computed."""
        from faster_whisper.transcribe import get_suppressed_tokens

        model = self.model
        tokenizer = self._tokenizer(language, task)
        encoded = self.encode(windows, keep=False)
        prompt = model.get_prompt(tokenizer, [], without_timestamps=False, hotwords=hotwords)
        results = self._per_batch(
            encoded,
            lambda batch, indices: model.model.generate(
                batch,
                [list(prompt) for _ in indices],
                beam_size=beam_size,
                max_length=model.max_length,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=get_suppressed_tokens(tokenizer, [-1]),
                max_initial_timestamp_index=round(MAX_INITIAL_TIMESTAMP / model.time_precision),
            ),
        )
        decoded = []
        for window, result in zip(windows, results, strict=True):
            tokens = result.sequences_ids[0]
            duration = len(window) / model.feature_extractor.sampling_rate
            phrases, resume, rest = split_at_timestamps(
                tokens, tokenizer.timestamp_begin, model.time_precision, duration
            )
            pieces = [Piece(a, b, tokenizer.decode(part), part) for a, b, part in phrases if part]
            said = [t for t in rest if t < tokenizer.timestamp_begin]
            unfinished = Piece(resume, duration, tokenizer.decode(said), said) if said else None
            decoded.append(
                Decoded(
                    pieces=pieces,
                    resume=resume,
                    unfinished=unfinished,
                    avg_logprob=result.scores[0] * len(tokens) / (len(tokens) + 1),
                    no_speech_prob=result.no_speech_prob,
                )
            )
        if word_timestamps:
            self._align(windows, encoded, decoded, tokenizer)
        return decoded

    def _align(
        self,
        windows: Sequence[np.ndarray],
        encoded: Sequence[np.ndarray],
        decoded: Sequence[Decoded],
        tokenizer: Any,
    ) -> None:
        """Word timings for every piece (the unfinished one included), from the cross-attention
        alignment faster-whisper computes; one batched call per encoder length."""
        model = self.model
        chosen = [i for i, d in enumerate(decoded) if any(p.tokens for p in self._all_pieces(d))]
        if not chosen:
            return
        groups = [
            [
                {"tokens": p.tokens, "start": p.start, "end": p.end, "seek": 0}
                for p in self._all_pieces(decoded[i])
            ]
            for i in chosen
        ]
        extractor = model.feature_extractor
        frames = [
            min(extractor.nb_max_frames, -(-len(windows[i]) // extractor.hop_length))
            for i in chosen
        ]

        def align(batch: Any, indices: list[int]) -> list[None]:
            model.add_word_timestamps(
                [groups[k] for k in indices],
                tokenizer,
                batch,
                [frames[k] for k in indices],
                PREPEND_PUNCTUATIONS,
                APPEND_PUNCTUATIONS,
                0.0,
            )
            return [None] * len(indices)

        self._per_batch([encoded[i] for i in chosen], align)
        for i, group in zip(chosen, groups, strict=True):
            for piece, aligned in zip(self._all_pieces(decoded[i]), group, strict=True):
                piece.words = aligned.get("words", [])

    @staticmethod
    def _all_pieces(decoded: Decoded) -> list[Piece]:
        """The finished pieces and the unfinished one, if any."""
        return decoded.pieces + ([decoded.unfinished] if decoded.unfinished else [])
