"""Turning command-line arguments (files, directories, globs, ``-``, ``@manifest``) into a
list of inputs."""

from __future__ import annotations

import glob
import os
import sys
from collections import deque
from pathlib import Path

from voxflow.errors import InputError

# What a directory scan picks up; files named explicitly are taken whatever their extension.
MEDIA_SUFFIXES = frozenset(
    {
        ".wav",
        ".wave",
        ".mp3",
        ".flac",
        ".ogg",
        ".oga",
        ".opus",
        ".m4a",
        ".mp4",
        ".aac",
        ".webm",
        ".mkv",
        ".mka",
        ".mov",
        ".avi",
        ".wma",
        ".aif",
        ".aiff",
        ".amr",
        ".3gp",
        ".caf",
        ".au",
        ".spx",
    }
)


def read_manifest(manifest: str) -> list[str]:
    """The paths a manifest lists: one per line (or NUL-separated, as ``find -print0`` writes),
    blank lines and lines starting with ``#`` skipped, relative paths taken from the manifest's
    own directory. ``-`` reads the list from stdin (relative paths from the current directory).
    """
    try:
        if manifest == "-":
            data, base = sys.stdin.buffer.read(), ""
        else:
            data, base = Path(manifest).read_bytes(), os.path.dirname(manifest)
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror or exc
        raise InputError(f"cannot read the manifest: {reason}", source=manifest) from None
    data = data.removeprefix(b"\xef\xbb\xbf")
    lines = data.split(b"\0") if b"\0" in data else data.split(b"\n")
    out = []
    for raw in lines:
        line = os.fsdecode(raw.removesuffix(b"\r"))  # undecodable bytes survive as surrogates
        if not line.strip() or (line.startswith("#") and b"\0" not in data):
            continue
        out.append(os.path.join(base, line) if base else line)
    return out


def _manifest_of(arg: str) -> str | None:
    """The manifest an ``@FILE`` argument names (a file really called ``@FILE`` is a file)."""
    if len(arg) > 1 and arg.startswith("@") and not os.path.lexists(arg):
        return arg[1:]
    return None


def expand_inputs(args: list[str], manifests: list[str] | None = None) -> list[str]:
    """Files as given, directories scanned recursively for media, globs expanded, manifests
    (``@FILE`` arguments and ``manifests``) read; in order, without duplicates. A name that
    matches nothing is kept so that it is reported as missing."""
    out: list[str] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        if name not in seen:
            seen.add(name)
            out.append(name)

    queue: deque[tuple[str, bool]] = deque((a, False) for a in args)  # (arg, from a manifest)
    for manifest in manifests or ():
        queue.extend((entry, True) for entry in read_manifest(manifest))
    while queue:
        arg, listed = queue.popleft()
        manifest = None if listed else _manifest_of(arg)
        if manifest is not None:
            queue.extendleft(reversed([(entry, True) for entry in read_manifest(manifest)]))
            continue
        if listed and arg == "-":
            arg = "./-"  # a file named "-" in a list, not stdin
        path = Path(arg)
        if arg == "-":
            add(arg)
        elif path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in MEDIA_SUFFIXES:
                    add(str(child))
        elif not listed and not path.exists() and glob.has_magic(arg):
            matches = sorted(glob.glob(arg, recursive=True))
            for match in matches or [arg]:
                if Path(match).is_dir():
                    continue
                add(match)
        else:
            add(arg)
    return out
