"""`voxflow serve`'s OpenAI audio API under the real ``openai`` client: N clients at once.

Usage:
    python benchmarks/bench_openai.py [--clients 1 4 16] [--workers 2] [--stream]

Starts ``voxflow serve --port 0 --workers W --max-requests 64`` as a subprocess, then, for each
N, N threads each upload ``katiesteve_mono.wav`` (19.2 s of real speech) to
``POST /v1/audio/transcriptions`` at the same moment (``--stream``: with ``stream=true``,
latency then also to the first delta). Throughput is N x 19.2 s of audio over the wall time
until the last answer; latency is each request's time to its answer. The baseline, run side by
side: the same N files through ``voxflow.transcribe_many`` in this process (concurrency N, the
same engine options), so that the ratio is what the HTTP path costs or gains. Every text is
checked against the pipeline's own transcript of the file (word error rate, jiwer). Requests
hold the server's recognition slots (``--max-recognitions``, ``--max-queue-wait``), so with
many clients some are refused at once with 503: they are counted, and throughput counts the
answered ones.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_server  # noqa: E402  (a sibling script, found through the path above)

CLIP = bench_server.THROUGHPUT_CLIP
SECONDS = 19.2


def _request(base_url: str, stream: bool) -> tuple[float, float | None, str | None]:
    """One transcription: (seconds to the answer, seconds to the first delta, text); the text
    is None when the server refused it as saturated (429/503, answered promptly by design)."""
    import openai

    try:
        return _transcription(base_url, stream)
    except openai.APIStatusError as exc:
        if exc.status_code not in (429, 503):
            raise
        return 0.0, None, None


def _transcription(base_url: str, stream: bool) -> tuple[float, float | None, str]:
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key="unused", max_retries=0, timeout=600)
    began = time.perf_counter()
    with CLIP.open("rb") as f:
        if not stream:
            text = client.audio.transcriptions.create(model="whisper-1", file=f).text
            return time.perf_counter() - began, None, text
        first = None
        text = ""
        for event in client.audio.transcriptions.create(model="whisper-1", file=f, stream=True):
            if first is None:
                first = time.perf_counter() - began
            if event.type == "transcript.text.done":
                text = event.text
    return time.perf_counter() - began, first, text


def _http_round(base_url: str, n: int, stream: bool) -> tuple[float, list[tuple]]:
    began = time.perf_counter()
    with ThreadPoolExecutor(n) as pool:
        results = list(pool.map(lambda _: _request(base_url, stream), range(n)))
    return time.perf_counter() - began, results


def _baseline_round(engine: object, n: int) -> tuple[float, list[str]]:
    from voxflow.pipeline import transcribe_many

    async def run() -> list[str]:
        done = transcribe_many([CLIP] * n, engine=engine, concurrency=n)  # type: ignore[arg-type]
        return [t.text async for _, t in done]  # type: ignore[union-attr]

    began = time.perf_counter()
    texts = asyncio.run(run())
    return time.perf_counter() - began, texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stream", action="store_true")
    args = parser.parse_args()

    import jiwer

    from voxflow.engines import create_engine
    from voxflow.engines.whisper import WhisperOptions
    from voxflow.pipeline import transcribe

    engine = create_engine(WhisperOptions(num_workers=args.workers))
    reference = bench_server._normalise(transcribe(str(CLIP), engine=engine).text)

    def wer(texts: list[str]) -> float:
        return max(jiwer.wer(reference, bench_server._normalise(t)) for t in texts)

    server = bench_server.Server(["--workers", str(args.workers), "--max-requests", "64"])
    base_url = server.url.replace("ws://", "http://") + "/v1"
    try:
        _http_round(base_url, 1, args.stream)  # warm-up
        print(f"| clients | refused (503) | HTTP throughput (audio s / wall s) | latency median "
              f"(s) | latency max (s) |{' first delta median (s) |' if args.stream else ''} WER "
              "| in-process throughput | HTTP / in-process |")  # fmt: skip
        print("|---:|---:|---:|---:|---:|" + ("---:|" if args.stream else "") + "---:|---:|---:|")
        for n in args.clients:
            wall, results = _http_round(base_url, n, args.stream)
            answered = [r for r in results if r[2] is not None]
            latencies = [r[0] for r in answered]
            firsts = [r[1] for r in answered if r[1] is not None]
            base_wall, base_texts = _baseline_round(engine, n)
            http_rate, base_rate = len(answered) * SECONDS / wall, n * SECONDS / base_wall
            first = f" {statistics.median(firsts):.2f} |" if args.stream else ""
            print(f"| {n} | {n - len(answered)} | {http_rate:.1f} | "
                  f"{statistics.median(latencies):.2f} | {max(latencies):.2f} |{first} "
                  f"{wer([r[2] for r in answered] + base_texts):.3f} | {base_rate:.1f} | "
                  f"{http_rate / base_rate:.2f} |", flush=True)  # fmt: skip
        rss, peak = bench_server._rss_mib(server.proc.pid)
        print(f"\nserver RSS {rss:.0f} MiB (peak {peak:.0f} MiB)")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
