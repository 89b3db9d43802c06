"""Peak memory and speed of streaming decode: voxflow.audio vs whole-file decoders.

Usage:
    python benchmarks/bench_decode_memory.py [--hours 1 10] [--skip-baselines-above 1]

Makes (once, into benchmarks/.data) an MP3 of 1 hour, 44.1 kHz mono, 64 kbit/s (a podcast),
encoded with PyAV, and longer ones by copying its packets end to end (no re-encoding).
Every decoder runs in its own subprocess, reading the file and producing 16 kHz mono PCM as
Whisper wants it, and reports wall time and peak RSS (``ru_maxrss``):

- ``voxflow``: ``open_audio(path)`` iterated to the end (streaming, chunks dropped as used);
- ``ffmpeg-cli``: ``ffmpeg -i path -f f32le -ac 1 -ar 16000 -`` into a pipe that is drained
  (the native lower bound, when the ffmpeg program is installed);
- ``faster-whisper``: ``faster_whisper.decode_audio(path)`` (PyAV, whole file in memory);
- ``pydub``: ``AudioSegment.from_file(path).set_frame_rate(16000).set_channels(1)``.

Whole-file baselines run on files up to ``--skip-baselines-above`` hours (their memory grows
with the file). Prints a markdown table: audio seconds per wall second, the speed ratio to
ffmpeg-cli run side by side, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"
RATE = 44100

DECODERS = {
    "voxflow": """
from voxflow.audio import open_audio
frames = 0
with open_audio(PATH) as stream:
    for chunk in stream:
        frames += chunk.frames
""",
    "faster-whisper": """
from faster_whisper import decode_audio
frames = len(decode_audio(PATH, sampling_rate=16000))
""",
    "pydub": """
from pydub import AudioSegment
seg = AudioSegment.from_file(PATH).set_frame_rate(16000).set_channels(1)
frames = int(seg.frame_count())
""",
    "ffmpeg-cli": """
import subprocess
import os
proc = subprocess.Popen(["ffmpeg", "-v", "error", "-i", PATH, "-f", "f32le", "-ac", "1",
                         "-ar", "16000", "-"], stdout=subprocess.PIPE)
frames = 0
while block := proc.stdout.read(1 << 20):
    frames += len(block) // 4
_, status, usage = os.wait4(proc.pid, 0)
assert status == 0
proc.returncode = 0
CHILD_KIB = usage.ru_maxrss  # the ffmpeg process's own peak
""",
}

# Peak RSS is the process's VmHWM: ru_maxrss would also count the benchmark process that
# forked it (Linux keeps the high-water mark across exec).
RUNNER = """
import json, resource, sys, time
PATH = sys.argv[1]
CHILD_KIB = 0
start = time.perf_counter()
{body}
wall = time.perf_counter() - start
try:
    status = open("/proc/self/status").read().split("VmHWM:")[1]
    own = int(status.split()[0])
except (OSError, IndexError):
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"frames": frames, "wall": wall, "rss_kib": max(own, CHILD_KIB)}}))
"""


def make_hour(path: Path) -> None:
    """One hour of a slowly gliding tone over quiet noise, as 64 kbit/s mono MP3."""
    import av
    import numpy as np

    rng = np.random.default_rng(0)
    with av.open(str(path), "w", format="mp3") as out:
        stream = out.add_stream("libmp3lame", rate=RATE, layout="mono")
        stream.bit_rate = 64000
        cc = stream.codec_context
        resampler = av.AudioResampler(
            format=cc.format.name, layout="mono", rate=RATE, frame_size=cc.frame_size
        )
        block, pos = RATE * 10, 0
        while pos < 3600 * RATE:
            t = (pos + np.arange(block)) / RATE
            x = 0.3 * np.sin(2 * np.pi * (300 + 100 * np.sin(t / 7)) * t)
            x = (x + rng.normal(0, 0.01, block)).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(x, format="flt", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = RATE, pos, Fraction(1, RATE)
            for piece in resampler.resample(frame):
                out.mux(stream.encode(piece))
            pos += block
        for piece in resampler.resample(None):
            out.mux(stream.encode(piece))
        out.mux(stream.encode(None))


def make_long(hour: Path, path: Path, hours: int) -> None:
    """``hours`` copies of the hour's MP3 packets end to end (a remux, no re-encoding)."""
    import av

    with av.open(str(path), "w", format="mp3") as out:
        with av.open(str(hour)) as first:
            template = first.streams.audio[0]
            stream = out.add_stream_from_template(template)
        offset = 0
        for _ in range(hours):
            with av.open(str(hour)) as src:
                audio = src.streams.audio[0]
                last = 0
                for packet in src.demux(audio):
                    if packet.dts is None:
                        continue
                    last = packet.pts + (packet.duration or 0)
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = stream
                    out.mux(packet)
                offset += last


def ensure(hours: int) -> Path:
    DATA.mkdir(parents=True, exist_ok=True)
    hour = DATA / "podcast-1h.mp3"
    if not hour.exists():
        print("making the 1 h MP3 (once)...", file=sys.stderr)
        make_hour(hour.with_suffix(".tmp"))
        hour.with_suffix(".tmp").rename(hour)
    if hours == 1:
        return hour
    path = DATA / f"podcast-{hours}h.mp3"
    if not path.exists():
        print(f"making the {hours} h MP3 (once)...", file=sys.stderr)
        make_long(hour, path.with_suffix(".tmp"), hours)
        path.with_suffix(".tmp").rename(path)
    return path


def run(decoder: str, path: Path) -> dict[str, float]:
    code = RUNNER.format(body=DECODERS[decoder])
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}  # type: ignore[dict-item]
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--skip-baselines-above", type=float, default=1.0)
    parser.add_argument("--decoders", nargs="+", default=list(DECODERS))
    args = parser.parse_args()
    has_cli = shutil.which("ffmpeg") is not None
    rows = []
    for hours in args.hours:
        path = ensure(hours)
        seconds = hours * 3600.0
        results: dict[str, dict[str, float]] = {}
        for decoder in args.decoders:
            if decoder == "ffmpeg-cli" and not has_cli:
                continue
            if decoder not in ("voxflow", "ffmpeg-cli") and hours > args.skip_baselines_above:
                continue
            results[decoder] = run(decoder, path)
            print(f"{hours} h {decoder}: {results[decoder]}", file=sys.stderr)
        reference = results.get("ffmpeg-cli", {}).get("wall")
        for decoder, r in results.items():
            if "error" in r:
                rows.append(f"| {hours} h | {decoder} | failed: {r['error']} | | | |")
                continue
            ratio = f"{reference / r['wall']:.2f}" if reference else "n/a"
            rows.append(
                f"| {hours} h | {decoder} | {r['frames'] / 16000:.0f} | "
                f"{seconds / r['wall']:.0f}x | {ratio} | {r['rss_kib'] / 1024:.0f} MiB |"
            )
    print(
        "| audio | decoder | output s | speed (audio s / wall s) | speed vs ffmpeg-cli | peak RSS |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
