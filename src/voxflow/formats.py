"""Writers of TXT, JSON, SRT and WebVTT, and readers of them for round trips and verification.

Output is deterministic: JSON keys in a fixed order, seconds rounded to 3 decimals and
probabilities to 4. Subtitles are laid out in lines of at most ``max_width`` display columns
(CJK characters count two) and ``max_lines`` lines per cue; a long segment becomes several
cues, cut at word boundaries and timed from its words when they match its text, else in
proportion to characters. Cue times are whole milliseconds, never overlap, never go backwards
and always last at least 1 ms; a short cue is stretched to ``min_duration`` when the next cue
leaves room.
"""

from __future__ import annotations

import html
import json
import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple

from voxflow.errors import ConfigError, InputError, OutputError
from voxflow.transcript import Segment, Speaker, Transcript, Word

FORMATS = ("txt", "json", "srt", "vtt")
MAX_WIDTH = 42
"""Display columns per subtitle line (a common broadcast limit)."""
MAX_LINES = 2
MIN_DURATION = 0.5
"""Seconds a cue stays on screen at least, when the next cue does not start sooner."""


class Cue(NamedTuple):
    """One subtitle: start and end in seconds, text with ``\\n`` between its lines, and the
    speaker when the transcript has speakers."""

    start: float
    end: float
    text: str
    speaker: str | None = None


