"""Batch jobs on the real CLI and model: resume, retries, stable names, bounds, bad outputs.

Clips are cut from the bundled Austen sample (about a second each) so that each real
transcription costs little; runs are in-process through ``voxflow.cli.main`` (the model loads
once) except where a process of its own is the point (a mounted file system, stdin).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import media
from speech import read_wav, write_wav
from users import needs_unprivileged, unprivileged
from voxflow.audio import sources
from voxflow.cli import main
from voxflow.errors import InputError
from voxflow.formats import parse_srt, transcript_from_json
from voxflow.inputs import expand_inputs, read_manifest
from voxflow.jobs import JOB_FILE, JobState, job_status

ROOT = Path(__file__).resolve().parent.parent
AUSTEN = ROOT / "samples" / "austen-0870.wav"
FAST = ["--beam-size", "1", "-q"]
pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Short real-speech clips of different content: a, b, c (and a text file, notes.wav)."""
    root = tmp_path_factory.mktemp("clips")
    speech = read_wav(AUSTEN)
    out = {}
    for name, start, seconds in (("a", 0.3, 1.3), ("b", 2.2, 1.4), ("c", 4.0, 1.5)):
        piece = speech[int(start * 16000) : int((start + seconds) * 16000)]
        out[name] = write_wav(root / f"{name}.wav", piece)
    out["notes"] = root / "notes.wav"
    out["notes"].write_text("this is not audio\n")
    return out


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["transcribe", *[str(a) for a in args]])
    return code, capsys.readouterr().err


def mtimes(out: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if not p.name.startswith(".")}


def test_a_rerun_skips_done_files_and_redoes_missing_outputs_and_changed_inputs(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "b"):
        shutil.copy(clips[name], src / f"{name}.wav")
    out = tmp_path / "out"
    args = [src, "-o", out, "-f", "txt,json,srt", *FAST]
    assert run(args, capsys) == (0, "")
    first = mtimes(out)
    assert sorted(first) == ["a.json", "a.srt", "a.txt", "b.json", "b.srt", "b.txt"]

    code, err = run([src, "-o", out, "-f", "txt,json,srt", "--beam-size", "1"], capsys)
    assert code == 0 and err == "voxflow: 2 files transcribed (2 already done before)\n"
    assert mtimes(out) == first  # nothing rewritten

    (out / "a.json").unlink()  # a missing output means redo
    assert run(args, capsys) == (0, "")
    again = mtimes(out)
    assert again["a.txt"] != first["a.txt"] and "a.json" in again  # its own outputs replaced
    assert {k: again[k] for k in ("b.json", "b.srt", "b.txt")} == {
        k: first[k] for k in ("b.json", "b.srt", "b.txt")
    }

    shutil.copy(clips["c"], src / "b.wav")  # changed content: redone, outputs replaced
    assert run(args, capsys) == (0, "")
    assert transcript_from_json((out / "b.json").read_text()).duration == pytest.approx(1.5)
    assert mtimes(out)["a.txt"] == again["a.txt"]
    status = job_status(out)
    assert status.counts == {"pending": 0, "running": 0, "done": 2, "failed": 0}


