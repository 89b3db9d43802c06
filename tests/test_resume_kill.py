"""Nothing is lost: a batch killed at random moments and resumed ends exactly as a run that was
never interrupted, with every output whole; Ctrl-C and SIGTERM stop it cleanly.

Everything is real: the ``voxflow`` command in its own processes, real signals, the real model
on short clips cut from the bundled Austen sample (each with its own lead-in of silence, so
that every file's content, and so its job key, differs).
"""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from speech import read_wav, write_wav
from voxflow.formats import parse_srt, transcript_from_json
from voxflow.jobs import JobState, job_status
from voxflow.outputs import TEMP_SUFFIX

ROOT = Path(__file__).resolve().parent.parent
FILES = 6
pytestmark = [
    pytest.mark.timeout(400),
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FILES clips of 1–2 s of real speech, each after a different length of silence."""
    src = tmp_path_factory.mktemp("batch")
    speech = read_wav(ROOT / "samples" / "austen-0870.wav")
    for i in range(FILES):
        start, seconds = (i * 0.6) % 5.2, 1.0 + (i % 3) * 0.5
        piece = speech[int(start * 16000) : int((start + seconds) * 16000)]
        lead = np.zeros(int(0.05 * (i + 1) * 16000), dtype=np.float32)
        write_wav(src / f"clip{i:02d}.wav", np.concatenate([lead, piece]))
    return src


def command(src: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "voxflow", "transcribe", str(src), "-o", str(out),
            "-f", "txt,json,srt", "--beam-size", "1", "--concurrency", "2", "--quiet"]  # fmt: skip


def outputs(out: Path) -> dict[str, bytes]:
    """The visible outputs (the job's own files and temporaries start with a dot)."""
    return {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}


def temporaries(out: Path) -> list[str]:
    return [p.name for p in out.iterdir() if p.name.endswith(TEMP_SUFFIX)]


def assert_all_whole(out: Path) -> None:
    """Every output present parses completely with voxflow's own readers."""
    for name, data in outputs(out).items():
        text = data.decode("utf-8")
        if name.endswith(".json"):
            assert transcript_from_json(text).source.endswith(name.removesuffix(".json") + ".wav")
        elif name.endswith(".srt"):
            parse_srt(text)
        else:
            assert name.endswith(".txt") and (text == "" or text.endswith("\n"))


def wait_until(ready: Callable[[], bool], seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        assert time.monotonic() < deadline, "the batch made no progress"
        time.sleep(0.05)


def transcribed(out: Path) -> int:
    return sum(1 for p in out.glob("*.txt")) if out.is_dir() else 0


@pytest.fixture(scope="module")
def reference(batch: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The outputs of a run that nobody interrupted."""
    out = tmp_path_factory.mktemp("reference")
    done = subprocess.run(command(batch, out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = outputs(out)
    assert len(result) == 3 * FILES
    return result


def test_sigkill_at_random_moments_then_resume_ends_as_an_uninterrupted_run(
    batch: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    rng = random.Random(6)
    out = tmp_path / "out"
    # The first kill lands while the process starts: model load, job creation.
    proc = subprocess.Popen(command(batch, out), stderr=subprocess.DEVNULL)
    time.sleep(rng.uniform(0.2, 1.0))
    proc.kill()
    proc.wait()
    left_partial = []
    for _ in range(3):  # then up to three kills at random moments while files are being done
        before = transcribed(out)
        proc = subprocess.Popen(command(batch, out), stderr=subprocess.DEVNULL)
        wait_until(lambda: proc.poll() is not None or transcribed(out) > before)  # noqa: B023
        if proc.poll() is not None:
            break
        time.sleep(rng.uniform(0.0, 0.8))
        proc.kill()
        proc.wait()
        assert_all_whole(out)  # whatever is there is whole; temporaries may be left
        left_partial.append(0 < transcribed(out) < FILES)
    assert len(left_partial) >= 2 and any(left_partial), "too few kills landed mid-batch"
    with JobState.open(out) as job:  # what a kill during a write leaves behind
        stale = job.temp_for("clip00.txt", "0123abcd" * 8)
        job.record_output(job.items()[0], "clip00.txt", "0123abcd" * 8)
    stale.write_text("half a transcr")
    done = subprocess.run(command(batch, out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert outputs(out) == reference  # byte for byte
    assert temporaries(out) == []
    assert job_status(out).counts == {"pending": 0, "running": 0, "done": FILES, "failed": 0}


SUMMARY = re.compile(
    r"voxflow: interrupted: (\d+) of (\d+) files transcribed, 0 failed, (\d+) pending; "
    r"run the same command again to resume\n"
)


def interrupt_once(src: Path, out: Path, sig: int) -> tuple[int, int]:
    """Start the batch, send ``sig`` once a new file is done; return (done, pending)."""
    before = transcribed(out)
    proc = subprocess.Popen(command(src, out), stderr=subprocess.PIPE, text=True)
    wait_until(lambda: proc.poll() is not None or transcribed(out) > before)
    assert proc.poll() is None, "the batch ended before it could be interrupted"
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, err
    match = SUMMARY.fullmatch(err)
    assert match, err
    done, total, pending = map(int, match.groups())
    assert total == FILES and done + pending == FILES and before < done < FILES
    return done, pending


def test_sigterm_then_ctrl_c_stop_cleanly_and_the_job_resumes(
    batch: Path, reference: dict[str, bytes], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    for sig in (signal.SIGTERM, signal.SIGINT):
        done, pending = interrupt_once(batch, out, sig)
        status = job_status(out)  # the state says what the summary said
        assert not status.active
        assert status.counts == {"pending": pending, "running": 0, "done": done, "failed": 0}
        finished = {f.stem for f in status.files if f.state == "done"}
        have = outputs(out)
        assert {n.rsplit(".", 1)[0] for n in have} == finished  # no output of unfinished work
        assert all(have[n] == reference[n] for n in have)
        assert temporaries(out) == []
    done = subprocess.run(command(batch, out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert outputs(out) == reference
