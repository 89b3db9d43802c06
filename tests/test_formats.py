"""TXT / JSON / SRT / WebVTT writers and readers: exact formatting, cue invariants, round trips."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxflow.errors import ConfigError, InputError, OutputError
from voxflow.formats import (
    FORMATS,
    MAX_WIDTH,
    Cue,
    cues,
    format_timestamp,
    parse_srt,
    parse_vtt,
    render,
    render_json,
    render_srt,
    render_txt,
    render_vtt,
    to_milliseconds,
    transcript_from_json,
)
from voxflow.transcript import Segment, Transcript, Word

TALK = Transcript(
    source="talk.wav",
    duration=3726.5,
    language="en",
    extra={"model": "base"},
    segments=(
        Segment(0.0, 1.2, " Hello, world.", "en", 0.91234,
                (Word(0.0, 0.5, " Hello,", 0.98765), Word(0.6, 1.2, " world.", 0.9))),
        Segment(1.5, 1.6, " ¿Qué tal?", "es", 0.5),  # too short: stretched to 0.5 s
        Segment(3.0, 8.0, "This sentence is long enough to need two lines on screen"),
        Segment(8.0, 9.0, "   "),  # empty: no cue, no TXT line
        Segment(3725.0, 3726.5, "a < b && c --> d"),
    ),
)  # fmt: skip

TALK_SRT = """\
1
00:00:00,000 --> 00:00:01,200
Hello, world.

2
00:00:01,500 --> 00:00:02,000
¿Qué tal?

3
00:00:03,000 --> 00:00:08,000
This sentence is long enough to need two
lines on screen

4
01:02:05,000 --> 01:02:06,500
a < b && c -> d
"""

TALK_VTT = """\
WEBVTT

00:00:00.000 --> 00:00:01.200
Hello, world.

00:00:01.500 --> 00:00:02.000
¿Qué tal?

00:00:03.000 --> 00:00:08.000
This sentence is long enough to need two
lines on screen

