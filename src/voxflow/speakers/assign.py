"""Putting speaker labels on a transcript: each word to the voice speaking during it, each
segment cut where the speaker changes, so that no segment holds two speakers.

Turns are known to about a quarter of a second (embeddings every 0.75 s), words to a tenth:
a change that falls between words moves to the clearest break within ``SNAP_WORDS`` words of
it, the longest pause, a sentence's end counting as ``SENTENCE_BONUS`` seconds more.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import replace

from voxflow.speakers.diarize import Turn
from voxflow.transcript import Segment, Speaker, Word

SNAP_WORDS = 2
SENTENCE_BONUS = 0.3
_SENTENCE_END = tuple(".?!。？！")


def speaker_at(turns: Sequence[Turn], starts: Sequence[float], start: float, end: float) -> str:
    """The speaker of the most time within ``start``..``end``; the nearest turn when none
    overlaps it. ``starts`` are the turns' start times (for bisection)."""
    i = bisect.bisect_right(starts, end)
    best, most = None, 0.0
    for turn in turns[max(0, i - 8) : i]:  # turns do not overlap: only the last few can
        overlap = min(end, turn.end) - max(start, turn.start)
        if overlap > most:
            best, most = turn.speaker, overlap
    if best is not None:
        return best
    middle = (start + end) / 2
    nearby = turns[max(0, i - 1) : i + 1]
    return min(nearby, key=lambda t: max(t.start - middle, middle - t.end)).speaker


def label(segments: Sequence[Segment], turns: Sequence[Turn]) -> list[Segment]:
    """The segments with speakers: words by their own times, segments split between words
    where the speaker changes (a segment without words takes its main speaker)."""
    if not turns:
        return list(segments)
    starts = [t.start for t in turns]
    out: list[Segment] = []
    for seg in segments:
        if not seg.words:
            out.append(replace(seg, speaker=speaker_at(turns, starts, seg.start, seg.end)))
            continue
        words = _snap([replace(w, speaker=speaker_at(turns, starts, w.start, w.end))
                       for w in seg.words])  # fmt: skip
        runs: list[list[Word]] = []
        for w in words:
            if runs and runs[-1][-1].speaker == w.speaker:
                runs[-1].append(w)
            else:
                runs.append([w])
        if len(runs) == 1:
            out.append(replace(seg, words=tuple(words), speaker=words[0].speaker))
            continue
        for k, run in enumerate(runs):
            start = seg.start if k == 0 else run[0].start
            end = seg.end if k == len(runs) - 1 else run[-1].end
            text = _join(run, spaced=" " in seg.text.strip())
            out.append(replace(seg, start=start, end=end, text=text, words=tuple(run),
                               speaker=run[0].speaker))  # fmt: skip
    return out


def _snap(words: list[Word]) -> list[Word]:
    """Move each change of speaker to the clearest break near it (see the module's note)."""
    changes = [k for k in range(1, len(words)) if words[k].speaker != words[k - 1].speaker]
    for n, k in enumerate(changes):
        low = max(1, k - SNAP_WORDS, changes[n - 1] + 1 if n else 1)
        high = min(len(words) - 1, k + SNAP_WORDS, changes[n + 1] - 1 if n + 1 < len(changes)
                   else len(words) - 1)  # fmt: skip

        def clarity(j: int) -> float:
            pause = words[j].start - words[j - 1].end
            return pause + (SENTENCE_BONUS if words[j - 1].word.strip().endswith(_SENTENCE_END)
                            else 0.0)  # fmt: skip

        best = max(range(low, high + 1), key=lambda j: (clarity(j), j == k))
        before, after = words[k - 1].speaker, words[k].speaker
        for i in range(min(best, k), max(best, k)):
            words[i] = replace(words[i], speaker=before if best > k else after)
    return words


def speakers(turns: Sequence[Turn | Segment]) -> tuple[Speaker, ...]:
    """Each speaker with the seconds of its turns (or labelled segments), in order of first
    appearance."""
    total: dict[str, float] = {}
    for turn in turns:
        if turn.speaker is not None:
            total[turn.speaker] = total.get(turn.speaker, 0.0) + (turn.end - turn.start)
    return tuple(Speaker(name, round(seconds, 3)) for name, seconds in total.items())


def join_sessions(
    sessions: Sequence[Sequence[Segment]], turns: Sequence[Turn] | None
) -> list[Segment]:
    """Segments of sessions whose engine labelled speakers with ids valid in one session only
    (Azure's ``Guest-1`` …), under one label per voice, ``S1``, ``S2`` … by first appearance.

    With ``turns`` (the offline diarization of the same audio) each (session, id) takes the
    voice its segments overlap most, so a speaker keeps its label from session to session;
    without them each (session, id) is a speaker of its own.
    """
    starts = [t.start for t in turns or ()]
    voice: dict[tuple[int, str], str] = {}
    for index, segments in enumerate(sessions):
        overlap: dict[str, dict[str, float]] = {}
        for seg in segments:
            if seg.speaker is None:
                continue
            votes = overlap.setdefault(seg.speaker, {})
            if turns:
                found = speaker_at(turns, starts, seg.start, seg.end)
                votes[found] = votes.get(found, 0.0) + seg.end - seg.start
        for guest, votes in overlap.items():
            voice[index, guest] = max(votes, key=votes.__getitem__) if votes else f"{index}/{guest}"
    names: dict[str, str] = {}
    out: list[Segment] = []
    for index, segments in enumerate(sessions):
        for seg in segments:
            if seg.speaker is None:
                out.append(seg)
                continue
            name = names.setdefault(voice[index, seg.speaker], f"S{len(names) + 1}")
            words = tuple(replace(w, speaker=name) for w in seg.words)
            out.append(replace(seg, speaker=name, words=words))
    return out


def _join(words: Sequence[Word], spaced: bool) -> str:
    """The text of a run of words: as they are when they carry their own spaces (Whisper's),
    else with a space between them where the segment's text has spaces (lexical words)."""
    if any(w.word[:1].isspace() or w.word[-1:].isspace() for w in words) or not spaced:
        return "".join(w.word for w in words).strip()
    return " ".join(w.word.strip() for w in words)
