"""Choosing output paths inside an output directory and writing them atomically.

Every output goes through :func:`write_atomic`: a temporary file in the same directory,
written, fsynced, published under its final name (``link`` where it must not clobber, else
``rename``), and the directory fsynced. A crash leaves the complete file or nothing, plus at
most a hidden ``*.voxflow-part`` temporary; a job names its own after the content it recorded,
so that :func:`remove_temps` clears those and nothing else.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import unicodedata
from collections.abc import Collection
from pathlib import Path

from voxflow.errors import OutputError

MAX_STEM = 120  # bytes of UTF-8; leaves room for suffixes under common 255-byte name limits
TEMP_SUFFIX = ".voxflow-part"
# Characters that are unsafe or invalid in file names on common systems (Windows included),
# control characters, Unicode line separators, and bidirectional overrides that disguise names.
_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|\u2028\u2029]+')
_BIDI = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SURROGATE = re.compile(r"[\ud800-\udfff]+")
_RESERVED = {"con", "prn", "aux", "nul"} | {f"{d}{i}" for d in ("com", "lpt") for i in range(10)}

# Temporary files being written now: a hard exit (second Ctrl-C) removes them first.
_in_progress: set[str] = set()


class DiskFullError(OutputError):
    """The output's file system is full (or over quota): no later output can be written either."""


def safe_stem(name: str) -> str:
    """A file-name stem from an input name that cannot leave the output directory.

    Only the last path component is kept, without its extension; separators, control and
    bidi-override characters, characters Windows forbids, undecodable bytes, leading dots and
    trailing dots or spaces are removed or replaced; Unicode is normalised (NFC), device names
    (``con``, ``nul``…) are prefixed, and the result is cut to ``MAX_STEM`` bytes of UTF-8.
    """
    stem = _SURROGATE.sub("_", name).replace("\\", "/").rstrip("/")
    stem = stem.rsplit("/", 1)[-1]
    stem = stem.rsplit(".", 1)[0] if "." in stem.lstrip(".") else stem
    stem = _BIDI.sub("", unicodedata.normalize("NFC", stem))
    stem = _UNSAFE.sub("_", stem).strip().lstrip(".")
    stem = stem.encode("utf-8")[:MAX_STEM].decode("utf-8", errors="ignore")
    stem = stem.rstrip(". ").strip()
    if stem.split(".", 1)[0].casefold() in _RESERVED:
        stem = f"_{stem}"
    return stem or "audio"


def stem_key(stem: str) -> str:
    """What two stems share when a case- or normalisation-insensitive file system (macOS,
    Windows) would give them the same file: compare these, not the stems."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", stem).casefold())


def next_free_stem(stem: str, taken: set[str]) -> str:
    """``stem``, else ``stem-2``, ``stem-3``… whichever first has a key not in ``taken``."""
    candidate, n = stem, 1
    while stem_key(candidate) in taken:
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def unique_stems(names: list[str], taken: set[str] | None = None) -> list[str]:
    """One stem per input, distinct even on case-insensitive file systems and from the keys in
    ``taken``; a repeated stem gets ``-2``, ``-3``… in input order."""
    used = set(taken or ())
    out = []
    for name in names:
        stem = next_free_stem(safe_stem(name), used)
        used.add(stem_key(stem))
        out.append(stem)
    return out


def temp_path(path: Path, tag: str | None = None) -> Path:
    """A hidden temporary name beside ``path``, ``.NAME.TAG.voxflow-part``: TAG is random
    unless given (a job gives one it recorded, to know its own temporaries later)."""
    return path.with_name(f".{path.name}.{tag or secrets.token_hex(4)}{TEMP_SUFFIX}")


def remove_temps(directory: Path, names: Collection[str]) -> list[Path]:
    """Delete the regular files in ``directory`` whose names are in ``names`` (temporaries a
    killed run left); return what was removed. Nothing else goes, however it is named.

    Call it only while no other process writes there (a job holds its directory's lock).
    """
    removed: list[Path] = []
    if not names:
        return removed
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    for entry in entries:
        if entry.name in names and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except FileNotFoundError:
                pass
    return removed


def abandon_temps() -> None:
    """Remove the temporaries being written now; for a hard exit that skips ``finally``."""
    for name in list(_in_progress):
        with contextlib.suppress(OSError):
            os.unlink(name)


def write_atomic(
    path: Path, data: str | bytes, *, overwrite: bool = False, temp: Path | None = None
) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` so that it appears complete or not at all.

    The file gets the usual mode for new files (0666 less the umask). An existing file is
    kept unless ``overwrite``; OutputError (DiskFullError on a full disk) says why not written.
    ``temp`` is the temporary to write first (a fresh :func:`temp_path` by default).
    """
    payload = encode_text(data, path) if isinstance(data, str) else data
    try:
        if not overwrite and path.exists():
            raise OutputError("already exists (use --overwrite to replace it)", source=str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _error(exc, path, "cannot write here") from None
    tmp = temp or temp_path(path)
    _in_progress.add(str(tmp))
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(tmp, flags | getattr(os, "O_CLOEXEC", 0), 0o666)
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        publish(tmp, path, overwrite=overwrite)
    except OSError as exc:
        raise _error(exc, path, "cannot write") from None
    finally:
        _in_progress.discard(str(tmp))
        with contextlib.suppress(OSError):
            os.unlink(tmp)  # still there after a failure, or as the second link to the output


def encode_text(text: str, path: Path) -> bytes:
    """``text`` as UTF-8; an OutputError naming ``path`` if it holds lone surrogates."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        where = f"character {exc.start}"
        raise OutputError(f"cannot be written as UTF-8 ({exc.reason} at {where})",
                          source=str(path)) from None  # fmt: skip


def publish(tmp: Path, path: Path, *, overwrite: bool = False) -> None:
    """Give the complete file ``tmp`` its final name ``path`` and make that durable.

    Without ``overwrite`` a hard link publishes it, which fails rather than replace a file that
    appeared meanwhile; file systems without hard links fall back to check-then-rename.
    ``tmp`` may remain as a second name: the caller removes it.
    """
    appeared = OutputError("appeared while writing; left untouched", source=str(path))
    if overwrite:
        os.replace(tmp, path)
    else:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise appeared from None
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS,
                                 errno.EMLINK, errno.EXDEV):  # fmt: skip
                raise
            if path.exists():  # no hard links here: check, then rename
                raise appeared from None
            os.replace(tmp, path)
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename in ``directory`` durable; a no-op where directories cannot be synced."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return  # Windows cannot open a directory; its renames are durable by other means
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF):
            raise
    finally:
        os.close(fd)


def _error(exc: OSError, path: Path, what: str) -> OutputError:
    """A one-line OutputError for an OSError met while writing ``path``."""
    if exc.errno == errno.ENOSPC:
        return DiskFullError(f"disk full while writing {path}")
    if exc.errno == errno.EDQUOT:
        return DiskFullError(f"disk quota exceeded while writing {path}")
    if exc.errno == errno.EFBIG:
        return OutputError("too large for the file system or the file size limit", source=str(path))
    return OutputError(f"{what}: {exc.strerror or exc}", source=str(path))
