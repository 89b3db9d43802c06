"""Speaker diarization on real voices: accuracy, speaker count, overlaps, cost, and memory on 1 h.

Usage:
    python benchmarks/bench_diarize.py [--corpus ../shared/corpus] [--speakers 2,3,4,5,6]
        [--seeds 0,1] [--overlap-speakers 2,3,4] [--overlap 1.5] [--tight-speakers 2,3,4]
        [--long-minutes 60] [--no-transcribe] [--json FILE]

Every file is diarized twice side by side: **base**, the CAM++ embeddings and clustering alone
(``DiarizeOptions(segmentation=False)``), and **seg**, the default, which adds pyannote's
segmentation model (overlaps, change points placed by its frames).

- **katiesteve**: the Azure conversation sample. The corpus gives its sentences and who says
  each (Katie, Steve, Katie, Steve, Katie, Steve, Steve); their times are Whisper's word
  times from the plain transcription, so the true turns are the sentences' spans.
- **mixes**: conversations of 2 to 6 (``--speakers``) distinct real voices of the corpus, 12
  turns each, seeded orders (``tests/conversations.py``), true turns known by construction.
- **overlap mixes**: the same with every second turn starting ``--overlap`` seconds before the
  one before it ends (``--overlap-speakers`` voices), the two voices summed there.
- **back-to-back mixes**: the same with 0.03–0.07 s between turns (``--tight-speakers``
  voices), too short a pause for the voice detector, so the embeddings place the changes.

Accuracy is time-weighted speaker accuracy, 1 − DER (missed speech + false alarm + confusion
over the true speech; a frame of two true speakers counts two) on 10 ms frames outside a 0.25 s
collar round each true boundary, with the labels mapped one to one: of the diarization's turns
(on the clips the pipeline cuts), of the turns with the overlaps' second speakers (seg), and of
the labelled transcript's segments (Whisper's segment times, so also its timing errors).
Overlaps found are scored in time against the true ones (precision, recall; no collar).
Cost is measured side by side on each file: ``voxflow transcribe`` through the API (bundled
Whisper base, defaults) without diarization and with each, and the diarization alone
(single-threaded numpy). Memory: peak RSS of a child process (``VmHWM``, which starts afresh
at exec, unlike ``ru_maxrss``) that streams a ``--long-minutes`` conversation (the mixes'
voices cycled) in 30 s clips through the tracker (base and seg), against one that only decodes
the same file. ``--no-transcribe`` skips the Whisper runs but katiesteve's plain one (its
truth), so only the diarization alone is measured. ``--speakers ""`` skips the mixes,
``--overlap-speakers ""`` the overlap mixes, ``--tight-speakers ""`` the back-to-back ones.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import conversations as cv  # noqa: E402

KATIESTEVE_SPEAKERS = ("Katie", "Steve", "Katie", "Steve", "Katie", "Steve", "Steve")


def _diarize(samples, segmentation: bool):
    """The diarization alone, on the clips the pipeline cuts (its segmenter and settings)."""
    from voxflow.pipeline import MERGE_GAP, SEGMENT_PAD, TranscribeOptions
    from voxflow.segments import SegmentOptions, speech_segments
    from voxflow.speakers import DiarizeOptions, SpeakerTracker
    from voxflow.vad import VadOptions

    defaults = TranscribeOptions()
    clips = speech_segments(
        [samples],
        options=SegmentOptions(max_duration=defaults.max_segment, pad=SEGMENT_PAD,
                               merge_gap=MERGE_GAP),
        vad_options=VadOptions(threshold=defaults.vad_threshold),
    )  # fmt: skip
    start = time.perf_counter()
    tracker = SpeakerTracker(DiarizeOptions(segmentation=segmentation))
    for clip in clips:
        tracker.add(clip.start, clip.samples.reshape(-1))
    found = tracker.finish()
    return found, time.perf_counter() - start


def _with_overlaps(turns, overlaps) -> list[tuple[float, float, str]]:
    """Turns plus, for each overlap, its speakers over its span (a frame may have two)."""
    return [*turns, *((o["start"], o["end"], who) for o in overlaps for who in o["speakers"])]


def _transcribe(path: Path, engine, diarize):
    from voxflow.pipeline import TranscribeOptions, transcribe

    start = time.perf_counter()
    transcript = transcribe(path, engine=engine, options=TranscribeOptions(diarize=diarize))
    return transcript, time.perf_counter() - start


def _sentence_turns(transcript) -> list[tuple[float, float, str]]:
    """Katie's and Steve's sentences timed by Whisper's words."""
    words = [w for s in transcript.segments for w in s.words]
    spans, first = [], None
    for w in words:
        first = w.start if first is None else first
        if re.search(r"[.?!]\s*$", w.word):
            spans.append((first, w.end))
            first = None
    if len(spans) != len(KATIESTEVE_SPEAKERS):
        raise SystemExit(f"katiesteve: {len(spans)} sentences, expected 7: {transcript.text}")
    return [(a, b, who) for (a, b), who in zip(spans, KATIESTEVE_SPEAKERS, strict=True)]


