"""The Dask runner on a real ``distributed`` scheduler with two worker processes on loopback
(started once for the module, one thread each; each loads the real model once): its outputs are
the bytes of a local run, a long input spreads over both workers, a worker SIGKILLed mid-run
changes nothing, and a client killed mid-batch resumes without redoing finished files.

Inputs are the bundled real recordings (6-7 s each) and a 34 s file (more than one window)
joined from them at silences, cut into pieces of 10 s so that it spreads; beam 1, one model call
at a time per worker (the options the command line's ``--workers 1`` makes, so the tests share
each worker's engine).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

distributed = pytest.importorskip("distributed", reason="the test extra installs distributed")
import dask  # noqa: E402  (installed with distributed)

from speech import read_wav, write_wav  # noqa: E402
from voxflow.engines import DecodeSettings, create_engine  # noqa: E402
from voxflow.engines.whisper import WhisperOptions  # noqa: E402
from voxflow.errors import ConfigError  # noqa: E402
from voxflow.jobs import (  # noqa: E402
    JOB_FILE,
    BatchOptions,
    BatchResult,
    file_sha256,
    job_status,
    run_batch,
)
from voxflow.jobs.cluster import (  # noqa: E402
    AudioRef,
    ClusterOptions,
    SourcePlan,
    Unseen,
    plan_source,
    run_batch_on_cluster,
)
from voxflow.languages import LanguagePlan  # noqa: E402
from voxflow.pipeline import TranscribeOptions  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
FORMATS = ("txt", "json", "srt")
PIECE = 10.0  # seconds of the long input per recognition task
ENGINE = WhisperOptions(num_workers=1)
OPTIONS = TranscribeOptions(
    languages=LanguagePlan.parse("en-US,es-MX"), decode=DecodeSettings(beam_size=1)
)
pytestmark = [
    pytest.mark.timeout(600),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.Client]:
    """A scheduler and two worker processes (nannies restart a killed one), and a client of
    them for looking at what they do."""
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None,
        ) as local,
        distributed.Client(local) as client,
    ):  # fmt: skip
        yield client


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two samples, a 34 s recording of them in turn with 2.5 s pauses, 2 s of silence
    (no speech: no pieces), and a file that is no audio."""
    src = tmp_path_factory.mktemp("inputs")
    en, es = read_wav(SAMPLES / "austen-0870.wav"), read_wav(SAMPLES / "es-mx.wav")
    pause = np.zeros(int(2.5 * 16000), dtype=np.float32)
    write_wav(src / "long.wav", np.concatenate([en, pause, es, pause, en, pause, es]))
    write_wav(src / "austen.wav", en)
    write_wav(src / "es.wav", es)
    write_wav(src / "silence.wav", np.zeros(2 * 16000, dtype=np.float32))
    (src / "broken.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt not really")
    return src


def names(src: Path) -> list[str]:
    return sorted(str(p) for p in src.iterdir())


def outputs(out: Path) -> dict[str, bytes]:
    """The visible outputs (the job's own files start with a dot)."""
    return {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}


def errors(result: BatchResult) -> dict[str, str | None]:
    return {Path(o.name).name: o.error for o in result.outcomes}


