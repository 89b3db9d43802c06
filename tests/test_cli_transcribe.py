"""``voxflow transcribe`` on the bundled samples: formats, stdout, failures, progress, outputs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from voxflow.cli import main
from voxflow.formats import parse_srt, parse_vtt, transcript_from_json

ROOT = Path(__file__).resolve().parent.parent
AUSTEN = ROOT / "samples" / "austen-0870.wav"
SPANISH = ROOT / "samples" / "es-mx.wav"
VOXFLOW = [sys.executable, "-m", "voxflow"]


def test_all_formats_are_written_and_follow_the_contract(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    code = main(["transcribe", str(AUSTEN), "-o", str(out), "-f", "txt,json,srt,vtt", "--quiet"])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".voxflow-job")) == [
        "austen-0870.json", "austen-0870.srt", "austen-0870.txt", "austen-0870.vtt",
    ]
    data = json.loads((out / "austen-0870.json").read_text())
    assert list(data)[:4] == ["source", "duration", "language", "segments"]
    assert data["duration"] == pytest.approx(7.1, abs=0.01)
    assert data["language"] == "en"
    seg = data["segments"][0]
    assert {"start", "end", "text", "language", "confidence", "words"} <= set(seg)
    assert {"start", "end", "word", "probability"} <= set(seg["words"][0])
    transcript = transcript_from_json((out / "austen-0870.json").read_text())
    text = (out / "austen-0870.txt").read_text().lower()
    assert "dashwood" in text and "prudently" in text
    assert text.splitlines() == [s.text.strip().lower() for s in transcript.segments]
    cues = parse_srt((out / "austen-0870.srt").read_text())
    assert cues and cues[0].start >= 0 and cues[-1].end <= 7.1
    assert " ".join(c.text for c in cues).lower().count("dashwood") == 1
    vtt = (out / "austen-0870.vtt").read_text()
    assert vtt.startswith("WEBVTT")
    assert [c.text for c in parse_vtt(vtt)] == [c.text for c in cues]
    hidden = [p for p in out.iterdir() if p.name.startswith(".")]
    assert all(p.name.startswith(".voxflow-job") for p in hidden), "no temporary files left"


def test_existing_outputs_are_kept_unless_overwrite(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "austen-0870.txt").write_text("my notes\n")
    assert main(["transcribe", str(AUSTEN), "-o", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "already exists" in err and "austen-0870.txt" in err
    assert (out / "austen-0870.txt").read_text() == "my notes\n"
    assert main(["transcribe", str(AUSTEN), "-o", str(out), "--quiet", "--overwrite"]) == 0
    assert "dashwood" in (out / "austen-0870.txt").read_text().lower()


def test_stdout_output_and_language_labels(capsys) -> None:
    code = main([
        "transcribe", str(SPANISH), "-f", "json", "--languages", "en-US,es-MX", "--quiet",
    ])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["language"] == "es-MX"
    assert {s["language"] for s in data["segments"]} == {"es-MX"}


def test_translate_task_writes_english_and_a_job_redoes_files_when_the_task_changes(
    tmp_path: Path, capsys
) -> None:
    """Whisper's translate task on real Spanish speech: English text, the spoken language still
    labelled; the task is part of a job's options, so the same job run again redoes the file."""
    out = tmp_path / "out"
    assert main(["transcribe", str(SPANISH), "-o", str(out), "-f", "txt,json", "--quiet"]) == 0
    spanish = (out / "es-mx.txt").read_text().lower()
    assert "distancia" in spanish and "luna" in spanish
    code = main(["transcribe", str(SPANISH), "-o", str(out), "-f", "txt,json", "--quiet",
                 "--task", "translate"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    english = (out / "es-mx.txt").read_text().lower()
    assert "distance" in english and "moon" in english and "mountain" in english
    assert not {"distancia", "luna", "montaña", "tierra"} & set(re.findall(r"[\w']+", english))
    data = json.loads((out / "es-mx.json").read_text())
    assert data["language"] == "es" and {s["language"] for s in data["segments"]} == {"es"}
    capsys.readouterr()
    assert main(["transcribe", str(SPANISH), "--task", "sing", "--quiet"]) == 1
    assert "unknown task 'sing'" in capsys.readouterr().err
    code = main(["transcribe", str(SPANISH), "--engine", "azure", "--task", "translate",
                 "--azure-key", "k", "--azure-region", "westeurope", "--quiet"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "Azure engine only transcribes" in err


def test_min_window_option(capsys) -> None:
    """--min-window shortens the encoder window of short segments; out of range, a clear error."""
    assert main(["transcribe", str(AUSTEN), "-f", "txt", "--min-window", "20", "--quiet"]) == 0
    text = capsys.readouterr().out.lower()
    assert "dashwood" in text and "prudently" in text
    assert main(["transcribe", str(AUSTEN), "-f", "txt", "--min-window", "45", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "min_window" in err and "45" in err


def test_a_batch_goes_on_past_bad_inputs_and_reports_them(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio\n")
    good = tmp_path / "good.wav"
    shutil.copyfile(AUSTEN, good)
    out = tmp_path / "out"
    code = main([
        "transcribe", str(tmp_path / "missing.wav"), str(bad), str(good), "-o", str(out),
        "--quiet",
    ])
    err = capsys.readouterr().err
    assert code == 1
    assert (out / "good.txt").is_file()
    assert not (out / "notes.txt").exists() and not (out / "missing.txt").exists()
    assert "1 of 3 files transcribed; 2 failed" in err
    lines = [line for line in err.splitlines() if line.startswith("  ")]
    assert any("missing.wav" in line and "no such file" in line for line in lines)
    assert any("notes.wav" in line and "not a recognised audio" in line for line in lines)
    assert "Traceback" not in err


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run(
        [*VOXFLOW, "transcribe", str(AUSTEN), "--model", str(tmp_path / "nope"), "-q"],
        capture_output=True, text=True, timeout=120, env=env,
    )
    assert run.returncode == 1
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "nope" in run.stderr
    run = subprocess.run(
        [*VOXFLOW, "transcribe", str(AUSTEN), "-f", "docx"], capture_output=True, text=True,
        timeout=120, env=env,
    )
    assert run.returncode == 1 and "docx" in run.stderr and "Traceback" not in run.stderr
    run = subprocess.run(
        [*VOXFLOW, "transcribe", str(tmp_path)], capture_output=True, text=True, timeout=120,
        env=env,
    )
    assert run.returncode == 1
    assert run.stderr == f"voxflow: error: no audio or video files in {tmp_path}\n"


def test_progress_json_lines(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run(
        [*VOXFLOW, "transcribe", str(AUSTEN), "-o", str(tmp_path), "--progress", "json"],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stderr.splitlines()]
    assert events[0] == {"event": "start", "files": 1}
    assert events[-1] == {"event": "end"}
    finished = [e for e in events if e["event"] == "file"]
    assert finished == [{"event": "file", "file": str(AUSTEN), "ok": True, "error": None}]
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["done"] == pytest.approx(7.1, abs=0.01)
    assert progress[-1]["eta"] is None  # the end: nothing left
    moving = progress[:-1]  # one line per recognised clip, with the time left at this pace
    assert moving and all(e["eta"] is not None and e["eta"] >= 0 for e in moving)
    assert [e["done"] for e in progress] == sorted(e["done"] for e in progress)


def test_azure_engine_from_the_command_line_against_voxflow_serve(tmp_path: Path, capsys) -> None:
    """`--engine azure --azure-host` through the real Azure SDK to a real local server; a wrong
    key fails in one line that does not show the key."""
    from serving import BackgroundServer
    from voxflow.engines import create_engine
    from voxflow.server.config import ServerConfig

    config = ServerConfig(port=0, key="right-key-123")
    with BackgroundServer(config, engine=create_engine()) as server:
        code = main([
            "transcribe", str(AUSTEN), "-f", "json", "--engine", "azure", "--quiet",
            "--azure-host", server.url, "--azure-key", "right-key-123",
        ])
        out = capsys.readouterr()
        assert code == 0, out.err
        data = json.loads(out.out)
        text = " ".join(s["text"] for s in data["segments"]).lower()
        assert "dashwood" in text and "prudently" in text
        assert "right-key-123" not in out.out + out.err
        code = main([
            "transcribe", str(AUSTEN), "-o", str(tmp_path), "--engine", "azure", "--quiet",
            "--azure-host", server.url, "--azure-key", "wrong-key-456",
        ])
        err = capsys.readouterr().err
    assert code == 1
    assert "wrong-key-456" not in err and "Traceback" not in err
    assert "austen-0870.wav" in err and "auth" in err.lower()


def test_outputs_are_byte_identical_at_any_concurrency(tmp_path: Path, capsys) -> None:
    """Nothing is sampled and no batch or thread count changes a result: the same files give
    the same bytes one at a time on one worker as four at a time on two."""
    import numpy as np

    from speech import read_wav, write_wav

    src = tmp_path / "in"
    src.mkdir()
    for sample in (AUSTEN, SPANISH):
        speech = read_wav(sample)
        for i, gain in enumerate((1.0, 0.7, 0.5)):
            write_wav(src / f"{sample.stem}-{i}.wav", speech * np.float32(gain))
    runs = []
    for n, flags in enumerate((["--concurrency", "1", "--workers", "1"], ["--concurrency", "4"])):
        out = tmp_path / f"out{n}"
        code = main(["transcribe", str(src), "-o", str(out), "-f", "json,srt", "-q", *flags])
        assert code == 0, capsys.readouterr().err
        runs.append({p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")})
    assert len(runs[0]) == 12 and runs[0] == runs[1]
