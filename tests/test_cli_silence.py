"""``voxflow silence`` / ``voxflow split`` through ``voxflow.cli.main`` (and once as a real
process), and the PyAV writer behind ``split``: outputs equal pydub's on the same files."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest

from users import needs_unprivileged, unprivileged
from voxflow import silence as vs
from voxflow.audio import load
from voxflow.cli import main
from voxflow.errors import OutputError
from voxflow.export import AudioWriter, cut_frames, write_audio

pydub = pytest.importorskip("pydub", reason="pydub is the oracle for parity (test dependency)")
ps = pytest.importorskip("pydub.silence")
AudioSegment = pydub.AudioSegment
VOXFLOW = Path(sys.executable).with_name("voxflow")


def speech_like(seed: int, seconds: float, rate: int, channels: int = 1) -> np.ndarray:
    """int16 bursts of noise at varied loudness with pauses of 0.2 to 1.5 s between them."""
    rng = np.random.default_rng(seed)
    frames = int(seconds * rate)
    out = np.zeros((frames, channels))
    pos = int(rng.uniform(0.0, 0.5) * rate)
    while pos < frames:
        end = min(pos + int(rng.uniform(0.2, 1.2) * rate), frames)
        level = 32768 * 10 ** (rng.uniform(-30, -6) / 20)
        out[pos:end] = rng.normal(0, level, (end - pos, channels))
        pos = end + int(rng.uniform(0.2, 1.5) * rate)
    return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype("<i2").tobytes())
    return path


@pytest.fixture
def speech(tmp_path: Path) -> Path:
    return write_wav(tmp_path / "speech.wav", speech_like(1, 6, 16000), 16000)


def native(path: Path):
    """The file as it is (own rate, channels and width), as pydub loads it."""
    return load(path, sample_rate=None, channels=None, dtype="native")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


# -- voxflow silence -------------------------------------------------------------------------


def test_json_for_one_file_is_pydubs_list(capsys, speech):
    seg = AudioSegment.from_file(str(speech))
    code, out, _ = run(
        capsys,
        "silence",
        speech,
        "--min-silence-len",
        "300",
        "--silence-thresh",
        "-35",
        "--format",
        "json",
    )
    assert code == 0
    assert json.loads(out) == ps.detect_silence(seg, 300, -35) != []
    code, out, _ = run(
        capsys,
        "silence",
        speech,
        "--min-silence-len",
        "300",
        "--silence-thresh",
        "-35",
        "--seek-step",
        "7",
        "--nonsilent",
        "--format",
        "json",
    )
    assert json.loads(out) == ps.detect_nonsilent(seg, 300, -35, 7)


def test_defaults_are_pydubs(capsys, tmp_path):
    loud = speech_like(2, 5, 8000) * 8
    path = write_wav(tmp_path / "loud.wav", loud, 8000)
    code, out, _ = run(capsys, "silence", path, "--format", "json")
    assert code == 0
    assert json.loads(out) == ps.detect_silence(AudioSegment.from_file(str(path)))


def test_several_files_give_an_object_keyed_by_file_and_csv_rows(capsys, tmp_path, speech):
    other = write_wav(tmp_path / "other.wav", speech_like(3, 4, 22050, 2), 22050)
    code, out, _ = run(
        capsys,
        "silence",
        speech,
        other,
        "--min-silence-len",
        "250",
        "--silence-thresh",
        "-30",
        "--format",
        "json",
    )
    assert code == 0
    expected = {
        str(p): ps.detect_silence(AudioSegment.from_file(str(p)), 250, -30) for p in (speech, other)
    }
    assert json.loads(out) == expected
    code, out, _ = run(
        capsys,
        "silence",
        speech,
        other,
        "--min-silence-len",
        "250",
        "--silence-thresh",
        "-30",
        "--format",
        "csv",
    )
    rows = list(csv.DictReader(out.splitlines()))
    assert [[r["file"], int(r["start_ms"]), int(r["end_ms"])] for r in rows] == [
        [name, a, b] for name, ranges in expected.items() for a, b in ranges
    ]
    code, out, _ = run(
        capsys, "silence", speech, "--min-silence-len", "250", "--silence-thresh", "-30"
    )
    lines = out.splitlines()[1:]
    assert [[int(x) for x in line.split()[1:3]] for line in lines] == expected[str(speech)]


def test_a_batch_goes_on_past_bad_files_and_reports_each(capsys, tmp_path, speech):
    empty = tmp_path / "empty.wav"
    with wave.open(str(empty), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
    text = tmp_path / "text.wav"
    text.write_text("this is not audio\n" * 50)
    corrupt = tmp_path / "corrupt.mp3"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    video = tmp_path / "video.mp4"
    with av.open(str(video), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 60, np.uint8), "rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    missing, directory = tmp_path / "missing.wav", tmp_path
    bad = [missing, directory, empty, text, corrupt, video]
    code, out, err = run(
        capsys,
        "silence",
        missing,
        speech,
        directory,
        empty,
        text,
        corrupt,
        video,
        "--min-silence-len",
        "300",
        "--silence-thresh",
        "-35",
        "--format",
        "json",
    )
    assert code == 1
    assert json.loads(out) == {
        str(speech): ps.detect_silence(AudioSegment.from_file(str(speech)), 300, -35)
    }
    lines = err.strip().splitlines()
    assert len(lines) == len(bad)
    assert "Traceback" not in err
    for path, line in zip(bad, lines, strict=True):
        assert line.startswith(f"voxflow: error: {path}: ")
    assert "no audio stream" in lines[-1]


def test_bad_parameters_are_one_line_errors(capsys, speech):
    code, _, err = run(capsys, "silence", speech, "--seek-step", "0")
    assert code == 1
    assert err.strip() == "voxflow: error: seek_step must be >= 1 ms, got 0"


# -- voxflow split ---------------------------------------------------------------------------


def test_split_writes_pydubs_chunks_and_a_manifest(capsys, tmp_path, speech):
    out_dir = tmp_path / "chunks"
    args = [
        "split",
        speech,
        "--out",
        out_dir,
        "--min-silence-len",
        "300",
        "--silence-thresh",
        "-35",
        "--keep-silence",
        "150",
    ]
    code, _, _ = run(capsys, *args)
    assert code == 0
    seg = AudioSegment.from_file(str(speech))
    expected = ps.split_on_silence(seg, 300, -35, 150)
    assert len(expected) > 2
    files = sorted(out_dir.glob("chunk-*.wav"))
    assert [f.name for f in files] == [f"chunk-{i:04d}.wav" for i in range(1, len(expected) + 1)]
    assert [AudioSegment.from_file(str(f)).raw_data for f in files] == [
        c.raw_data for c in expected
    ]
    manifest = json.loads((out_dir / "manifest.json").read_text())
    timings = [(c["start_ms"], c["end_ms"]) for c in manifest["chunks"]]
    assert timings == vs.split_ranges(seg, 300, -35, 150)
    rows = list(csv.DictReader((out_dir / "manifest.csv").read_text().splitlines()))
    assert [(int(r["start_ms"]), int(r["end_ms"])) for r in rows] == timings
    assert [r["file"] for r in rows] == [f.name for f in files]

    before = {f.name: f.read_bytes() for f in out_dir.iterdir()}
    code, _, err = run(capsys, *args)  # refuses to overwrite, touches nothing
    assert code == 1
    assert "already exist" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert {f.name: f.read_bytes() for f in out_dir.iterdir()} == before
    code, _, _ = run(capsys, *args, "--keep-silence", "0", "--overwrite")
    assert code == 0
    zero = ps.split_on_silence(seg, 300, -35, 0)
    assert [
        AudioSegment.from_file(str(out_dir / f"chunk-{i + 1:04d}.wav")).raw_data
        for i in range(len(zero))
    ] == [c.raw_data for c in zero]


@pytest.mark.parametrize("fmt", ["flac", "mp3", "opus"])
def test_split_encodes_other_formats(capsys, tmp_path, speech, fmt):
    out_dir = tmp_path / fmt
    code, _, _ = run(
        capsys,
        "split",
        speech,
        "--out",
        out_dir,
        "--format",
        fmt,
        "--min-silence-len",
        "300",
        "--silence-thresh",
        "-35",
    )
    assert code == 0
    manifest = json.loads((out_dir / "manifest.json").read_text())
    original = native(speech)
    for chunk in manifest["chunks"]:
        decoded = native(out_dir / chunk["file"])
        expected_frames = (chunk["end_ms"] - chunk["start_ms"]) * 16
        if fmt == "flac":  # lossless: the very samples
            begin = chunk["start_ms"] * 16
            assert np.array_equal(
                decoded.samples, original.samples[begin : begin + expected_frames]
            )
        else:  # lossy, maybe resampled: the right length within one codec frame
            seconds = decoded.frames / decoded.sample_rate
            assert abs(seconds - expected_frames / 16000) < 0.08


def test_split_reports_a_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "split", tmp_path / "gone.wav", "--out", tmp_path / "o")
    assert code == 1
    assert err.strip() == f"voxflow: error: {tmp_path / 'gone.wav'}: no such file"
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX mkfifo")
def test_split_refuses_a_pipe_at_once(capsys, tmp_path):
    fifo = tmp_path / "live.wav"
    os.mkfifo(fifo)  # even with a writer, the second pass (the cutting) would find it drained
    code, _, err = run(capsys, "split", fifo, "--out", tmp_path / "o")
    assert (code, err) == (1, f"voxflow: error: {fifo}: split reads its input twice, and a "
                              "pipe or device only once: save it to a file first\n")  # fmt: skip
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need POSIX mkfifo")
def test_a_named_pipe_nobody_writes_to_is_one_line_after_a_bounded_wait(tmp_path, speech):
    """The real process with the default wait (10 s): it used to block for good."""
    fifo = tmp_path / "nobody.wav"
    os.mkfifo(fifo)
    start = time.monotonic()
    command = [sys.executable, "-m", "voxflow", "silence", str(fifo), str(speech), "--format=json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert 10 <= time.monotonic() - start < 40
    assert done.returncode == 1
    assert done.stderr == (f"voxflow: error: {fifo}: a named pipe with no writer (waited 10 s "
                           "for one)\n")  # fmt: skip
    assert list(json.loads(done.stdout)) == [str(speech)]  # the other file is answered


@needs_unprivileged
def test_unreadable_files_are_one_line_each_and_the_others_are_answered(speech):
    with tempfile.TemporaryDirectory() as where:  # not under pytest's root-only directory
        folder = Path(where)
        folder.chmod(0o755)
        good = folder / "good.wav"
        good.write_bytes(speech.read_bytes())
        locked = folder / "locked.wav"
        locked.write_bytes(speech.read_bytes())
        locked.chmod(0)
        voxflow = [sys.executable, "-m", "voxflow"]
        done = subprocess.run(unprivileged([*voxflow, "silence", str(locked), str(good),
                                            "--format=json"]),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 1
        assert done.stderr == f"voxflow: error: {locked}: permission denied\n"
        assert list(json.loads(done.stdout)) == [str(good)]
        done = subprocess.run(unprivileged([*voxflow, "split", str(locked), "--out",
                                            str(folder / "o")]),
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 1
        assert done.stderr == f"voxflow: error: {locked}: permission denied\n"
        assert not (folder / "o").exists()


def test_real_process(tmp_path, speech):
    """The installed console script, as a user runs it."""
    if not VOXFLOW.exists():
        pytest.skip(f"console script not installed beside {sys.executable}")
    done = subprocess.run(
        [
            str(VOXFLOW),
            "silence",
            str(speech),
            "--min-silence-len",
            "300",
            "--silence-thresh",
            "-35",
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ps.detect_silence(
        AudioSegment.from_file(str(speech)), 300, -35
    )
    done = subprocess.run(
        [str(VOXFLOW), "silence", str(tmp_path / "nope.wav")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"voxflow: error: {tmp_path / 'nope.wav'}: no such file"


# -- voxflow.export --------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_wav_export_keeps_every_width_exactly(tmp_path, width):
    rng = np.random.default_rng(width)
    full = 2 ** (8 * width - 1)
    samples = rng.integers(-full, full, size=(999, 2)).astype(
        np.int32 if width > 2 else {1: np.int8, 2: np.int16}[width]
    )
    path = write_audio(tmp_path / "x.wav", samples, 11025, width)
    back = native(path)
    assert (back.sample_width, back.sample_rate) == (width, 11025)
    assert np.array_equal(back.samples, samples)
    from voxflow.audio import Audio

    assert (
        AudioSegment.from_file(str(path)).raw_data
        == Audio(samples, 11025, width).to_pydub().raw_data
    )


def test_writer_is_atomic_and_never_clobbers(tmp_path):
    target = tmp_path / "a.wav"
    target.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="already exists"):
        AudioWriter(target, sample_rate=8000, channels=1, sample_width=2)
    assert target.read_bytes() == b"keep me"
    fresh = tmp_path / "b.wav"
    with (
        pytest.raises(RuntimeError),
        AudioWriter(fresh, sample_rate=8000, channels=1, sample_width=2) as writer,
    ):
        writer.write(np.zeros((100, 1), np.int16))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == [target]  # no half file, no temporary left behind


def test_cut_frames_pads_past_the_end_like_pydub():
    seg = AudioSegment(
        data=np.arange(1, 1001, dtype="<i2").tobytes(), sample_width=2, frame_rate=44100, channels=1
    )  # 22.68 ms: len() rounds up to 23
    blocks = [np.arange(1, 1001, dtype=np.int16)[i : i + 97, None] for i in range(0, 1000, 97)]
    ranges_ms = [(0, 5), (5, 5), (7, 19), (20, 23)]
    frames = [(int(a * 44.1), int(b * 44.1)) for a, b in ranges_ms]
    got = [
        np.concatenate([p for p in pieces] or [np.zeros((0, 1), np.int16)])
        for _, pieces in cut_frames(blocks, frames)
    ]
    assert [g.astype("<i2").tobytes() for g in got] == [seg[a:b].raw_data for a, b in ranges_ms]