def render(transcript: Transcript, fmt: str) -> str:
    """The transcript as the text of a file in ``fmt`` (``txt``, ``json``, ``srt``, ``vtt``)."""
    renderer = _RENDERERS.get(fmt.strip().lower().lstrip("."))
    if renderer is None:
        raise ConfigError(f"unknown output format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return renderer(transcript)


# --- TXT -----------------------------------------------------------------------------------


def render_txt(transcript: Transcript) -> str:
    """One line per segment, whitespace collapsed, empty segments skipped; ``S1: `` before
    the text when the segment has a speaker."""
    lines = [(s.speaker, " ".join(_clean(s.text).split())) for s in transcript.segments]
    return "".join(f"{_speaker_prefix(who)}{line}\n" for who, line in lines if line)


def _speaker_prefix(speaker: str | None) -> str:
    return f"{speaker}: " if speaker else ""


# --- JSON ----------------------------------------------------------------------------------

_TOP_KEYS = ("source", "duration", "language", "segments", "speakers")


def render_json(transcript: Transcript) -> str:
    """The JSON contract: source, duration, language, segments (with words), the speakers
    with their speaking time when diarized (and ``speaker`` on segments and words), then
    extras.

    OutputError when an extra would replace one of those fields or is not JSON-serialisable.
    """
    data: dict[str, Any] = {
        "source": transcript.source,
        "duration": _seconds(transcript.duration),
        "language": transcript.language,
        "segments": [_segment_dict(s) for s in transcript.segments],
    }
    if transcript.speakers:
        data["speakers"] = [{"id": s.id, "speaking_time": _seconds(s.speaking_time)}
                            for s in transcript.speakers]  # fmt: skip
    for key, value in transcript.extra.items():
        if key in _TOP_KEYS:
            message = f"extra field {key!r} would hide a transcript field"
            raise OutputError(message, source=transcript.source)
        data[key] = value
    try:
        text = json.dumps(data, ensure_ascii=False, indent=2, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise OutputError(f"cannot write JSON: {exc}", source=transcript.source) from exc
    return text + "\n"


def transcript_from_json(text: str) -> Transcript:
    """Read a transcript written by :func:`render_json`; InputError when it is not one."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("the top level is not an object")
        return Transcript(
            source=str(data["source"]),
            duration=float(data["duration"]),
            language=data.get("language"),
            segments=tuple(_segment_from(s) for s in data.get("segments") or ()),
            speakers=tuple(
                Speaker(str(s["id"]), float(s["speaking_time"])) for s in data.get("speakers") or ()
            ),
            extra={k: v for k, v in data.items() if k not in _TOP_KEYS},
        )
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise InputError(f"not a voxflow JSON transcript: {detail}") from exc


def _seconds(value: float) -> float:
    return round(float(value), 3) + 0.0  # + 0.0 turns -0.0 into 0.0


def _probability(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4) + 0.0


def _segment_dict(segment: Segment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "start": _seconds(segment.start),
        "end": _seconds(segment.end),
        "text": segment.text,
        "language": segment.language,
        "confidence": _probability(segment.confidence),
    }
    if segment.speaker is not None:
        out["speaker"] = segment.speaker
    out["words"] = [_word_dict(w) for w in segment.words]
    return out


def _word_dict(word: Word) -> dict[str, Any]:
    out: dict[str, Any] = {
        "start": _seconds(word.start),
        "end": _seconds(word.end),
        "word": word.word,
        "probability": _probability(word.probability),
    }
    if word.speaker is not None:
        out["speaker"] = word.speaker
    return out


def _segment_from(data: dict[str, Any]) -> Segment:
    return Segment(
        start=float(data["start"]),
        end=float(data["end"]),
        text=str(data["text"]),
        language=data.get("language"),
        confidence=_optional_float(data.get("confidence")),
        words=tuple(
            Word(float(w["start"]), float(w["end"]), str(w["word"]),
                 _optional_float(w["probability"]), w.get("speaker"))
            for w in data.get("words") or ()
        ),
        speaker=data.get("speaker"),
    )  # fmt: skip


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- timestamps ----------------------------------------------------------------------------


def to_milliseconds(seconds: float) -> int:
    """Seconds as whole milliseconds, half up on the decimal value (0.0005 → 1), never negative."""
    if not math.isfinite(seconds):
        raise OutputError(f"time {seconds} is not a finite number of seconds")
    exact = Decimal(repr(float(seconds))).scaleb(3)
    return max(0, int(exact.to_integral_value(rounding=ROUND_HALF_UP)))


def format_timestamp(seconds: float, decimal_mark: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or with ``.`` (WebVTT); hours grow past two digits when needed."""
    hours, rest = divmod(to_milliseconds(seconds), 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_mark}{millis:03d}"


_TIMESTAMP = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)[,.](\d{3})"
_TIMING = re.compile(rf"^\s*{_TIMESTAMP}\s*-->\s*{_TIMESTAMP}(?:\s.*)?$")


def _parse_timing(line: str, where: str) -> tuple[float, float]:
    match = _TIMING.match(line)
    if match is None:
        raise InputError(f"{where}: expected 'start --> end', got {line[:60]!r}")
    g = match.groups()

    def ms(h: str | None, m: str, s: str, f: str) -> int:
        return ((int(h or 0) * 60 + int(m)) * 60 + int(s)) * 1000 + int(f)

    return ms(*g[:4]) / 1000, ms(*g[4:]) / 1000


# --- subtitle layout -----------------------------------------------------------------------


class _Atom(NamedTuple):
    """An unbreakable piece of a line: its text, whether a space precedes it, its display
    width, and the index of its first non-space character in the segment's text."""

    text: str
    space: bool
    width: int
    offset: int


def cues(
    transcript: Transcript,
    *,
    max_width: int = MAX_WIDTH,
    max_lines: int = MAX_LINES,
    min_duration: float = MIN_DURATION,
) -> list[Cue]:
    """The subtitle cues of a transcript, in time order, with the timing rules above applied."""
    if max_width < 2 or max_lines < 1 or not min_duration >= 0:
        raise ConfigError(
            f"subtitle layout needs max_width >= 2, max_lines >= 1 and min_duration >= 0, got "
            f"{max_width}, {max_lines}, {min_duration}"
        )
    for i, segment in enumerate(transcript.segments):
        if not (math.isfinite(segment.start) and math.isfinite(segment.end)):
            message = f"segment {i} has a time that is not finite"
            raise OutputError(message, source=transcript.source)
    raw: list[tuple[int, int, str, str | None]] = []
    for segment in sorted(transcript.segments, key=lambda s: s.start):
        text = _clean(segment.text)
        atoms = _atoms(text, max_width)
        if not atoms:
            continue
        times = _char_times(text, segment)
        for lines in _chunks(_lines(atoms, max_width), max_lines):
            first, last = lines[0][0], lines[-1][-1]
            start = times[first.offset][0]
            end = times[last.offset + len(last.text) - 1][1]
            text_lines = "\n".join(_join(line) for line in lines)
            raw.append((to_milliseconds(start), to_milliseconds(end), text_lines,
                        segment.speaker))  # fmt: skip
    return _settle(raw, to_milliseconds(min_duration))


def _settle(raw: Sequence[tuple[int, int, str, str | None]], min_ms: int) -> list[Cue]:
    """Make times strictly advance: start at or after the previous end, end after start."""
    out: list[Cue] = []
    prev_end = 0
    for i, (start, end, text, speaker) in enumerate(raw):
        start = max(start, prev_end)
        end = max(end, start + min_ms)
        if i + 1 < len(raw):
            end = min(end, max(raw[i + 1][0], start + 1))
        end = max(end, start + 1)
        out.append(Cue(start / 1000, end / 1000, text, speaker))
        prev_end = end
    return out


def _char_times(text: str, segment: Segment) -> list[tuple[float, float]]:
    """The time span of each non-space character of the segment's text.

    Words time their own characters when, spaces aside, they spell the text, or when they are
    as many as its space-separated tokens (Azure's lexical words under display text); otherwise
    the segment's span is shared out in proportion to characters.
    """
    start = float(segment.start)
    end = max(float(segment.end), start)
    spans = [(_nonspace(text), start, end)]
    words = _clamped_words(segment.words, start, end)
    if words:
        spoken = [_nonspace(_clean(w)) for w, _, _ in words]
        tokens = text.split()
        if "".join("".join(_clean(w).split()) for w, _, _ in words) == "".join(tokens):
            spans = [(n, t0, t1) for n, (_, t0, t1) in zip(spoken, words, strict=True)]
        elif len(tokens) == len(words):
            spans = [(len(tok), t0, t1) for tok, (_, t0, t1) in zip(tokens, words, strict=True)]
    return [(t0 + (t1 - t0) * j / n, t0 + (t1 - t0) * (j + 1) / n)
            for n, t0, t1 in spans for j in range(n)]  # fmt: skip


def _clamped_words(
    words: Sequence[Word], start: float, end: float
) -> list[tuple[str, float, float]]:
    """Word texts with times clamped into the segment, made monotonic; [] if a time is bad."""
    out: list[tuple[str, float, float]] = []
    prev = start
    for w in words:
        if not (math.isfinite(w.start) and math.isfinite(w.end)):
            return []
        t0 = max(min(max(w.start, start), end), prev)
        t1 = max(min(max(w.end, start), end), t0)
        out.append((w.word, t0, t1))
        prev = t0
    return out


def _nonspace(text: str) -> int:
    return sum(1 for c in text if not c.isspace())


def _atoms(text: str, max_width: int) -> list[_Atom]:
    """Cut text where a line may break: at spaces, around wide (CJK) characters, and inside a
    run too long for one line."""
    atoms: list[_Atom] = []
    offset = 0
    for word in text.split():
        space = bool(atoms)
        for run, width in _runs(word, max_width):
            atoms.append(_Atom(run, space, width, offset))
            offset += len(run)
            space = False
    return atoms


def _runs(word: str, max_width: int) -> Iterator[tuple[str, int]]:
    """A word in pieces: each wide cluster alone, narrow ones together up to max_width."""
    run, width, run_wide = "", 0, False
    for cluster in _clusters(word):
        w = _width(cluster)
        if run and (w == 2 or run_wide or width + w > max_width):
            yield run, width
            run, width = "", 0
        run += cluster
        width += w
        run_wide = w == 2
    if run:
        yield run, width


def _clusters(text: str) -> Iterator[str]:
    """User-perceived characters, roughly: combining marks, joiners and selectors stay attached."""
    cluster = ""
    for ch in text:
        attach = (
            unicodedata.category(ch) in ("Mn", "Mc", "Me")
            or ch in "\u200d\ufe0e\ufe0f"
            or "\U0001f3fb" <= ch <= "\U0001f3ff"
            or "\U000e0100" <= ch <= "\U000e01ef"
            or cluster.endswith("\u200d")
        )
        if cluster and not attach:
            yield cluster
            cluster = ""
        cluster += ch
    if cluster:
        yield cluster


def _width(cluster: str) -> int:
    return 2 if unicodedata.east_asian_width(cluster[0]) in ("W", "F") else 1


def _lines(atoms: Sequence[_Atom], max_width: int) -> list[list[_Atom]]:
    """Fill lines greedily up to max_width columns."""
    lines: list[list[_Atom]] = []
    width = 0
    for atom in atoms:
        need = atom.width + (1 if atom.space else 0)
        if lines and lines[-1] and width + need <= max_width:
            lines[-1].append(atom)
            width += need
        else:
            lines.append([atom])
            width = atom.width
    return lines


def _chunks(lines: list[list[_Atom]], size: int) -> Iterator[list[list[_Atom]]]:
    for i in range(0, len(lines), size):
        yield lines[i : i + size]


def _join(line: Sequence[_Atom]) -> str:
    return "".join((" " if a.space and i else "") + a.text for i, a in enumerate(line))


def _clean(text: str) -> str:
    """Drop control characters other than whitespace (which layout collapses anyway)."""
    return "".join(c for c in text if c.isspace() or unicodedata.category(c) != "Cc")


# --- SRT and WebVTT ------------------------------------------------------------------------

_ARROW = re.compile(r"-+->")


def render_srt(
    transcript: Transcript,
    *,
    max_width: int = MAX_WIDTH,
    max_lines: int = MAX_LINES,
    min_duration: float = MIN_DURATION,
) -> str:
    """Numbered SRT cues, ``S1: `` before a speaker's text (SRT has no voice markup); a
    ``-->`` in the text becomes ``->`` (SRT has no escapes)."""
    blocks = [
        f"{n}\n{format_timestamp(c.start)} --> {format_timestamp(c.end)}\n"
        f"{_ARROW.sub('->', _speaker_prefix(c.speaker) + c.text)}\n"
        for n, c in enumerate(
            cues(transcript, max_width=max_width, max_lines=max_lines, min_duration=min_duration),
            start=1,
        )
    ]
    return "\n".join(blocks)


def render_vtt(
    transcript: Transcript,
    *,
    max_width: int = MAX_WIDTH,
    max_lines: int = MAX_LINES,
    min_duration: float = MIN_DURATION,
) -> str:
    """A WebVTT file, a speaker's cues in voice tags (``<v S1>``); ``&``, ``<`` and ``>`` in
    the text are escaped as character references."""
    blocks = [
        f"{format_timestamp(c.start, '.')} --> {format_timestamp(c.end, '.')}\n"
        f"{_voice(c.speaker)}{html.escape(c.text, quote=False)}\n"
        for c in cues(
            transcript, max_width=max_width, max_lines=max_lines, min_duration=min_duration
        )
    ]
    return "\n".join(["WEBVTT\n", *blocks])


def _voice(speaker: str | None) -> str:
    return f"<v {html.escape(speaker)}>" if speaker else ""


def _blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Blocks of non-blank lines with the 1-based number of their first line."""
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    block: list[str] = []
    first = 0
    for number, line in enumerate(lines, start=1):
        if line.strip():
            if not block:
                first = number
            block.append(line)
        elif block:
            yield first, block
            block = []
    if block:
        yield first, block


def parse_srt(text: str) -> list[Cue]:
    """Cues of an SRT file (index lines optional); InputError naming the line when malformed."""
    out: list[Cue] = []
    for first, block in _blocks(text):
        timing = 1 if block[0].strip().isdigit() and len(block) > 1 else 0
        start, end = _parse_timing(block[timing], f"line {first + timing}")
        out.append(Cue(start, end, "\n".join(block[timing + 1 :])))
    return out


_VTT_SKIP = re.compile(r"^(NOTE|STYLE|REGION)(\s|$)")
_TAG = re.compile(r"<[^>\n]*>")
_VOICE = re.compile(r"^<v(?:\.[^\s>]*)?\s+([^>\n]+)>")


def parse_vtt(text: str) -> list[Cue]:
    """Cues of a WebVTT file as plain text: tags dropped, character references decoded, the
    speaker of a cue that opens with a voice tag kept."""
    blocks = list(_blocks(text))
    if not blocks or not re.match(r"WEBVTT(\s|$)", blocks[0][1][0].removeprefix("\ufeff")):
        raise InputError("not a WebVTT file: it must begin with 'WEBVTT'")
    out: list[Cue] = []
    for first, block in blocks[1:]:
        if _VTT_SKIP.match(block[0]):
            continue
        timing = 0 if "-->" in block[0] else 1
        if timing >= len(block):
            raise InputError(f"line {first}: a cue identifier without a timing line")
        start, end = _parse_timing(block[timing], f"line {first + timing}")
        body = "\n".join(block[timing + 1 :])
        voice = _VOICE.match(body)
        speaker = html.unescape(voice.group(1).strip()) if voice else None
        out.append(Cue(start, end, html.unescape(_TAG.sub("", body)), speaker))
    return out


_RENDERERS: dict[str, Callable[[Transcript], str]] = {
    "txt": render_txt,
    "json": render_json,
    "srt": render_srt,
    "vtt": render_vtt,
}
