"""VAD segmentation: voxflow's streaming Silero + planner vs faster-whisper's whole-array VAD.

Usage:
    python benchmarks/bench_vad.py [--minutes 10] [--hours 1] [--repeat 3]

Joins the real recordings of ../shared/corpus (0.5 s apart, looped) into ``--minutes`` of
speech, then times, best of ``--repeat``: voxflow's ``speech_segments`` (Silero, fed 1 s chunks
and the 1024-frame chunks ``open_audio`` yields; and the silence detector) and
``faster_whisper.vad.get_speech_timestamps`` on the same array (its defaults, and with
``max_speech_duration_s=30`` as its batched pipeline uses it). Then streams ``--hours`` of the
same audio through voxflow and measures peak memory (tracemalloc, which sees numpy buffers),
next to faster-whisper on the same hour held as one array. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus"
RATE = 16000
CLIPS = [
    *(f"librivox/sense_and_sensibility_01_austen_64kb-0{n}.wav" for n in (870, 880, 890, 920, 930)),
    "azure-samples/LanguageDetection_enUS.wav",
    "azure-samples/katiesteve_mono.wav",
    "azure-samples/es-mx.wav",
    "azure-samples/whatstheweatherlike.wav",
]


def read_wav(path: Path) -> np.ndarray:
    """A 16 kHz mono 16-bit WAV file as float32 samples."""
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2), path
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2") / np.float32(32768)


def real_speech(minutes: float) -> np.ndarray:
    """The corpus clips (16 kHz mono WAV), 0.5 s apart, looped to ``minutes``."""
    pause = np.zeros(RATE // 2, dtype=np.float32)
    one = np.concatenate([x for p in CLIPS for x in (read_wav(CORPUS / p), pause)])
    reps = int(np.ceil(minutes * 60 * RATE / len(one)))
    return np.tile(one, reps)[: int(minutes * 60 * RATE)]


def chunks(audio: np.ndarray, size: int) -> Iterator[np.ndarray]:
    return (audio[i : i + size] for i in range(0, len(audio), size))


def best(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return min(times), result


def covered(spans: list[tuple[int, int]], of: list[tuple[int, int]], n: int) -> float:
    """Share of the samples in ``of`` that lie inside ``spans``."""
    mask, want = np.zeros(n, bool), np.zeros(n, bool)
    for a, b in spans:
        mask[a:b] = True
    for a, b in of:
        want[a:b] = True
    return float((mask & want).sum() / max(want.sum(), 1))


def speed(minutes: float, repeat: int) -> None:
    from faster_whisper.vad import VadOptions as FwOptions
    from faster_whisper.vad import get_speech_timestamps

    from voxflow.segments import speech_segments
    from voxflow.vad import silero_session

    audio = real_speech(minutes)
    seconds = len(audio) / RATE
    silero_session()  # load once, outside the timings (as both libraries cache it)
    get_speech_timestamps(audio[:RATE])
    runs: dict[str, Callable[[], list[tuple[int, int]]]] = {
        "voxflow silero, 1 s chunks": lambda: [
            (s.start_sample, s.end_sample) for s in speech_segments(chunks(audio, RATE))
        ],
        "voxflow silero, 1024-frame chunks": lambda: [
            (s.start_sample, s.end_sample) for s in speech_segments(chunks(audio, 1024))
        ],
        "voxflow silence (-40 dBFS, 500 ms), 1 s chunks": lambda: [
            (s.start_sample, s.end_sample)
            for s in speech_segments(chunks(audio, RATE), detector="silence")
        ],
        "faster-whisper get_speech_timestamps, defaults": lambda: [
            (d["start"], d["end"]) for d in get_speech_timestamps(audio)
        ],
        "faster-whisper get_speech_timestamps, max 30 s": lambda: [
            (d["start"], d["end"])
            for d in get_speech_timestamps(audio, FwOptions(max_speech_duration_s=30))
        ],
    }
    same = FwOptions(min_silence_duration_ms=300, speech_pad_ms=30)
    reference = [(d["start"], d["end"]) for d in get_speech_timestamps(audio, same)]
    print(f"\n{seconds / 60:.1f} min of real speech (corpus clips looped), best of {repeat}\n")
    print("| run | seconds | × real time | segments | longest (s) | covers fw speech¹ |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, fn in runs.items():
        elapsed, spans = best(fn, repeat)
        assert isinstance(spans, list)
        longest = max((b - a for a, b in spans), default=0) / RATE
        share = covered(spans, reference, len(audio))
        print(
            f"| {name} | {elapsed:.2f} | {seconds / elapsed:.0f} | {len(spans)} "
            f"| {longest:.1f} | {share:.1%} |"
        )
    print(
        "\n¹ share of the samples faster-whisper calls speech with voxflow's VAD settings"
        " (threshold 0.5, min silence 300 ms, pad 30 ms, min speech 0) inside the run's"
        " segments"
    )


def memory(hours: float) -> None:
    from faster_whisper.vad import get_speech_timestamps

    from voxflow.segments import SegmentPlanner
    from voxflow.vad import SileroDetector, silero_session

    piece = real_speech(10)
    total = int(hours * 3600 * RATE)
    silero_session()

    def stream() -> Iterator[np.ndarray]:
        for i in range(0, total, RATE):
            j = i % len(piece)
            yield piece[j : j + min(RATE, total - i, len(piece) - j)]

    tracemalloc.start()
    t = time.perf_counter()
    planner = SegmentPlanner(SileroDetector())
    count = 0
    for chunk in stream():
        count += len(planner.feed(chunk))
    count += len(planner.finish())
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\nStreaming {hours:g} h of real speech (1 s chunks)\n")
    print("| run | seconds | peak traced memory (MiB) | audio held at most (s) | segments |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| voxflow speech_segments (silero) | {elapsed:.1f} | {peak / 2**20:.1f} "
        f"| {planner.peak_held / RATE:.1f} | {count} |"
    )
    whole = np.concatenate(list(stream()))
    tracemalloc.start()
    t = time.perf_counter()
    found = get_speech_timestamps(whole)
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"| faster-whisper get_speech_timestamps (input array of {whole.nbytes / 2**20:.0f} MiB"
        f" not counted) | {elapsed:.1f} | {peak / 2**20:.1f} | {len(whole) / RATE:.0f} "
        f"| {len(found)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if not (CORPUS / "manifest.tsv").is_file():
        raise SystemExit(f"corpus absent ({CORPUS}): this benchmark needs real recordings")
    speed(args.minutes, args.repeat)
    memory(args.hours)


if __name__ == "__main__":
    main()