01:02:05.000 --> 01:02:06.500
a &lt; b &amp;&amp; c --&gt; d
"""

TALK_TXT = """\
Hello, world.
¿Qué tal?
This sentence is long enough to need two lines on screen
a < b && c --> d
"""


def test_srt_exact() -> None:
    assert render_srt(TALK) == TALK_SRT
    assert render(TALK, "srt") == TALK_SRT


def test_vtt_exact() -> None:
    assert render_vtt(TALK) == TALK_VTT


def test_txt_exact() -> None:
    assert render_txt(TALK) == TALK_TXT
    assert render_txt(Transcript("x", 0.0, (Segment(0, 1, " a\n\n b\t"),))) == "a b\n"
    assert render_txt(Transcript("x", 0.0)) == ""


def test_json_exact_contract() -> None:
    t = Transcript("x.wav", 1.23456, language="pt", extra={"model": "base"}, segments=(
        Segment(0.1, 1.0004, " Olá", "pt", 0.87654, (Word(0.1, 1.0004, " Olá", 0.123456),)),
    ))  # fmt: skip
    expected = """\
{
  "source": "x.wav",
  "duration": 1.235,
  "language": "pt",
  "segments": [
    {
      "start": 0.1,
      "end": 1.0,
      "text": " Olá",
      "language": "pt",
      "confidence": 0.8765,
      "words": [
        {
          "start": 0.1,
          "end": 1.0,
          "word": " Olá",
          "probability": 0.1235
        }
      ]
    }
  ],
  "model": "base"
}
"""
    assert render_json(t) == expected


def test_render_names_the_valid_formats() -> None:
    assert FORMATS == ("txt", "json", "srt", "vtt")
    assert render(TALK, "SRT") == render(TALK, ".srt") == TALK_SRT
    with pytest.raises(ConfigError) as info:
        render(TALK, "docx")
    assert "'docx'" in str(info.value)
    assert all(f in str(info.value) for f in FORMATS)


@pytest.mark.parametrize(
    ("seconds", "srt"),
    [
        (0.0, "00:00:00,000"), (0.0004, "00:00:00,000"), (0.0005, "00:00:00,001"),
        (1.0015, "00:00:01,002"), (59.9996, "00:01:00,000"), (59.9994, "00:00:59,999"),
        (3599.9995, "01:00:00,000"), (3661.25, "01:01:01,250"), (359999.999, "99:59:59,999"),
        (360000.0, "100:00:00,000"), (400000.0, "111:06:40,000"), (-0.2, "00:00:00,000"),
    ],
)  # fmt: skip
def test_timestamps_round_without_carry_bugs(seconds: float, srt: str) -> None:
    assert format_timestamp(seconds) == srt
    assert format_timestamp(seconds, ".") == srt.replace(",", ".")


def test_word_times_set_the_cue_times() -> None:
    words = [(" one", 10.0, 10.5), (" two", 10.5, 11.0), (" three", 11.0, 11.5),
             (" four", 12.0, 12.5), (" five", 12.5, 13.0), (" six", 13.0, 14.0)]  # fmt: skip
    seg = Segment(10.0, 14.0, " one two three four five six",
                  words=tuple(Word(a, b, w, 0.9) for w, a, b in words))  # fmt: skip
    got = cues(Transcript("x", 14.0, (seg,)), max_width=9, max_lines=1)
    assert got == [
        Cue(10.0, 11.0, "one two"), Cue(11.0, 11.5, "three"),
        Cue(12.0, 13.0, "four five"), Cue(13.0, 14.0, "six"),
    ]  # fmt: skip


def test_lexical_words_time_display_text_token_by_token() -> None:
    # Azure: display text "Hello, Dr. Smith." with lexical words "hello doctor smith".
    seg = Segment(0.0, 3.0, "Hello, Dr. Smith.", words=(
        Word(0.0, 0.4, "hello", 0.9), Word(1.0, 1.5, "doctor", 0.9), Word(2.0, 3.0, "smith", 0.9),
    ))  # fmt: skip
    got = cues(Transcript("x", 3.0, (seg,)), max_width=6, max_lines=1)
    assert got == [Cue(0.0, 0.5, "Hello,"), Cue(1.0, 1.5, "Dr."), Cue(2.0, 3.0, "Smith.")]


def test_without_words_time_is_shared_by_characters() -> None:
    seg = Segment(0.0, 10.0, "aaaa bbbb cccc dddd")
    got = cues(Transcript("x", 10.0, (seg,)), max_width=4, max_lines=1)
    assert got == [Cue(0.0, 2.5, "aaaa"), Cue(2.5, 5.0, "bbbb"), Cue(5.0, 7.5, "cccc"),
                   Cue(7.5, 10.0, "dddd")]  # fmt: skip


def test_cjk_without_spaces_is_split_by_characters_at_double_width() -> None:
    seg = Segment(0.0, 6.0, "一二三四五六")
    got = cues(Transcript("x", 6.0, (seg,)), max_width=4, max_lines=1)
    assert got == [Cue(0.0, 2.0, "一二"), Cue(2.0, 4.0, "三四"), Cue(4.0, 6.0, "五六")]
    long = Segment(0.0, 60.0, "字" * 100)
    lines = [line for c in cues(Transcript("x", 60.0, (long,))) for line in c.text.split("\n")]
    assert "".join(lines) == "字" * 100
    assert max(len(line) for line in lines) == MAX_WIDTH // 2


def test_an_overlong_token_is_cut_to_the_line_width() -> None:
    url = "https://example.org/" + "x" * 100
    got = cues(Transcript("x", 9.0, (Segment(0.0, 9.0, f"see {url} now"),)))
    lines = [line for c in got for line in c.text.split("\n")]
    assert max(len(line) for line in lines) <= MAX_WIDTH
    assert "".join("".join(c.text.split()) for c in got) == f"see{url}now"


def test_combining_marks_stay_with_their_letter() -> None:
    text = "e\u0301" * 30  # 30 columns of é written as e + combining acute
    got = cues(Transcript("x", 3.0, (Segment(0, 3, text),)), max_width=7, max_lines=1)
    assert all(not unicodedata.combining(c.text[0]) for c in got)
    assert [len(c.text) for c in got] == [14, 14, 14, 14, 4]


def test_tiny_and_simultaneous_segments_never_collide() -> None:
    segs = (*(Segment(5.0, 5.0, f"s{i}") for i in range(4)), Segment(5.2, 5.3, "next"))
    got = cues(Transcript("x", 6.0, segs))
    assert [(c.start, c.end) for c in got] == [
        (5.0, 5.001), (5.001, 5.002), (5.002, 5.003), (5.003, 5.2), (5.2, 5.7),
    ]  # fmt: skip


def test_overlapping_and_unordered_segments_are_ordered_and_clipped() -> None:
    segs = (Segment(4.0, 6.0, "late"), Segment(0.0, 5.0, "early"), Segment(1.0, 2.0, "inner"))
    got = cues(Transcript("x", 6.0, segs))
    assert got == [Cue(0.0, 1.0, "early"), Cue(1.0, 2.0, "inner"), Cue(4.0, 6.0, "late")]


def test_text_that_could_break_the_file_does_not() -> None:
    text = "1\n\n00:00:01,000 --> 00:00:02,000\n\nWEBVTT <b>&amp; -->"
    t = Transcript("x", 3.0, (Segment(0.0, 3.0, text), Segment(3.0, 4.0, "NOTE this")))
    vtt = parse_vtt(render_vtt(t, max_width=80))
    assert vtt == [
        Cue(0.0, 3.0, "1 00:00:01,000 --> 00:00:02,000 WEBVTT <b>&amp; -->"),
        Cue(3.0, 4.0, "NOTE this"),
    ]
    srt = parse_srt(render_srt(t, max_width=80))
    assert [c.text for c in srt] == ["1 00:00:01,000 -> 00:00:02,000 WEBVTT <b>&amp; ->",
                                     "NOTE this"]  # fmt: skip
    srt_text = render_srt(Transcript("x", 1.0, (Segment(0, 1, "a ---> b -->"),)))
    assert srt_text.split("\n")[2] == "a -> b ->"


def test_layout_options_are_checked() -> None:
    with pytest.raises(ConfigError):
        cues(TALK, max_width=1)
    with pytest.raises(ConfigError):
        cues(TALK, max_lines=0)


def test_non_finite_times_are_output_errors() -> None:
    bad = Transcript("bad.wav", 1.0, (Segment(0.0, float("nan"), "x"),))
    with pytest.raises(OutputError, match=r"bad\.wav"):
        render_srt(bad)
    with pytest.raises(OutputError, match=r"bad\.wav"):
        render_json(bad)


# --- readers ---------------------------------------------------------------------------------


def test_readers_accept_common_variations() -> None:
    srt = ("\ufeff1\r\n00:00:01,000 --> 00:00:02,500\r\nHi\r\nthere\r\n\r\n\r\n"
           "00:00:03.000 --> 00:00:04.000\r\nBye\r\n")  # fmt: skip
    assert parse_srt(srt) == [Cue(1.0, 2.5, "Hi\nthere"), Cue(3.0, 4.0, "Bye")]
    vtt = ("WEBVTT - a title\nKind: captions\n\nNOTE a comment\nspanning lines\n\nSTYLE\n::cue {}\n"
           "\nintro\n00:01.000 --> 00:02.000 align:start line:0\n<v Bob>Hi</v> &lt;3\n"
           "\n00:00:03.000 --> 00:00:04.000\n<i>Bye</i>\n")  # fmt: skip
    assert parse_vtt(vtt) == [Cue(1.0, 2.0, "Hi <3", "Bob"), Cue(3.0, 4.0, "Bye")]  # its voice


@pytest.mark.parametrize(
    ("reader", "text", "where"),
    [
        (parse_srt, "1\n00:00:01,000 -> 00:00:02,000\nx\n", "line 2"),
        (parse_srt, "1\n00:00:01,000 --> 00:00:02,000\nx\n\nstray text\n", "line 5"),
        (parse_vtt, "1\n00:00:01.000 --> 00:00:02.000\nx\n", "WEBVTT"),
        (parse_vtt, "WEBVTTX\n", "WEBVTT"),
        (parse_vtt, "WEBVTT\n\n00:00:01.000 --> 00:00:62.000\nx\n", "line 3"),
        (parse_vtt, "WEBVTT\n\nlonely-id\n", "line 3"),
    ],
)
def test_malformed_subtitles_are_input_errors(
    reader: Callable[[str], list[Cue]], text: str, where: str
) -> None:
    with pytest.raises(InputError, match=where):
        reader(text)


@pytest.mark.parametrize(
    "text", ["", "[]", "{}", '{"source": "x"}', "not json", '{"source": "x", "duration": 1, '
             '"segments": [{"start": 0}]}'],
)  # fmt: skip
def test_transcript_from_json_rejects_other_documents(text: str) -> None:
    with pytest.raises(InputError, match="not a voxflow JSON transcript"):
        transcript_from_json(text)


def test_json_extras_cannot_hide_fields() -> None:
    with pytest.raises(OutputError, match="'segments'"):
        render_json(Transcript("x", 1.0, extra={"segments": []}))


# --- properties ------------------------------------------------------------------------------

# Letters of several scripts (CJK and kana are double width), markup and subtitle syntax.
ALPHABET = "abcxyzABC0189 éßøœ,.!?'\"-<>&:\n\t你好世界中文字幕あいうカナ한글"
WIDE = set("你好世界中文字幕あいうカナ한글")
MAX_S = 360_000.0  # 100 hours


def _width(line: str) -> int:
    return sum(2 if c in WIDE else 1 for c in line)


def _squash(text: str) -> str:
    return "".join(text.split())


words_st = st.text(alphabet="abcdefghij你好é", min_size=1, max_size=12)


@st.composite
def segments_st(draw: st.DrawFn) -> Segment:
    """A segment anywhere in 100 hours: text alone, or words that spell the text."""
    start = draw(st.floats(0, MAX_S))
    end = start + draw(st.floats(0, 30))
    if draw(st.booleans()):
        tokens = draw(st.lists(words_st, min_size=1, max_size=15))
        bounds = sorted(draw(st.lists(st.floats(start, end), min_size=2 * len(tokens),
                                      max_size=2 * len(tokens))))  # fmt: skip
        words = tuple(Word(bounds[2 * i], bounds[2 * i + 1], f" {tok}", 0.5)
                      for i, tok in enumerate(tokens))  # fmt: skip
        return Segment(start, end, " " + " ".join(tokens), words=words)
    return Segment(start, end, draw(st.text(alphabet=ALPHABET, max_size=150)))


transcripts = st.builds(
    Transcript,
    source=st.just("x.wav"),
    duration=st.floats(0, MAX_S),
    segments=st.lists(segments_st(), max_size=8).map(tuple),
)


def _check_invariants(got: list[Cue], max_width: int = MAX_WIDTH, max_lines: int = 2) -> None:
    previous_end = 0.0
    for cue in got:
        assert cue.start >= previous_end
        assert cue.end > cue.start
        lines = cue.text.split("\n")
        assert 1 <= len(lines) <= max_lines
        assert all(line.strip() == line and line for line in lines)
        assert all(_width(line) <= max_width for line in lines)
        previous_end = cue.end


@given(transcripts)
def test_cues_keep_their_invariants_and_all_the_text(t: Transcript) -> None:
    got = cues(t)
    _check_invariants(got)
    ordered = sorted(t.segments, key=lambda s: s.start)
    assert _squash("".join(c.text for c in got)) == _squash("".join(s.text for s in ordered))


@given(transcripts)
def test_subtitle_files_parse_back_to_the_cues(t: Transcript) -> None:
    expected = cues(t)
    assert parse_vtt(render_vtt(t)) == expected
    srt = parse_srt(render_srt(t))
    assert [(c.start, c.end) for c in srt] == [(c.start, c.end) for c in expected]
    assert [c.text for c in srt] == [re.sub(r"-+->", "->", c.text) for c in expected]


@given(transcripts, st.integers(2, 60), st.integers(1, 4))
def test_any_layout_keeps_the_invariants(t: Transcript, width: int, lines: int) -> None:
    _check_invariants(cues(t, max_width=width, max_lines=lines), width, lines)


@settings(max_examples=50)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=5))
def test_arbitrary_unicode_survives_vtt(texts: list[str]) -> None:
    segs = tuple(Segment(i * 10.0, i * 10.0 + 5.0, text) for i, text in enumerate(texts))
    t = Transcript("x", 60.0, segs)
    parsed = parse_vtt(render_vtt(t))
    assert parsed == cues(t)
    kept = [c for c in "".join(texts) if not c.isspace() and unicodedata.category(c) != "Cc"]
    assert _squash("".join(c.text for c in parsed)) == "".join(kept)


@st.composite
def ordered_transcripts(draw: st.DrawFn) -> Transcript:
    """Segments in order with gaps between them, each long enough for its cues; words, when
    present, follow one another with gaps of a few milliseconds at least."""
    segs, t = [], draw(st.floats(0, MAX_S - 1000))
    for _ in range(draw(st.integers(1, 6))):
        start = t + draw(st.floats(0.01, 100))
        end = start + draw(st.floats(1, 30))
        t = end
        if not draw(st.booleans()):
            segs.append(Segment(start, end, draw(st.text(alphabet=ALPHABET, max_size=150))))
            continue
        tokens = draw(st.lists(st.text(alphabet="abcdefghijé,.?", min_size=1, max_size=12),
                               min_size=1, max_size=15))  # fmt: skip
        steps = draw(st.lists(st.floats(0.1, 1), min_size=2 * len(tokens) + 1,
                              max_size=2 * len(tokens) + 1))  # fmt: skip
        bounds, acc = [], 0.0
        for step in steps[:-1]:
            acc += step
            bounds.append(start + (end - start) * acc / sum(steps))
        words = tuple(Word(bounds[2 * i], bounds[2 * i + 1], f" {tok}", 0.5)
                      for i, tok in enumerate(tokens))  # fmt: skip
        segs.append(Segment(start, end, " " + " ".join(tokens), words=words))
    return Transcript("x", t, tuple(segs))


@given(ordered_transcripts())
def test_cues_stay_within_their_segments(t: Transcript) -> None:
    got = cues(t)
    starts = [to_milliseconds(s.start) for s in t.segments]
    spoken = [to_milliseconds(s.start) for s in t.segments if s.text.strip()]
    for k, seg in enumerate(t.segments):
        lo = starts[k]
        hi = starts[k + 1] if k + 1 < len(starts) else float("inf")
        mine = [c for c in got if lo <= to_milliseconds(c.start) < hi]
        assert _squash("".join(c.text for c in mine)) == _squash(seg.text)
        if not mine:
            continue
        seg_end = to_milliseconds(seg.end)
        next_cue = min((s for s in spoken if s > lo), default=float("inf"))
        assert to_milliseconds(mine[0].start) >= lo
        assert all(to_milliseconds(c.end) <= max(seg_end, next_cue) for c in mine)
        if seg.words:  # cues start where one of their words starts, and end with the last word
            word_starts = {to_milliseconds(w.start) for w in seg.words}
            assert all(to_milliseconds(c.start) in word_starts for c in mine)
            assert to_milliseconds(mine[-1].end) >= to_milliseconds(seg.words[-1].end)
        else:  # cues fill the segment
            assert to_milliseconds(mine[0].start) == lo
            assert to_milliseconds(mine[-1].end) >= seg_end


rounded = st.integers(0, 360_000_000).map(lambda ms: ms / 1000)
probability = st.integers(0, 10_000).map(lambda x: x / 10_000)
word_st = st.builds(Word, rounded, rounded, st.text(max_size=10), probability)
json_segments = st.builds(
    Segment, rounded, rounded, st.text(max_size=40),
    st.none() | st.sampled_from(["en", "es", "zh"]), st.none() | probability,
    st.lists(word_st, max_size=4).map(tuple),
)  # fmt: skip
json_extras = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k not in ("source", "duration", "language",
                                                                "segments", "speakers")),
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    max_size=3,
)  # fmt: skip


@given(
    st.builds(Transcript, st.text(max_size=20), rounded,
              st.lists(json_segments, max_size=5).map(tuple),
              st.none() | st.just("en"), json_extras)
)  # fmt: skip
def test_json_round_trip_is_equality(t: Transcript) -> None:
    text = render_json(t)
    assert text.endswith("}\n")
    assert list(json.loads(text))[:4] == ["source", "duration", "language", "segments"]
    assert transcript_from_json(text) == t


@given(transcripts)
def test_json_is_deterministic_and_idempotent(t: Transcript) -> None:
    text = render_json(t)
    assert render_json(t) == text
    assert render_json(transcript_from_json(text)) == text
