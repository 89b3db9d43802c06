"""The Azure engine on long audio: wall time and client CPU with 1, 4 and 16 sessions at once.

Usage:
    python benchmarks/bench_azure.py [--minutes 60] [--concurrency 1 4 16]
                                     [--recognition whisper cheap] [--session-seconds S]
                                     [--workers 2]

The client is ``voxflow.engines.azure.AzureEngine`` on the real Speech SDK, transcribing one
long recording of real speech (the corpus clips joined with pauses, as bench_transcribe builds
it) through ``voxflow.pipeline.transcribe_async``. The service is ``voxflow serve`` in its own
process, reading every session's audio at real time (``pace=1.0``), as the Azure service does.
``--recognition whisper`` serves real Whisper transcripts; ``cheap`` replaces recognition with
one fixed phrase per segment (VAD still runs), to show what pacing, the protocol and the client
alone allow when the server's CPU is not the limit. ``--workers``: the server's parallel model
calls (2, as ``voxflow serve`` has by default). The session length defaults to the
recording split 16 ways (so 16 sessions can run at once), and is the same for every
concurrency. Client CPU is ``time.process_time`` of this process (decoding, VAD, the SDK's
threads, the bridge); server CPU from ``/proc/PID/stat``.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_server  # noqa: E402  (a sibling script, found through the path above)


# -- the server process ---------------------------------------------------------------------------
class CheapEngine:
    """Benchmark-only stand-in for Whisper: one fixed phrase per clip, no inference."""

    name = "cheap"

    def __init__(self) -> None:
        from voxflow.engines.base import Capabilities

        self.capabilities = Capabilities()

    async def identify(self, clips, candidates):  # type: ignore[no-untyped-def]
        from voxflow.languages import Identified, resolve_language

        return [Identified(candidates[0] if candidates else resolve_language("en"), 1.0)
                for _ in clips]  # fmt: skip

    async def recognize(self, clips, plan, settings):  # type: ignore[no-untyped-def]
        from voxflow.transcript import Segment

        language = plan.fixed.language.tag if plan.fixed else None
        return [[Segment(c.start, c.end, "speech", language)] for c in clips]

    async def aclose(self) -> None:
        return None


def serve(recognition: str, workers: int) -> None:
    """Run the speech server at real-time pace until SIGTERM; print its URL once listening."""
    from voxflow.engines import create_engine
    from voxflow.engines.whisper import WhisperOptions
    from voxflow.server.app import run_server
    from voxflow.server.config import ServerConfig

    if recognition == "cheap":
        engine: object = CheapEngine()
    else:  # as `voxflow serve --workers N` builds it
        engine = create_engine(WhisperOptions(num_workers=workers))
    config = ServerConfig(port=0, pace=1.0, interim=False, max_sessions=64)

    def ready(server: object) -> None:
        print(f"listening on {server.url}", flush=True)  # type: ignore[attr-defined]

    asyncio.run(run_server(config, engine=engine, ready=ready))  # type: ignore[arg-type]


class Server(bench_server.Server):
    """``bench_azure.py --serve`` in a subprocess."""

    def __init__(self, recognition: str, workers: int) -> None:
        cmd = [sys.executable, __file__, "--serve", recognition, "--workers", str(workers)]
        super().__init__([], cmd)

    def cpu(self) -> float:
        """CPU seconds the server has used (user + system)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the client --------------------------------------------------------------------------------
def _normalise(text: str) -> str:
    text = text.lower().replace("mr.", "mister").replace("mr ", "mister ").replace("-", " ")
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s']", " ", text)).strip()


async def _transcribe(path: Path, url: str, concurrency: int, session_seconds: float) -> dict:
    from voxflow.engines.azure import AzureEngine
    from voxflow.engines.azure.config import AzureOptions
    from voxflow.languages import LanguagePlan
    from voxflow.pipeline import TranscribeOptions, transcribe_async

    english = TranscribeOptions(languages=LanguagePlan.parse(forced="en-US"))

    engine = AzureEngine(
        AzureOptions(host=url, sessions=concurrency, session_seconds=session_seconds)
    )
    cpu, began = time.process_time(), time.perf_counter()
    try:
        result = await transcribe_async(
            path, engine=engine, options=english
        )
    finally:
        await engine.aclose()
    return {
        "wall": time.perf_counter() - began,
        "cpu": time.process_time() - cpu,
        "text": result.text,
        "segments": len(result.segments),
        "failed": len(result.extra.get("failed_sessions", [])),
        "sessions": engine.stats["sessions"],
        "retries": engine.stats["retries"],
    }


def _plan_sessions(path: Path, seconds: float) -> tuple[int, float]:
    """How many sessions the pipeline makes of the file at this length, and the longest."""
    from voxflow.audio import open_audio
    from voxflow.pipeline import MERGE_GAP, SEGMENT_PAD
    from voxflow.segments import SegmentOptions, speech_segments

    gap = max(MERGE_GAP, min(10.0, seconds / 2))
    with open_audio(path) as audio:
        segs = list(
            speech_segments(
                audio, options=SegmentOptions(max_duration=seconds, pad=SEGMENT_PAD, merge_gap=gap)
            )
        )
    return len(segs), max(s.duration for s in segs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument(
        "--recognition", nargs="+", default=["whisper", "cheap"], choices=("whisper", "cheap")
    )
    parser.add_argument("--session-seconds", type=float, default=None)
    parser.add_argument("--workers", type=int, default=2, help="server model workers")
    parser.add_argument("--serve", choices=("whisper", "cheap"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.workers)
        return
    from bench_transcribe import CORPUS, RATE, _read, build

    if not (CORPUS / "manifest.tsv").exists():
        sys.exit(f"needs the real recordings in {CORPUS}")
    import jiwer

    path, reference, _, _ = build(args.minutes, 0)
    audio_s = len(_read(path)) / RATE
    widest = max(args.concurrency)
    seconds = args.session_seconds or max(30.0, math.ceil(audio_s / widest * 1.05))
    count, longest = _plan_sessions(path, seconds)
    while args.session_seconds is None and count > widest:  # room for one wave at the widest
        seconds = math.ceil(seconds * 1.05)
        count, longest = _plan_sessions(path, seconds)
    print(
        f"audio {audio_s / 60:.1f} min; sessions of at most {seconds:g} s: {count} "
        f"(longest {longest:.1f} s); cpus={os.cpu_count()}; server workers {args.workers}",
        flush=True,
    )
    print(
        "| recognition | sessions at once | wall (s) | speed-up vs 1 | audio s / wall s "
        "| client CPU (s) | client CPU per audio hour (s) | server CPU cores busy | WER "
        "| failed sessions |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for recognition in args.recognition:
        server = Server(recognition, args.workers)
        try:
            first_wall = None
            for n in args.concurrency:
                server_cpu = server.cpu()
                run = asyncio.run(_transcribe(path, server.url, n, seconds))
                busy = (server.cpu() - server_cpu) / run["wall"]
                first_wall = first_wall or run["wall"]
                wer = (
                    f"{jiwer.wer(_normalise(reference), _normalise(run['text'])):.3f}"
                    if recognition == "whisper"
                    else "n/a"
                )
                print(
                    f"| {recognition} | {n} | {run['wall']:.1f} | {first_wall / run['wall']:.2f}× "
                    f"| {audio_s / run['wall']:.1f} | {run['cpu']:.1f} "
                    f"| {run['cpu'] / (audio_s / 3600):.1f} | {busy:.2f} | {wer} "
                    f"| {run['failed']} (retries {run['retries']}) |",
                    flush=True,
                )
        finally:
            server.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"client peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
