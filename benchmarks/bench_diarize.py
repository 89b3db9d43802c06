"""Speaker diarization on real voices: accuracy, speaker count, cost, and memory on 1 h.

Usage:
    python benchmarks/bench_diarize.py [--corpus ../shared/corpus] [--speakers 2,3,4,5,6]
        [--seeds 0,1] [--long-minutes 60] [--json FILE]

- **katiesteve**: the Azure conversation sample. The corpus gives its sentences and who says
  each (Katie, Steve, Katie, Steve, Katie, Steve, Steve); their times are Whisper's word
  times from the plain transcription, so the true turns are the sentences' spans.
- **mixes**: conversations of 2 to 6 (``--speakers``) distinct real voices of the corpus, 12
  turns each, seeded orders (``tests/conversations.py``), true turns known by construction.

Accuracy is time-weighted speaker accuracy, 1 − DER (missed speech + false alarm + confusion
over the true speech) on 10 ms frames outside a 0.25 s collar round each true boundary, with
the labels mapped one to one: of the diarization's turns (on the clips the pipeline cuts), and
of the labelled transcript's segments (Whisper's segment times, so also its timing errors).
Cost is measured side by side on each file: ``voxflow
transcribe`` through the API (bundled Whisper base, defaults) without and with diarization,
and the diarization alone (embedding + clustering, single-threaded numpy). Memory: peak RSS of
a child process (``VmHWM``, which starts afresh at exec, unlike ``ru_maxrss``) that streams
a ``--long-minutes`` conversation (the mixes' voices cycled) in 30 s clips through the
tracker, against one that only decodes the same file. ``--speakers ""`` skips the mixes.
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


def _diarize(samples) -> tuple[list, float]:
    """The diarization alone, on the clips the pipeline cuts (its segmenter and settings)."""
    from voxflow.pipeline import MERGE_GAP, SEGMENT_PAD, TranscribeOptions
    from voxflow.segments import SegmentOptions, speech_segments
    from voxflow.speakers import SpeakerTracker
    from voxflow.vad import VadOptions

    defaults = TranscribeOptions()
    clips = speech_segments(
        [samples],
        options=SegmentOptions(max_duration=defaults.max_segment, pad=SEGMENT_PAD,
                               merge_gap=MERGE_GAP),
        vad_options=VadOptions(threshold=defaults.vad_threshold),
    )  # fmt: skip
    start = time.perf_counter()
    tracker = SpeakerTracker()
    for clip in clips:
        tracker.add(clip.start, clip.samples.reshape(-1))
    turns = tracker.finish()
    return [(t.start, t.end, t.speaker) for t in turns], time.perf_counter() - start


def _transcribe(path: Path, engine, diarize: bool):
    from voxflow.pipeline import TranscribeOptions, transcribe
    from voxflow.speakers import DiarizeOptions

    options = TranscribeOptions(diarize=DiarizeOptions() if diarize else None)
    start = time.perf_counter()
    transcript = transcribe(path, engine=engine, options=options)
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


def _row(name, path, samples, truth, engine) -> dict:
    plain, t_plain = _transcribe(path, engine, diarize=False)
    if truth is None:
        truth = _sentence_turns(plain)
    labelled, t_with = _transcribe(path, engine, diarize=True)
    hyp, t_alone = _diarize(samples)
    row = {
        "name": name,
        "audio_s": round(len(samples) / cv.RATE, 1),
        "speakers": len({t[2] for t in truth}),
        "found": len({h[2] for h in hyp}),
        "found_in_transcript": len(labelled.speakers),
        "accuracy": round(cv.accuracy(truth, hyp), 4),
        "transcript_accuracy": round(cv.accuracy(truth, [(x.start, x.end, x.speaker)
                                                         for x in labelled.segments]), 4),
        "transcribe_s": round(t_plain, 2),
        "transcribe_diarize_s": round(t_with, 2),
        "diarize_alone_s": round(t_alone, 2),
    }
    print(json.dumps(row), flush=True)
    return row


def _memory(path: Path, diarize: bool) -> dict:
    """Peak RSS (MiB) and seconds of a child that streams ``path`` (through the tracker)."""
    code = f"""
import time
from voxflow.audio import open_audio
from voxflow.speakers import SpeakerTracker
tracker = SpeakerTracker() if {diarize} else None
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
found = len({{t.speaker for t in tracker.finish()}}) if tracker else 0
status = open("/proc/self/status").read()
hwm = int(status.split("VmHWM:")[1].split()[0])
print(hwm / 1024, time.perf_counter() - start, found)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, seconds, found = out.stdout.split()
    return {"diarize": diarize, "peak_rss_mib": round(float(rss)),
            "seconds": round(float(seconds), 1), "speakers_found": int(found)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "corpus")
    parser.add_argument("--speakers", default="2,3,4,5,6")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--long-minutes", type=float, default=60.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from voxflow.engines import create_engine

    engine = create_engine()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        ks = args.corpus / "azure-samples" / "katiesteve_mono.wav"
        rows.append(_row("katiesteve", ks, cv.load(ks), None, engine))
        for n in (int(s) for s in args.speakers.split(",") if s.strip()):
            for seed in (int(s) for s in args.seeds.split(",")):
                samples, truth = cv.conversation(args.corpus, n, turns=12, seed=seed)
                path = cv.write_wav(Path(tmp) / f"mix{n}-{seed}.wav", samples)
                rows.append(_row(f"mix {n} speakers, seed {seed}", path, samples, truth, engine))
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
            for diarize in (False, True):
                memory.append({"audio_min": round(total / 60, 1), **_memory(long, diarize)})
                print(json.dumps(memory[-1]), flush=True)
    load = Path("/proc/loadavg").read_text().split()[:3]
    result = {"rows": rows, "memory": memory, "loadavg": load}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
