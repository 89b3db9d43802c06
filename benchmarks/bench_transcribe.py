"""Throughput and WER: voxflow vs plain faster-whisper defaults, same model, threads, machine.

Usage:
    python benchmarks/bench_transcribe.py [--minutes 10] [--leads 0 3 7] [--files 50]
                                          [--threads 2] [--min-window 20]
    python benchmarks/bench_transcribe.py --eval [--minutes 3] [--threads 2] [--min-window 20]

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

``--eval`` measures on the recordings of ``corpus/eval`` (several languages) instead, scored as
``bench_accuracy`` scores them (its loader, normalisers and WER/CER): a long recording per
language in ``EVAL_LONG`` (that language's eval recordings once each, shuffled and joined with
0.5-1.5 s pauses, a fixed seed, up to ``--minutes``), transcribed with the language given to
both sides, so that language identification does not decide the comparison; and every eval
recording as its own file, language identified on both sides. voxflow is run one batch per
language where the language is given, as ``voxflow transcribe --language`` would be.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
import wave
from pathlib import Path
from typing import Any

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
EVAL_LONG = ("en", "es", "fr", "de", "pt")  # the eval languages with a minute or more of speech


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


def build_eval(minutes: float) -> tuple[list[tuple[str, Path, str]], list[Any]]:
    """Per language of ``EVAL_LONG``: the long file and its reference; and every eval
    recording (``bench_accuracy.Item``)."""
    from faster_whisper import decode_audio

    from bench_accuracy import load_items

    DATA.mkdir(exist_ok=True)
    items = load_items(CORPUS, [], ["eval/"])
    rng = np.random.default_rng(0)
    long = []
    for lang in EVAL_LONG:
        mine = [i for i in items if i.language == lang]
        pieces, texts, total = [], [], 0
        for k in rng.permutation(len(mine)):
            pcm = np.round(decode_audio(str(mine[k].file), sampling_rate=RATE) * 32767)
            pause = np.zeros(int(rng.uniform(0.5, 1.5) * RATE), dtype="<i2")
            if pieces and total + len(pcm) > minutes * 60 * RATE:
                break
            pieces += [pcm, pause]
            texts.append(mine[k].reference)
            total += len(pcm) + len(pause)
        path = DATA / f"eval-{lang}-{minutes:g}min.wav"
        _write(path, np.concatenate(pieces[:-1]))
        long.append((lang, path, " ".join(texts)))
    return long, items


def main_eval(minutes: float, threads: int, min_window: float | None) -> None:
    """The ``--eval`` workloads: print the table and per-language notes."""
    from bench_accuracy import CHARACTER_LANGUAGES, score

    load_before = os.getloadavg()
    long, items = build_eval(minutes)
    langs = [lang for lang, _p, _r in long]
    workloads = [
        (f"long recordings ({', '.join(langs)}), language given", [p for _l, p, _r in long],
         langs, [r for _l, _p, r in long], [len(_read(p)) / RATE for _l, p, _r in long]),
        (f"{len(items)} eval files, language identified", [i.file for i in items],
         [None] * len(items), [i.reference for i in items], [i.duration or 0.0 for i in items]),
    ]
    print("| workload | system | audio s | wall s | audio s / wall s | ratio | WER | CER (zh, ja) "
          "| peak RSS MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    notes = []
    for title, paths, given, refs, seconds in workloads:
        scored = [i.language for i in items] if given[0] is None else given
        runs = [("faster-whisper defaults", measure("baseline", paths, threads, None, given)),
                ("voxflow", measure("voxflow", paths, threads, None, given))]
        if min_window is not None:
            runs.append((f"voxflow, min_window {min_window:g} s",
                         measure("voxflow", paths, threads, min_window, given)))
        audio_s = sum(seconds)
        for name, res in runs:
            scores = [score(r, t, lang)
                      for r, t, lang in zip(refs, res["texts"], scored, strict=True)]
            rates = []
            for chars in (False, True):
                part = [sc for sc, lang in zip(scores, scored, strict=True)
                        if (lang in CHARACTER_LANGUAGES) == chars]
                units = sum(sc.units for sc in part)
                rates.append(f"{sum(sc.errors for sc in part) / units:.3f}" if units else "–")
            wall = float(res["wall"])
            print(f"| {title} | {name} | {audio_s:.0f} | {wall:.0f} | {audio_s / wall:.1f} | "
                  f"{float(runs[0][1]['wall']) / wall:.2f}× | {rates[0]} | {rates[1]} | "
                  f"{float(res['peak_mb']):.0f} |", flush=True)
            if given[0] is not None:
                base = runs[0][1]["walls"]
                notes.append(f"- {title}, {name}: " + "; ".join(
                    f"{lang} {sec:.0f} s: {sec / res['walls'][lang]:.1f} audio s/s "
                    f"({base[lang] / res['walls'][lang]:.2f}×), WER {sc.rate:.3f}"
                    for lang, sec, sc in zip(given, seconds, scores, strict=True)))
    after = os.getloadavg()
    print("\n".join(["", *notes, "", "Load average (1, 5, 15 min) before: "
                     + " ".join(f"{x:.2f}" for x in load_before) + "; after: "
                     + " ".join(f"{x:.2f}" for x in after) + f" ({os.cpu_count()} CPUs)."]))


def _normalise(text: str) -> str:
    text = text.lower().replace("mr.", "mister").replace("-", " ")
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text)).strip()


def run_one(
    kind: str,
    paths: list[str],
    threads: int,
    min_window: float | None = None,
    languages: list[str | None] | None = None,
) -> dict[str, object]:
    """Transcribe ``paths`` (each in its language where ``languages`` gives one, else identified)
    with one system; return texts, wall time (in all and per language) and peak RSS."""
    import asyncio

    from voxflow.engines.whisper.models import bundled_model_dir

    model_dir = str(bundled_model_dir())
    wanted = languages or [None] * len(paths)
    started = time.perf_counter()
    if kind == "baseline":
        from faster_whisper import WhisperModel

        model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
        load = time.perf_counter() - started
        started = time.perf_counter()
        texts, walls = [], {}
        for p, lang in zip(paths, wanted, strict=True):
            begun = time.perf_counter()
            segments, _info = model.transcribe(p, language=lang)
            texts.append("".join(s.text for s in segments))
            walls[lang or ""] = walls.get(lang or "", 0.0) + time.perf_counter() - begun
    else:
        from voxflow.engines import create_engine
        from voxflow.engines.whisper import WhisperOptions
        from voxflow.languages import LanguagePlan
        from voxflow.pipeline import TranscribeOptions, transcribe_many

        engine = create_engine(WhisperOptions(model=model_dir, cpu_threads=threads // 2 or 1,
                                              num_workers=2 if threads > 1 else 1,
                                              min_window=min_window))
        load = time.perf_counter() - started
        started = time.perf_counter()

        async def go(batch: list[str], options: TranscribeOptions) -> dict[str, str]:
            out = {}
            async for src, result in transcribe_many(batch, engine=engine, options=options,
                                                     concurrency=4):
                out[src] = "" if isinstance(result, Exception) else result.text
            return out

        # One batch per given language, one after the other (a --language run each).
        found, walls = {}, {}
        for lang in dict.fromkeys(wanted):
            batch = [p for p, w in zip(paths, wanted, strict=True) if w == lang]
            plan = LanguagePlan.parse(forced=lang) if lang else LanguagePlan()
            begun = time.perf_counter()
            found.update(asyncio.run(go(batch, TranscribeOptions(languages=plan))))
            walls[lang or ""] = time.perf_counter() - begun
        texts = [found[p] for p in paths]
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"texts": texts, "wall": wall, "walls": walls, "load": load, "peak_mb": peak_mb}


def measure(
    kind: str,
    paths: list[Path],
    threads: int,
    min_window: float | None = None,
    languages: list[str | None] | None = None,
) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--worker", kind, "--threads", str(threads)]
    if min_window is not None:
        cmd += ["--min-window", str(min_window)]
    if languages is not None:
        cmd += ["--languages", ",".join(lang or "" for lang in languages)]
    cmd += [str(p) for p in paths]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float,
                        help="length of the long recording (default 10), or with --eval the "
                        "most of each language's (default 3)")
    parser.add_argument("--eval", action="store_true",
                        help="measure on corpus/eval's recordings in several languages")
    parser.add_argument("--languages", help="(worker) comma-separated language per path, "
                        "empty to identify")
    parser.add_argument("--leads", type=float, nargs="+", default=[0.0, 3.0, 7.0],
                        help="seconds of silence before the long recording's copies")
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-window", type=float, help="also run voxflow with this min_window")
    parser.add_argument("--worker", choices=("baseline", "voxflow"))
    parser.add_argument("paths", nargs="*")
    args = parser.parse_args()
    if args.worker:
        given = None
        if args.languages is not None:
            given = [lang or None for lang in args.languages.split(",")]
        print(json.dumps(run_one(args.worker, args.paths, args.threads, args.min_window, given)))
        return
    if not (CORPUS / "manifest.tsv").exists():
        sys.exit(f"needs the real recordings in {CORPUS}")
    if args.eval:
        main_eval(3.0 if args.minutes is None else args.minutes, args.threads, args.min_window)
        return
    args.minutes = 10.0 if args.minutes is None else args.minutes
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
