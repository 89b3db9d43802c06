"""Silence detection: voxflow.silence vs pydub 0.25.1 (and FFmpeg's silencedetect), side by side.

Usage:
    python benchmarks/bench_silence.py            # full: 10 min + 1 h at 16 kHz mono,
                                                  # 10 min at 44.1 kHz stereo, memory 1 h + 10 h
    python benchmarks/bench_silence.py --quick    # 10 min mono, 2 min stereo, memory 1 h

Audio: speech with pauses. Real read speech (../shared/corpus/librivox) when present, else
espeak-ng sentences, else noise bursts; each utterance at a random gain (±6 dB) followed by a
pause of 0.15-2.5 s holding a -62 dBFS noise floor. Files are made once in benchmarks/.data.

For each file, in one process: pydub's ``detect_silence`` and voxflow's (the same
AudioSegment in memory) with min_silence_len=1000, silence_thresh=-40, seek_step=1; the
outputs must be identical (asserted). Then ``stream_silence(path)`` (decoding included) and
``ffmpeg -af silencedetect=noise=-40dB:d=1`` on the same file (a different, per-sample
algorithm: its count is shown for orientation, not compared). Peak memory of the streaming
form (and of pydub loading the 1 h file) runs in a fresh subprocess per file (``ru_maxrss``,
and ``VmHWM`` where /proc exists), next to an import-only baseline.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
CORPUS = HERE.parent.parent / "shared" / "corpus" / "librivox"
PARAMS = {"min_silence_len": 1000, "silence_thresh": -40, "seek_step": 1}
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Silence detection finds the pauses between sentences.",
    "A long recording is cut into pieces before it is transcribed.",
    "Every chunk keeps a little of the quiet around it.",
]

MEMORY_RUNNER = """
import json, resource, sys, time
mode, path = sys.argv[1], sys.argv[2]
start = time.perf_counter()
count = 0
if mode == "stream":
    from voxflow.silence import stream_silence
    count = sum(1 for _ in stream_silence(path, 1000, -40, 1))
elif mode == "pydub-load":
    from pydub import AudioSegment
    count = len(AudioSegment.from_file(path))
else:
    import pydub, voxflow.audio, voxflow.silence, voxflow.export
wall = time.perf_counter() - start
hwm = 0
try:  # the high-water mark of this process's own memory map (not of the parent it forked from)
    with open("/proc/self/status") as status:
        hwm = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    pass
