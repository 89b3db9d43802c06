"""Live latency of ``voxflow listen``: a real recording fed at real time as raw PCM on stdin;
for each final line, the time from the end of its phrase in the audio (the moment the client
had sent it) to the moment the line was printed. Also when the first interim line came.

    python benchmarks/bench_listen.py [FILE.wav ...] [--repeat N]

Needs `pip install -e .`; the default recordings are the repository's samples and, when
``../shared/corpus`` is there, ``katiesteve_mono.wav`` (a two-speaker conversation).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FINAL = re.compile(r"^\[(\d+):(\d+):(\d+)\.(\d+) --> (\d+):(\d+):(\d+)\.(\d+)\] ")


def _seconds(groups: tuple[str, ...]) -> float:
    h, m, s, ms = (int(g) for g in groups)
    return h * 3600 + m * 60 + s + ms / 1000


def run(path: Path) -> dict[str, object]:
    """One recording through ``voxflow listen -`` at real time: final lines' latencies."""
    with wave.open(str(path)) as w:
        rate, channels, data = w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())
    per_second = 2 * channels * rate
    proc = subprocess.Popen(
        [sys.executable, "-m", "voxflow", "listen", "-", "--rate", str(rate),
         "--channels", str(channels)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    started: list[float] = []
    out = os.dup(proc.stdin.fileno())
    proc.stdin.close()

    def feed() -> None:
        step = per_second // 10  # 0.1 s of audio per write
        started.append(time.monotonic())
        for at in range(0, len(data), step):
            os.write(out, data[at : at + step])
            lag = started[0] + (at + step) / per_second - time.monotonic()
            if lag > 0:
                time.sleep(lag)
        os.close(out)

    writer = threading.Thread(target=feed)
    writer.start()
    latencies: list[float] = []
    first_interim: float | None = None
    for line in proc.stdout:
        now = time.monotonic()
        if line.startswith("... ") and first_interim is None and started:
            first_interim = now - started[0]
        match = FINAL.match(line)
        if match and started:
            end = _seconds(match.groups()[4:8])
            latencies.append(now - (started[0] + end))
    proc.wait(timeout=600)
    writer.join()
    return {"file": path.name, "audio_s": len(data) / per_second, "latencies": latencies,
            "first_interim": first_interim}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    paths = args.paths or [ROOT / "samples" / "austen-0870.wav", ROOT / "samples" / "es-mx.wav"]
    corpus = ROOT.parent / "shared" / "corpus" / "azure-samples" / "katiesteve_mono.wav"
    if not args.paths and corpus.exists():
        paths.append(corpus)
    print(f"load before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| recording | audio s | finals | latency median (s) | latency max (s) "
          "| first interim at (s) |")
    print("|---|---:|---:|---:|---:|---:|")
    for path in paths:
        for _ in range(args.repeat):
            r = run(path)
            lat = r["latencies"]
            assert isinstance(lat, list)
            med = f"{statistics.median(lat):.2f}" if lat else "–"
            top = f"{max(lat):.2f}" if lat else "–"
            first = r["first_interim"]
            shown = f"{first:.2f}" if isinstance(first, float) else "–"
            print(f"| {r['file']} | {r['audio_s']:.1f} | {len(lat)} | {med} | {top} | {shown} |")
    print(f"load after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