@pytest.fixture(scope="module")
def local_run(inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    """The outputs and per-file errors of the same batch run in this process."""
    out = tmp_path_factory.mktemp("local")
    batch = BatchOptions(formats=FORMATS, out_dir=out)
    engine = create_engine(ENGINE)
    result = asyncio.run(run_batch(names(inputs), engine=engine, options=OPTIONS, batch=batch))
    return outputs(out), errors(result)


def on_cluster(client: distributed.Client, inputs: list[str], out: Path) -> BatchResult:
    address = client.scheduler.address
    work = run_batch_on_cluster(
        inputs, cluster=ClusterOptions(address=address, piece_seconds=PIECE),
        engine_options=ENGINE, options=OPTIONS, batch=BatchOptions(formats=FORMATS, out_dir=out),
    )  # fmt: skip
    return asyncio.run(work)


def test_a_cluster_run_writes_the_bytes_of_a_local_run_and_spreads_a_long_input(
    cluster: distributed.Client, inputs: Path, local_run: tuple[dict, dict], tmp_path: Path
) -> None:
    with distributed.get_task_stream(cluster) as tasks:
        result = on_cluster(cluster, names(inputs), tmp_path)
    expected, expected_errors = local_run
    assert outputs(tmp_path) == expected
    assert len(expected) == 4 * len(FORMATS) and b"Dashwood" in expected["long.txt"]
    assert errors(result) == expected_errors  # the broken file fails alike, the rest go on
    assert expected_errors["broken.wav"] and result.count("done") == 4
    pieces = [t for t in tasks.data if t["key"].startswith("recognize_piece")]
    assert len(pieces) >= 2 + 3  # one per short input, the long one in several pieces
    assert len({t["worker"] for t in pieces}) == 2


def wait_until(ready: Callable[[], bool], seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.02)


def test_a_worker_sigkilled_mid_run_changes_nothing(
    cluster: distributed.Client, inputs: Path, local_run: tuple[dict, dict], tmp_path: Path
) -> None:
    before = cluster.run(os.getpid)  # worker address -> process id
    finished: list[BatchResult] = []
    long = [str(inputs / "long.wav")]
    runner = threading.Thread(target=lambda: finished.append(on_cluster(cluster, long, tmp_path)))
    runner.start()

    def recognizing() -> str | None:
        for worker, keys in cluster.processing().items():
            if any(str(k).startswith("recognize_piece") for k in keys):
                return worker
        return None

    wait_until(lambda: recognizing() is not None)
    victim = recognizing()
    os.kill(before[victim], signal.SIGKILL)
    runner.join(timeout=500)
    assert finished, "the batch did not end"
    assert outputs(tmp_path) == {n: v for n, v in local_run[0].items() if n.startswith("long.")}
    assert finished[0].count("done") == 1
    wait_until(lambda: len(cluster.scheduler_info()["workers"]) == 2)  # the nanny restarted it
    assert victim not in cluster.run(os.getpid)


def command(address: str, src: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "voxflow", "transcribe", *names(src), "-o", str(out),
            "-f", ",".join(FORMATS), "--beam-size", "1", "--workers", "1",
            "--languages", "en-US,es-MX", "--cluster", address, "--progress", "json"]  # fmt: skip


def client_environment() -> dict[str, str]:
    """This process's environment without the thread variables Dask's LocalCluster set in it
    for its workers (``OPENBLAS_NUM_THREADS=1`` and the like): a client run from a shell, whose
    BLAS threads (and so its numbers) are the local run's."""
    dask_set = dask.config.get("distributed.nanny.pre-spawn-environ", {})
    return {k: v for k, v in os.environ.items() if k not in dask_set}


def finished(out: Path) -> set[str]:
    """The inputs the job state records as done (none before it exists)."""
    if not (out / JOB_FILE).is_file():
        return set()
    return {Path(f.path).name for f in job_status(out).files if f.state == "done"}


def test_a_client_killed_mid_batch_resumes_without_redoing_finished_files(
    cluster: distributed.Client, inputs: Path, local_run: tuple[dict, dict], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    address = cluster.scheduler.address
    client = subprocess.Popen(
        command(address, inputs, out), stderr=subprocess.DEVNULL, env=client_environment()
    )
    wait_until(lambda: client.poll() is not None or bool(finished(out)))
    assert client.poll() is None, "the batch ended before the client could be killed"
    client.kill()
    client.wait()
    done = finished(out)
    assert done and "long.wav" not in done
    kept = {n: (out / n).stat().st_mtime_ns for n in outputs(out)
            if f"{n.rsplit('.', 1)[0]}.wav" in done}  # fmt: skip
    rerun = subprocess.run(
        command(address, inputs, out), capture_output=True, text=True, timeout=500,
        env=client_environment(),
    )  # fmt: skip
    assert rerun.returncode == 1, rerun.stderr  # broken.wav fails, as in a local run
    events = [json.loads(line) for line in rerun.stderr.splitlines() if line.startswith("{")]
    redone = {Path(e["file"]).name for e in events if e["event"] == "file"}
    assert redone == {p.name for p in inputs.iterdir()} - done
    assert outputs(out) == local_run[0]
    assert {n: (out / n).stat().st_mtime_ns for n in kept} == kept  # not written again


def test_standard_input_travels_as_bytes(cluster: distributed.Client) -> None:
    wav = (SAMPLES / "austen-0870.wav").read_bytes()
    args = ["-", "--beam-size", "1", "--workers", "1", "-f", "srt"]
    here = subprocess.run([sys.executable, "-m", "voxflow", "transcribe", *args],
                          input=wav, capture_output=True, timeout=300)  # fmt: skip
    there = subprocess.run(
        [sys.executable, "-m", "voxflow", "transcribe", *args],
        input=wav, capture_output=True, timeout=300,
        env={**os.environ, "VOXFLOW_CLUSTER": cluster.scheduler.address},
    )  # fmt: skip
    assert here.returncode == there.returncode == 0, there.stderr
    assert there.stdout == here.stdout and b"Dashwood" in there.stdout


def test_a_worker_that_sees_another_file_at_the_path_asks_for_the_bytes(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "a.wav", np.zeros(16000, dtype=np.float32))
    size = path.stat().st_size
    theirs = AudioRef(str(path), size, file_sha256(path))
    other = AudioRef(str(path), size, "0" * 64)  # the client has other content at that path
    gone = AudioRef(str(tmp_path / "elsewhere.wav"), size, theirs.sha256)

    def planned(audio: AudioRef) -> object:
        return plan_source(audio, "a.wav", OPTIONS, ENGINE, PIECE)

    assert planned(other) == planned(gone) == Unseen()
    assert isinstance(planned(theirs), SourcePlan)  # seen: planned (no speech, no pieces)


def test_without_distributed_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if it were not installed
    work = run_batch_on_cluster(
        [str(SAMPLES / "es-mx.wav")], cluster=ClusterOptions.parse("local:1"),
        engine_options=ENGINE, options=OPTIONS, batch=BatchOptions(formats=("txt",)),
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"pip install 'voxflow\[cluster\]'"):
        asyncio.run(work)


@pytest.mark.parametrize("spec", ["local:0", "127.0.0.1:8786", "tcp:/x", ""])
def test_a_bad_cluster_address_is_a_one_line_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="--cluster"):
        ClusterOptions.parse(spec)


def test_diarization_on_a_cluster_labels_speakers_across_pieces_as_a_local_run(
    cluster: distributed.Client, inputs: Path, tmp_path: Path
) -> None:
    """The 34 s input (two voices in turn: English, Spanish, English, Spanish) in pieces of
    10 s on both workers: each piece's voiceprints go to the client, which clusters them all,
    so one voice keeps one label across pieces, and the outputs are a local run's bytes."""
    from voxflow.errors import ModelError
    from voxflow.speakers import DiarizeOptions
    from voxflow.speakers.models import campplus_path

    try:
        campplus_path()
    except ModelError as exc:  # CI installs it (README's test command)
        pytest.skip(str(exc))

    # Two voices, told: the point is that a voice keeps its label from piece to piece.
    options = dataclasses.replace(OPTIONS, diarize=DiarizeOptions(speakers=2))
    long = [str(inputs / "long.wav")]
    local = tmp_path / "local"
    engine = create_engine(ENGINE)
    batch = BatchOptions(formats=FORMATS, out_dir=local)
    asyncio.run(run_batch(long, engine=engine, options=options, batch=batch))
    remote = tmp_path / "cluster"
    with distributed.get_task_stream(cluster) as tasks:
        work = run_batch_on_cluster(
            long, cluster=ClusterOptions(address=cluster.scheduler.address, piece_seconds=PIECE),
            engine_options=ENGINE, options=options,
            batch=BatchOptions(formats=FORMATS, out_dir=remote),
        )  # fmt: skip
        assert asyncio.run(work).count("done") == 1
    assert outputs(remote) == outputs(local)
    pieces = [t for t in tasks.data if t["key"].startswith("recognize_piece")]
    assert len(pieces) >= 3 and len({t["worker"] for t in pieces}) == 2
    result = json.loads(outputs(remote)["long.json"])
    turn = (7.1 + 2.5 + 6.125 + 2.5) / 2  # an English reading and a Spanish one, then again
    voice = {0: set(), 1: set()}  # the labels heard in the English turns, in the Spanish ones
    for seg in result["segments"]:
        voice[int((seg["start"] + seg["end"]) / 2 // turn) % 2].add(seg["speaker"])
    assert voice == {0: {"S1"}, 1: {"S2"}}, result["segments"]
    assert [s["id"] for s in result["speakers"]] == ["S1", "S2"]