def test_a_rerun_redoes_a_file_only_when_an_output_changing_option_changed(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """The job's fingerprint is made of each options class's output-changing fields: a new
    phrase list or beam width redoes the file; more files or workers at once do not."""
    out = tmp_path / "out"
    base = [clips["a"], "-o", out, "--beam-size", "1"]
    skipped = "voxflow: 1 files transcribed (1 already done before)\n"
    assert run([*base, "-q"], capsys) == (0, "")
    first = mtimes(out)
    assert run([*base, "--concurrency", "2", "--workers", "1"], capsys) == (0, skipped)
    assert mtimes(out) == first
    assert run([*base, "-q", "--phrase", "Dashwood"], capsys) == (0, "")
    phrased = mtimes(out)
    assert phrased["a.txt"] != first["a.txt"]
    assert run([*base, "--phrase", "Dashwood"], capsys) == (0, skipped)
    assert mtimes(out) == phrased
    again = [clips["a"], "-o", out, "--beam-size", "2", "--phrase", "Dashwood"]
    assert run([*again, "-q"], capsys) == (0, "")
    assert mtimes(out)["a.txt"] != phrased["a.txt"]
    assert run(again, capsys) == (0, skipped)


def test_files_the_job_did_not_write_are_never_clobbered(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.srt").write_text("my subtitles\n")  # the user's own file
    code, err = run([clips["a"], "-o", out, "-f", "txt,srt", *FAST], capsys)
    assert code == 1
    assert f"  {clips['a']}: {out / 'a.srt'}: already exists (use --overwrite to replace it)" in err
    assert (out / "a.srt").read_text() == "my subtitles\n"
    code, err = run([clips["a"], "-o", out, "-f", "txt,srt", "--overwrite", *FAST], capsys)
    assert code == 0, err
    assert parse_srt((out / "a.srt").read_text())
    (out / "a.srt").write_text("edited by hand\n")  # written by the job, then changed by a person
    (out / "a.txt").unlink()
    code, err = run([clips["a"], "-o", out, "-f", "txt,srt", *FAST], capsys)
    assert code == 1 and "a.srt: already exists" in err
    assert (out / "a.srt").read_text() == "edited by hand\n"


def test_failures_are_retried_up_to_the_limit_and_reported_by_status(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    args = [clips["notes"], tmp_path / "missing.wav", "-o", out, "--max-attempts", "2", *FAST]
    reason = "not a recognised audio or video format"
    for attempt in (1, 2):
        code, err = run(args, capsys)
        assert code == 1 and "0 of 2 files transcribed; 2 failed" in err and reason in err
        notes = next(f for f in job_status(out).files if f.path == str(clips["notes"]))
        assert (notes.state, notes.attempts) == ("failed", attempt)
    code, err = run(args, capsys)
    assert code == 1
    assert f"  {clips['notes']}: gave up after 2 attempts; the last: {reason}" in err
    assert f"  {tmp_path / 'missing.wav'}: no such file" in err  # not a file: always tried
    assert next(f for f in job_status(out).files if "notes" in f.path).attempts == 2
    run([*args, "--retry-failed"], capsys)
    assert next(f for f in job_status(out).files if "notes" in f.path).attempts == 1

    assert main(["jobs", "status", str(out)]) == 0
    text = capsys.readouterr().out.splitlines()
    assert text[0] == f"{out}: 2 files: 0 done, 2 failed, 0 pending"
    assert f"  failed: {clips['notes']}: {reason} (1 attempt)" in text
    assert main(["jobs", "status", str(out), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["counts"] == {"pending": 0, "running": 0, "done": 0, "failed": 2}
    assert {f["error"] for f in data["files"]} == {reason, "no such file"}
    assert main(["jobs", "status", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"voxflow: error: {tmp_path}: no voxflow job here (no .voxflow-job.sqlite)\n"
    )


def test_output_names_are_safe_distinct_and_stable_across_runs(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in ("one", "two", "three"):
        (tmp_path / folder).mkdir()
    first, twin = tmp_path / "one" / "Talk.wav", tmp_path / "two" / "talk.wav"
    odd = os.path.join(os.fsdecode(tmp_path / "three"), os.fsdecode(b"\xff\xfe.."))
    shutil.copy(clips["a"], first)
    shutil.copy(clips["b"], twin)
    shutil.copy(clips["c"], odd)
    out = tmp_path / "out"
    assert run([first, "-o", out, "-f", "json", *FAST], capsys) == (0, "")
    # Listed the other way round, the twin still does not take the first file's name.
    manifest = tmp_path / "list.txt"
    manifest.write_bytes(b"# inputs\r\ntwo/talk.wav\r\n\r\n" + b"three/\xff\xfe..\n")
    assert run([f"@{manifest}", first, "-o", out, "-f", "json", *FAST], capsys) == (0, "")
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == ["Talk.json", "_.json", "talk-2.json"]  # "\xff\xfe.." → "_"
    assert json.loads((out / "talk-2.json").read_text())["source"] == str(twin)
    assert json.loads((out / "_.json").read_text())["source"].endswith("three/\ufffd\ufffd..")
    # A moved file keeps its record and its name: nothing is redone.
    moved = tmp_path / "moved"
    moved.mkdir()
    first.rename(moved / "Talk.wav")
    before = mtimes(out)
    code, err = run([moved / "Talk.wav", twin, "-o", out, "-f", "json", "--beam-size", "1"], capsys)
    assert code == 0 and "(2 already done before)" in err
    assert mtimes(out) == before
    assert job_status(out).files[0].path == str(moved / "Talk.wav")


def test_manifests_list_paths_relative_to_themselves(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.wav").write_bytes(b"")
    (tmp_path / "sub" / "deep").mkdir()
    (tmp_path / "sub" / "deep" / "y.flac").write_bytes(b"")
    listing = tmp_path / "sub" / "list.txt"
    listing.write_text("\ufeff# comment\nx.wav\n\n  \ndeep\n/abs/z.wav\n-\n")
    assert read_manifest(str(listing)) == [
        str(tmp_path / "sub" / "x.wav"), str(tmp_path / "sub" / "deep"), "/abs/z.wav",
        str(tmp_path / "sub" / "-"),
    ]  # fmt: skip
    nul = tmp_path / "nul.list"
    nul.write_bytes(b"sub/x.wav\0#not a comment\0")
    listed = [str(tmp_path / "sub/x.wav"), str(tmp_path / "#not a comment")]
    assert read_manifest(str(nul)) == listed
    assert expand_inputs([f"@{listing}"], [str(nul)]) == [
        str(tmp_path / "sub" / "x.wav"), str(tmp_path / "sub" / "deep" / "y.flac"), "/abs/z.wav",
        str(tmp_path / "sub" / "-"), str(tmp_path / "#not a comment"),
    ]  # fmt: skip
    with pytest.raises(InputError) as info:
        expand_inputs([f"@{tmp_path / 'nope.txt'}"])
    assert str(info.value) == f"{tmp_path / 'nope.txt'}: cannot read the manifest: no such file"
    literal = tmp_path / "@literal.wav"  # a file really named with an @ is a file
    literal.write_bytes(b"")
    assert expand_inputs([str(literal)]) == [str(literal)]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_file_that_times_out_fails_and_the_batch_goes_on(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = tmp_path / "stuck.wav"
    os.mkfifo(fifo)  # nobody writes: opening it blocks the decoder for good
    try:
        code, err = run([fifo, clips["notes"], "-o", tmp_path / "out", "--timeout", "1.5",
                         "--concurrency", "1", *FAST], capsys)  # fmt: skip
    finally:
        os.close(os.open(fifo, os.O_RDWR))  # unblock the abandoned decoder thread
    assert code == 1
    assert err.splitlines()[1:] == [
        f"  {fifo}: timed out after 1.5 s",
        f"  {clips['notes']}: not a recognised audio or video format",
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_nobody_writes_to_fails_without_a_timeout_and_the_batch_goes_on(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setattr(sources, "FIFO_WAIT", 0.5)  # 10 s by default
    fifo = tmp_path / "nobody.wav"
    os.mkfifo(fifo)
    code, err = run([fifo, clips["a"], "-o", tmp_path / "out", "--concurrency", "1", *FAST],
                    capsys)  # fmt: skip
    assert code == 1
    assert err.splitlines()[1:] == [f"  {fifo}: a named pipe with no writer (waited 0.5 s for one)"]
    assert (tmp_path / "out" / "a.txt").is_file()


def test_max_duration_uses_the_declared_length_or_the_decoded_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run([AUSTEN, "-o", tmp_path / "out", "--max-duration", "5", *FAST], capsys)
    assert code == 1
    assert f"  {AUSTEN}: longer than the --max-duration limit of 5 s (7.1 s)" in err.splitlines()
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes are POSIX: the undeclared-length case needs one")
    flac = media.encode(tmp_path / "austen.flac", read_wav(AUSTEN).reshape(-1, 1), 16000, "flac",
                        "flac")  # fmt: skip
    fifo = tmp_path / "stream.flac"  # a pipe cannot be probed: the limit holds while decoding
    os.mkfifo(fifo)
    feeder = threading.Thread(target=lambda: fifo.write_bytes(flac.read_bytes()), daemon=True)
    feeder.start()
    code, err = run([fifo, "-o", tmp_path / "out", "--max-duration", "3", *FAST], capsys)
    feeder.join(timeout=60)
    assert code == 1
    assert err.splitlines()[1:] == [f"  {fifo}: longer than the --max-duration limit of 3 s"]


def test_a_second_run_on_the_same_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with JobState.open(tmp_path):
        code, err = run([AUSTEN, "-o", tmp_path, *FAST], capsys)
    assert code == 1
    assert err == (
        f"voxflow: error: {tmp_path}: another voxflow run is using this output directory\n"
    )


@needs_unprivileged
def test_jobs_status_on_a_directory_it_may_not_read_is_one_line(
    clips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A job directory the user may not look into: one line naming it, not a traceback (nor
    click's usage error)."""
    import tempfile

    with tempfile.TemporaryDirectory() as where:  # not under pytest's root-only directory
        Path(where).chmod(0o755)
        out = Path(where) / "out"
        assert run([clips["a"], "-o", out, *FAST], capsys) == (0, "")
        out.chmod(0o700)
        status = [sys.executable, "-m", "voxflow", "jobs", "status", str(out)]
        done = subprocess.run(unprivileged(status), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr == f"voxflow: error: {out}: cannot read the job state: Permission denied\n"


def test_a_damaged_job_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / JOB_FILE).write_bytes(np.random.default_rng(1).bytes(5000))
    code, err = run([AUSTEN, "-o", tmp_path, *FAST], capsys)
    assert code == 1
    assert err == (f"voxflow: error: {tmp_path / JOB_FILE}: the job state is damaged (file is "
                   "not a database); move it away to start afresh\n")  # fmt: skip


def test_an_empty_job_file_is_damaged_not_a_new_job(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert run([clips["a"], "-o", out, *FAST], capsys)[0] == 0
    (out / JOB_FILE).write_bytes(b"")  # the state lost its content (a crash, a full disk, `>`)
    damaged = (f"voxflow: error: {out / JOB_FILE}: the job state is damaged (empty, 0 bytes); "
               "move it away to start afresh\n")  # fmt: skip
    assert run([clips["a"], "-o", out, *FAST], capsys) == (1, damaged)
    assert main(["jobs", "status", str(out)]) == 1
    assert capsys.readouterr().err == damaged
    assert (out / JOB_FILE).stat().st_size == 0  # left as found, for the user to look at


def test_a_run_killed_while_creating_the_job_state_leaves_no_empty_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_connect = sqlite3.connect

    def killed(*args: object, **kwargs: object) -> None:
        real_connect(*args, **kwargs)  # type: ignore[arg-type]  # the file exists, still empty
        raise KeyboardInterrupt  # stands in for a kill before SQLite writes anything

    monkeypatch.setattr(sqlite3, "connect", killed)
    with pytest.raises(KeyboardInterrupt):
        JobState.open(tmp_path)
    monkeypatch.undo()
    assert not (tmp_path / JOB_FILE).exists()
    with JobState.open(tmp_path) as job:  # a new job, not a damaged one
        assert job.items() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [".voxflow-job.lock", JOB_FILE]


def test_a_rerun_removes_only_the_temporaries_the_job_recorded(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert run([clips["a"], "-o", out, *FAST], capsys)[0] == 0
    with JobState.open(out) as job:  # what a kill between publishing and cleaning up leaves
        ours = job.temp_for("a.txt", hashlib.sha256((out / "a.txt").read_bytes()).hexdigest())
    ours.write_text("half a transcr")
    theirs = out / ".notes.txt.0123abcd.voxflow-part"  # named like one, written by someone else
    theirs.write_text("keep me\n")
    assert run([clips["a"], "-o", out, *FAST], capsys)[0] == 0
    assert not ours.exists()
    assert theirs.read_text() == "keep me\n"


def test_stdout_mode_keeps_no_job_state(
    tmp_path: Path, clips: dict[str, Path], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert run([clips["notes"], "-o", "-", *FAST], capsys)[0] == 1
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_directory_fails_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, err = run([AUSTEN, "-o", blocker / "out", *FAST], capsys)
    assert code == 1
    assert err == f"voxflow: error: {blocker / 'out'}: cannot write here: Not a directory\n"


# --- a real full disk and a real read-only file system, on a tmpfs in a mount namespace ----

FULL_DISK = """
set -e
mount -t tmpfs -o size=8m,nr_inodes=64 tmpfs "$MNT"
"$PY" -m voxflow transcribe "$CLIP" -o "$MNT/out" -f txt,json -q --beam-size 1
rm "$MNT/out/a.json"
mkdir "$MNT/fill"
i=0; while touch "$MNT/fill/$i" 2>/dev/null; do i=$((i+1)); done
rm "$MNT/fill/0" "$MNT/fill/1"  # room for the job's WAL and shared-memory files only
set +e
"$PY" -m voxflow transcribe "$CLIP" -o "$MNT/out" -f txt,json -q --beam-size 1
echo "rc=$?"
ls -A "$MNT/out"
rm -r "$MNT/fill"
"$PY" -m voxflow transcribe "$CLIP" -o "$MNT/out" -f txt,json -q --beam-size 1
echo "rc=$?"
mount -o remount,ro "$MNT"
"$PY" -m voxflow transcribe "$CLIP" -o "$MNT/new" -q --beam-size 1
echo "rc=$?"
"""


def can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None or sys.platform != "linux":
        return False
    probe = "mount -t tmpfs tmpfs /mnt 2>/dev/null || mount -t tmpfs tmpfs /tmp"
    done = subprocess.run(["unshare", "-rm", "sh", "-c", probe], capture_output=True, timeout=30)
    return done.returncode == 0


@pytest.mark.skipif(not can_mount_tmpfs(), reason="cannot mount a tmpfs in a user namespace here "
                    "(tests/test_outputs.py covers a full disk with a mocked write)")  # fmt: skip
def test_a_full_disk_stops_the_batch_clearly_and_a_rerun_finishes(
    tmp_path: Path, clips: dict[str, Path]
) -> None:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = {**os.environ, "MNT": str(mnt), "PY": sys.executable, "CLIP": str(clips["a"])}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", FULL_DISK], capture_output=True,
                          text=True, timeout=200, env=env)  # fmt: skip
    out = mnt / "out"
    lines = done.stdout.splitlines()
    assert lines == ["rc=1", ".voxflow-job.lock", ".voxflow-job.sqlite", "a.txt", "rc=0", "rc=1"]
    errors = done.stderr.splitlines()
    assert errors[0] == (
        f"voxflow: stopped: disk full while writing {out / 'a.txt'}; 0 of 1 files transcribed, "
        "0 failed, 1 pending; run the same command again to resume"
    )
    assert errors[1] == f"voxflow: error: {mnt / 'new'}: cannot write here: Read-only file system"
    assert len(errors) == 2 and "Traceback" not in done.stderr


NEARLY_FULL = """
set -e
mount -t tmpfs -o size=4m tmpfs "$MNT"
avail=$(df -k --output=avail "$MNT" | tail -1)
head -c $(( (avail - 128) * 1024 )) /dev/zero > "$MNT/fill"  # leave 128 KiB free
set +e
"$PY" -m voxflow transcribe "$SRC" -o "$MNT/out" -q --beam-size 1
echo "rc=$?"
"""


@pytest.mark.skipif(not can_mount_tmpfs(), reason="cannot mount a tmpfs in a user namespace here "
                    "(test_the_job_state_stays_small_through_a_job measures its size)")  # fmt: skip
def test_a_nearly_full_disk_holds_a_whole_job(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    speech = read_wav(AUSTEN)
    for i in range(8):
        write_wav(src / f"c{i}.wav", speech[i * 8000 : i * 8000 + 16000])
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = {**os.environ, "MNT": str(mnt), "PY": sys.executable, "SRC": str(src)}
    done = subprocess.run(["unshare", "-rm", "sh", "-c", NEARLY_FULL], capture_output=True,
                          text=True, timeout=200, env=env)  # fmt: skip
    assert (done.stdout, done.stderr) == ("rc=0\n", "")  # the outputs need 32 KiB of it


def test_the_job_state_stays_small_through_a_job(tmp_path: Path) -> None:
    """The WAL is checkpointed after each commit: the state's footprint does not grow with the
    changes a job makes (8 inputs, 4 outputs each), and closing leaves the database alone."""
    names = [JOB_FILE + s for s in ("", "-wal", "-shm")]
    peak = {name: 0 for name in names}

    def measure() -> None:
        for name in names:
            if (tmp_path / name).exists():
                peak[name] = max(peak[name], (tmp_path / name).stat().st_size)

    with JobState.open(tmp_path) as job:
        items = [job.add(f"/in/c{i}.wav", f"c{i}.wav", f"c{i}") for i in range(8)]
        measure()
        for i, item in enumerate(items):
            job.start(item, f"{i:064x}", "opts", None)
            for fmt in ("txt", "json", "srt", "vtt"):
                job.record_output(item, f"c{i}.{fmt}", f"{i + 100:064x}")
                job.forget_other_outputs(f"c{i}.{fmt}", f"{i + 100:064x}")
                measure()
            job.finish(item, [f"c{i}.{fmt}" for fmt in ("txt", "json", "srt", "vtt")])
            measure()
    assert peak[JOB_FILE] <= 32 * 1024
    assert peak[JOB_FILE + "-wal"] <= 16 * 1024  # a commit's pages, not every commit's
    assert sorted(p.name for p in tmp_path.iterdir()) == [".voxflow-job.lock", JOB_FILE]


def test_the_job_database_records_each_change(tmp_path: Path) -> None:
    with JobState.open(tmp_path) as job:
        item = job.add("/x/a.wav", "a.wav", "a")
        job.start(item, "f" * 64, "opts", None)
        # another connection sees it at once: committed, not held in a transaction
        other = sqlite3.connect(tmp_path / JOB_FILE)
        assert other.execute("SELECT state FROM items").fetchone() == ("running",)
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        other.close()
    with JobState.open(tmp_path) as job:  # a run that died mid-way: running becomes pending
        assert [i.state for i in job.items()] == ["pending"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--timeout", "0"], "--timeout must be a positive number of seconds, got 0"),
        (["--max-duration", "-1"], "--max-duration must be a positive number of seconds, got -1"),
        (["--max-attempts", "0"], "--max-attempts must be at least 1, got 0"),
        (["--concurrency", "0"], "--concurrency must be at least 1, got 0"),
    ],
)
def test_bounds_are_checked_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    assert run([AUSTEN, "-o", tmp_path / "out", *option], capsys) == (
        1, f"voxflow: error: {message}\n")  # fmt: skip
    assert not (tmp_path / "out").exists()
