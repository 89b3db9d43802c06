"""Response bodies of the OpenAI-style API, from a voxflow ``Transcript``: ``json``, ``text``,
``srt``, ``vtt`` (voxflow's own writers), ``verbose_json`` in OpenAI's schema, and the
server-sent events of ``stream=true``.

``verbose_json`` segments carry what voxflow knows: times, text, ``temperature`` 0 (it never
samples), ``compression_ratio`` of the text, and ``avg_logprob`` from the words'
probabilities; ``tokens`` is empty and ``no_speech_prob`` 0 (segments Whisper judged not to be
speech are dropped before they get here).
"""

from __future__ import annotations

import json
import math

from voxflow.engines.whisper.engine import compression_ratio
from voxflow.formats import FORMATS, render
from voxflow.languages import resolve_language
from voxflow.server.openai_api.form import AudioRequest, ResponseFormat
from voxflow.transcript import Segment, Transcript

TEXT = "text/plain; charset=utf-8"


def body(transcript: Transcript, request: AudioRequest) -> tuple[str, str]:
    """The response body for the request's ``response_format``, and its content type."""
    fmt = request.response_format
    if fmt is ResponseFormat.TEXT:
        return transcript.text + "\n", TEXT
    if fmt is ResponseFormat.SRT:
        return render(transcript, "srt"), TEXT
    if fmt is ResponseFormat.VTT:
        return render(transcript, "vtt"), "text/vtt; charset=utf-8"
    if fmt is ResponseFormat.VERBOSE_JSON:
        return json.dumps(verbose(transcript, request), ensure_ascii=False), "application/json"
    data: dict[str, object] = {"text": transcript.text}
    if request.task == "transcribe":
        data["usage"] = _usage(transcript)
    return json.dumps(data, ensure_ascii=False), "application/json"


def language_name(transcript: Transcript, request: AudioRequest) -> str:
    """OpenAI names languages in lower-case English: the output's for a translation
    (``english``), else the one spoken; empty when no speech was found to tell."""
    if request.task == "translate":
        return "english"
    tag = transcript.language
    return resolve_language(tag).name.lower() if tag else ""


def verbose(transcript: Transcript, request: AudioRequest) -> dict[str, object]:
    """``verbose_json``: language, duration, text, and segments and/or words as asked for by
    ``timestamp_granularities[]``."""
    data: dict[str, object] = {
        "task": request.task,
        "language": language_name(transcript, request),
        "duration": transcript.duration,
        "text": transcript.text,
    }
    if request.segments:
        data["segments"] = [_segment(i, s) for i, s in enumerate(transcript.segments)]
    if request.words:
        data["words"] = [
            {"word": w.word.strip(), "start": w.start, "end": w.end}
            for s in transcript.segments
            for w in s.words
            if w.word.strip()
        ]
    if request.task == "transcribe":
        data["usage"] = _usage(transcript)
    return data


def _usage(transcript: Transcript) -> dict[str, object]:
    return {"type": "duration", "seconds": transcript.duration}


def _segment(index: int, segment: Segment) -> dict[str, object]:
    probabilities = [w.probability for w in segment.words if w.probability]
    logprob = sum(map(math.log, probabilities)) / len(probabilities) if probabilities else 0.0
    return {
        "id": index,
        "seek": round(segment.start * 100),  # Whisper's seek: 10 ms frames
        "start": segment.start,
        "end": segment.end,
        "text": segment.text,
        "tokens": [],
        "temperature": 0.0,
        "avg_logprob": round(logprob, 4),
        "compression_ratio": round(compression_ratio(segment.text), 4),
        "no_speech_prob": 0.0,
    }


def event(data: dict[str, object]) -> bytes:
    """One server-sent event; its ``event:`` line names the ``type``, as OpenAI's stream does."""
    name = data.get("type")
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def delta(text: str) -> bytes:
    """``transcript.text.delta``: text added to the transcript (a segment, spaced from the
    last)."""
    return event({"type": "transcript.text.delta", "delta": text})


def segment(index: int, segment: Segment) -> bytes:
    """``transcript.text.segment`` (OpenAI's event for a finished segment), sent by voxflow in
    a ``verbose_json`` stream: id, times and text, and the segment's language."""
    return event({"type": "transcript.text.segment", "id": f"seg_{index:03d}",
                  "start": segment.start, "end": segment.end, "text": segment.text,
                  "language": segment.language})  # fmt: skip


def done(text: str, transcript: Transcript | None = None) -> bytes:
    """``transcript.text.done``: the whole text, which the deltas add up to; in a
    ``verbose_json`` stream also ``files``, the transcript as ``voxflow transcribe`` writes it
    in each format (txt, srt, vtt, json), for the web page's downloads."""
    data: dict[str, object] = {"type": "transcript.text.done", "text": text}
    if transcript is not None:
        data["files"] = {fmt: render(transcript, fmt) for fmt in FORMATS}
    return event(data)
