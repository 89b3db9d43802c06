"""Throughput on a Dask cluster of 1 and 2 worker processes against a local run, and the
scheduler's overhead per task.

Usage:
    python benchmarks/bench_cluster.py [--minutes 6] [--files 8] [--piece 180] [--tasks 500]

Builds (once, into benchmarks/.data, with bench_transcribe's builder) a long recording of the
corpus's English clips joined at pauses and ``--files`` short files, then transcribes that batch
three ways in this process, each into a fresh job directory, with the models loaded before the
clock starts and two model threads in all (this machine's cores):

- baseline: ``voxflow.jobs.run_batch`` here (two model workers of one thread);
- a LocalCluster of 1 worker process (two model workers of one thread);
- a LocalCluster of 2 worker processes (one model worker of one thread each);

and checks that the three wrote the same bytes. Then it times ``--tasks`` no-op tasks on the
2-worker cluster, submitted at once (the scheduler's cost per task when it is busy) and one after
another (a task's round trip). Prints a markdown table. Needs ../shared/corpus and
``pip install -e '.[cluster,bench]'``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import wave
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_transcribe import build  # noqa: E402
from voxflow.engines import create_engine  # noqa: E402
from voxflow.engines.whisper import WhisperOptions  # noqa: E402
from voxflow.jobs import BatchOptions, run_batch  # noqa: E402
from voxflow.jobs.cluster import ClusterOptions, run_batch_on_cluster, task_threads  # noqa: E402
from voxflow.pipeline import TranscribeOptions  # noqa: E402

FORMATS = ("json",)


def _seconds(paths: list[str]) -> float:
    total = 0.0
    for p in paths:
        with wave.open(p) as w:
            total += w.getnframes() / w.getframerate()
    return total


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}


def _noop(x: int) -> int:
    return x


def _warm(engine: WhisperOptions, path: str) -> None:
    """On a worker: load its engine and run a short file through it."""
    from voxflow.jobs.cluster import worker_engine
    from voxflow.pipeline import transcribe

    transcribe(path, engine=worker_engine(engine))


async def _timed_local(paths: list[str], out: Path) -> float:
    engine = create_engine(WhisperOptions(num_workers=2, cpu_threads=1))
    await run_batch(paths[-1:], engine=engine, options=TranscribeOptions(),
                    batch=BatchOptions(formats=FORMATS))  # warm, as the workers are
    started = time.perf_counter()
    await run_batch(paths, engine=engine, options=TranscribeOptions(),
                    batch=BatchOptions(formats=FORMATS, out_dir=out))  # fmt: skip
    return time.perf_counter() - started


async def _timed_cluster(
    address: str, workers: int, paths: list[str], out: Path, piece: float
) -> float:
    engine = WhisperOptions(num_workers=2 // workers, cpu_threads=1)
    cluster = ClusterOptions(address=address, piece_seconds=piece)

    from distributed import Client

    async with Client(address, asynchronous=True) as client:  # every worker loads its model
        addresses = list((await client.nthreads()).keys())
        await client.gather([client.submit(_warm, engine, paths[-1], workers=[a], pure=False)
                             for a in addresses])  # fmt: skip
    started = time.perf_counter()
    await run_batch_on_cluster(
        paths, cluster=cluster, engine_options=engine, options=TranscribeOptions(),
        batch=BatchOptions(formats=FORMATS, out_dir=out),
    )  # fmt: skip
    return time.perf_counter() - started


def _overhead(address: str, tasks: int) -> tuple[float, float]:
    """Milliseconds per no-op task: submitted at once, and one after another."""
    from distributed import Client

    with Client(address) as client:
        client.gather(client.map(_noop, range(50), pure=False))  # warm
        started = time.perf_counter()
        client.gather(client.map(_noop, range(tasks), pure=False))
        batch = (time.perf_counter() - started) / tasks
        started = time.perf_counter()
        for i in range(100):
            client.submit(_noop, i, pure=False).result()
        serial = (time.perf_counter() - started) / 100
    return batch * 1000, serial * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="length of the long file")
    parser.add_argument("--files", type=int, default=8, help="short files")
    parser.add_argument("--piece", type=float, default=180.0, help="seconds per piece")
    parser.add_argument("--tasks", type=int, default=500, help="no-op tasks for the overhead")
    args = parser.parse_args()
    from distributed import LocalCluster

    long_paths, _, short_paths, _ = build(args.minutes, [0.0], args.files)
    paths = [str(p) for p in [*long_paths, *short_paths]]
    audio = _seconds(paths)
    print(f"load before: {os.getloadavg()[0]:.1f}; {len(paths)} files, {audio:.0f} s of audio",
          file=sys.stderr)  # fmt: skip
    rows, results = [], {}
    out = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    wall = asyncio.run(_timed_local(paths, out / "local"))
    results["local"] = _outputs(out / "local")
    rows.append(("local run (`run_batch`, 2 model workers)", wall))
    overhead = (0.0, 0.0)
    for workers in (1, 2):
        threads = task_threads(WhisperOptions(num_workers=2 // workers))
        with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True,
                          dashboard_address=None) as local:  # fmt: skip
            target = out / f"cluster{workers}"
            wall = asyncio.run(
                _timed_cluster(local.scheduler_address, workers, paths, target, args.piece)
            )
            if workers == 2:
                overhead = _overhead(local.scheduler_address, args.tasks)
        results[f"cluster{workers}"] = _outputs(target)
        rows.append((f"Dask cluster, {workers} worker process{'es' if workers > 1 else ''}", wall))
    same = all(r == results["local"] for r in results.values())
    print(f"load after: {os.getloadavg()[0]:.1f}; outputs identical: {same}", file=sys.stderr)
    base = audio / rows[0][1]
    print("| run | audio s / wall s | ratio |\n|---|---|---|")
    for label, wall in rows:
        print(f"| {label} | {audio / wall:.1f} | {audio / wall / base:.2f}× |")
    print(f"\nno-op task: {overhead[0]:.2f} ms each submitted at once, "
          f"{overhead[1]:.2f} ms round trip one after another")  # fmt: skip


if __name__ == "__main__":
    main()