def _row(name, path, samples, truth, engine, transcribe: bool = True) -> dict:
    from voxflow.speakers import DiarizeOptions

    t_plain = None
    if transcribe or truth is None:
        plain, t_plain = _transcribe(path, engine, None)
        truth = truth or _sentence_turns(plain)
    true_overlaps = cv.overlapped(truth)
    row = {
        "name": name,
        "audio_s": round(len(samples) / cv.RATE, 1),
        "speakers": len({t[2] for t in truth}),
        "overlap_s": round(sum(b - a for a, b in true_overlaps), 1),
        "transcribe_s": round(t_plain, 2) if transcribe and t_plain is not None else None,
    }
    for key, segmentation in (("base", False), ("seg", True)):
        found, t_alone = _diarize(samples, segmentation)
        hyp = [(t.start, t.end, t.speaker) for t in found.turns]
        overlaps = [o.to_dict() for o in found.overlaps]
        spans = [(o.start, o.end) for o in found.overlaps]
        precision, recall = cv.overlap_scores(true_overlaps, spans)
        row[key] = {
            "found": len({h[2] for h in hyp}),
            "accuracy": round(cv.accuracy(truth, hyp), 4),
            "accuracy_with_overlaps": round(cv.accuracy(truth, _with_overlaps(hyp, overlaps)), 4),
            "overlaps": len(overlaps),
            "overlap_precision": round(precision, 3),
            "overlap_recall": round(recall, 3),
            "diarize_alone_s": round(t_alone, 2),
        }
        if transcribe:
            labelled, t_with = _transcribe(path, engine, DiarizeOptions(segmentation=segmentation))
            segments = [(x.start, x.end, x.speaker) for x in labelled.segments]
            said = _with_overlaps(segments, labelled.extra.get("overlaps", []))
            row[key] |= {
                "found_in_transcript": len(labelled.speakers),
                "transcript_accuracy": round(cv.accuracy(truth, segments), 4),
                "transcript_accuracy_with_overlaps": round(cv.accuracy(truth, said), 4),
                "transcribe_diarize_s": round(t_with, 2),
            }
    print(json.dumps(row), flush=True)
    return row


def _memory(path: Path, diarize: bool, segmentation: bool = False) -> dict:
    """Peak RSS (MiB) and seconds of a child that streams ``path`` (through the tracker)."""
    code = f"""
import time
from voxflow.audio import open_audio
from voxflow.speakers import DiarizeOptions, SpeakerTracker
options = DiarizeOptions(segmentation={segmentation})
tracker = SpeakerTracker(options) if {diarize} else None
start = time.perf_counter(); clip = []; at = 0.0; held = 0
with open_audio({str(path)!r}, sample_rate=16000, channels=1) as audio:
    for chunk in audio:
        clip.append(chunk.samples.reshape(-1)); held += len(clip[-1])
        if held >= 30 * 16000:
            import numpy as np
            x = np.concatenate(clip)
            if tracker: tracker.add(at, x)
            at += len(x) / 16000; clip = []; held = 0
if tracker and clip:
    import numpy as np
    tracker.add(at, np.concatenate(clip))
found = len({{t.speaker for t in tracker.finish().turns}}) if tracker else 0
status = open("/proc/self/status").read()
hwm = int(status.split("VmHWM:")[1].split()[0])
print(hwm / 1024, time.perf_counter() - start, found)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, seconds, found = out.stdout.split()
    return {"diarize": diarize, "segmentation": segmentation, "peak_rss_mib": round(float(rss)),
            "seconds": round(float(seconds), 1), "speakers_found": int(found)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--speakers", default="2,3,4,5,6")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--overlap-speakers", default="2,3,4")
    parser.add_argument("--overlap", type=float, default=1.5)
    parser.add_argument("--tight-speakers", default="2,3,4")
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--no-transcribe", dest="transcribe", action="store_false")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from voxflow.engines import create_engine

    engine = create_engine()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ks = args.corpus / "azure-samples" / "katiesteve_mono.wav"
        rows.append(_row("katiesteve", ks, cv.load(ks), None, engine, args.transcribe))
        for n in (int(s) for s in args.speakers.split(",") if s.strip()):
            for seed in (int(s) for s in args.seeds.split(",")):
                samples, truth = cv.conversation(args.corpus, n, turns=12, seed=seed)
                path = cv.write_wav(Path(tmp) / f"mix{n}-{seed}.wav", samples)
                rows.append(_row(f"mix {n} speakers, seed {seed}", path, samples, truth, engine,
                                 args.transcribe))  # fmt: skip
        for n in (int(s) for s in args.overlap_speakers.split(",") if s.strip()):
            for seed in (int(s) for s in args.seeds.split(",")):
                samples, truth = cv.conversation(args.corpus, n, turns=12, seed=seed,
                                                 overlap=args.overlap)  # fmt: skip
                path = cv.write_wav(Path(tmp) / f"overlap{n}-{seed}.wav", samples)
                rows.append(_row(f"overlap mix {n} speakers, seed {seed}", path, samples, truth,
                                 engine, args.transcribe))  # fmt: skip
        for n in (int(s) for s in args.tight_speakers.split(",") if s.strip()):
            for seed in (int(s) for s in args.seeds.split(",")):
                samples, truth = cv.conversation(args.corpus, n, turns=12, seed=seed, gap=0.05)
                path = cv.write_wav(Path(tmp) / f"tight{n}-{seed}.wav", samples)
                rows.append(_row(f"back-to-back mix {n} speakers, seed {seed}", path, samples,
                                 truth, engine, args.transcribe))  # fmt: skip
        memory = []
        if args.long_minutes > 0:
            import numpy as np

            parts, total = [], 0.0
            seed = 0
            while total < args.long_minutes * 60:
                samples, _ = cv.conversation(args.corpus, 6, turns=12, seed=seed)
                parts.append(samples)
                total += len(samples) / cv.RATE
                seed += 1
            long = cv.write_wav(Path(tmp) / "long.wav", np.concatenate(parts))
            del parts
            for diarize, segmentation in ((False, False), (True, False), (True, True)):
                memory.append({"audio_min": round(total / 60, 1),
                               **_memory(long, diarize, segmentation)})  # fmt: skip
                print(json.dumps(memory[-1]), flush=True)
    load = Path("/proc/loadavg").read_text().split()[:3]
    result = {"rows": rows, "memory": memory, "loadavg": load}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