print(json.dumps({"count": count, "wall": wall, "hwm_kib": hwm,
                  "rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


# -- test audio ------------------------------------------------------------------------------


def utterances() -> list[np.ndarray]:
    """16 kHz mono int16 speech: the corpus, else espeak-ng, else noise bursts."""
    from voxflow.audio import load

    clips = sorted(CORPUS.glob("*.wav")) if CORPUS.is_dir() else []
    if clips:
        return [load(p, sample_rate=16000, channels=1, dtype="int16").samples[:, 0] for p in clips]
    if shutil.which("espeak-ng"):
        out = []
        for i, text in enumerate(SENTENCES):
            path = DATA / f"espeak-{i}.wav"
            subprocess.run(["espeak-ng", "-w", str(path), text], check=True)
            out.append(load(path, sample_rate=16000, channels=1, dtype="int16").samples[:, 0])
        return out
    rng = np.random.default_rng(0)
    return [
        (rng.normal(0, 3000, int(rng.uniform(0.8, 4) * 16000))).astype(np.int16)
        for _ in range(8)
    ]


def make_speech(path: Path, seconds: float) -> Path:
    """``seconds`` of utterances and pauses at 16 kHz mono, written block by block."""
    if path.exists():
        return path
    rng = np.random.default_rng(int(seconds))
    speech = utterances()
    total = int(seconds * 16000)
    tmp = path.with_suffix(".part")
    with wave.open(str(tmp), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        written = 0
        while written < total:
            clip = speech[int(rng.integers(len(speech)))] * 10 ** (rng.uniform(-6, 6) / 20)
            pause = rng.normal(0, 32768 * 10 ** (-62 / 20), int(rng.uniform(0.15, 2.5) * 16000))
            block = np.clip(np.concatenate((clip, pause)), -32768, 32767).astype("<i2")
            block = block[: total - written]
            out.writeframes(block.tobytes())
            written += len(block)
    tmp.rename(path)
    return path


def make_stereo(path: Path, source: Path, seconds: float) -> Path:
    """The first ``seconds`` of ``source`` resampled to 44.1 kHz stereo (right channel -3 dB)."""
    if path.exists():
        return path
    from voxflow.audio import open_audio

    tmp = path.with_suffix(".part")
    limit = int(seconds * 44100)
    with open_audio(source, sample_rate=44100, channels=2, dtype="int16") as stream, \
            wave.open(str(tmp), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(44100)
        for chunk in stream:
            block = chunk.samples[: max(limit - chunk.start, 0)].astype(np.float64)
            block[:, 1] *= 10 ** (-3 / 20)
            out.writeframes(np.rint(block).astype("<i2").tobytes())
    tmp.rename(path)
    return path


# -- measurements ----------------------------------------------------------------------------


def timed(fn, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def ffmpeg_silencedetect(path: Path) -> tuple[float, int] | None:
    if not shutil.which("ffmpeg"):
        return None
    cmd = ["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-af",
           "silencedetect=noise=-40dB:d=1", "-f", "null", "-"]
    wall, done = timed(lambda: subprocess.run(cmd, capture_output=True, text=True, check=True))
    return wall, len(re.findall(r"silence_end:", done.stderr))


def compare(path: Path, label: str) -> dict:
    """pydub and voxflow on one file, side by side; asserts identical output."""
    from pydub import AudioSegment
    from pydub import silence as pydub_silence

    from voxflow import silence as vs

    seg = AudioSegment.from_file(str(path))
    print(f"[{label}] pydub.detect_silence on {len(seg) / 1000:.0f} s ...", file=sys.stderr)
    t_pydub, expected = timed(lambda: pydub_silence.detect_silence(seg, **PARAMS))
    t_vox, got = timed(lambda: vs.detect_silence(seg, **PARAMS), repeat=3)
    assert got == expected, f"{label}: voxflow differs from pydub"
    t_stream, streamed = timed(lambda: list(vs.stream_silence(path, **PARAMS)), repeat=2)
    assert streamed == expected, f"{label}: stream_silence differs from pydub"
    row = {
        "label": label, "seconds": len(seg) / 1000, "ranges": len(expected),
        "pydub": t_pydub, "voxflow": t_vox, "stream": t_stream,
        "ffmpeg": ffmpeg_silencedetect(path),
    }
    return row


def measure_memory(mode: str, path: Path | None = None) -> dict:
    """Peak memory of a fresh process: ``stream`` (stream_silence over ``path``), ``pydub-load``
    (``AudioSegment.from_file``) or ``import`` (the modules only: the baseline)."""
    args = [sys.executable, "-c", MEMORY_RUNNER, mode, str(path or "")]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def memory_table(files: list[tuple[str, Path]]) -> list[str]:
    """Run first, while this process is small: Linux counts the pages a child shares with the
    parent it was forked from in the child's ``ru_maxrss``."""
    base = measure_memory("import")
    lines = [
        f"Peak memory in a fresh process (ru_maxrss; VmHWM); import-only baseline "
        f"{base['rss_kib'] / 1024:.0f} MiB ({base['hwm_kib'] / 1024:.0f} MiB):",
        "",
        "| what | file | silences / ms | wall | peak ru_maxrss | VmHWM | above baseline |",
        "|---|---|---|---|---|---|---|",
    ]
    runs = [("stream_silence", "stream", label, path) for label, path in files]
    runs.append(("pydub AudioSegment.from_file", "pydub-load", files[0][0], files[0][1]))
    for what, mode, label, path in runs:
        m = measure_memory(mode, path)
        lines.append(
            f"| {what} | {label} 16 kHz mono WAV, {path.stat().st_size / 2**20:.0f} MiB | "
            f"{m['count']} | {m['wall']:.1f} s | {m['rss_kib'] / 1024:.0f} MiB | "
            f"{m['hwm_kib'] / 1024:.0f} MiB | {(m['rss_kib'] - base['rss_kib']) / 1024:.0f} MiB |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short run (CI-sized)")
    args = parser.parse_args()
    DATA.mkdir(exist_ok=True)

    ten_min = make_speech(DATA / "speech-16k-10min.wav", 600)
    hour = make_speech(DATA / "speech-16k-1h.wav", 3600)
    files = [("1 h", hour)]
    if not args.quick:
        files.append(("10 h", make_speech(DATA / "speech-16k-10h.wav", 36000)))
    memory = memory_table(files)

    rows = [compare(ten_min, "10 min, 16 kHz mono")]
    if args.quick:
        stereo = make_stereo(DATA / "speech-44k-stereo-2min.wav", ten_min, 120)
        rows.append(compare(stereo, "2 min, 44.1 kHz stereo"))
    else:
        rows.append(compare(hour, "1 h, 16 kHz mono"))
        stereo = make_stereo(DATA / "speech-44k-stereo-10min.wav", ten_min, 600)
        rows.append(compare(stereo, "10 min, 44.1 kHz stereo"))

    print(f"Parameters: {PARAMS}\n")
    print("| audio | silences | pydub | voxflow (in memory) | speed-up | stream_silence "
          "(decode incl.) | ffmpeg silencedetect |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ff = f"{r['ffmpeg'][0]:.2f} s ({r['ffmpeg'][1]} silences)" if r["ffmpeg"] else "n/a"
        print(f"| {r['label']} | {r['ranges']} | {r['pydub']:.1f} s | {r['voxflow']:.3f} s | "
              f"**{r['pydub'] / r['voxflow']:.0f}×** | {r['stream']:.2f} s | {ff} |")
    print()
    print("\n".join(memory))


if __name__ == "__main__":
    main()
