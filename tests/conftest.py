"""Shared fixtures: the generated test media and, where present, the real corpus in ../shared;
and ``ffmpeg``/``ffprobe`` programs from pip for pydub, the parity oracle."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("VOXFLOW_CORPUS", ROOT.parent / "shared" / "corpus"))
TESTS = Path(__file__).resolve().parent
_TOOLS = pytest.StashKey[Path]()  # the folder of those programs, removed at the end


def pytest_configure(config: pytest.Config) -> None:
    """Put the imageio-ffmpeg wheel's ffmpeg and the ffprobe stand-in (tests/ffprobe.py) first on
    the PATH, before pydub is imported: pydub then finds them as it finds system programs, and
    the parity tests decode with the same FFmpeg on every machine."""
    import imageio_ffmpeg

    tools = Path(tempfile.mkdtemp(prefix="voxflow-tests-bin-"))
    (tools / "ffmpeg").symlink_to(imageio_ffmpeg.get_ffmpeg_exe())
    probe = tools / "ffprobe"
    probe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{TESTS / "ffprobe.py"}" "$@"\n')
    probe.chmod(0o755)
    os.environ["PATH"] = f"{tools}{os.pathsep}{os.environ.get('PATH', '')}"
    config.stash[_TOOLS] = tools


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the folder pytest_configure made."""
    if tools := config.stash.get(_TOOLS, None):
        shutil.rmtree(tools, ignore_errors=True)



@pytest.fixture(scope="session")
def corpus() -> Path:
    """The real recordings of ../shared/corpus; tests that use them skip on a fresh clone."""
    if not (CORPUS / "manifest.tsv").is_file():
        pytest.skip(f"../shared/corpus absent ({CORPUS}): real-recording checks need it")
    return CORPUS


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of synthesised test media with known content (see tests/media.py)."""
    import media as media_files

    return media_files.build(tmp_path_factory.mktemp("media"))
