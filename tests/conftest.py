"""Shared fixtures: the generated test media and, where present, the real corpus in ../shared."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("VOXFLOW_CORPUS", ROOT.parent / "shared" / "corpus"))


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
