"""Choosing output paths inside an output directory and writing them atomically."""

from __future__ import annotations

import os
import re
import tempfile
import unicodedata
from pathlib import Path

from voxflow.errors import OutputError

MAX_STEM = 120  # bytes of UTF-8; leaves room for suffixes under common 255-byte name limits


def safe_stem(name: str) -> str:
    """A file-name stem from an input name that cannot leave the output directory.

    Path separators, ``..``, control characters and leading dots are removed; Unicode is
    normalised (NFC) and the result is cut to a length every file system accepts.
    """
    stem = Path(name.replace("\\", "/")).name
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    stem = unicodedata.normalize("NFC", stem)
    stem = re.sub(r"[\x00-\x1f\x7f/]+", "_", stem).strip().lstrip(".")
    encoded = stem.encode("utf-8")[:MAX_STEM]
    stem = encoded.decode("utf-8", errors="ignore").strip()
    return stem or "audio"


def unique_stems(names: list[str]) -> list[str]:
    """One stem per input; inputs with the same stem get ``-2``, ``-3``… in input order."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        stem = safe_stem(name)
        key = stem.casefold()
        seen[key] = seen.get(key, 0) + 1
        out.append(stem if seen[key] == 1 else f"{stem}-{seen[key]}")
    return out


def write_atomic(path: Path, text: str, *, overwrite: bool = False) -> None:
    """Write text to ``path`` via a temporary file in the same directory, flushed and renamed.

    A crash leaves either the old file or the complete new one, never half of either; an
    existing file is kept unless ``overwrite``.
    """
    if path.exists() and not overwrite:
        raise OutputError("already exists (use --overwrite to replace it)", source=str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as exc:
        raise OutputError(f"cannot write here: {exc.strerror or exc}", source=str(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if not overwrite and path.exists():
            raise OutputError("appeared while writing; left untouched", source=str(path))
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write: {exc.strerror or exc}", source=str(path)) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
