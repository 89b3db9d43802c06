"""The public Python API: the names ``voxflow`` exports, and the README's example run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import voxflow

ROOT = Path(__file__).resolve().parent.parent

EXPORTED = {
    "AzureOptions", "ConfigError", "DecodeError", "DecodeSettings", "DiarizeOptions",
    "EngineError", "InputError", "LanguagePlan", "LidMode", "LiveSegmentation", "ModelError",
    "OutputError",
    "Progress", "ProtocolError", "Segment", "Speaker", "TranscribeOptions", "Transcript",
    "VoxflowError", "WhisperOptions", "Word",
    "__version__", "create_engine", "stream", "transcribe", "transcribe_async",
    "transcribe_many",
}  # fmt: skip


def test_the_exported_names_are_the_public_api() -> None:
    """A name added to or dropped from ``voxflow`` is a change to the API: make it here."""
    assert set(voxflow.__all__) == EXPORTED
    missing = [name for name in EXPORTED if not hasattr(voxflow, name)]
    assert not missing
    public = {n for n in vars(voxflow) if not n.startswith("_") and not _is_submodule(n)}
    assert public - {"annotations"} <= EXPORTED


def _is_submodule(name: str) -> bool:
    return type(getattr(voxflow, name)).__name__ == "module"


def test_the_readme_python_example_runs_as_written() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"## Python\n.*?<!-- tested -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "README.md lost its tested Python example"
    run = subprocess.run(
        [sys.executable, "-c", match.group(1)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert lines[0].startswith("en ") and "Dashwood" in lines[0], lines
    assert lines[1] == "es-MX 2", lines
    streamed = lines[2:]
    assert len(streamed) == 2 and all(" es-MX " in line for line in streamed), lines
    assert "distancia" in streamed[0] and "montaña" in streamed[1]
