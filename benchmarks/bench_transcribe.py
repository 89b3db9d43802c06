"""Throughput and WER: voxflow vs plain faster-whisper defaults, same model, threads, machine.

Usage:
    python benchmarks/bench_transcribe.py [--minutes 10] [--leads 0 3 7] [--files 50]
                                          [--threads 2] [--min-window 20]

Builds (once, into benchmarks/.data) a long recording of real speech by joining the corpus
clips of ../shared/corpus with pauses, in copies that start after different lengths of silence
(``--leads``: where a 30 s window falls changes Whisper's output, and a single placement is one
draw), and a set of short files; then, for each workload, runs
the baseline (``WhisperModel.transcribe`` with its defaults, file after file) and voxflow
(``voxflow.transcribe_many``), each in its own subprocess so that peak memory is measured
separately; with ``--min-window`` a third run has voxflow encode short windows shortened.
Prints a markdown table of audio-seconds per wall-second, the ratio, WER (with the simple
normalisation below, and with Whisper's English normaliser, which also counts "gonna" as
"going to"), and peak RSS. Needs ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
CORPUS = HERE.parent.parent / "shared" / "corpus"
RATE = 16000
ENGLISH = [
    "librivox/sense_and_sensibility_01_austen_64kb-0870.wav",
    "librivox/sense_and_sensibility_01_austen_64kb-0880.wav",
    "librivox/sense_and_sensibility_01_austen_64kb-0890.wav",
    "librivox/sense_and_sensibility_01_austen_64kb-0920.wav",
    "librivox/sense_and_sensibility_01_austen_64kb-0930.wav",
    "azure-samples/LanguageDetection_enUS.wav",
    "azure-samples/katiesteve_mono.wav",
    "azure-samples/whatstheweatherlike.wav",
]


def _read(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def _write(path: Path, pcm: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.astype("<i2").tobytes())


def _references() -> dict[str, str]:
    rows = (CORPUS / "manifest.tsv").read_text().splitlines()[1:]
    return {p: ref.lstrip("~") for p, _lang, ref in (r.split("\t") for r in rows)}


def build(
    minutes: float, leads: list[float], files: int
) -> tuple[list[Path], str, list[Path], list[str]]:
    """The long files (one per lead of silence) with their reference, and the short files with
    theirs."""
    DATA.mkdir(exist_ok=True)
    refs = _references()
    clips = [(_read(CORPUS / p), refs[p]) for p in ENGLISH]
    # The clips in a new order each round, 0.5-1.5 s apart (a fixed seed: the same file every
    # run), so that the 30 s windows of both systems hold different neighbours each round
    # rather than the same two windows over and over.
    rng = np.random.default_rng(0)
    pieces, texts, total = [], [], 0
    while total < minutes * 60 * RATE:
        for k in rng.permutation(len(clips)):
            pcm, ref = clips[k]
            pause = np.zeros(int(rng.uniform(0.5, 1.5) * RATE), dtype="<i2")
            pieces += [pcm, pause]
            texts.append(ref)
            total += len(pcm) + len(pause)
            if total >= minutes * 60 * RATE:
                break
    speech = np.concatenate(pieces)
    long_paths = []
    for lead in leads:
        path = DATA / f"speech-{minutes:g}min-lead{lead:g}s.wav"
        _write(path, np.concatenate([np.zeros(int(lead * RATE), dtype="<i2"), speech]))
        long_paths.append(path)
    short_paths, short_refs = [], []
    for k in range(files):
        pcm, ref = clips[k % len(clips)]
        # Each repeat of a clip 1% quieter, so that no two files hold the same samples.
        gain = 0.99 ** (k // len(clips))
        path = DATA / f"short-{k:03d}.wav"
        _write(path, np.round(pcm * gain))
        short_paths.append(path)
        short_refs.append(ref)
    return long_paths, " ".join(texts), short_paths, short_refs


def _normalise(text: str) -> str:
    text = text.lower().replace("mr.", "mister").replace("-", " ")
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text)).strip()


def run_one(
    kind: str, paths: list[str], threads: int, min_window: float | None = None
) -> dict[str, object]:
    """Transcribe ``paths`` with one system; return texts, wall time and peak RSS."""
    import asyncio

    from voxflow.engines.whisper.models import bundled_model_dir

    model_dir = str(bundled_model_dir())
    started = time.perf_counter()
    if kind == "baseline":
        from faster_whisper import WhisperModel

        model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
        load = time.perf_counter() - started
        started = time.perf_counter()
        texts = []
        for p in paths:
            segments, _info = model.transcribe(p)
            texts.append("".join(s.text for s in segments))
    else:
        from voxflow.engines import create_engine
        from voxflow.engines.whisper import WhisperOptions
        from voxflow.pipeline import transcribe_many

        engine = create_engine(WhisperOptions(model=model_dir, cpu_threads=threads // 2 or 1,
                                              num_workers=2 if threads > 1 else 1,
                                              min_window=min_window))
        load = time.perf_counter() - started
        started = time.perf_counter()

        async def go() -> dict[str, str]:
            out = {}
            async for src, result in transcribe_many(paths, engine=engine, concurrency=4):
                out[src] = "" if isinstance(result, Exception) else result.text
            return out

        found = asyncio.run(go())
        texts = [found[p] for p in paths]
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"texts": texts, "wall": wall, "load": load, "peak_mb": peak_mb}


def measure(
    kind: str, paths: list[Path], threads: int, min_window: float | None = None
) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--worker", kind, "--threads", str(threads)]
    if min_window is not None:
        cmd += ["--min-window", str(min_window)]
    cmd += [str(p) for p in paths]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--leads", type=float, nargs="+", default=[0.0, 3.0, 7.0],
                        help="seconds of silence before the long recording's copies")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-window", type=float, help="also run voxflow with this min_window")
    parser.add_argument("--worker", choices=("baseline", "voxflow"))
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_one(args.worker, args.paths, args.threads, args.min_window)))
        return
    if not (CORPUS / "manifest.tsv").exists():
        sys.exit(f"needs the real recordings in {CORPUS}")
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    whisper_norm = EnglishTextNormalizer()
    long_paths, long_ref, short_paths, short_refs = build(args.minutes, args.leads, args.files)
    leads = ", ".join(f"{lead:g}" for lead in args.leads)
    workloads = [
        (f"{args.minutes:g} min of speech after {leads} s of silence", long_paths,
         [long_ref] * len(long_paths)),
        (f"{args.files} short files", short_paths, short_refs),
    ]
    print("| workload | system | audio s / wall s | ratio | WER | WER (Whisper norm.) | "
          "peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    notes = []
    for title, paths, refs in workloads:
        audio_s = sum(len(_read(p)) for p in paths) / RATE
        runs = [("faster-whisper defaults", measure("baseline", paths, args.threads)),
                ("voxflow", measure("voxflow", paths, args.threads))]
        if args.min_window is not None:
            runs.append((f"voxflow, min_window {args.min_window:g} s",
                         measure("voxflow", paths, args.threads, args.min_window)))
        ref = " ".join(refs)
        for name, res in runs:
            speed = audio_s / float(res["wall"])
            ratio = float(runs[0][1]["wall"]) / float(res["wall"])
            said = " ".join(res["texts"])
            wer = jiwer.wer(_normalise(ref), _normalise(said))
            wer_w = jiwer.wer(whisper_norm(ref), whisper_norm(said))
            print(f"| {title} | {name} | {speed:.1f} | {ratio:.2f}× | {wer:.3f} | {wer_w:.3f} | "
                  f"{float(res['peak_mb']):.0f} |", flush=True)
            if 1 < len(paths) <= 5:
                each = [jiwer.wer(whisper_norm(r), whisper_norm(t))
                        for r, t in zip(refs, res["texts"], strict=True)]
                notes.append(f"- {title}, {name}: WER (Whisper norm.) of each file "
                             + " / ".join(f"{w:.3f}" for w in each))
    print("\n".join(["", *notes]))


if __name__ == "__main__":
    main()
